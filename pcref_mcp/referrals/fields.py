"""The referral's wire fields that pcref-mcp writes, each declared once.

What a field *is* is said by the read model (:mod:`pcref_mcp.referrals.models`), like the API
reference: ``dealValue: float``, ``status: Open[ReferralStatus]``, ``currency: Iso4217``,
``notes: Notes`` (text up to 10,000 characters). What the service lets a write *do* with it is said
here, one row a changeable field: its JSON pointer, the words people use for it, whether and how a
PATCH may change it (the connector's allow-list, ``UpdateReferralDetails`` and
``UpdateDealRegistration``), whether a PATCH may clear it, and whether its false closes the referral.
Each row's kind, enum and text limit, and whether it is a list of people or of solutions, are read
from the model at its pointer (:func:`held_at`), never written twice; the text a create sends that
no PATCH changes (``CREATE_TEXT``) is every limited text of the model.

Read from here: the PATCH allow-list and its friendly names and value types
(:mod:`~pcref_mcp.referrals.patch_paths`), the create checks before a preview
(:mod:`pcref_mcp.writes.creates`) and the sandbox's checks of the same values
(:mod:`pcref_mcp.sandbox.checks`).

A new field: declare it on its read model (with ``Text``/``Notes``/``Iso4217`` where a ``str`` says
too little); if a PATCH may change it, add one row here.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from pcref_mcp.referrals.models import NOTES_LIMIT, TEXT_LIMIT, Holds, Kind, Member, Referral, SolutionTag

__all__ = [
    "CREATE_TEXT",
    "FIELDS",
    "NOTES_LIMIT",
    "REFERRAL_FIELDS",
    "REGISTRATION_ADD_POINTER",
    "REGISTRATION_FIELDS",
    "TEXT_LIMIT",
    "Held",
    "Kind",
    "WireField",
    "held_at",
    "text_limit",
]

# Creating a deal registration: op "add" on this pointer only.
REGISTRATION_ADD_POINTER = "/registrations/-"
APPEND = ("add",)
REPLACE_OR_ADD = ("replace", "add")


# --- what the read model says a field holds -------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the read model says the field at a pointer holds."""

    kind: Kind
    enum: type[StrEnum] | None = None
    limit: int | None = None  # text: the most characters (None: the usual TEXT_LIMIT)


# The read models of list entries a change tells apart (people by e-mail or name, solutions by id).
_ENTRY_KINDS: dict[type[BaseModel], tuple[Kind, Kind]] = {
    Member: ("member", "members"),
    SolutionTag: ("solution", "solutions"),
}
_ENTRIES: dict[Kind, Literal["member", "solution"]] = {"members": "member", "solutions": "solution"}
_PLAIN_KINDS: dict[Any, Kind] = {str: "text", float: "amount", bool: "bool"}


def held_at(pointer: str) -> Held:
    """What the field at ``pointer`` (in a :class:`Referral`; ``-`` or a number for a list entry) holds."""
    return _held(_annotation_at(pointer), pointer)


def _annotation_at(pointer: str) -> Any:
    annotation: Any = Referral
    for part in pointer.strip("/").split("/"):
        inner = _bare(annotation)
        if get_origin(inner) is list and (part == "-" or part.isdigit()):
            annotation = get_args(inner)[0]
        elif isinstance(inner, type) and issubclass(inner, BaseModel) and part in _wire_names(inner):
            annotation = _wire_names(inner)[part]
        else:
            raise KeyError(f"{pointer}: the read model has no field {part!r} there")
    return annotation


