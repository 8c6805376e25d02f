"""The Referral document as Partner Center returns it (engagements/referrals v1.0).

One class per resource, fields in wire order, camelCase on the wire and snake_case in Python.
Reads are tolerant on purpose: the service adds fields and enum values without notice, so unknown
fields are kept (and written back untouched) and an enum value we have not seen is kept as a plain
string instead of failing the read. Timestamps stay the exact wire strings (the service sends seven
fractional digits, more than ``datetime`` holds) so a document dumps back byte-for-byte equal.
Values the documents do not foresee (a number where a string is documented, an epoch date, a list
sent as one object, PascalCase keys) are read by :mod:`pcref_mcp.referrals.tolerant`: normalised where
the meaning is clear, left out and noted otherwise (``Referral.read_problems``), so one odd referral
never makes a page unreadable. A referral that is not an object at all is skipped and named in
``ReferralPage.skipped``.
Strict models for what we *send* live in :mod:`pcref_mcp.referrals.write_models`.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pcref_mcp.referrals.tolerant import ReadProblem, normalise
from pcref_mcp.referrals.wire_values import (
    NOTES_LIMIT as NOTES_LIMIT,
)
from pcref_mcp.referrals.wire_values import (
    TEXT_LIMIT as TEXT_LIMIT,
)
from pcref_mcp.referrals.wire_values import (
    AssistanceRequestCode as AssistanceRequestCode,
)
from pcref_mcp.referrals.wire_values import (
    ContractTerm as ContractTerm,
)
from pcref_mcp.referrals.wire_values import (
    CustomerSize as CustomerSize,
)
from pcref_mcp.referrals.wire_values import (  # re-exported: the wire vocabulary, without the models
    E as E,
)
from pcref_mcp.referrals.wire_values import (
    Holds as Holds,
)
from pcref_mcp.referrals.wire_values import (
    Iso3166 as Iso3166,
)
from pcref_mcp.referrals.wire_values import (
    Iso4217 as Iso4217,
)
from pcref_mcp.referrals.wire_values import (
    Kind as Kind,
)
from pcref_mcp.referrals.wire_values import (
    Notes as Notes,
)
from pcref_mcp.referrals.wire_values import (
    Open as Open,
)
from pcref_mcp.referrals.wire_values import (
    PricingModel as PricingModel,
)
from pcref_mcp.referrals.wire_values import (
    PrimaryDeploymentOn as PrimaryDeploymentOn,
)
from pcref_mcp.referrals.wire_values import (
    ProfileType as ProfileType,
)
from pcref_mcp.referrals.wire_values import (
    ReferralDirection as ReferralDirection,
)
from pcref_mcp.referrals.wire_values import (
    ReferralQualification as ReferralQualification,
)
from pcref_mcp.referrals.wire_values import (
    ReferralRegistrationStatus as ReferralRegistrationStatus,
)
from pcref_mcp.referrals.wire_values import (
    ReferralStatus as ReferralStatus,
)
from pcref_mcp.referrals.wire_values import (
    ReferralSubstatus as ReferralSubstatus,
)
from pcref_mcp.referrals.wire_values import (
    ReferralType as ReferralType,
)
from pcref_mcp.referrals.wire_values import (
    RegistrationStatus as RegistrationStatus,
)
from pcref_mcp.referrals.wire_values import (
    RegistrationType as RegistrationType,
)
from pcref_mcp.referrals.wire_values import (
    SalesStage as SalesStage,
)
from pcref_mcp.referrals.wire_values import (
    SolutionType as SolutionType,
)
from pcref_mcp.referrals.wire_values import (
    TargetType as TargetType,
)
from pcref_mcp.referrals.wire_values import (
    Text as Text,
)
from pcref_mcp.referrals.wire_values import (
    ValidationStatus as ValidationStatus,
)
from pcref_mcp.referrals.wire_values import (
    WireDateTime as WireDateTime,
)

# --- base -----------------------------------------------------------------------------------------


class WireModel(BaseModel):
    """Tolerant read model: camelCase aliases, unknown fields kept and dumped back."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_enum_values=False,
        ser_json_inf_nan="null",
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON document as read: aliases, only fields that were present (normalised, see above)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --- people ---------------------------------------------------------------------------------------


