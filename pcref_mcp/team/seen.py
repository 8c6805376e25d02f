"""Who uses the server, and when they last did: a cheap "last seen" per person and per client, for
``pcref-mcp admin people``; and, in resource-server mode, the sign-ins the server can see.

Every authenticated request to ``/mcp`` (any MCP message: a tool call, a list, a ping) and every
sign-in through the server (the proxy's callback, a page sign-in) *sees* its person — with the OAuth
client they came with when it is known: the client the proxy issued their token to (its registered
name), else the token's ``azp``/``appid`` (an Entra app id: no name). Writing that to the shared store
on every call would cost a store write per call, so a replica writes a person's row at most once per
:data:`SEEN_EVERY` (the last call is known to that resolution), plus at once whenever they come with
an access token this replica has not seen yet.

A resource server never sees a sign-in, only the tokens that result from one. There a **sign-in** is
counted when an access token newer (``iat``) than any before it for that person and client reaches
any replica for the first time: the store's :meth:`~pcref_mcp.store.base.Store.seen_touch` tells
exactly one replica that it is new, so the replicas' counts add up to the number of such tokens (a
client's silent refresh yields a new token too, and is counted as well: the server cannot tell them
apart). In proxy mode the proxy and the page count their own sign-ins (:func:`signed_in`).

Nothing here may fail a call: a store that does not answer is logged, and the call goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pcref_mcp import metrics

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store

__all__ = ["SEEN_EVERY", "SeenRecorder", "seen_signing_in", "signed_in"]

log = logging.getLogger("pcref_mcp.team")

SEEN_EVERY = 60.0  # a replica writes a person's (and client's) last seen at most this often
_NAMES_FOR = 3600.0  # a client's registered name is looked up again after this
_MAX_REMEMBERED = 10_000


def signed_in(via: str, outcome: str) -> None:
    """One sign-in, counted (``via``: proxy, page or bearer; ``outcome``: completed, refused or
    failed): the metrics table in the README says what each one is."""
    metrics.count("pcref_sign_ins", via=via, outcome=outcome)


async def seen_signing_in(
    store: Store, person: str, name: str | None, client_id: str = "", client_name: str | None = None
) -> None:
    """A sign-in through the server sees its person (and client) at once: sign-ins are rare, so no
    bound is needed; a store that does not answer is logged, the sign-in goes on."""
    now = time.time()
    try:
        await store.seen_touch(person, "", name=name, client_name=None, now=now)
        if client_id:
            await store.seen_touch(person, client_id, name=name, client_name=client_name, now=now)
    except Exception as exc:
        log.warning("could not record who signed in (%s)", type(exc).__name__)


class SeenRecorder:
    """A replica's bounded writer of last-seen rows (see the module's docstring)."""

    def __init__(
        self,
        store: Store | Callable[[], Store],
        *,
        client_name: Callable[[str], Awaitable[str | None]] | None = None,
        count_sign_ins: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._client_name = client_name  # proxy mode: a client id's registered name
        self._count_sign_ins = count_sign_ins  # resource-server mode
        self._clock, self._monotonic = clock, monotonic
        self._written: dict[tuple[str, str], tuple[float, float]] = {}  # → (when written, newest iat)
        self._names: dict[str, tuple[float, str | None]] = {}

    @property
    def store(self) -> Store:
        return self._store() if callable(self._store) else self._store

    async def saw(self, person: str, *, name: str | None, client_id: str = "", issued: float = 0.0) -> None:
        """``person`` (their principal id) made a request now, with ``client_id`` ("" if unknown)
        and a token issued at ``issued`` (0: no token, e.g. a page sign-in)."""
        now = self._monotonic()
        keys = [(person, "")] + ([(person, client_id)] if client_id else [])
        for key in keys:
            written_at, newest = self._written.get(key, (float("-inf"), 0.0))
            if now - written_at < SEEN_EVERY and issued <= newest:
                continue  # written lately, and no newer token: nothing to tell the store
            try:
                label = await self._name_of(key[1]) if key[1] else None
                new = await self.store.seen_touch(
                    person, key[1], name=name, client_name=label, now=self._clock(), issued=issued
                )
            except Exception as exc:  # never fails a call: the next request tries again
                log.warning("could not record who was seen (%s)", type(exc).__name__)
                return
            self._remember(key, now, max(issued, newest))
            if new and self._count_sign_ins and key[1] == keys[-1][1]:
                signed_in("bearer", "completed")

    async def _name_of(self, client_id: str) -> str | None:
        if self._client_name is None:
            return None
        now = self._monotonic()
        held = self._names.get(client_id)
        if held is None or now - held[0] >= _NAMES_FOR:
            held = (now, await self._client_name(client_id))
            self._names[client_id] = held
            if len(self._names) > _MAX_REMEMBERED:
                self._names.clear()
        return held[1]

    def _remember(self, key: tuple[str, str], now: float, issued: float) -> None:
        self._written[key] = (now, issued)
        if len(self._written) > _MAX_REMEMBERED:  # bounded: the oldest go first
            for old in sorted(self._written, key=lambda k: self._written[k][0])[: _MAX_REMEMBERED // 2]:
                del self._written[old]
