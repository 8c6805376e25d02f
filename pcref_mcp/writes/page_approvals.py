"""Approvals a person gives on pcref-mcp's own page, out of band: the model never sees the click.

A write that must be approved on the page gets a **ticket**: a random page id (the address of the
page), the approval handle it unlocks (an :class:`~pcref_mcp.writes.approvals.ApprovalStore` handle,
bound as every approval is to owner, tool, plan bytes and ETag), the person it belongs to and the
preview they are shown. The page records the person's decision once (the first decision wins,
across replicas: one ``take`` in the store); the MCP call that holds the ticket then spends the
handle once and writes. A decision without the MCP call writes nothing; an MCP call without a
decision writes nothing.

Everything is in the store's broker table (sealed values, digested keys), so any replica shows any
page and honours any decision:

- ``page`` page id → the ticket (until it expires)
- ``page-claims`` digest of the claims → page id (a repeated call for the same plan finds its page)
- ``page-handle`` approval handle → page id (the model's next call names the handle)
- ``page-open`` page id → marker, taken by the one decision
- ``page-decision`` page id → the decision
- ``page-link`` page id → marker, taken by the browser that first opens a one-time link
- ``page-browser`` page id → digest of that browser's secret cookie
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store
    from pcref_mcp.writes.approvals import Claims

__all__ = ["Decision", "PageApprovals", "Ticket"]

Decision = Literal["approved", "declined"]

_PAGE, _BY_CLAIMS, _BY_HANDLE = "page", "page-claims", "page-handle"
_OPEN, _DECIDED, _LINK, _BROWSER = "page-open", "page-decision", "page-link", "page-browser"
PURGE_EVERY = 3600.0


@dataclass(frozen=True)
class Ticket:
    """One write waiting for its person on the page."""

    page_id: str
    handle: str  # the approval handle it unlocks (never shown on the page)
    owner: str  # the person (principal id) who alone may decide
    owner_name: str | None
    tool: str
    summary: str
    preview: str  # every field of every request, as the preview text shows it
    requests: str  # the exact request bodies / patch operations, JSON
    issued: float
    expires: float
    secret_digest: str | None = None  # single-user: the one-time link's secret, digested

    def link_secret_ok(self, secret: str) -> bool:
        if self.secret_digest is None:
            return False
        return hmac.compare_digest(self.secret_digest, _digest(secret))


@dataclass(frozen=True)
class Decided:
    decision: Decision
    by: str
    at: float


class PageApprovals:
    """Tickets and decisions in the shared store."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        self._purged = 0.0

    async def open(
        self,
        claims: Claims,
        *,
        handle: str,
        owner: str,
        owner_name: str | None,
        summary: str,
        preview: str,
        requests: str,
        ttl: float,
        link_secret: str | None = None,
    ) -> Ticket:
        """A new ticket for ``claims`` (the caller made ``handle`` for the same claims)."""
        now = self._clock()
        if now - self._purged >= PURGE_EVERY:  # expired tickets go (the proxy purges too, in team mode)
            self._purged = now
            await self.store.broker_purge(now)
        ticket = Ticket(
            page_id=secrets.token_urlsafe(24),
            handle=handle,
            owner=owner,
            owner_name=owner_name,
            tool=claims.tool,
            summary=summary,
            preview=preview,
            requests=requests,
            issued=now,
            expires=now + ttl,
            secret_digest=_digest(link_secret) if link_secret else None,
        )
        expires = ticket.expires
        value = json.dumps(asdict(ticket)).encode()
        await self.store.broker_put(_PAGE, ticket.page_id, value, expires=expires, subject=owner)
        await self.store.broker_put(_OPEN, ticket.page_id, b"1", expires=expires, subject=owner)
        await self.store.broker_put(
            _BY_CLAIMS, claims_digest(claims), ticket.page_id.encode(), expires=expires, subject=owner
        )
        await self.store.broker_put(
            _BY_HANDLE, handle, ticket.page_id.encode(), expires=expires, subject=owner
        )
        if link_secret:
            await self.store.broker_put(_LINK, ticket.page_id, b"1", expires=expires, subject=owner)
        return ticket

    async def get(self, page_id: str) -> Ticket | None:
        held = await self.store.broker_get(_PAGE, page_id, self._clock())
        return Ticket(**json.loads(held)) if held is not None else None

    async def for_claims(self, claims: Claims) -> Ticket | None:
        """The open ticket for exactly these claims (a repeated call for the same plan and ETag)."""
        page_id = await self.store.broker_get(_BY_CLAIMS, claims_digest(claims), self._clock())
        return await self.get(page_id.decode()) if page_id is not None else None

    async def for_handle(self, handle: str) -> Ticket | None:
        page_id = await self.store.broker_get(_BY_HANDLE, handle, self._clock())
        return await self.get(page_id.decode()) if page_id is not None else None

    async def decide(self, ticket: Ticket, decision: Decision, *, by: str) -> bool:
        """Record the person's decision; False when the ticket was already decided (or expired).

        One ``take`` of the open marker: of two clicks, two tabs or two replicas, exactly one wins.
        """
        now = self._clock()
        if await self.store.broker_take(_OPEN, ticket.page_id, now) is None:
            return False
        value = json.dumps({"decision": decision, "by": by, "at": now}).encode()
        await self.store.broker_put(_DECIDED, ticket.page_id, value, expires=ticket.expires, subject=by)
        return True

    async def decision(self, ticket: Ticket) -> Decided | None:
        held = await self.store.broker_get(_DECIDED, ticket.page_id, self._clock())
        return Decided(**json.loads(held)) if held is not None else None

    async def claim_link(self, ticket: Ticket, browser: str) -> bool:
        """The first browser to open a one-time link gets it (True exactly once per ticket); from then
        on only that browser (``browser``: its own secret cookie) sees and decides the page."""
        if await self.store.broker_take(_LINK, ticket.page_id, self._clock()) is None:
            return False
        await self.store.broker_put(
            _BROWSER, ticket.page_id, _digest(browser).encode(), expires=ticket.expires, subject=ticket.owner
        )
        return True

    async def is_claimed_by(self, ticket: Ticket, browser: str) -> bool:
        held = await self.store.broker_get(_BROWSER, ticket.page_id, self._clock())
        return held is not None and hmac.compare_digest(held.decode(), _digest(browser))

    async def forget(self, ticket: Ticket, claims: Claims) -> None:
        """A declined ticket, once reported: the next call for the same plan opens a new page."""
        await self.store.broker_take(_BY_CLAIMS, claims_digest(claims), self._clock())


def claims_digest(claims: Claims) -> str:
    text = "\x1f".join((claims.owner, claims.tool, claims.plan, claims.etag))
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