class ContactPreference(WireModel):
    locale: str | None = None
    disable_notifications: bool | None = None


class Member(WireModel):
    """A person on the customer's or the sales team."""

    first_name: Text | None = None
    last_name: Text | None = None
    phone_number: Text | None = None
    email: Text | None = None
    title: Text | None = None
    email_validation_status: Open[ValidationStatus] | None = None
    phone_validation_status: Open[ValidationStatus] | None = None
    contact_preference: ContactPreference | None = None


# --- customer -------------------------------------------------------------------------------------


class Address(WireModel):
    address_line1: Text | None = None
    address_line2: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postal_code: Text | None = None
    country: Iso3166 | None = Field(default=None, description="ISO 3166-1 alpha-2")
    region: Text | None = None


class CustomerProfileId(WireModel):
    profile_type: Open[ProfileType] | None = None
    id: str | None = None


class CustomerProfile(WireModel):
    id: str | None = None
    name: Text | None = None
    address: Address | None = None
    size: Open[CustomerSize] | None = None
    is_matching_complete: bool | None = None
    team: list[Member] | None = None
    # The 2018 API sent an object ({"duns": "..."}); current responses send a list.
    ids: list[CustomerProfileId] | dict[str, Any] | None = None


class Consent(WireModel):
    # The misspelling ("ToTo") is the service's own and is what goes on the wire.
    consent_to_to_share_info_with_others: bool | None = Field(
        default=None, alias="consentToToShareInfoWithOthers"
    )
    consent_to_contact: bool | None = None
    consent_to_microsoft_to_contact_specific_partners: bool | None = None
    consent_to_share_referral_with_microsoft_sellers: bool | None = None


# --- details --------------------------------------------------------------------------------------


class Tag(WireModel):
    """A catalog reference (industry, product, service): ``{"id": "Azure"}``."""

    id: str | None = None


class SolutionTag(WireModel):
    id: str | None = None
    name: str | None = None
    type: Open[SolutionType] | None = None
    price: float | None = None
    quantity: float | None = None
    currency: Iso4217 | None = None
    publisher_name: str | None = None
    solution_type: str | None = None
    closing_date_time: WireDateTime | None = None


class Attribute(WireModel):
    """Extra classification, e.g. ``{"id": "HaveNotDecided", "type": "CustomerMarketplaceIntent"}``."""

    id: str | None = None
    type: str | None = None


class IotRequirements(WireModel):
    """IoT questionnaire; its fields are undocumented, so all of it passes through as extras."""


class AdditionalRequirements(WireModel):
    iot: IotRequirements | None = None
    attributes: list[Attribute] | None = None


class Requirements(WireModel):
    industries: list[Tag] | None = None
    products: list[Tag] | None = None
    services: list[Tag] | None = None
    solutions: list[SolutionTag] | None = None
    offers: list[Any] | None = None
    sales_plays: list[Any] | None = None
    additional_requirements: AdditionalRequirements | None = None


class ReferralDetails(WireModel):
    notes: Notes | None = None
    deal_value: float | None = None
    currency: Iso4217 | None = Field(default=None, description="ISO 4217")
    closing_date_time: WireDateTime | None = None
    customer_requested_contact: bool | None = None
    customer_action: str | None = None
    incentive_level: str | None = None
    requirements: Requirements | None = None


# --- routing, context, links ----------------------------------------------------------------------


class ReferralTarget(WireModel):
    type: Open[TargetType] | None = None
    id: Text | None = None


