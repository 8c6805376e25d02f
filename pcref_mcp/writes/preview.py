"""What a person approves: a write plan and its human-readable preview.

The preview is rendered deterministically from the plan (same plan, same text), because on the
2026-07-28 protocol the confirmation question is re-asked on every round and an answer only counts
for the exact question it was given to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import contacts
from pcref_mcp.referrals.untrusted import quote_at

if TYPE_CHECKING:
    from pcref_mcp.referrals.models import PatchOperation, Referral  # only named here

Kind = Literal["update", "create", "register", "update_registration", "undo"]


@dataclass(frozen=True)
class FieldChange:
    """One field as the person sees it: friendly name, JSON pointer, value before and after."""

    field: str
    pointer: str
    before: Any
    after: Any


@dataclass
class WritePlan:
    """Everything needed to show, confirm, send and journal one write."""

    tool: str
    kind: Kind
    summary: str
    referral_id: str | None = None
    etag: str | None = None
    operations: list[PatchOperation] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    lifecycle: str | None = None
    warnings: list[str] = field(default_factory=list)
    before_image: dict[str, Any] = field(default_factory=dict)
    referral: Referral | None = None
    undo_of: int | None = None
    external_ref: str | None = None

    @property
    def wire_operations(self) -> list[dict[str, Any]]:
        return [op.model_dump(mode="json") for op in self.operations]

    @property
    def shown_operations(self) -> list[dict[str, Any]]:
        """The operations as previewed: a contact list sent whole (an undo, a replace) shows the e-mail
        and phone only of the contacts it adds or removes; the others by name (sent unchanged)."""
        shown = []
        for op in self.wire_operations:
            path, value = str(op.get("path", "")), op.get("value")
            if path in contacts.CONTACT_LISTS and isinstance(value, list):
                before = self.before_image.get(path)
                before = before if isinstance(before, list) else []
                about = [e for e in value if contacts.find_same(path, before, e) is None] + [
                    e for e in before if contacts.find_same(path, value, e) is None
                ]
                op = {**op, "value": contacts.hide_contact_details(path, value, about)}
            shown.append(op)
        return shown

    def preview_text(self) -> str:
        """The question a person answers: every field of every request in full (nothing cut short,
        since what is not shown is not approved), others' text quoted."""
        lines = [self.summary]
        if self.lifecycle:
            lines.append(f"Lifecycle: {self.lifecycle}")
        for change in self.changes:
            before, after = quote_at(change.pointer, change.before), quote_at(change.pointer, change.after)
            if self.kind == "create":  # a new referral: every field it will carry, nothing before
                lines.append(f"- {change.field}: {show_value(after)}")
            else:
                lines.append(f"- {change.field}: {show_value(before)} → {show_value(after)}")
        for warning in self.warnings:
            lines.append(f"! {warning}")
        if self.operations:
            lines.append(
                "Operations: " + json.dumps(self.shown_operations, separators=(",", ":"), default=str)
            )
        return "\n".join(lines)


# Fields whose change by someone else is reported when a previewed write turns out stale.
WATCHED: tuple[str, ...] = (
    "/status",
    "/substatus",
    "/statusReason",
    "/details/dealValue",
    "/details/currency",
    "/details/closingDateTime",
    "/details/notes",
    "/externalReferenceId",
    "/salesStage",
    "/registrationStatus",
)


def snapshot(referral: Referral | None) -> dict[str, Any]:
    """The watched fields as they are now (kept with a preview to tell later what moved)."""
    if referral is None:
        return {}
    wire = referral.to_wire()
    from pcref_mcp.referrals.patch_paths import pointer_get  # the PATCH rules: with the first write

    return {p: pointer_get(wire, p) for p in WATCHED}


def changed_since(before: dict[str, Any], current: Referral) -> list[FieldChange]:
    """Watched fields whose value differs from ``before`` (a snapshot), others' text quoted («…»)."""
    now = snapshot(current)
    return [
        FieldChange(field_name(p), p, quote_at(p, before.get(p)), quote_at(p, now[p]))
        for p in WATCHED
        if p in before and before[p] != now[p]
    ]


def field_name(pointer: str) -> str:
    """The name a person uses for a JSON pointer ("deal value"), or the pointer itself."""
    try:
        from pcref_mcp.referrals import patch_paths

        return patch_paths.resolve(pointer, registration=pointer.startswith("/registrations/")).name
    except InvalidInput:
        return _READ_ONLY_NAMES.get(pointer, pointer)


_READ_ONLY_NAMES = {"/registrationStatus": "registration status"}


def show_value(value: Any) -> str:
    """A value as a person reads it: dates as dates, amounts with separators, text whole."""
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, str):
        match = _WIRE_DATE.fullmatch(value)
        if match:
            return match[1] if match[2] in (None, "T00:00:00") else f"{match[1]} {match[2][1:6]} UTC"
        if value.startswith("«") and value.endswith("»"):  # quoted already: shown whole, as sent
            return value
        return repr(value)
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


_WIRE_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2})?(?:\.\d+)?Z?")
