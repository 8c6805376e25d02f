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
from types import GenericAlias, UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import catalog, money
from pcref_mcp.referrals import models as m
from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.contract import (
    MIN_ANNUAL_CONTRACT_VALUE_USD,
    PERPETUAL_YEARS,
    annual_contract_value,
    contract_problems,
)
from pcref_mcp.referrals.contract import WIRE_NAMES as CONTRACT_WIRE_NAMES
from pcref_mcp.referrals.lifecycle import SUBSTATUSES
from pcref_mcp.referrals.models import (
    AssistanceRequestCode,
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    ProfileType,
    ReferralQualification,
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

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The request JSON: aliases, no nulls."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- the write twins: derived from the read models ------------------------------------------------
#
# Each object the service takes is declared once, as the read model in pcref_mcp.referrals.models. Its
# write twin takes the read model's fields (those a request may carry, in the order listed), typed as
# read but closed: an open enum takes only its documented values, a nested model becomes its own twin,
# and unknown fields are refused. Only where a request is stricter than a read is a field named here
# again, with the stricter type (a required name, an e-mail, a catalog id).


def _closed(annotation: Any) -> Any:
    """A read annotation made strict: open enums closed, nested read models replaced by their twins."""
    if get_origin(annotation) is Annotated:
        return _closed(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        members = [_closed(a) for a in get_args(annotation)]
        if any(isinstance(m, type) and issubclass(m, StrEnum) for m in members):
            members = [m for m in members if m is not str]  # Open[E] -> E
        return Union[tuple(members)]  # noqa: UP007 - built from a tuple of members
    if get_origin(annotation) is list:
        return list_of(_closed(get_args(annotation)[0]))
    return _TWINS.get(annotation, annotation)


_TWINS: dict[Any, Any] = {}


def list_of(item: Any) -> Any:
    """``list[item]`` for an item type built at run time."""
    return GenericAlias(list, (item,))


def twin(
    read: type[BaseModel],
    fields: Sequence[str],
    *,
    stricter: dict[str, Any] | None = None,
    name: str | None = None,
    base: type[WriteModel] | None = None,
) -> Any:
    """The write model of ``read`` with ``fields`` (in this order): each typed as ``read`` types it but
    closed (:func:`_closed`), or as ``stricter`` gives it (an annotation, or ``(annotation, default)``).

    Built at import, a twin is ``Any`` to the type checker: its fields are declared only once, in the
    read model (functions that take or return one say :class:`WriteModel`)."""
    stricter = stricter or {}
    definitions: dict[str, Any] = {}
    for field_name in fields:
        info = read.model_fields.get(field_name)
        alias = info.alias if info is not None and info.alias != to_camel(field_name) else None
        given = stricter.get(field_name)
        if given is None:
            assert info is not None, f"{read.__name__} has no field {field_name!r}"
            definitions[field_name] = (_closed(info.annotation), Field(default=None, alias=alias))
        elif isinstance(given, tuple):
            definitions[field_name] = given
        else:
            definitions[field_name] = (given, Field(alias=alias) if alias else ...)
    model = create_model(
        name or f"{read.__name__}In",
        __base__=base or WriteModel,
        __doc__=read.__doc__ or (base.__doc__ if base is not None else None),
        __module__=__name__,
        **definitions,
    )
    if name is None:
        _TWINS[read] = model
    return model


class _SolutionTagRules(WriteModel):
    """A category solution (``type: Category``, id from the catalog) or a marketplace one (``Name``)."""

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, data: Any) -> Any:
        """A bare id is enough: ``"SOL-6115380-IPC"`` or ``"DevOps"``."""
        if isinstance(data, str):
            kind = SolutionType.NAME if catalog.is_solution_profile_id(data) else SolutionType.CATEGORY
            return {"id": data, "type": kind}
        return data

    @model_validator(mode="after")
    def _category_from_catalog(self) -> _SolutionTagRules:
        if getattr(self, "type", None) is SolutionType.CATEGORY:
            self.__dict__["id"] = _lookup(catalog.SOLUTIONS.lookup)(self.__dict__["id"])
        return self


_NAME = (str, Field(min_length=1))
ContactPreferenceIn = twin(m.ContactPreference, ("locale", "disable_notifications"))
MemberIn = twin(
    m.Member,
    ("first_name", "last_name", "phone_number", "email", "title", "contact_preference"),
    stricter={"email": (Email | None, None)},
)
AddressIn = twin(
    m.Address,
    ("address_line1", "address_line2", "city", "state", "postal_code", "country", "region"),
    stricter={"country": (CountryCode, Field(description="ISO 3166-1 alpha-2, e.g. US."))},
)
CustomerProfileIdIn = twin(
    m.CustomerProfileId, ("profile_type", "id"), stricter={"profile_type": ProfileType, "id": str}
)
CustomerProfileIn = twin(
    m.CustomerProfile,
    ("name", "address", "size", "team", "ids"),
    stricter={
        "name": _NAME,
        "address": AddressIn,
        "size": (CustomerSizeId | None, None),
        "ids": (list_of(CustomerProfileIdIn) | None, None),
    },
)
ConsentIn = twin(
    m.Consent,
    (
        "consent_to_to_share_info_with_others",
        "consent_to_contact",
        "consent_to_microsoft_to_contact_specific_partners",
        "consent_to_share_referral_with_microsoft_sellers",
    ),
)
ProductTag = twin(m.Tag, ("id",), stricter={"id": ProductId}, name="ProductTag")
ServiceTag = twin(m.Tag, ("id",), stricter={"id": ServiceId}, name="ServiceTag")
IndustryTag = twin(m.Tag, ("id",), stricter={"id": IndustryId}, name="IndustryTag")
SolutionTagIn = twin(
    m.SolutionTag,
    ("id", "name", "type", "publisher_name", "solution_type", "price", "quantity", "currency"),
    stricter={"id": _NAME, "currency": (CurrencyCode | None, None)},
    base=_SolutionTagRules,
)
AttributeIn = twin(m.Attribute, ("id", "type"), stricter={"id": str, "type": str})
AdditionalRequirementsIn = twin(
    m.AdditionalRequirements, ("iot", "attributes"), stricter={"iot": (dict[str, Any] | None, None)}
)
RequirementsIn = twin(
    m.Requirements,
    ("industries", "products", "services", "solutions", "additional_requirements"),
    stricter={
        "industries": (list_of(IndustryTag) | None, None),
        "products": (list_of(ProductTag) | None, None),
        "services": (list_of(ServiceTag) | None, None),
    },
)
DetailsIn = twin(
    m.ReferralDetails,
    ("notes", "deal_value", "currency", "closing_date_time", "customer_requested_contact", "requirements"),
    stricter={
        "deal_value": (Amount | None, None),
        "currency": (CurrencyCode | None, None),
        "closing_date_time": (UtcDateTime | None, None),
    },
    name="DetailsIn",
)
_TWINS[m.ReferralDetails] = DetailsIn
TargetIn = twin(m.ReferralTarget, ("type", "id"), stricter={"type": TargetType, "id": str}, name="TargetIn")
InvitedByIn = twin(m.InvitedBy, ("organization_id", "organization_name"))
InviteContextIn = twin(m.InviteContext, ("notes", "assistance_request_code", "invited_by"))
TrackingInfoIn = twin(
    m.TrackingInfo, ("microsoft_msx_id", "microsoft_us_fed_opportunity_id", "microsoft_us_fed_lead_id")
)
MarketplaceTransactionIn = twin(
    m.MarketplaceTransactionDetails,
    ("is_marketplace_transacted", "marketplace_transaction_date_time"),
    stricter={
        "is_marketplace_transacted": bool,
        "marketplace_transaction_date_time": (UtcDateTime | None, None),
    },
    name="MarketplaceTransactionIn",
)
_TWINS[m.MarketplaceTransactionDetails] = MarketplaceTransactionIn
SolutionDetailIn = twin(
    m.RegistrationSolutionDetail,
    (
        "id",
        "currency",
        "value",
        "is_deployed_on_azure",
        "primary_deployment_on",
        "pricing_model",
        "marketplace_transaction_details",
    ),
    stricter={
        "id": _NAME,
        "currency": CurrencyCode,
        "value": Amount,
        "is_deployed_on_azure": bool,
        "primary_deployment_on": PrimaryDeploymentOn,
        "pricing_model": PricingModel,
        "marketplace_transaction_details": MarketplaceTransactionIn,
    },
    name="SolutionDetailIn",
)
ContractIn = twin(
    m.Contract,
    ("currency", "value", "term", "sign_date_time", "start_date_time", "end_date_time"),
    stricter={
        "currency": CurrencyCode,
        "value": (Amount, Field(description="Total contract value, hardware excluded.")),
        "term": ContractTerm,
        "sign_date_time": UtcDateTime,
        "start_date_time": UtcDateTime,
        "end_date_time": (UtcDateTime | None, None),
    },
)


# ``attributes`` of a create ("Create a referral" sends ``{"objectType": "Referral"}``): never read back,
# so it has no read model to be the twin of.
class ReferralAttributesIn(WriteModel):
    object_type: str | None = None


class _ReferralRules(WriteModel):
    """The body of ``POST /referrals``. ``type``, ``customerProfile``, ``consent`` and ``details`` are required.

    The Microsoft-side referral of a co-sell pair also carries ``engagementId`` (the partner
    referral's), ``organizationId: "msft"`` and a ``BusinessProfileLocation`` target.
    """

    @model_validator(mode="after")
    def _substatus_belongs_to_status(self) -> _ReferralRules:
        status, substatus = self.__dict__["status"], self.__dict__["substatus"]
        if status is not None and substatus is not None:
            allowed = SUBSTATUSES.get(status, ())
            if substatus not in allowed:
                raise RuleError(
                    f"substatus {substatus.value!r} does not belong to status {status.value!r}; "
                    f"with {status.value} use one of: {', '.join(allowed) or 'none'}."
                )
        return self


ReferralCreate = twin(
    m.Referral,
    (
        "engagement_id",
        "organization_id",
        "organization_name",
        "name",
        "external_reference_id",
        "status",
        "substatus",
        "status_reason",
        "qualification",
        "type",
        "campaign_id",
        "referral_program",
        "deal_sensitivity",
        "mpn_id",
        "target",
        "customer_profile",
        "consent",
        "details",
        "team",
        "invite_context",
        "attributes",
        "tracking_info",
    ),
    stricter={
        "type": ReferralType,
        "mpn_id": (MpnId | None, None),
        "customer_profile": CustomerProfileIn,
        "consent": ConsentIn,
        "details": DetailsIn,
        "attributes": (ReferralAttributesIn | None, None),
    },
    name="ReferralCreate",
    base=_ReferralRules,
)


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

    def to_member(self) -> WriteModel:
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


def partner_referral_body(new: NewReferral, *, mpn_id: str | None = None) -> WriteModel:
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
) -> WriteModel:
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
    details = _details(new, notes=new.help_notes, for_microsoft=True)
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


