"""The mechanics of a JSON-Patch request: reading an operation, refusing a path outside the
allow-list, setting a value at a pointer, and a status change by the domain's lifecycle table.
"""

from __future__ import annotations

from typing import Any

from pcref_mcp.errors import InvalidInput, LifecycleViolation
from pcref_mcp.referrals import lifecycle
from pcref_mcp.referrals.fields import REGISTRATION_ADD_POINTER
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_POINTERS
from pcref_mcp.sandbox.checks import _field

# --- PATCH mechanics ------------------------------------------------------------------------------


def _operation(index: int, raw: Any) -> tuple[str, str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"Operation {index} must be an object with op, path and value.", field=f"[{index}]"
        )
    raw = {(k[:1].lower() + k[1:] if isinstance(k, str) else k): v for k, v in raw.items()}
    op, path = raw.get("op"), raw.get("path")
    if not isinstance(op, str) or op.lower() not in ("add", "replace"):
        raise InvalidInput(
            f"Operation {index}: op {op!r} is not supported; the service accepts only 'add' and 'replace'.",
            field=f"[{index}].op",
            value=op,
            allowed=("add", "replace"),
        )
    if not isinstance(path, str) or not path.startswith("/"):
        raise _bad_path(index, path, None)
    if "value" not in raw:
        raise InvalidInput(f"Operation {index} ({op} {path}) has no value.", field=f"[{index}].value")
    normalised = "/".join(seg[:1].lower() + seg[1:] for seg in path.split("/"))
    return op.lower(), normalised, raw["value"]


def _bad_path(index: int, path: Any, why: str | None) -> InvalidInput:
    allowed = (*REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, *REGISTRATION_POINTERS)
    reason = why or "this path cannot be changed"
    return InvalidInput(
        f"Operation {index}: path {path!r} is not allowed ({reason}). Allowed paths: {', '.join(allowed)}.",
        field=f"[{index}].path",
        value=path,
        allowed=allowed,
    )


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip("/").split("/")
    append = parts[-1] == "-"
    if append:
        parts = parts[:-1]
    target: Any = doc
    for part in parts[:-1]:
        if isinstance(target, list):  # an index into an existing list (/registrations/0/solutionDetails/0/…)
            index = int(part) if part.isdigit() else -1
            if not 0 <= index < len(target):
                raise InvalidInput(f"{path}: there is no item {part} to change.", field=_field(path))
            if not isinstance(target[index], dict):
                target[index] = {}
            target = target[index]
            continue
        child = target.get(part)
        if not isinstance(child, dict | list):
            child = {}
            target[part] = child
        target = child
    last = parts[-1]
    if isinstance(target, list):
        index = int(last) if last.isdigit() else -1
        if not 0 <= index < len(target):
            raise InvalidInput(f"{path}: there is no item {last} to change.", field=_field(path))
        target[index] = value
    elif append:
        current = target.get(last)
        if not isinstance(current, list):
            current = []
            target[last] = current
        current.append(value)
    else:
        target[last] = value


def _change_status(doc: dict[str, Any], change: dict[str, Any], stamp: str) -> None:
    from_status, from_sub = doc.get("status"), doc.get("substatus")
    check = lifecycle.check_transition(from_status, from_sub, change.get("status"), change.get("substatus"))
    if not check.ok:
        raise LifecycleViolation(
            check.message,
            field="status",
            value=f"{change.get('status', from_status)}/{change.get('substatus', from_sub)}",
            allowed=[f"{s}/{sub}" for s, sub in check.allowed],
        )
    to_status = change.get("status", from_status)
    to_sub = change.get("substatus", from_sub)
    doc["status"], doc["substatus"] = to_status, to_sub
    if to_status == "Active" and from_status != "Active" and not doc.get("acceptedDateTime"):
        doc["acceptedDateTime"] = stamp
    if to_status == "Closed" and (from_status != "Closed" or from_sub != to_sub):
        doc["closedDateTime"] = stamp
