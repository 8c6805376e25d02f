"""Per-person backends: in team mode each person gets their own Partner Center client.

:class:`TeamRuntime` is the server's :class:`~pcref_mcp.server.runtime.Runtime` with ``client`` and
``engine`` looked up for ``identity.current()``: each person's client signs its requests with that
person's on-behalf-of token and has its own rate limiter, so one busy person cannot spend another's
budget. The journal, the confirm-token store and the sandbox are shared; what keeps their entries
apart is the principal the layers below read from :mod:`pcref_mcp.identity`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pcref_mcp import identity
from pcref_mcp.errors import SignInError
from pcref_mcp.server.runtime import Runtime

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.partner_center.ratelimit import RateLimiter
    from pcref_mcp.team.obo import OnBehalfOf
    from pcref_mcp.writes.engine import WriteEngine

__all__ = ["TeamRuntime"]


class TeamRuntime(Runtime):
    def __init__(self, settings: Settings, obo: OnBehalfOf, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.obo = obo
        obo.store = self.store  # each person's token cache, sealed, shared by the replicas
        self._clients: dict[str, PartnerCenterClient] = {}
        self._engines: dict[str, WriteEngine] = {}
        self._people_lock = threading.Lock()

    @property
    def client(self) -> PartnerCenterClient:
        person = _person()
        with self._people_lock:
            if person.id not in self._clients:
                self._clients[person.id] = self._client_for(person)
            return self._clients[person.id]

    @property
    def engine(self) -> WriteEngine:
        from pcref_mcp.writes.engine import WriteEngine

        person = _person()
        client = self.client
        with self._people_lock:
            if person.id not in self._engines:
                self._engines[person.id] = WriteEngine(client, self.journal)
            return self._engines[person.id]

    def limiter_of(self, person_id: str) -> RateLimiter | None:
        """The rate limiter of one person's client (None before their first call)."""
        client = self._clients.get(person_id)
        return client.limiter if client is not None else None

    async def aclose(self) -> None:
        clients, self._clients, self._engines = list(self._clients.values()), {}, {}
        for client in clients:
            await client.aclose()
        self.obo.close()
        await super().aclose()

    def _client_for(self, person: identity.Principal) -> PartnerCenterClient:
        from pcref_mcp.partner_center.client import PartnerCenterClient
        from pcref_mcp.partner_center.measured import measured
        from pcref_mcp.partner_center.ratelimit import PersonalRateLimiter

        # this person's window, in the store when it is shared: every replica counts the same calls
        limiter = PersonalRateLimiter(
            self.settings.rate_limit_calls,
            self.settings.rate_limit_window,
            buckets=self.store if self.store.shared else None,
        )
        transport = self._transport if self.settings.backend == "live" else self.backend_transport()
        return PartnerCenterClient(
            self.base_url,
            self.obo.for_person(person),
            transport=measured(transport),  # timed and counted for /metrics and /readyz
            limiter=limiter,
            timeout=self.settings.timeout,
        )


def _person() -> identity.Principal:
    person = identity.current()
    if person.is_local:  # team mode serves people, never "the local user": fail closed
        raise SignInError("This call is not signed in; nothing was sent.")
    return person
