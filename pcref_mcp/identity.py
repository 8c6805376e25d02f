"""Who is acting: the person a tool call is served for.

Over stdio and the single-user HTTP mode that is the one local user. In team mode every request
carries a person's own token, and the team layer sets the principal for the duration of the call,
so the layers below (journal, approvals, rate limits) can keep each person's things apart without
knowing how the person signed in. A bottom-layer module: it imports nothing of pcref_mcp.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["LOCAL", "Principal", "acting_as", "current"]


@dataclass(frozen=True)
class Principal:
    """A person: ``id`` is stable (Entra object id in team mode), ``name`` is for people to read (UPN)."""

    id: str
    name: str | None = None
    tenant: str | None = None

    @property
    def is_local(self) -> bool:
        return self.id == LOCAL.id


LOCAL = Principal(id="local")

_current: ContextVar[Principal] = ContextVar("pcref_principal", default=LOCAL)


def current() -> Principal:
    """The principal of the running call (the local user outside team mode)."""
    return _current.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run the enclosed code as ``principal``; restored afterwards, also on error."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)
