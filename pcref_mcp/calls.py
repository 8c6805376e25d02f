"""What the current request is, for logs, error messages and the journal: its request id and, once a
write is approved, how it was approved (elicitation, page or token).

Context variables, like :mod:`pcref_mcp.identity`, so the layers below (the journal) read them
without being handed them through every signature. The HTTP layer sets the request id
(:mod:`pcref_mcp.ops.requests`); the approval resolver sets the path. Imports nothing of pcref_mcp.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

__all__ = [
    "approval_path",
    "new_request_id",
    "request_id",
    "reset_request_id",
    "set_approval_path",
    "set_request_id",
]

_request_id: ContextVar[str | None] = ContextVar("pcref_request_id", default=None)
_approval_path: ContextVar[str | None] = ContextVar("pcref_approval_path", default=None)

# An id a proxy in front sent (X-Request-Id) is kept only if it is short and plain: it goes into logs.
_PLAIN = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(given: str | None = None) -> str:
    """``given`` if it is a plain id (nginx's ``$request_id``, say), else a fresh random one."""
    if given and _PLAIN.match(given):
        return given
    return secrets.token_hex(8)


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def request_id() -> str | None:
    return _request_id.get()


def set_approval_path(path: str) -> None:
    """``elicitation``, ``page`` or ``token``: how the write about to be sent was approved."""
    _approval_path.set(path)


def approval_path() -> str | None:
    return _approval_path.get()


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]
