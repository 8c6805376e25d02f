"""Strict models for what pcref-mcp sends: a new referral and a new deal registration.

Two layers. The *wire* models (``ReferralCreate``, ``DealRegistrationCreate``) are exactly the
request bodies of "Create a referral" and "Create a referral deal registration": camelCase on the
wire, unknown fields refused, every value checked. The *friendly* models (``NewReferral``,
``NewDealRegistration``) are flat, snake_case inputs a model fills in for a tool; they turn into
wire bodies with ``partner_referral_body`` / ``microsoft_referral_body`` / ``to_wire``.

Every rule speaks to a person: the field, the value given and what is allowed. Pydantic's own
errors are rewritten by ``validation_message``; ``parse_or_raise`` raises ``InvalidInput`` with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import catalog, money
from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.contract import (
    MIN_ANNUAL_CONTRACT_VALUE_USD,
    PERPETUAL_YEARS,
    annual_contract_value,
    contract_problems,
)
from pcref_mcp.referrals.lifecycle import SUBSTATUSES
from pcref_mcp.referrals.models import (
    AssistanceRequestCode,
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    ProfileType,
    ReferralQualification,
    ReferralStatus,
    ReferralSubstatus,
    ReferralType,
    RegistrationType,
    SolutionType,
    TargetType,
)
from pcref_mcp.referrals.money import parse_amount
from pcref_mcp.referrals.problems import FieldProblem, RuleError
from pcref_mcp.referrals.timestamps import REQUEST_DIGITS, format_wire, parse_wire
from pcref_mcp.referrals.when import MONTHS as _MONTHS

__all__ = [
    "DEAL_KINDS",
    "ENGAGEMENT_ID_PLACEHOLDER",
    "MICROSOFT_ORG_ID",
    "MIN_ANNUAL_CONTRACT_VALUE_USD",
    "PERPETUAL_YEARS",
    "Amount",
    "Contact",
    "ContractIn",
    "CurrencyCode",
    "DealKind",
    "DealKindRule",
    "DealRegistrationCreate",
    "NewDealRegistration",
    "NewReferral",
    "ReferralCreate",
    "UtcDateTime",
    "annual_contract_value",
    "microsoft_referral_body",
    "parse_amount",
    "parse_or_raise",
    "parse_when",
    "partner_referral_body",
    "validation_message",
    "wire_datetime",
    "with_engagement_id",
]

M = TypeVar("M", bound=BaseModel)

MICROSOFT_ORG_ID = "msft"
# Where the partner referral's engagementId goes in the Microsoft-side body of a co-sell pair: the id
# exists only once the first POST is answered, so the body is previewed (and approved) with this
# marker, and ``with_engagement_id`` puts the real id there and changes nothing else.
ENGAGEMENT_ID_PLACEHOLDER = "<engagementId of referral 1, filled in when it is created>"


# --- errors a person reads ------------------------------------------------------------------------


def validation_message(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One plain paragraph for every error in ``exc``, each naming the field, value and what is allowed."""
    sentences: list[str] = []
    for error in exc.errors():
        sentence = _sentence(error, model)
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)


