"""Cutting one person or one client off, on every replica at once (``pcref-mcp admin revoke``).

What a revoke does, all in the shared store so every replica sees it on its next request:

- drops what the OAuth proxy and the page sign-in hold for them (``Store.broker_drop``): consents,
  refresh handles, one-time codes, sign-ins in progress, browser sign-ins, remembered Conditional
  Access claims, and for a client its registration (it must register and be consented again);
- for a person, forgets their sealed on-behalf-of token cache (their Entra refresh token);
- records the revocation's time under ``revoked`` in the broker table (sealed like everything
  there, kept for a day: longer than any access token lives). Access tokens are Entra's, signed and
  valid until they expire, so dropping state is not enough: :meth:`Revocations.refuses` (asked by
  team.authn.AuthenticateFirst, which answers 401 invalid_token so the client signs in again) refuses
  every request whose token was issued (``iat``) before its person's or its client's revocation.

A replica caches each answer for :data:`CACHE_SECONDS`, so a revoke takes effect everywhere within
that (plus a request in flight). Signing in again afterwards works: the new token is newer than
the revocation, so an operator who wants someone out for good also removes them in Entra.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store

__all__ = ["CACHE_SECONDS", "Revocations"]

log = logging.getLogger("pcref_mcp.team")

REVOKED = "revoked"  # broker kind: "person:<oid>" / "client:<client id>" → the revocation's time
KEEP_SECONDS = 24 * 3600.0  # longer than any access token lives
CACHE_SECONDS = 2.0


def _held_kinds() -> tuple[str, ...]:
    """Every kind the proxy and the page sign-in keep for a person (``subject``) or a client
    (``client_id``): their consents, grants in progress, codes, refresh handles and browser sign-ins
    (named from team.proxy and team.browser, so a kind added there is revoked too)."""
    from pcref_mcp.team import browser, proxy

    return (
        proxy.CONSENT,
        proxy.CONSENT_REQUEST,
        proxy.PENDING,
        proxy.SIGNED,
        proxy.CODE,
        proxy.REFRESH,
        proxy.SPENT,
        proxy.CLAIMS,
        proxy.ISSUED_TO,
        browser.BROWSER,
        browser.PAGE_PENDING,
        browser.PAGE_SIGNED,
    )


class Revocations:
    def __init__(self, store: Store | Callable[[], Store], *, clock: Any = time.time) -> None:
        self._store = store  # or how to reach it: a server's runtime opens its store on first use
        self._clock = clock
        self._cache: dict[str, tuple[float, float | None]] = {}

    @property
    def store(self) -> Store:
        return self._store() if callable(self._store) else self._store

    async def revoke_person(self, person: str) -> dict[str, int]:
        """Cut ``person`` (their principal id: the token's ``oid``) off; what was dropped, by kind."""
        dropped = {kind: await self.store.broker_drop(kind, subject=person) for kind in _held_kinds()}
        await self.store.token_delete(person)
        await self._mark(f"person:{person}")
        return dropped

    async def revoke_client(self, client_id: str) -> dict[str, int]:
        """Cut ``client_id`` (an OAuth client registered with the proxy) off, for everyone."""
        # which token went to this client is kept (until those tokens expire): it is how every
        # replica recognises the client's tokens to refuse them
        from pcref_mcp.team import proxy

        kinds = [k for k in (*_held_kinds(), proxy.CLIENT, proxy.UNUSED) if k != proxy.ISSUED_TO]
        dropped = {kind: await self.store.broker_drop(kind, client_id=client_id) for kind in kinds}
        await self._mark(f"client:{client_id}")
        return dropped

    async def revoked_at(self, key: str) -> float | None:
        """When ``key`` (``person:…`` / ``client:…``) was revoked, if within the last day (cached)."""
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        held = await self.store.broker_get(REVOKED, key, self._clock())
        at = float(held.decode()) if held else None
        self._cache[key] = (now, at)
        if len(self._cache) > 10_000:  # bounded: the oldest answers go first
            for old in sorted(self._cache, key=lambda k: self._cache[k][0])[:5_000]:
                del self._cache[old]
        return at

    async def refuses(self, token: Any) -> bool:
        """Whether ``token`` (the SDK's AccessToken) was issued before its person's or its client's
        revocation. A token without ``iat`` is judged by the revocation alone."""
        claims = getattr(token, "claims", None) or {}
        issued = float(claims.get("iat") or 0)
        person = str(claims.get("oid") or getattr(token, "subject", "") or "")
        keys = [f"person:{person}"] if person else []
        client = await self.client_of(token)
        if client:
            keys.append(f"client:{client}")
        for key in keys:
            at = await self.revoked_at(key)
            if at is not None and issued <= at:
                return True
        return False

    async def client_of(self, token: Any) -> str | None:
        """The OAuth client the proxy issued this access token to (None outside proxy mode)."""
        raw = getattr(token, "token", None)
        if not raw:
            return None
        key = f"issued:{raw}"
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS * 30:
            return str(cached[1]) if cached[1] is not None else None
        held = await self.store.broker_get("issued-to", raw, self._clock())
        client = held.decode() if held else None
        self._cache[key] = (now, client)  # type: ignore[assignment]
        return client

    async def _mark(self, key: str) -> None:
        now = self._clock()
        await self.store.broker_put(REVOKED, key, repr(now).encode(), expires=now + KEEP_SECONDS)
        self._cache.pop(key, None)
