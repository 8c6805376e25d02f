"""What a write sends and how its outcome is judged: the body and patch operations as sent, the
failure after which a write may or may not have been processed (``_Ambiguous``, with the network
failure described), what a failed look-up after it means, and whether a patch's values show in a
referral read back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from pcref_mcp.errors import InvalidInput, PcrefError, ServiceError, WriteOutcomeUnknown
from pcref_mcp.referrals.models import PatchOperation, Referral
from pcref_mcp.referrals.patch_paths import pointer_get


class _Ambiguous(Exception):
    """A write may or may not have been processed; the caller must look before reporting."""

    def __init__(self, what: str, error: ServiceError | None) -> None:
        super().__init__(what)
        self.what = what
        self.error = error


@contextlib.contextmanager
def _lookup_in_doubt(before: str, after: str, cid: str) -> Iterator[None]:
    """A look-up that should tell whether a write landed: when the look-up itself fails, the write
    may still have landed, so the failure is the write's outcome unknown (``before (why) after``),
    never a failed write."""
    try:
        yield
    except PcrefError as exc:
        raise WriteOutcomeUnknown(f"{before} ({exc.message}){after}", correlation_id=cid) from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | ConnectionError):
        return "connection dropped"
    return type(exc).__name__


def _to_wire(body: Mapping[str, Any] | BaseModel) -> Any:
    if isinstance(body, BaseModel):
        to_wire = getattr(body, "to_wire", None)
        if callable(to_wire):
            return to_wire()
        return body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.loads(json.dumps(dict(body)))  # a deep copy that also proves it is JSON


def _operations(ops: Sequence[PatchOperation | Mapping[str, Any]]) -> list[PatchOperation]:
    out = []
    for op in ops:
        if isinstance(op, PatchOperation):
            out.append(op)
            continue
        try:
            out.append(PatchOperation.model_validate(dict(op)))
        except ValidationError as exc:
            raise InvalidInput(
                f"Bad patch operation: {exc.errors()[0]['msg']}.",
                field="ops",
                allowed="op add|replace, path /…",
            ) from None
    return out


_MISSING = object()


def _ops_visible(referral: Referral, ops: Sequence[PatchOperation]) -> bool | None:
    """Whether every op's value is now in place: True, False, or None when an op cannot be checked
    (``add`` to a list: the value may be there from before)."""
    doc = referral.to_wire()
    for op in ops:
        if op.path.endswith("/-"):
            return None
        value = pointer_get(doc, op.path, _MISSING)
        if value is _MISSING or value != op.value:
            return False
    return True