def parse_or_raise(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, or ``InvalidInput`` with ``validation_message``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(
            validation_message(exc, model),
            field=_field_name(first["loc"]) or None,
            value=first.get("input") if first["type"] != "missing" else None,
        ) from None


# --- value types ----------------------------------------------------------------------------------

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Dates people write that can be read one way only: a month by name in either order ("March 31,
# 2027", "31 Mar 2027"), or day and month as numbers where one of them cannot be a month ("31/12/2027").
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_YEAR = r"(?P<year>\d{4})"
_DATE_IN_WORDS = (
    re.compile(rf"{_MONTH}\s+{_DAY},?\s+{_YEAR}", re.IGNORECASE),
    re.compile(rf"{_DAY}(?:\s+|-)(?:of\s+)?{_MONTH}(?:,?\s+|-){_YEAR}", re.IGNORECASE),
)
_DATE_IN_NUMBERS = re.compile(r"(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<year>\d{4})")


def parse_when(value: Any) -> datetime:
    """A date or an aware date-time (``2026-11-27``, ``2026-11-27T10:00:00Z``) as an aware UTC datetime.

    A date means midnight UTC. A date-time without a time zone is refused: guessing one would move
    the date for someone.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    elif isinstance(value, str) and (written := _written_date(value.strip())) is not None:
        return datetime.combine(written, time(), UTC)
    elif isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        day = parse_wire(value)
        if day is None:
            raise FieldProblem(lambda f: f"{f} {value!r} is not a calendar date.")
        return day
    elif isinstance(value, str):
        read = parse_wire(value, naive=True)
        if read is None:
            raise FieldProblem(
                lambda f: (
                    f"{f} {value!r} is not a date; use YYYY-MM-DD or a UTC date-time such as "
                    "'2026-11-27T10:00:00Z'."
                )
            )
        moment = read
    else:
        raise FieldProblem(lambda f: f"{f} {value!r} is not a date; use YYYY-MM-DD.")
    if moment.tzinfo is None:
        raise FieldProblem(
            lambda f: (
                f"{f} {_show(value)} has no time zone; add 'Z' for UTC (e.g. '2026-11-27T10:00:00Z') "
                "or give just the date."
            )
        )
    return moment.astimezone(UTC)


def _written_date(text: str) -> date | None:
    """A date written in words or with its parts in a local order, where it can be read one way
    only; None when ``text`` is not such a date at all. Refuses a date that two readers would read
    differently (``03/04/2027``) or that is not in the calendar."""
    for pattern in _DATE_IN_WORDS:
        found = pattern.fullmatch(text)
        if found and found["month"].lower() in _MONTHS:
            year, month, day = int(found["year"]), _MONTHS[found["month"].lower()], int(found["day"])
            break
    else:
        found = _DATE_IN_NUMBERS.fullmatch(text)
        if not found:
            return None
        a, b, year = int(found["a"]), int(found["b"]), int(found["year"])
        if a <= 12 and b <= 12 and a != b:
            readings = f"{_spelled(year, a, b)} or {_spelled(year, b, a)}"
            raise FieldProblem(
                lambda f, r=readings: f"{f} {text!r} can be read two ways ({r}); use YYYY-MM-DD."  # type: ignore[misc]
            )
        month, day = (a, b) if a <= 12 else (b, a)
    try:
        return date(year, month, day)
    except ValueError:
        raise FieldProblem(lambda f: f"{f} {text!r} is not a calendar date; use YYYY-MM-DD.") from None


def _spelled(year: int, month: int, day: int) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return f"{year}-{month:02d}-{day:02d}"


def wire_datetime(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form every documented request uses."""
    return format_wire(moment, REQUEST_DIGITS)


def currency_in_words(value: Any) -> Any:
    """A currency said in words ("euros", "Swiss francs") as its code; anything else as given."""
    if isinstance(value, str):
        code = money.currency_word(value)
        if code is not None and code != "$" and len(value.strip()) != 3:
            return code
    return value


def _email(value: str) -> str:
    if not is_email(value):
        raise FieldProblem(
            lambda f: f"{f} {value!r} is not an e-mail address; use the form name@example.com."
        )
    return value


def _mpn_id(value: str) -> str:
    if not value.isdigit():
        raise FieldProblem(
            lambda f: f"{f} {value!r} is not an MPN id; use the partner's numeric id, e.g. '6193175'."
        )
    return value


def _lookup(find: Callable[..., str]) -> Callable[[str], str]:
    """Wrap a catalog lookup so its message names the field pydantic reports."""

    def check(value: str) -> str:
        try:
            return find(value)
        except InvalidInput:
            raise FieldProblem(lambda f: _message_of(find, value, f)) from None

    return check


def _message_of(find: Callable[..., str], value: str, field: str) -> str:
    try:
        find(value, field=field)
    except InvalidInput as exc:
        return exc.message
    return f"{field} {value!r} is not allowed."


def _solution_ref(value: str) -> str:
    """A marketplace solution id as given, or a category solution's canonical id."""
    if catalog.is_solution_profile_id(value):
        return value.strip()
    try:
        return catalog.SOLUTIONS.lookup(value)
    except InvalidInput:
        raise FieldProblem(
            lambda f: (
                catalog.SOLUTIONS.unknown_message(value, field=f)
                + " A marketplace solution id looks like 'SOL-6115380-IPC'."
            )
        ) from None


def _catalog_schema(table: catalog.Catalog) -> dict[str, Any]:
    """Small catalogs go inline as an enum; large ones point at their resource."""
    if len(table) <= 12:
        return {"enum": list(table.ids())}
    return {"description": f"An id from {table.uri}, e.g. {table.ids()[0]!r}."}


UtcDateTime = Annotated[
    datetime, BeforeValidator(parse_when), PlainSerializer(wire_datetime, return_type=str)
]
DateInput = Annotated[date | datetime, BeforeValidator(parse_when)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(parse_amount)]
CountryCode = Annotated[str, AfterValidator(_lookup(catalog.country_code)), Field(min_length=1)]
CurrencyCode = Annotated[
    str,
    BeforeValidator(currency_in_words),
    AfterValidator(_lookup(catalog.currency_code)),
    Field(min_length=1),
]
Email = Annotated[str, AfterValidator(_email)]
MpnId = Annotated[str, AfterValidator(_mpn_id)]
ProductId = Annotated[
    str,
    AfterValidator(_lookup(catalog.PRODUCTS.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.PRODUCTS)),
]
ServiceId = Annotated[
    str,
    AfterValidator(_lookup(catalog.SERVICES.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.SERVICES)),
]
IndustryId = Annotated[
    str,
    AfterValidator(_lookup(catalog.INDUSTRIES.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.INDUSTRIES)),
]
CategorySolutionId = Annotated[
    str,
    AfterValidator(_lookup(catalog.SOLUTIONS.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.SOLUTIONS)),
]
SolutionRef = Annotated[
    str,
    AfterValidator(_solution_ref),
    Field(description="A category solution id (catalog://solutions) or a marketplace solution id (SOL-...)."),
]
CustomerSizeId = Annotated[
    str,
    AfterValidator(_lookup(catalog.CUSTOMER_SIZES.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.CUSTOMER_SIZES)),
]
AssistanceCode = Annotated[
    str,
    AfterValidator(_lookup(catalog.ASSISTANCE_REQUEST_CODES.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.ASSISTANCE_REQUEST_CODES)),
]
TermId = Annotated[
    str,
    AfterValidator(_lookup(catalog.CONTRACT_TERMS.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.CONTRACT_TERMS)),
]
PricingModelId = Annotated[
    str,
    AfterValidator(_lookup(catalog.PRICING_MODELS.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.PRICING_MODELS)),
]
DeploymentId = Annotated[
    str,
    AfterValidator(_lookup(catalog.PRIMARY_DEPLOYMENT.lookup)),
    Field(json_schema_extra=_catalog_schema(catalog.PRIMARY_DEPLOYMENT)),
]


# --- wire models: POST /referrals -----------------------------------------------------------------


class WriteModel(BaseModel):
    """Strict request model: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The request JSON: aliases, no nulls."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ContactPreferenceIn(WriteModel):
    locale: str | None = None
    disable_notifications: bool | None = None


class MemberIn(WriteModel):
    """A person on the customer's team or the sales team."""

    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None
    email: Email | None = None
    title: str | None = None
    contact_preference: ContactPreferenceIn | None = None


class AddressIn(WriteModel):
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. US.")
    region: str | None = None


class CustomerProfileIdIn(WriteModel):
    profile_type: ProfileType
    id: str


class CustomerProfileIn(WriteModel):
    name: str = Field(min_length=1)
    address: AddressIn
    size: CustomerSizeId | None = None
    team: list[MemberIn] | None = None
    ids: list[CustomerProfileIdIn] | None = None


class ConsentIn(WriteModel):
    consent_to_to_share_info_with_others: bool | None = Field(
        default=None, alias="consentToToShareInfoWithOthers"
    )
    consent_to_contact: bool | None = None
    consent_to_microsoft_to_contact_specific_partners: bool | None = None
    consent_to_share_referral_with_microsoft_sellers: bool | None = None


class ProductTag(WriteModel):
    id: ProductId


class ServiceTag(WriteModel):
    id: ServiceId


class IndustryTag(WriteModel):
    id: IndustryId


class SolutionTagIn(WriteModel):
    """A category solution (``type: Category``, id from the catalog) or a marketplace one (``Name``)."""

    id: str = Field(min_length=1)
    name: str | None = None
    type: SolutionType | None = None
    publisher_name: str | None = None
    solution_type: str | None = None
    price: float | None = None
    quantity: float | None = None
    currency: CurrencyCode | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, data: Any) -> Any:
        """A bare id is enough: ``"SOL-6115380-IPC"`` or ``"DevOps"``."""
        if isinstance(data, str):
            kind = SolutionType.NAME if catalog.is_solution_profile_id(data) else SolutionType.CATEGORY
            return {"id": data, "type": kind}
        return data

    @model_validator(mode="after")
    def _category_from_catalog(self) -> SolutionTagIn:
        if self.type is SolutionType.CATEGORY:
            self.id = _lookup(catalog.SOLUTIONS.lookup)(self.id)
        return self


class AttributeIn(WriteModel):
    id: str
    type: str


class AdditionalRequirementsIn(WriteModel):
    iot: dict[str, Any] | None = None
    attributes: list[AttributeIn] | None = None


class RequirementsIn(WriteModel):
    industries: list[IndustryTag] | None = None
    products: list[ProductTag] | None = None
    services: list[ServiceTag] | None = None
    solutions: list[SolutionTagIn] | None = None
    additional_requirements: AdditionalRequirementsIn | None = None


class DetailsIn(WriteModel):
    notes: str | None = None
    deal_value: Amount | None = None
    currency: CurrencyCode | None = None
    closing_date_time: UtcDateTime | None = None
    customer_requested_contact: bool | None = None
    requirements: RequirementsIn | None = None


class TargetIn(WriteModel):
    type: TargetType
    id: str


class InvitedByIn(WriteModel):
    organization_id: str | None = None
    organization_name: str | None = None


class InviteContextIn(WriteModel):
    notes: str | None = None
    assistance_request_code: AssistanceRequestCode | None = None
    invited_by: InvitedByIn | None = None


class ReferralAttributesIn(WriteModel):
    object_type: str | None = None


class TrackingInfoIn(WriteModel):
    microsoft_msx_id: str | None = None
    microsoft_us_fed_opportunity_id: str | None = Field(default=None, alias="microsoftUSFedOpportunityId")
    microsoft_us_fed_lead_id: str | None = Field(default=None, alias="microsoftUSFedLeadId")


class ReferralCreate(WriteModel):
    """The body of ``POST /referrals``. ``type``, ``customerProfile``, ``consent`` and ``details`` are required.

    The Microsoft-side referral of a co-sell pair also carries ``engagementId`` (the partner
    referral's), ``organizationId: "msft"`` and a ``BusinessProfileLocation`` target.
    """

    engagement_id: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None
    name: str | None = None
    external_reference_id: str | None = None
    status: ReferralStatus | None = None
    substatus: ReferralSubstatus | None = None
    status_reason: str | None = None
    qualification: ReferralQualification | None = None
    type: ReferralType
    campaign_id: str | None = None
    referral_program: str | None = None
    deal_sensitivity: str | None = None
    mpn_id: MpnId | None = None
    target: list[TargetIn] | None = None
    customer_profile: CustomerProfileIn
    consent: ConsentIn
    details: DetailsIn
    team: list[MemberIn] | None = None
    invite_context: InviteContextIn | None = None
    attributes: ReferralAttributesIn | None = None
    tracking_info: TrackingInfoIn | None = None

    @model_validator(mode="after")
    def _substatus_belongs_to_status(self) -> ReferralCreate:
        if self.status is not None and self.substatus is not None:
            allowed = SUBSTATUSES.get(self.status, ())
            if self.substatus not in allowed:
                raise RuleError(
                    f"substatus {self.substatus.value!r} does not belong to status {self.status.value!r}; "
                    f"with {self.status.value} use one of: {', '.join(allowed) or 'none'}."
                )
        return self


# --- friendly input: NewReferral ------------------------------------------------------------------


class DealKind(StrEnum):
    """How a new deal involves Microsoft ("Create a referral", deal types)."""

    PRIVATE = "private"
    PARTNER_LED = "partner_led"
    CO_SELL = "co_sell"


@dataclass(frozen=True)
class DealKindRule:
    referral_type: ReferralType
    share_with_microsoft_sellers: bool
    help_from_microsoft: bool
    meaning: str


DEAL_KINDS: dict[DealKind, DealKindRule] = {
    DealKind.PRIVATE: DealKindRule(
        ReferralType.INDEPENDENT, False, False, "not shared with Microsoft sellers, no help needed"
    ),
    DealKind.PARTNER_LED: DealKindRule(
        ReferralType.SHARED, True, False, "shared with Microsoft sellers, no help needed"
    ),
    DealKind.CO_SELL: DealKindRule(
        ReferralType.SHARED,
        True,
        True,
        "shared with Microsoft sellers and help requested: a second, linked referral for Microsoft",
    ),
}


class FriendlyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Contact(FriendlyModel):
    """A person: a customer contact or a member of the sales team."""

    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    email: Email | None = None
    phone: str | None = None

    def to_member(self) -> MemberIn:
        return MemberIn(
            first_name=self.first_name, last_name=self.last_name, email=self.email, phone_number=self.phone
        )


class NewReferral(FriendlyModel):
    """A new deal in plain fields; deal_kind decides who sees it."""

    name: str = Field(min_length=1)
    customer_name: str = Field(min_length=1)
    customer_country: CountryCode = Field(description="ISO 3166 alpha-2, e.g. US")
    customer_city: str = Field(min_length=1)
    customer_address_line1: str | None = None
    customer_state: str | None = None
    customer_postal_code: str | None = None
    customer_size: CustomerSizeId | None = None
    customer_contacts: list[Contact] = Field(default_factory=list)
    customer_consent_to_contact: bool = Field(
        description="Never assumed: ask the person if the customer agreed to be contacted and to sharing "
        "their details."
    )
    deal_kind: DealKind = Field(
        description="private: only you; partner_led: shared with Microsoft sellers; co_sell: shared and "
        "asking Microsoft for help."
    )
    deal_value: Amount | None = None
    currency: CurrencyCode | None = Field(default=None, description="ISO 4217 code of deal_value, e.g. USD.")
    closing_date: DateInput | None = Field(
        default=None, description="Expected close: a date (2026-11-27) or a UTC date-time."
    )
    notes: str | None = Field(default=None, description="Notes about the customer's need.")
    products: list[ProductId] = Field(default_factory=list, description="Ids: catalog://products.")
    services: list[ServiceId] = Field(default_factory=list)
    industries: list[IndustryId] = Field(default_factory=list, description="Ids: catalog://industries.")
    solutions: list[SolutionRef] = Field(
        default_factory=list, description="Category solution ids or your marketplace solution ids (SOL-...)."
    )
    assistance_request_code: AssistanceCode | None = Field(
        default=None, description="co_sell only: the help wanted from Microsoft."
    )
    help_notes: str | None = Field(default=None, description="co_sell only: a note to the Microsoft seller.")
    external_reference_id: str | None = Field(default=None, description="Your CRM id for this deal.")
    campaign_id: str | None = None
    team: list[Contact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> NewReferral:
        problems = [message for rule in _NEW_REFERRAL_RULES if (message := rule(self))]
        if problems:
            raise RuleError(" ".join(problems))
        return self


def _co_sell_needs_code(new: NewReferral) -> str | None:
    if new.deal_kind is DealKind.CO_SELL and new.assistance_request_code is None:
        codes = ", ".join(repr(code) for code in catalog.ASSISTANCE_REQUEST_CODES.ids())
        return (
            "deal_kind 'co_sell' needs assistance_request_code (the help you want from Microsoft); "
            f"use one of: {codes}."
        )
    return None


def _co_sell_needs_notes(new: NewReferral) -> str | None:
    if new.deal_kind is DealKind.CO_SELL and not new.help_notes:
        return "deal_kind 'co_sell' needs help_notes: a short note telling the Microsoft seller what help you need."
    return None


def _code_only_for_co_sell(new: NewReferral) -> str | None:
    if new.deal_kind is not DealKind.CO_SELL and new.assistance_request_code is not None:
        return (
            f"assistance_request_code {new.assistance_request_code!r} is only for deal_kind 'co_sell' "
            f"(help requested from Microsoft); remove it or set deal_kind to 'co_sell'."
        )
    return None


def _notes_only_for_co_sell(new: NewReferral) -> str | None:
    if new.deal_kind is not DealKind.CO_SELL and new.help_notes:
        return (
            f"help_notes is only for deal_kind 'co_sell' (help requested from Microsoft); remove it or set "
            f"deal_kind to 'co_sell'. Use notes for {new.deal_kind.value} deals."
        )
    return None


def _value_needs_currency(new: NewReferral) -> str | None:
    if new.deal_value is not None and new.currency is None:
        return f"currency is required with deal_value {new.deal_value:g}; use an ISO 4217 code such as 'USD'."
    return None


_NEW_REFERRAL_RULES: tuple[Callable[[NewReferral], str | None], ...] = (
    _co_sell_needs_code,
    _co_sell_needs_notes,
    _code_only_for_co_sell,
    _notes_only_for_co_sell,
    _value_needs_currency,
)


def partner_referral_body(new: NewReferral, *, mpn_id: str | None = None) -> ReferralCreate:
    """The partner's own referral for ``new`` (for co_sell, the first of the two POSTs).

    Shaped like the Partner Center UI's request in "Create a referral" (step 1 of a co-sell):
    ``attributes.objectType`` and, when the partner's MPN id is known, ``mpnId``.
    """
    rule = DEAL_KINDS[new.deal_kind]
    return ReferralCreate(
        name=new.name,
        external_reference_id=new.external_reference_id,
        campaign_id=new.campaign_id,
        type=rule.referral_type,
        qualification=ReferralQualification.SALES_QUALIFIED,
        mpn_id=mpn_id,
        customer_profile=_customer_profile(new),
        consent=_consent(new, share=rule.share_with_microsoft_sellers),
        details=_details(new, notes=new.notes),
        team=[contact.to_member() for contact in new.team] or None,
        attributes=ReferralAttributesIn(object_type="Referral"),
    )


def microsoft_referral_body(
    new: NewReferral,
    engagement_id: str = ENGAGEMENT_ID_PLACEHOLDER,
    partner_org_id: str | None = None,
    partner_org_name: str | None = None,
) -> ReferralCreate:
    """The second POST of a co-sell deal: Microsoft's referral, linked by the partner's ``engagement_id``.

    The form "Create a referral" shows today (step 2): no target and no solutions of the partner's
    (the 2019 form targeted ``BusinessProfileLocation msft`` and copied them), the help note as the
    details' notes and the invite note, and no externalReferenceId of ours (the id is the partner
    referral's; Microsoft's referral is found through the shared engagementId). Built with
    ``ENGAGEMENT_ID_PLACEHOLDER`` at preview time; ``with_engagement_id`` fills it in.
    """
    if new.deal_kind is not DealKind.CO_SELL:
        raise InvalidInput(
            f"deal_kind {new.deal_kind.value!r} does not invite Microsoft; only 'co_sell' creates a Microsoft referral.",
            field="deal_kind",
            value=new.deal_kind.value,
            allowed=[DealKind.CO_SELL.value],
        )
    if not engagement_id:
        raise InvalidInput(
            "engagement_id is required: the engagementId of the partner referral created first.",
            field="engagement_id",
        )
    invited_by = None
    if partner_org_id or partner_org_name:
        invited_by = InvitedByIn(organization_id=partner_org_id, organization_name=partner_org_name)
    details = _details(new, notes=new.help_notes)
    requirements = details.requirements or RequirementsIn()
    details.requirements = requirements.model_copy(
        update={
            "solutions": [],
            "additional_requirements": AdditionalRequirementsIn(iot={}, attributes=[]),
        }
    )
    return ReferralCreate(
        engagement_id=engagement_id,
        organization_id=MICROSOFT_ORG_ID,
        organization_name="Microsoft",
        name=new.name,
        type=ReferralType.SHARED,
        qualification=ReferralQualification.SALES_QUALIFIED,
        target=[],
        customer_profile=_customer_profile(new),
        consent=_consent(new, share=True),
        details=details,
        team=[],
        invite_context=InviteContextIn(
            notes=new.help_notes,
            assistance_request_code=(
                AssistanceRequestCode(new.assistance_request_code) if new.assistance_request_code else None
            ),
            invited_by=invited_by,
        ),
        attributes=ReferralAttributesIn(object_type="Referral"),
        deal_sensitivity="None",
        tracking_info=TrackingInfoIn(),
    )


def with_engagement_id(template: dict[str, Any], engagement_id: str) -> dict[str, Any]:
    """The previewed Microsoft-side body with the partner referral's engagementId in its one place.

    Nothing else changes: the approval covered every other byte. A template without the placeholder
    (already filled, or not a template) is refused rather than sent with a guessed id.
    """
    if template.get("engagementId") != ENGAGEMENT_ID_PLACEHOLDER:
        raise InvalidInput("This body has no engagementId placeholder to fill.", field="engagementId")
    if not engagement_id:
        raise InvalidInput("The partner referral's engagementId is empty.", field="engagementId")
    return {**template, "engagementId": engagement_id}


def _customer_profile(new: NewReferral) -> CustomerProfileIn:
    return CustomerProfileIn(
        name=new.customer_name,
        address=AddressIn(
            address_line1=new.customer_address_line1,
            city=new.customer_city,
            state=new.customer_state,
            postal_code=new.customer_postal_code,
            country=new.customer_country,
        ),
        size=new.customer_size,
        team=[contact.to_member() for contact in new.customer_contacts] or None,
    )


def _consent(new: NewReferral, *, share: bool) -> ConsentIn:
    return ConsentIn(
        consent_to_to_share_info_with_others=new.customer_consent_to_contact,
        consent_to_contact=new.customer_consent_to_contact,
        consent_to_share_referral_with_microsoft_sellers=share,
    )


def consent_line(new: NewReferral) -> str:
    """The customer's consent as the preview states it, on its first line: the person's to confirm."""
    said = "YES" if new.customer_consent_to_contact else "NO"
    return f"Customer agreed to be contacted and to sharing their details: {said} (as given in the call)."


def _details(new: NewReferral, *, notes: str | None) -> DetailsIn:
    requirements = RequirementsIn(
        industries=[IndustryTag(id=i) for i in new.industries] or None,
        products=[ProductTag(id=p) for p in new.products] or None,
        services=[ServiceTag(id=s) for s in new.services] or None,
        solutions=[SolutionTagIn.model_validate(s) for s in new.solutions] or None,
    )
    return DetailsIn(
        notes=notes,
        deal_value=new.deal_value,
        currency=new.currency,
        closing_date_time=parse_when(new.closing_date) if new.closing_date is not None else None,
        requirements=requirements if requirements.model_dump(exclude_none=True) else None,
    )


# --- wire models: add /registrations/- ------------------------------------------------------------


class MarketplaceTransactionIn(WriteModel):
    is_marketplace_transacted: bool
    marketplace_transaction_date_time: UtcDateTime | None = None


class SolutionDetailIn(WriteModel):
    id: str = Field(min_length=1)
    currency: CurrencyCode
    value: Amount
    is_deployed_on_azure: bool
    primary_deployment_on: PrimaryDeploymentOn
    pricing_model: PricingModel
    marketplace_transaction_details: MarketplaceTransactionIn


class ContractIn(WriteModel):
    currency: CurrencyCode
    value: Amount = Field(description="Total contract value, hardware excluded.")
    term: ContractTerm
    sign_date_time: UtcDateTime
    start_date_time: UtcDateTime
    end_date_time: UtcDateTime | None = None


class DealRegistrationCreate(WriteModel):
    """The value of ``{"op": "add", "path": "/registrations/-"}``: an Azure IP co-sell deal registration."""

    type: RegistrationType = RegistrationType.AZURE_IP_CO_SELL
    solution_details: list[SolutionDetailIn] = Field(min_length=1)
    contract: ContractIn

    @model_validator(mode="after")
    def _rules(self) -> DealRegistrationCreate:
        problems, _ = _registration_check(_wire_facts(self), _WIRE_NAMES)
        if problems:
            raise RuleError(" ".join(problems))
        return self

    def warnings(self) -> list[str]:
        """Rules that could not be checked (a non-USD contract); show them, do not refuse."""
        return _registration_check(_wire_facts(self), _WIRE_NAMES)[1]


# --- friendly input: NewDealRegistration ----------------------------------------------------------


class NewDealRegistration(FriendlyModel):
    """A deal registration in plain fields."""

    solution_id: str = Field(
        min_length=1, description="Your Azure IP co-sell solution id, e.g. SOL-6115380-IPC."
    )
    solution_value: Amount
    currency: CurrencyCode = Field(description="ISO 4217 code of solution_value, e.g. USD.")
    deployed_on_azure: bool = Field(description="The solution is deployed on Azure (required to register).")
    primary_deployment_on: DeploymentId = Field(description="Whose Azure tenant runs the solution.")
    pricing_model: PricingModelId
    marketplace_transacted: bool = Field(
        default=False, description="Sold through the commercial marketplace."
    )
    marketplace_transaction_date: DateInput | None = Field(
        default=None, description="When it was transacted; required if marketplace_transacted."
    )
    contract_value: Amount = Field(description="Total contract value, hardware excluded.")
    contract_currency: CurrencyCode | None = Field(default=None, description="Defaults to currency.")
    term: TermId = Field(description="Finite (needs end_date) or Perpetual (no end_date).")
    sign_date: DateInput
    start_date: DateInput
    end_date: DateInput | None = Field(default=None, description="Date a Finite contract ends.")

    # The rules across fields are not a validator: the planner reports them together with the
    # referral's unmet conditions, every one in a single refusal (issue 21).
    def problems(self) -> list[str]:
        """What Partner Center would refuse in this registration (empty when none)."""
        return _registration_check(_friendly_facts(self), _FRIENDLY_NAMES)[0]

    def warnings(self) -> list[str]:
        return _registration_check(_friendly_facts(self), _FRIENDLY_NAMES)[1]

    def to_wire(self) -> DealRegistrationCreate:
        transacted_on = self.marketplace_transaction_date
        return DealRegistrationCreate(
            solution_details=[
                SolutionDetailIn(
                    id=self.solution_id,
                    currency=self.currency,
                    value=self.solution_value,
                    is_deployed_on_azure=self.deployed_on_azure,
                    primary_deployment_on=PrimaryDeploymentOn(self.primary_deployment_on),
                    pricing_model=PricingModel(self.pricing_model),
                    marketplace_transaction_details=MarketplaceTransactionIn(
                        is_marketplace_transacted=self.marketplace_transacted,
                        marketplace_transaction_date_time=parse_when(transacted_on)
                        if transacted_on
                        else None,
                    ),
                )
            ],
            contract=ContractIn(
                currency=self.contract_currency or self.currency,
                value=self.contract_value,
                term=ContractTerm(self.term),
                sign_date_time=parse_when(self.sign_date),
                start_date_time=parse_when(self.start_date),
                end_date_time=parse_when(self.end_date) if self.end_date else None,
            ),
        )


# --- deal registration rules (research notes §4), shared by both registration models --------------


@dataclass(frozen=True)
class _SolutionFacts:
    deployed_on_azure: bool
    transacted: bool
    transaction_date: datetime | None


@dataclass(frozen=True)
class _RegistrationFacts:
    term: str
    start: datetime
    end: datetime | None
    value: float
    currency: str
    solutions: tuple[_SolutionFacts, ...]


# role -> the field name a person sees; "{i}" is the solution's index
_WIRE_NAMES = {
    "term": "contract.term",
    "start": "contract.startDateTime",
    "end": "contract.endDateTime",
    "value": "contract.value",
    "deployed": "solutionDetails[{i}].isDeployedOnAzure",
    "transacted": "solutionDetails[{i}].marketplaceTransactionDetails.isMarketplaceTransacted",
    "transaction_date": "solutionDetails[{i}].marketplaceTransactionDetails.marketplaceTransactionDateTime",
}
_FRIENDLY_NAMES = {
    "term": "term",
    "start": "start_date",
    "end": "end_date",
    "value": "contract_value",
    "deployed": "deployed_on_azure",
    "transacted": "marketplace_transacted",
    "transaction_date": "marketplace_transaction_date",
}


def _contract_rules(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    """The contract's own rules, from :mod:`pcref_mcp.referrals.contract` (the sandbox uses the same)."""
    return contract_problems(
        term=facts.term,
        start=facts.start,
        end=facts.end,
        value=facts.value,
        currency=facts.currency,
        names=names,
    )


def _deployed_on_azure(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    return [
        f"{names['deployed'].format(i=i)} is false: Partner Center would close the referral without a "
        "registration. Only solutions deployed on Azure can be registered for Azure IP co-sell."
        for i, solution in enumerate(facts.solutions)
        if not solution.deployed_on_azure
    ]


def _transaction_date_iff_transacted(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    problems = []
    for i, solution in enumerate(facts.solutions):
        date_name, flag_name = names["transaction_date"].format(i=i), names["transacted"].format(i=i)
        if solution.transacted and solution.transaction_date is None:
            problems.append(f"{date_name} is required when {flag_name} is true.")
        if not solution.transacted and solution.transaction_date is not None:
            problems.append(f"{date_name} must be empty when {flag_name} is false.")
    return problems


_REGISTRATION_RULES: tuple[Callable[[_RegistrationFacts, dict[str, str]], list[str]], ...] = (
    _contract_rules,
    _deployed_on_azure,
    _transaction_date_iff_transacted,
)


def _registration_check(facts: _RegistrationFacts, names: dict[str, str]) -> tuple[list[str], list[str]]:
    """(problems that refuse the registration, warnings to show)."""
    problems = [message for rule in _REGISTRATION_RULES for message in rule(facts, names)]
    warnings = []
    if facts.currency != "USD":
        warnings.append(
            f"The contract is in {facts.currency}, so the rule that the annual contract value must exceed "
            f"{MIN_ANNUAL_CONTRACT_VALUE_USD:,.0f} USD was not checked; make sure it does."
        )
    return problems, warnings


def _wire_facts(model: DealRegistrationCreate) -> _RegistrationFacts:
    contract = model.contract
    return _RegistrationFacts(
        term=contract.term,
        start=contract.start_date_time,
        end=contract.end_date_time,
        value=contract.value,
        currency=contract.currency,
        solutions=tuple(
            _SolutionFacts(
                s.is_deployed_on_azure,
                s.marketplace_transaction_details.is_marketplace_transacted,
                s.marketplace_transaction_details.marketplace_transaction_date_time,
            )
            for s in model.solution_details
        ),
    )


def _friendly_facts(model: NewDealRegistration) -> _RegistrationFacts:
    transacted_on = model.marketplace_transaction_date
    return _RegistrationFacts(
        term=model.term,
        start=parse_when(model.start_date),
        end=parse_when(model.end_date) if model.end_date else None,
        value=model.contract_value,
        currency=model.contract_currency or model.currency,
        solutions=(
            _SolutionFacts(
                model.deployed_on_azure,
                model.marketplace_transacted,
                parse_when(transacted_on) if transacted_on else None,
            ),
        ),
    )


# --- pydantic errors -> sentences -----------------------------------------------------------------

# pydantic error type -> sentence; {field}, {value} and the error's ctx keys are filled in
_TEMPLATES: dict[str, str] = {
    "missing": "{field} is required.",
    "extra_forbidden": "{field} is not a known field{allowed}.",
    "enum": "{field} {value} is not allowed; use one of: {expected}.",
    "literal_error": "{field} {value} is not allowed; use one of: {expected}.",
    "greater_than_equal": "{field} {value} is too small; use a number of at least {ge}.",
    "greater_than": "{field} {value} is too small; use a number greater than {gt}.",
    "less_than_equal": "{field} {value} is too large; use a number of at most {le}.",
    "less_than": "{field} {value} is too large; use a number below {lt}.",
    "int_type": "{field} {value} is not a whole number.",
    "int_from_float": "{field} {value} is not a whole number.",
    "string_too_long": "{field} is too long; use at most {max_length} characters.",
    "string_pattern_mismatch": "{field} {value} does not have the expected form ({pattern}).",
    "too_long": "{field} has too many items; give at most {max_length}.",
    "date_parsing": "{field} {value} is not a date; use YYYY-MM-DD.",
    "date_from_datetime_parsing": "{field} {value} is not a date; use YYYY-MM-DD.",
    "date_type": "{field} {value} is not a date; use YYYY-MM-DD.",
    "datetime_parsing": "{field} {value} is not a date-time; use e.g. '2026-11-27T10:00:00Z'.",
    "datetime_from_date_parsing": "{field} {value} is not a date-time; use e.g. '2026-11-27T10:00:00Z'.",
    "json_invalid": "{field} is not valid JSON.",
    "none_required": "{field} must be empty.",
    "finite_number": "{field} {value} is not a finite number.",
    "float_parsing": "{field} {value} is not a number; use digits such as 120000.",
    "float_type": "{field} {value} is not a number; use digits such as 120000.",
    "int_parsing": "{field} {value} is not a whole number.",
    "bool_parsing": "{field} {value} is not true or false.",
    "bool_type": "{field} {value} is not true or false.",
    "string_type": "{field} {value} must be text.",
    "string_too_short": "{field} must not be empty.",
    "too_short": "{field} needs at least {min_length} item(s).",
    "list_type": "{field} must be a list.",
    "model_type": "{field} must be an object with named fields.",
    "model_attributes_type": "{field} must be an object with named fields.",
    "dict_type": "{field} must be an object with named fields.",
    "date_from_datetime_inexact": "{field} {value} must be a date without a time.",
}


def _sentence(error: Any, model: type[BaseModel] | None) -> str:
    loc = tuple(error["loc"])
    field = _field_name(loc) or "input"
    if error["type"] == "value_error":
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            return cause.render(field)
        if isinstance(cause, RuleError):
            return str(cause)
        return f"{field} {_show(error.get('input'))}: {cause}."
    template = _TEMPLATES.get(error["type"])
    if template is None:  # a rule without a sentence yet: pydantic's words, never its phrasing or links
        said = re.sub(r"^Input should (?:be )?", "must be ", str(error["msg"])).replace("Input", "the value")
        return f"{field} {_show(error.get('input'))} is not accepted: {said}."
    ctx = {key: _show_number(value) for key, value in error.get("ctx", {}).items()}
    allowed = ""
    if error["type"] == "extra_forbidden" and model is not None and len(loc) == 1:
        allowed = "; allowed fields: " + ", ".join(model.model_fields)
    return template.format(field=field, value=_show(error.get("input")), allowed=allowed, **ctx)


def _field_name(loc: Sequence[Any]) -> str:
    """``("customer_contacts", 0, "email")`` -> ``customer_contacts[0].email``."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in {"function-after[check()]", "function-before[parse_when()]"}:
            continue
        else:
            name += f".{part}" if name else str(part)
    return name


def _show_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _show(value: Any) -> str:
    """A value as the caller gave it, cut short: a message never echoes a whole document back."""
    if isinstance(value, datetime | date):
        return repr(value.isoformat())
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} characters)"