@functools.cache
def _wire_names(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields by wire name: their annotations."""
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _bare(annotation: Any) -> Any:
    """``annotation`` without its ``| None`` and its ``Annotated`` metadata."""
    if get_origin(annotation) is Annotated:
        return _bare(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _bare(members[0]) if len(members) == 1 else annotation
    return annotation


def _held(annotation: Any, pointer: str) -> Held:
    if get_origin(annotation) is Annotated:
        marker = next((m for m in get_args(annotation)[1:] if isinstance(m, Holds)), None)
        if marker is not None:
            return Held(marker.kind, limit=marker.limit)
        return _held(get_args(annotation)[0], pointer)
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        enum = next((a for a in members if isinstance(a, type) and issubclass(a, StrEnum)), None)
        if enum is not None:  # Open[E]: E or a value the service added later
            return Held("enum", enum=enum)
        if len(members) == 1:
            return _held(members[0], pointer)
    elif get_origin(annotation) is list and get_args(annotation)[0] in _ENTRY_KINDS:
        return Held(_ENTRY_KINDS[get_args(annotation)[0]][1])
    elif annotation in _ENTRY_KINDS:
        return Held(_ENTRY_KINDS[annotation][0])
    elif annotation in _PLAIN_KINDS:
        return Held(_PLAIN_KINDS[annotation])
    raise TypeError(f"{pointer}: no field kind for {annotation!r}")


def _limited_text(annotation: Any = Referral, pointer: str = "") -> Iterator[tuple[str, int]]:
    """Every text of the model with a limit, by pointer (``-`` for every entry of a list), in wire order."""
    inner = _bare(annotation)
    if inner is str and pointer:
        held = _held(annotation, pointer)
        if held.limit is not None:
            yield pointer, held.limit
    if get_origin(inner) is list:
        yield from _limited_text(get_args(inner)[0], f"{pointer}/-")
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        for wire, child in _wire_names(inner).items():
            yield from _limited_text(child, f"{pointer}/{wire}")


# --- the rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireField:
    """One wire field that pcref-mcp writes: what a write may do with it, and (from the read model at
    its pointer) what it holds."""

    pointer: str
    name: str = ""  # the words a person uses; empty for a field no PATCH changes
    aliases: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()  # the PATCH ops allowed on it; () = not changeable
    nullable: bool = False  # a PATCH may send null (clears it)
    must_be_true: bool = False  # a flag whose false the service answers by closing the referral
    held: Held = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", held_at(self.pointer))

    @property
    def changeable(self) -> bool:
        return bool(self.ops)

    @property
    def registration(self) -> bool:
        """A field of the (first) deal registration."""
        return self.pointer.startswith("/registrations/")

    @property
    def kind(self) -> Kind:
        return self.held.kind

    @property
    def enum(self) -> type[StrEnum] | None:
        return self.held.enum

    @property
    def limit(self) -> int | None:
        """Text: the most characters."""
        return (self.held.limit or TEXT_LIMIT) if self.held.kind == "text" else None

    @property
    def entries(self) -> Literal["member", "solution"] | None:
        """A list whose replacement can remove entries: how its entries are told apart."""
        return _ENTRIES.get(self.kind)


_R0, _S0 = "/registrations/0/contract", "/registrations/0/solutionDetails/0"
_MARKET = f"{_S0}/marketplaceTransactionDetails"

# The PATCH allow-list of a referral, in the order operations are sent (status, substatus and reason
# side by side).
REFERRAL_FIELDS: tuple[WireField, ...] = (
    WireField(
        "/details/dealValue",
        "deal value",
        ("value", "amount", "deal amount", "dealValue", "deal size"),
        REPLACE_OR_ADD,
    ),
    WireField(
        "/details/closingDateTime",
        "closing date",
        ("close date", "closing date time", "closingDateTime", "expected close date", "close by"),
        REPLACE_OR_ADD,
    ),
    WireField("/details/notes", "notes", ("note", "deal notes", "description"), REPLACE_OR_ADD),
    WireField("/details/currency", "currency", ("deal currency",), REPLACE_OR_ADD),
    WireField("/status", "status", ("state", "outcome", "result"), REPLACE_OR_ADD),
    WireField("/substatus", "substatus", ("sub status", "sub-status"), REPLACE_OR_ADD),
    WireField(
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
        REPLACE_OR_ADD,
        nullable=True,
    ),
    WireField(
        "/externalReferenceId",
        "external reference id",
        ("external id", "externalReferenceId", "crm id", "reference id"),
        REPLACE_OR_ADD,
        nullable=True,
    ),
    WireField("/campaignId", "campaign id", ("campaign", "campaignId"), REPLACE_OR_ADD, nullable=True),
    WireField(
        "/referralProgram", "referral program", ("program", "referralProgram"), REPLACE_OR_ADD, nullable=True
    ),
    WireField("/salesStage", "sales stage", ("stage", "salesStage"), REPLACE_OR_ADD),
    WireField(
        "/consent/consentToShareReferralWithMicrosoftSellers",
        "share with microsoft sellers",
        (
            "shared with microsoft sellers",
            "share with microsoft",
            "consentToShareReferralWithMicrosoftSellers",
            "visible to microsoft sellers",
        ),
        REPLACE_OR_ADD,
    ),
    WireField("/team", "sales team", ("team", "partner team"), REPLACE_OR_ADD),
    WireField("/team/-", "add sales team member", ("add team member", "sales team member"), APPEND),
    WireField("/customerProfile/team", "customer contacts", ("customer team", "contacts"), REPLACE_OR_ADD),
    WireField("/customerProfile/team/-", "add customer contact", ("customer contact", "add contact"), APPEND),
    WireField("/details/requirements/solutions", "solutions", ("solution list",), REPLACE_OR_ADD),
    WireField("/details/requirements/solutions/-", "add solution", ("solution",), APPEND),
)

_CHANGE = ("replace",)

# The deal registration's changeable fields (while it is ActionRequired).
REGISTRATION_FIELDS: tuple[WireField, ...] = (
    WireField(f"{_R0}/value", "contract value", ("contract amount",), _CHANGE),
    WireField(f"{_R0}/startDateTime", "contract start date", ("start date", "startDateTime"), _CHANGE),
    WireField(f"{_R0}/endDateTime", "contract end date", ("end date", "endDateTime"), _CHANGE, nullable=True),
    WireField(
        f"{_R0}/signDateTime", "contract sign date", ("sign date", "signed date", "signDateTime"), _CHANGE
    ),
    WireField(f"{_R0}/term", "contract term", ("term",), _CHANGE),
    WireField(f"{_S0}/value", "solution value", ("solution amount",), _CHANGE),
    WireField(f"{_S0}/currency", "solution currency", ("registration currency",), _CHANGE),
    WireField(
        f"{_S0}/isDeployedOnAzure", "deployed on azure", ("isDeployedOnAzure",), _CHANGE, must_be_true=True
    ),
    WireField(
        f"{_S0}/primaryDeploymentOn",
        "primary deployment",
        ("primary deployment on", "primaryDeploymentOn"),
        _CHANGE,
    ),
    WireField(f"{_S0}/pricingModel", "pricing model", ("pricing", "pricingModel"), _CHANGE),
    WireField(
        f"{_MARKET}/isMarketplaceTransacted",
        "marketplace transacted",
        ("isMarketplaceTransacted", "transacted in marketplace"),
        _CHANGE,
    ),
    WireField(
        f"{_MARKET}/marketplaceTransactionDateTime",
        "marketplace transaction date",
        ("marketplaceTransactionDateTime", "transaction date"),
        _CHANGE,
        nullable=True,
    ),
)

_CHANGEABLE = {f.pointer for f in (*REFERRAL_FIELDS, *REGISTRATION_FIELDS)}

# Text a create sends that no PATCH changes: every limited text of the read model (``-`` stands for
# every entry of a list); checked for length before a preview and by the sandbox.
CREATE_TEXT: tuple[WireField, ...] = tuple(
    WireField(pointer) for pointer, _ in _limited_text() if pointer not in _CHANGEABLE
)

FIELDS: tuple[WireField, ...] = (*REFERRAL_FIELDS, *REGISTRATION_FIELDS, *CREATE_TEXT)
_BY_POINTER = {f.pointer: f for f in FIELDS}


def text_limit(pointer: str) -> int:
    """The most characters the text at ``pointer`` may hold (``-`` for any list entry)."""
    found = _BY_POINTER.get(pointer)
    return found.limit if found is not None and found.limit is not None else TEXT_LIMIT
