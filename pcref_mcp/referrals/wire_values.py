"""The wire's vocabulary: the enums (values exactly as on the wire), the text limits and the ``Holds``
markers of :mod:`pcref_mcp.referrals.models`, without its models.

Re-exported by :mod:`pcref_mcp.referrals.models` (import them from either). Their own module so what the
server needs to answer ``tools/list`` (the tool argument models name these enums: catalogs, the write
inputs, the search filters) loads without the tolerant wire models, which load with the first read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import Field

E = TypeVar("E", bound=StrEnum)

# An enum field that also accepts values the service adds later (kept as plain strings).
Open = Annotated[E | str, Field(union_mode="left_to_right")]


# What a wire value is, for the field table: the writer's type and the sandbox's check follow from it.
Kind = Literal[
    "text",
    "amount",
    "currency",
    "country",
    "datetime",
    "bool",
    "enum",
    "member",
    "members",
    "solution",
    "solutions",
]


@dataclass(frozen=True)
class Holds:
    """What a text value holds beyond ``str``: its kind and the most characters the service keeps.

    Read by the field table (:mod:`pcref_mcp.referrals.fields`), which takes what it knows of a field
    from here; pydantic ignores it, so a field reads (tolerantly) and dumps exactly as a plain ``str``.
    """

    kind: Kind = "text"
    limit: int | None = None


TEXT_LIMIT = 500  # a name, an id, a reason: what the service keeps (the sandbox mirrors it)
NOTES_LIMIT = 10_000  # notes

# Free text the service keeps up to a limit: a name, an id, a reason; notes.
Text = Annotated[str, Holds("text", TEXT_LIMIT)]
Notes = Annotated[str, Holds("text", NOTES_LIMIT)]

# Codes: a currency (ISO 4217, "USD") and a country (ISO 3166-1 alpha-2, "US").
Iso4217 = Annotated[str, Holds("currency")]
Iso3166 = Annotated[str, Holds("country")]

# A UTC timestamp exactly as the service wrote it, e.g. "2019-02-23T02:05:23.2931817Z".
WireDateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"}), Holds("datetime")]


# --- enums (values exactly as on the wire) ----------------------------------------------------------


class ReferralStatus(StrEnum):
    NONE = "None"
    NEW = "New"
    ACTIVE = "Active"
    CLOSED = "Closed"


class ReferralSubstatus(StrEnum):
    NONE = "None"
    PENDING = "Pending"
    RECEIVED = "Received"
    ACCEPTED = "Accepted"
    WON = "Won"
    LOST = "Lost"
    DECLINED = "Declined"
    EXPIRED = "Expired"


class ReferralType(StrEnum):
    INDEPENDENT = "Independent"
    SHARED = "Shared"


class ReferralQualification(StrEnum):
    NONE = "None"
    DIRECT = "Direct"
    MARKETING_QUALIFIED = "MarketingQualified"
    SALES_QUALIFIED = "SalesQualified"


class ReferralDirection(StrEnum):
    INCOMING = "Incoming"
    OUTGOING = "Outgoing"


class SalesStage(StrEnum):
    QUALIFY = "Qualify"
    DEVELOP = "Develop"
    PROPOSE = "Propose"
    CLOSE = "Close"


class CustomerSize(StrEnum):
    SIZE_1_TO_9 = "1to9employees"
    SIZE_10_TO_50 = "10to50employees"
    SIZE_51_TO_250 = "51to250employees"
    SIZE_251_TO_1000 = "251to1000employees"
    SIZE_1001_TO_5000 = "1001to5000employees"
    SIZE_5001_TO_10000 = "5001to10000employees"
    SIZE_10001_TO_20000 = "10001to20000employees"
    MORE_THAN_20000 = "Morethan20000employees"
    # Older buckets the service still returns on old referrals.
    SIZE_1_TO_50 = "1to50employees"
    SIZE_51_TO_500 = "51to500employees"
    MORE_THAN_500 = "Morethan500employees"


class ProfileType(StrEnum):
    DUNS = "Duns"
    EXTERNAL = "External"


class SolutionType(StrEnum):
    NONE = "None"
    CATEGORY = "Category"
    NAME = "Name"


class TargetType(StrEnum):
    NONE = "None"
    SOLUTION_PROFILE = "SolutionProfile"
    BUSINESS_PROFILE_LOCATION = "BusinessProfileLocation"


class AssistanceRequestCode(StrEnum):
    UNKNOWN = "Unknown"
    GENERAL_OR_OTHER = "GeneralOrOther"
    CUSTOMER_TECHNICAL_ARCHITECTURE = "CustomerTechnicalArchitecture"
    PROOF_OF_CONCEPT_OR_DEMO = "ProofOfConceptOrDemo"
    QUOTES_OR_LICENSING = "QuotesOrLicensing"
    POST_SALES_CUSTOMER_SUCCESS = "PostSalesCustomerSuccess"
    WORKLOAD_SPECIFIC_VALUE_PROPOSITION = "WorkloadSpecificValueProposition"


class RegistrationType(StrEnum):
    AZURE_IP_CO_SELL = "AzureIPCoSell"


class RegistrationStatus(StrEnum):
    """Status of one deal registration (``registrations[].status``)."""

    REVIEW_PENDING = "ReviewPending"
    ACTION_REQUIRED = "ActionRequired"
    APPROVED = "Approved"
    PASSED = "Passed"
    FAILED = "Failed"
    CLOSED = "Closed"


# The referral's read-only roll-up (``registrationStatus``): its registration's status, or None while
# there is none. (mypy reads only a literal list of members; this one is built from RegistrationStatus.)
ReferralRegistrationStatus = StrEnum(  # type: ignore[misc]
    "ReferralRegistrationStatus", [("NONE", "None"), *((s.name, s.value) for s in RegistrationStatus)]
)


class PrimaryDeploymentOn(StrEnum):
    CUSTOMER = "Customer"
    PARTNER = "Partner"


class PricingModel(StrEnum):
    PAY_AS_YOU_GO = "PayAsYouGo"
    OTHER = "Other"


class ContractTerm(StrEnum):
    FINITE = "Finite"
    PERPETUAL = "Perpetual"


class ValidationStatus(StrEnum):
    NONE = "None"
    VALID = "Valid"
    INVALID = "Invalid"


__all__ = [
    "NOTES_LIMIT",
    "TEXT_LIMIT",
    "AssistanceRequestCode",
    "ContractTerm",
    "CustomerSize",
    "E",
    "Holds",
    "Iso3166",
    "Iso4217",
    "Kind",
    "Notes",
    "Open",
    "PricingModel",
    "PrimaryDeploymentOn",
    "ProfileType",
    "ReferralDirection",
    "ReferralQualification",
    "ReferralRegistrationStatus",
    "ReferralStatus",
    "ReferralSubstatus",
    "ReferralType",
    "RegistrationStatus",
    "RegistrationType",
    "SalesStage",
    "SolutionType",
    "TargetType",
    "Text",
    "ValidationStatus",
    "WireDateTime",
]