def _customer_profile(new: NewReferral) -> WriteModel:
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


def _consent(new: NewReferral, *, share: bool) -> WriteModel:
    return ConsentIn(
        consent_to_to_share_info_with_others=new.customer_consent_to_contact,
        consent_to_contact=new.customer_consent_to_contact,
        consent_to_share_referral_with_microsoft_sellers=share,
    )


def consent_line(new: NewReferral) -> str:
    """The customer's consent as the preview states it, on its first line: the person's to confirm."""
    said = "YES" if new.customer_consent_to_contact else "NO"
    return f"Customer agreed to be contacted and to sharing their details: {said} (as given in the call)."


def _details(new: NewReferral, *, notes: str | None, for_microsoft: bool = False) -> WriteModel:
    """The details; Microsoft's referral of a co-sell carries none of the partner's solutions and
    empty additional requirements, as the form sends them."""
    requirements = RequirementsIn(
        industries=[IndustryTag(id=i) for i in new.industries] or None,
        products=[ProductTag(id=p) for p in new.products] or None,
        services=[ServiceTag(id=s) for s in new.services] or None,
        solutions=[] if for_microsoft else [SolutionTagIn.model_validate(s) for s in new.solutions] or None,
        additional_requirements=AdditionalRequirementsIn(iot={}, attributes=[]) if for_microsoft else None,
    )
    return DetailsIn(
        notes=notes,
        deal_value=new.deal_value,
        currency=new.currency,
        closing_date_time=parse_when(new.closing_date) if new.closing_date is not None else None,
        requirements=requirements if requirements.model_dump(exclude_none=True) else None,
    )