class InvitedBy(WireModel):
    organization_id: str | None = Field(default=None, description='"msft" for Microsoft')
    organization_name: str | None = None


class InviteContext(WireModel):
    notes: Notes | None = None
    assistance_request_code: Open[AssistanceRequestCode] | None = None
    invited_mpn_id: str | None = None
    invited_by: InvitedBy | None = None


class Link(WireModel):
    uri: str | None = None
    method: str | None = None


class Links(WireModel):
    related_referrals: Link | None = None
    self: Link | None = None


class TrackingInfo(WireModel):
    microsoft_msx_id: str | None = None
    microsoft_us_fed_opportunity_id: str | None = Field(default=None, alias="microsoftUSFedOpportunityId")
    microsoft_us_fed_lead_id: str | None = Field(default=None, alias="microsoftUSFedLeadId")
    migrated_psc_deal_id: str | None = Field(default=None, alias="migratedPSCDealId")
    migrated_psc_partner_deal_id: str | None = Field(default=None, alias="migratedPSCPartnerDealId")


# --- deal registration (Azure IP co-sell) ---------------------------------------------------------


class Contract(WireModel):
    value: float | None = None
    currency: Iso4217 | None = None
    start_date_time: WireDateTime | None = None
    end_date_time: WireDateTime | None = None
    sign_date_time: WireDateTime | None = None
    term: Open[ContractTerm] | None = None


class MarketplaceTransactionDetails(WireModel):
    is_marketplace_transacted: bool | None = None
    marketplace_transaction_date_time: WireDateTime | None = None


class RegistrationSolutionDetail(WireModel):
    id: str | None = None
    name: str | None = None
    currency: Iso4217 | None = None
    value: float | None = None
    is_deployed_on_azure: bool | None = None
    primary_deployment_on: Open[PrimaryDeploymentOn] | None = None
    pricing_model: Open[PricingModel] | None = None
    marketplace_transaction_details: MarketplaceTransactionDetails | None = None


class StatusHistory(WireModel):
    review_pending_date_time: WireDateTime | None = None
    action_required_date_time: WireDateTime | None = None
    passed_date_time: WireDateTime | None = None
    failed_date_time: WireDateTime | None = None
    approved_date_time: WireDateTime | None = None


class DealRegistration(WireModel):
    id: str | None = None
    type: Open[RegistrationType] | None = None
    registration_date_time: WireDateTime | None = None
    status: Open[RegistrationStatus] | None = None
    status_reason: str | None = None
    contract: Contract | None = None
    solution_details: list[RegistrationSolutionDetail] | None = None
    status_history: StatusHistory | None = None


# --- the referral ---------------------------------------------------------------------------------


