"""Undoing a journaled change: which changes can be undone, and the operations that restore the
before-image. The engine plans the undo with these (``WriteEngine.plan_undo``) and sends it like any
other update."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcref_mcp.errors import InvalidInput, UndoNotPossible
from pcref_mcp.referrals import patch_paths
from pcref_mcp.referrals.models import PatchOperation, Referral
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.writes.preview import field_name

if TYPE_CHECKING:
    from pcref_mcp.writes.journal import JournalEntry

__all__ = ["APPENDED_TO", "check_restorable", "check_undoable", "inverse_operations"]

# The before-image of a list the change appends to: its length then (see inverse_operations).
APPENDED_TO = "$appended_to_length"


def check_restorable(op: PatchOperation, change_id: int) -> None:
    """A field that was empty before the change can be restored only where the service lets it be
    cleared (status reason, external reference id ...); a deal value or a date cannot be set back to
    nothing, so the undo is refused before a person is asked rather than failing at Partner Center."""
    if op.value is not None:
        return
    try:
        patch_paths.resolve(op.path).validate(None)
    except InvalidInput:
        name = field_name(op.path)
        raise UndoNotPossible(
            f"Change {change_id} cannot be undone: {name} was empty before it, and Partner Center cannot "
            f"clear {name}.",
            hint=f"Set {name} to the value you want with update_field instead.",
        ) from None


def check_undoable(entry: JournalEntry) -> None:
    if entry.status != "applied":
        raise UndoNotPossible(f"Change {entry.id} is {entry.status}, so there is nothing to undo.")
    if entry.undone_by is not None:
        raise UndoNotPossible(f"Change {entry.id} was already undone by change {entry.undone_by}.")
    if entry.kind == "create":
        raise UndoNotPossible(
            f"Change {entry.id} created a referral; Partner Center has no delete.",
            hint="Close it instead with update_field (status Closed, substatus Declined or Lost) and a reason.",
        )
    if entry.kind in ("register", "update_registration"):
        raise UndoNotPossible(
            f"Change {entry.id} is a deal registration; registrations cannot be withdrawn through the API."
        )


def inverse_operations(entry: JournalEntry, current: Referral) -> list[PatchOperation]:
    """Restore every pointer the change touched to its before-image, in the original order.

    An appended list was journaled as its length before the change (``{APPENDED_TO: n}``): the
    referral is unchanged since (undo checks its ETag), so its first ``n`` entries are the list as
    it was. Older journals hold the list itself, which is used as it is.
    """
    wire = current.to_wire()
    operations: list[PatchOperation] = []
    seen: set[str] = set()
    for op in entry.operations:
        path = op["path"][: -len("/-")] if op["path"].endswith("/-") else op["path"]
        if path in seen:
            continue
        seen.add(path)
        value = entry.before_image.get(path)
        if isinstance(value, dict) and set(value) == {APPENDED_TO}:
            value = list(pointer_get(wire, path) or [])[: int(value[APPENDED_TO])]
        operations.append(PatchOperation(op="replace", path=path, value=value))
    return operations