# --- wire model: add /registrations/- ------------------------------------------------------------


class _RegistrationRules(WriteModel):
    """The value of ``{"op": "add", "path": "/registrations/-"}``: an Azure IP co-sell deal registration."""

    @model_validator(mode="after")
    def _rules(self) -> _RegistrationRules:
        problems, _ = _registration_check(_wire_facts(self), _WIRE_NAMES)
        if problems:
            raise RuleError(" ".join(problems))
        return self

    def warnings(self) -> list[str]:
        """Rules that could not be checked (a non-USD contract); show them, do not refuse."""
        return _registration_check(_wire_facts(self), _WIRE_NAMES)[1]


DealRegistrationCreate = twin(
    m.DealRegistration,
    ("type", "solution_details", "contract"),
    stricter={
        "type": (RegistrationType, RegistrationType.AZURE_IP_CO_SELL),
        "solution_details": (list_of(SolutionDetailIn), Field(min_length=1)),
        "contract": ContractIn,
    },
    name="DealRegistrationCreate",
    base=_RegistrationRules,
)


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

    def to_wire(self) -> WriteModel:
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
    **CONTRACT_WIRE_NAMES,
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


def _wire_facts(model: WriteModel) -> _RegistrationFacts:
    """The facts of a :data:`DealRegistrationCreate` (read by name: a twin has no static fields)."""
    contract: Any = getattr(model, "contract")  # noqa: B009
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
            for s in getattr(model, "solution_details")  # noqa: B009
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
