"""The referral's wire fields that pcref-mcp writes, each declared once.

One row a field: its JSON pointer, the kind of value it holds (which fixes how the writer types it
and how the sandbox checks it), its text limit, whether it may be empty, whether and how a PATCH may
change it (the connector's allow-list, ``UpdateReferralDetails`` and ``UpdateDealRegistration``), the
list it is (entries told apart as people or as solutions), and the words people use for it.

Read from here, never copied: the PATCH allow-list and its friendly names and value types
(:mod:`~pcref_mcp.referrals.patch_paths`), the create checks before a preview
(:mod:`pcref_mcp.writes.creates`) and the sandbox's checks of the same values
(:mod:`pcref_mcp.sandbox.checks`). A new changeable field is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pcref_mcp.referrals.models import (
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    ReferralStatus,
    ReferralSubstatus,
    SalesStage,
)

__all__ = [
    "CREATE_TEXT",
    "FIELDS",
    "NOTES_LIMIT",
    "REFERRAL_FIELDS",
    "REGISTRATION_ADD_POINTER",
    "REGISTRATION_FIELDS",
    "TEXT_LIMIT",
    "Kind",
    "WireField",
    "text_limit",
]

# What a value is; the writer's type and the sandbox's check follow from it.
Kind = Literal[
    "text", "amount", "currency", "datetime", "bool", "enum", "member", "members", "solution", "solutions"
]

TEXT_LIMIT = 500  # a name, an id, a reason: what the service keeps (the sandbox mirrors it)
NOTES_LIMIT = 10_000  # notes

# Creating a deal registration: op "add" on this pointer only.
REGISTRATION_ADD_POINTER = "/registrations/-"
APPEND = ("add",)
REPLACE_OR_ADD = ("replace", "add")


@dataclass(frozen=True)
class WireField:
    """One wire field that pcref-mcp writes."""

    pointer: str
    kind: Kind
    name: str = ""  # the words a person uses; empty for a field no PATCH changes
    aliases: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()  # the PATCH ops allowed on it; () = not changeable
    registration: bool = False  # a field of the (first) deal registration
    enum: type[StrEnum] | None = None
    limit: int | None = None  # text: the most characters
    nullable: bool = False  # a PATCH may send null (clears it)
    must_be_true: bool = False  # a flag whose false the service answers by closing the referral
    entries: Literal["member", "solution"] | None = None  # a list whose replacement can remove entries

    @property
    def changeable(self) -> bool:
        return bool(self.ops)


def _text(pointer: str, name: str = "", aliases: tuple[str, ...] = (), **more: object) -> WireField:
    limit = NOTES_LIMIT if pointer.endswith("/notes") else TEXT_LIMIT
    return WireField(pointer, "text", name, aliases, limit=limit, **more)  # type: ignore[arg-type]


_R0, _S0 = "/registrations/0/contract", "/registrations/0/solutionDetails/0"
_MARKET = f"{_S0}/marketplaceTransactionDetails"

# The PATCH allow-list of a referral, in the order operations are sent (status, substatus and reason
# side by side).
REFERRAL_FIELDS: tuple[WireField, ...] = (
    WireField(
        "/details/dealValue",
        "amount",
        "deal value",
        ("value", "amount", "deal amount", "dealValue", "deal size"),
        REPLACE_OR_ADD,
    ),
    WireField(
        "/details/closingDateTime",
        "datetime",
        "closing date",
        ("close date", "closing date time", "closingDateTime", "expected close date", "close by"),
        REPLACE_OR_ADD,
    ),
    _text("/details/notes", "notes", ("note", "deal notes", "description"), ops=REPLACE_OR_ADD),
    WireField("/details/currency", "currency", "currency", ("deal currency",), REPLACE_OR_ADD),
    WireField(
        "/status", "enum", "status", ("state", "outcome", "result"), REPLACE_OR_ADD, enum=ReferralStatus
    ),
    WireField(
        "/substatus",
        "enum",
        "substatus",
        ("sub status", "sub-status"),
        REPLACE_OR_ADD,
        enum=ReferralSubstatus,
    ),
    _text(
        "/statusReason",
        "status reason",
        (
            "reason",
            "statusReason",
            "close reason",
            "why",
            "lost reason",
            "loss reason",
            "decline reason",
            "closing reason",
        ),
        ops=REPLACE_OR_ADD,
        nullable=True,
    ),
    _text(
        "/externalReferenceId",
        "external reference id",
        ("external id", "externalReferenceId", "crm id", "reference id"),
        ops=REPLACE_OR_ADD,
        nullable=True,
    ),
    _text("/campaignId", "campaign id", ("campaign", "campaignId"), ops=REPLACE_OR_ADD, nullable=True),
    _text(
        "/referralProgram",
        "referral program",
        ("program", "referralProgram"),
        ops=REPLACE_OR_ADD,
        nullable=True,
    ),
    WireField("/salesStage", "enum", "sales stage", ("stage", "salesStage"), REPLACE_OR_ADD, enum=SalesStage),
    WireField(
        "/consent/consentToShareReferralWithMicrosoftSellers",
        "bool",
        "share with microsoft sellers",
        (
            "shared with microsoft sellers",
            "share with microsoft",
            "consentToShareReferralWithMicrosoftSellers",
            "visible to microsoft sellers",
        ),
        REPLACE_OR_ADD,
    ),
    WireField("/team", "members", "sales team", ("team", "partner team"), REPLACE_OR_ADD, entries="member"),
    WireField("/team/-", "member", "add sales team member", ("add team member", "sales team member"), APPEND),
    WireField(
        "/customerProfile/team",
        "members",
        "customer contacts",
        ("customer team", "contacts"),
        REPLACE_OR_ADD,
        entries="member",
    ),
    WireField(
        "/customerProfile/team/-",
        "member",
        "add customer contact",
        ("customer contact", "add contact"),
        APPEND,
    ),
    WireField(
        "/details/requirements/solutions",
        "solutions",
        "solutions",
        ("solution list",),
        REPLACE_OR_ADD,
        entries="solution",
    ),
    WireField("/details/requirements/solutions/-", "solution", "add solution", ("solution",), APPEND),
)

_CHANGE = ("replace",)

# The deal registration's changeable fields (while it is ActionRequired).
REGISTRATION_FIELDS: tuple[WireField, ...] = tuple(
    WireField(pointer, kind, name, aliases, _CHANGE, registration=True, **more)  # type: ignore[arg-type]
    for pointer, kind, name, aliases, more in (
        (f"{_R0}/value", "amount", "contract value", ("contract amount",), {}),
        (f"{_R0}/startDateTime", "datetime", "contract start date", ("start date", "startDateTime"), {}),
        (
            f"{_R0}/endDateTime",
            "datetime",
            "contract end date",
            ("end date", "endDateTime"),
            {"nullable": True},
        ),
        (
            f"{_R0}/signDateTime",
            "datetime",
            "contract sign date",
            ("sign date", "signed date", "signDateTime"),
            {},
        ),
        (f"{_R0}/term", "enum", "contract term", ("term",), {"enum": ContractTerm}),
        (f"{_S0}/value", "amount", "solution value", ("solution amount",), {}),
        (f"{_S0}/currency", "currency", "solution currency", ("registration currency",), {}),
        (
            f"{_S0}/isDeployedOnAzure",
            "bool",
            "deployed on azure",
            ("isDeployedOnAzure",),
            {"must_be_true": True},
        ),
        (
            f"{_S0}/primaryDeploymentOn",
            "enum",
            "primary deployment",
            ("primary deployment on", "primaryDeploymentOn"),
            {"enum": PrimaryDeploymentOn},
        ),
        (f"{_S0}/pricingModel", "enum", "pricing model", ("pricing", "pricingModel"), {"enum": PricingModel}),
        (
            f"{_MARKET}/isMarketplaceTransacted",
            "bool",
            "marketplace transacted",
            ("isMarketplaceTransacted", "transacted in marketplace"),
            {},
        ),
        (
            f"{_MARKET}/marketplaceTransactionDateTime",
            "datetime",
            "marketplace transaction date",
            ("marketplaceTransactionDateTime", "transaction date"),
            {"nullable": True},
        ),
    )
)

# Text a create sends that no PATCH changes: checked for length before a preview and by the sandbox.
# ("-" stands for every entry of a list.)
CREATE_TEXT: tuple[WireField, ...] = tuple(
    _text(pointer)
    for pointer in (
        "/name",
        "/customerProfile/name",
        "/customerProfile/address/addressLine1",
        "/customerProfile/address/addressLine2",
        "/customerProfile/address/city",
        "/customerProfile/address/state",
        "/customerProfile/address/postalCode",
        "/customerProfile/address/region",
        "/inviteContext/notes",
        "/target/-/id",
        *(
            f"{team}/-/{key}"
            for team in ("/team", "/customerProfile/team")
            for key in ("firstName", "lastName", "phoneNumber", "email", "title")
        ),
    )
)

FIELDS: tuple[WireField, ...] = (*REFERRAL_FIELDS, *REGISTRATION_FIELDS, *CREATE_TEXT)
_BY_POINTER = {f.pointer: f for f in FIELDS}


def text_limit(pointer: str) -> int:
    """The most characters the text at ``pointer`` may hold (``-`` for any list entry)."""
    found = _BY_POINTER.get(pointer)
    return found.limit if found is not None and found.limit is not None else TEXT_LIMIT
