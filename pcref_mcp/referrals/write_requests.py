"""The request models: exactly the bodies of "Create a referral" (``ReferralCreate``) and of a deal
registration's ``add /registrations/-`` (``DealRegistrationCreate``).

camelCase on the wire, unknown fields refused, every value checked. Each is a write twin
(``twin``) of its read model in :mod:`pcref_mcp.referrals.models`, so a field is declared once.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from types import GenericAlias, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.alias_generators import to_camel

from pcref_mcp.referrals import catalog
from pcref_mcp.referrals import models as m
from pcref_mcp.referrals.lifecycle import SUBSTATUSES
from pcref_mcp.referrals.models import (
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    ProfileType,
    ReferralType,
    RegistrationType,
    SolutionType,
    TargetType,
)
from pcref_mcp.referrals.problems import RuleError
from pcref_mcp.referrals.registration_rules import _WIRE_NAMES, _registration_check, _wire_facts
from pcref_mcp.referrals.write_values import (
    Amount,
    CountryCode,
    CurrencyCode,
    CustomerSizeId,
    Email,
    IndustryId,
    MpnId,
    ProductId,
    ServiceId,
    UtcDateTime,
    _lookup,
)

__all__ = ["DealRegistrationCreate", "ReferralCreate", "WriteModel", "list_of", "twin"]


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
