"""``/healthz`` and ``/readyz``: what nginx, an orchestrator or a person needs to route by.

``/healthz`` says only that the process answers (no I/O: a replica whose store is down is alive,
and restarting it would not help). ``/readyz`` says whether it should be sent calls: the store
answers within a short bound, its schema is at this version's migration, and the replica is not
draining. The Partner Center backend is reported (``ok``, ``degraded`` after a failed last answer,
``unknown`` before any call) but does not make a replica unready: every replica shares the same
backend, so taking them all out of rotation would only turn a degraded service into none.

Both are unauthenticated and reveal nothing beyond these words: no host name, no URL, no count,
no error text (a store's error may name its host). The store check is cached for a second from
its answer, and probes that arrive while one is out wait for it: a probe storm costs the store at
most one query at a time and one a second per replica, even while the store is slow or down (each
check then takes up to ``PROBE_SECONDS``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio

from pcref_mcp import metrics

__all__ = ["PROBE_SECONDS", "Readiness"]

log = logging.getLogger("pcref_mcp.ops")

PROBE_SECONDS = 2.0  # a store slower than this is as good as down for readiness
_CACHE_SECONDS = 1.0


class Readiness:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.draining = False
        self._cached: tuple[float, dict[str, str]] | None = None
        self._asking = anyio.Lock()  # one store check at a time; the others read its answer

    async def check(self) -> tuple[bool, dict[str, str]]:
        """(ready, the body /readyz answers)."""
        if self.draining:
            return False, {"status": "draining"}
        async with self._asking:
            if self._cached is None or time.monotonic() - self._cached[0] >= _CACHE_SECONDS:
                answer = await self._store_state()
                # Stamped when answered: a slow store's check would otherwise be stale at once.
                self._cached = (time.monotonic(), answer)
            state = dict(self._cached[1])
        state["backend"] = metrics.backend_state()
        ready = state["store"] == "ok" and state["migrations"] == "current"
        state["status"] = "ready" if ready else "unready"
        return ready, state

    async def _store_state(self) -> dict[str, str]:
        runtime = self._runtime()
        if runtime is None:
            return {"store": "starting", "migrations": "unknown"}
        from pcref_mcp.store.migrations import POSTGRES, SQLITE, latest

        store = runtime.store
        wanted = latest(POSTGRES if store.dialect == "postgresql" else SQLITE)
        try:
            with anyio.fail_after(PROBE_SECONDS), metrics.timed("pcref_store_seconds", op="readiness"):
                version = await store.schema_version()
        except Exception as exc:  # unreachable, timed out, not yet started: unready, the reason logged
            log.warning("readiness: the store did not answer (%s)", type(exc).__name__)
            return {"store": "unreachable", "migrations": "unknown"}
        return {"store": "ok", "migrations": "current" if version >= wanted else "behind"}

    def _runtime(self) -> Any:
        team = getattr(self.server, "team", None)
        if team is not None:
            return team.runtime
        return getattr(self.server, "live_runtime", None)