class Referral(WireModel):
    """One referral (lead or co-sell opportunity), as GET /referrals/{id} returns it.

    The tolerant read happens here, at the document's root, once for the whole tree; nested models
    are plain validation.
    """

    # Only the roots carry notes: a private attribute on every nested model would cost a Python call
    # per object of every page.
    _read_problems: list[ReadProblem] = PrivateAttr(default_factory=list)

    @property
    def read_problems(self) -> list[ReadProblem]:
        """Values that were not as documented: how each was read, or that it was left out."""
        return list(self._read_problems)

    def left_out_under(self, pointer: str) -> list[ReadProblem]:
        """Values at or below ``pointer`` that could not be read and are missing from this model: a
        write replacing ``pointer`` as a whole would drop them without anyone seeing them."""
        prefix = pointer.rstrip("/") + "/"
        return [
            p for p in self._read_problems if p.left_out and (p.path == pointer or p.path.startswith(prefix))
        ]

    @model_validator(mode="wrap")
    @classmethod
    def _read_tolerantly(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Normalise the raw document, then validate it; note what was not as documented."""
        if _INSIDE.get() or not isinstance(data, dict):
            return handler(data)
        doc, problems = normalise(cls, data)
        return _validate_leaving_out(doc, problems, handler)

    odata_context: str | None = Field(default=None, alias="@odata.context")
    id: str | None = None
    engagement_id: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None
    business_profile_id: str | None = None
    name: Text | None = None
    external_reference_id: Text | None = None
    created_date_time: WireDateTime | None = None
    updated_date_time: WireDateTime | None = None
    expiration_date_time: WireDateTime | None = None
    accepted_date_time: WireDateTime | None = None
    closed_date_time: WireDateTime | None = None
    status: Open[ReferralStatus] | None = None
    substatus: Open[ReferralSubstatus] | None = None
    status_reason: Text | None = None
    qualification: Open[ReferralQualification] | None = None
    type: Open[ReferralType] | None = None
    direction: Open[ReferralDirection] | None = None
    referral_source: str | None = None
    call_to_action: str | None = None
    e_tag: str | None = Field(default=None, alias="eTag")
    favorite: bool | None = None
    campaign_id: Text | None = None
    # Documented as Qualify/Develop/Propose/Close; real records carry "100" or null.
    sales_stage: Open[SalesStage] | None = None
    quality: str | None = None
    is_spam: bool | None = None
    mpn_id: str | None = None
    referral_program: Text | None = None
    deal_sensitivity: str | None = None
    created_via: str | None = None
    last_modified_via: str | None = None
    last_run_id: str | None = None
    tags: list[str | dict[str, Any]] | None = None
    registration_status: Open[ReferralRegistrationStatus] | None = None
    target: list[ReferralTarget] | None = None
    customer_profile: CustomerProfile | None = None
    consent: Consent | None = None
    details: ReferralDetails | None = None
    team: list[Member] | None = None
    invite_context: InviteContext | None = None
    links: Links | None = None
    tracking_info: TrackingInfo | None = None
    registrations: list[DealRegistration] | None = None


@dataclass(frozen=True)
class SkippedItem:
    """An item of a page that could not be read as a referral at all (not an object, or broken
    beyond leaving single values out)."""

    id: str | None
    why: str

    def __str__(self) -> str:
        return f"{self.id or 'an item without id'} ({self.why})"


class ReferralPage(WireModel):
    """One page of GET /referrals: the OData envelope.

    Every item is read on its own: one that cannot be read is skipped and named in ``skipped``
    instead of failing the page.
    """

    odata_context: str | None = Field(default=None, alias="@odata.context")
    odata_count: int | None = Field(default=None, alias="@odata.count")
    value: list[Referral] = Field(default_factory=list)
    odata_next_link: str | None = Field(default=None, alias="@odata.nextLink")

    _skipped: list[SkippedItem] = PrivateAttr(default_factory=list)
    _read_problems: list[ReadProblem] = PrivateAttr(default_factory=list)

    @property
    def read_problems(self) -> list[ReadProblem]:
        """Envelope values that were not as documented (each referral carries its own)."""
        return list(self._read_problems)

    @model_validator(mode="wrap")
    @classmethod
    def _read_tolerantly(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if _INSIDE.get() or not isinstance(data, dict):
            return handler(data)
        items = next((data[k] for k in data if isinstance(k, str) and k.lower() == "value"), None)
        envelope = {k: v for k, v in data.items() if not (isinstance(k, str) and k.lower() == "value")}
        doc, problems = normalise(cls, envelope)
        if isinstance(items, dict):
            items = [items]
        referrals: list[Referral] = []
        skipped: list[SkippedItem] = []
        for item in items if isinstance(items, list) else []:
            try:
                referrals.append(Referral.model_validate(item))
            except ValidationError as err:
                skipped.append(_skipped_item(item, err))
        if items is not None and not isinstance(items, list):
            problems.append(ReadProblem("/value", "not a list", None))
        doc["value"] = referrals
        page = _validate_leaving_out(doc, problems, handler)
        page._skipped = skipped
        return page

    @property
    def skipped(self) -> list[SkippedItem]:
        """Items of this page that could not be read, by id: say so, never drop them silently."""
        return list(self._skipped)

    @property
    def note(self) -> str | None:
        """A sentence for the answer when items were skipped, else None."""
        return skipped_note(self._skipped)


def skipped_note(skipped: list[SkippedItem]) -> str | None:
    """One sentence naming referrals that could not be read (by id), for a search answer's note."""
    if not skipped:
        return None
    names = "; ".join(str(s) for s in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return (
        f"{len(skipped)} referral(s) could not be read and are not shown: {names}{more}. "
        "Use get_referral on an id to see what it holds."
    )


# --- tolerant reading (see pcref_mcp.referrals.tolerant) ------------------------------------------

_INSIDE: ContextVar[bool] = ContextVar("pcref_reading_inside", default=False)
_MAX_LEAVE_OUT = 20


def _validate_leaving_out(
    doc: dict[str, Any], problems: list[ReadProblem], handler: ValidatorFunctionWrapHandler
) -> Any:
    """Validate the normalised ``doc`` and attach its ``problems`` to the instance; a value the
    normaliser let through but the model still refuses is left out and noted, one at a time, so the
    rest of the document is read. Nested models validated meanwhile skip their own normalising."""
    token = _INSIDE.set(True)
    try:
        instance = _handle_leaving_out(doc, problems, handler)
    finally:
        _INSIDE.reset(token)
    instance._read_problems = problems
    return instance


def _handle_leaving_out(
    doc: dict[str, Any], problems: list[ReadProblem], handler: ValidatorFunctionWrapHandler
) -> Any:
    owned = False  # the normaliser hands back the caller's own objects where nothing differed
    for _ in range(_MAX_LEAVE_OUT):
        try:
            return handler(doc)
        except ValidationError as err:
            if not owned:
                doc, owned = _copy_tree(doc), True
            removed = False
            for error in err.errors():
                pointer = _remove(doc, error["loc"])
                if pointer is not None:
                    problems.append(ReadProblem(pointer, "a value of the wrong shape", None))
                    removed = True
            if not removed:
                raise
    return handler(doc)


def _copy_tree(node: Any) -> Any:
    """``node`` with every object and list in it copied (what :func:`_remove` may change)."""
    if isinstance(node, dict):
        return {k: _copy_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy_tree(v) for v in node]
    return node


def _remove(doc: Any, loc: tuple[int | str, ...]) -> str | None:
    """Drop the deepest existing value on ``loc`` (a pydantic error location); its JSON pointer."""
    parents: list[tuple[Any, int | str]] = []
    node = doc
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            break
        parents.append((node, part))
        node = node[part]
    if not parents:
        return None
    container, key = parents[-1]
    if isinstance(container, dict):
        del container[key]
    else:
        container.pop(int(key))
    return "/" + "/".join(str(k) for _, k in parents)


def _skipped_item(item: Any, err: ValidationError) -> SkippedItem:
    if not isinstance(item, dict):
        return SkippedItem(None, f"sent {type(item).__name__ if item is not None else 'null'}, not an object")
    ident = next((item[k] for k in item if isinstance(k, str) and k.lower() == "id"), None)
    return SkippedItem(str(ident) if ident is not None else None, f"{err.error_count()} unreadable value(s)")


class PatchOperation(BaseModel):
    """One RFC 6902 operation; the service accepts only ``add`` and ``replace``."""

    model_config = ConfigDict(extra="forbid")

    op: str = Field(pattern="^(add|replace)$")
    path: str = Field(pattern="^/")
    value: Any = None


# Read-only on the service: never sent in a PATCH and ignored on create.
READ_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "eTag",
        "createdDateTime",
        "updatedDateTime",
        "acceptedDateTime",
        "closedDateTime",
        "direction",
        "quality",
        "isSpam",
        "tags",
        "registrationStatus",
        "registrations",
        "links",
    }
)
