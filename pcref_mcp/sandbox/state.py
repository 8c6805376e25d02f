"""One running sandbox: its store, clock, faults, throttle and counters (``app.state.sandbox``).

Tests in the same process drive it directly (``state.clock.advance(...)``, ``state.faults.update(...)``,
``state.reset(size=10)``); the ``/_sandbox/`` endpoints call the same methods over HTTP.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from datetime import timedelta
from typing import Any

from pcref_mcp.referrals import lifecycle
from pcref_mcp.sandbox.clock import Clock, ManualClock, format_wire
from pcref_mcp.sandbox.config import SandboxConfig
from pcref_mcp.sandbox.faults import Faults
from pcref_mcp.sandbox.rules import Partner, expire_if_due
from pcref_mcp.sandbox.store import Store
from pcref_mcp.sandbox.templates import seed_store

__all__ = ["RateLimiter", "SandboxState"]


class RateLimiter:
    """Sliding-window request log per token on the sandbox clock (so tests can jump past the window)."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> int | None:
        """Record one request; None if allowed, else the seconds to wait (>= 1)."""
        if self.limit <= 0 or self.window <= 0:
            return None
        now = self.clock.now().timestamp()
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                return max(1, math.ceil(log[0] + self.window - now))
            log.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


class SandboxState:
    """Everything behind the HTTP surface of one sandbox instance."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock: Clock = config.clock
        self.faults: Faults = config.faults
        self.partner = Partner(config.partner_org_id, config.partner_org_name, config.mpn_id)
        self.store = Store(config.db_path)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window, self.clock)
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        if config.db_path is None or config.reset or self.store.get_meta("seeded") is None:
            self.reset(config.seed_size, config.seed)

    # --- control ----------------------------------------------------------------------------------

    def reset(self, size: int | None = None, seed: int | None = None) -> int:
        """Wipe and reseed the data, and zero the counters and the throttle."""
        size = self.config.seed_size if size is None else size
        seed = self.config.seed if seed is None else seed
        if size < 0:
            raise ValueError("size must be >= 0.")
        inserted = seed_store(
            self.store,
            size,
            seed=seed,
            now=self.clock.now(),
            partner=self.partner,
            real_world=self.config.profile == "strict",
            keep=isinstance(self.clock, ManualClock),
        )
        self.store.set_meta("seeded", f"{size}:{seed}")
        with self._lock:
            self.requests.clear()
            self.injected.clear()
            self.throttled = 0
        self.limiter.clear()
        return inserted

    def advance(self, seconds: float) -> str:
        if not isinstance(self.clock, ManualClock):
            raise ValueError(
                "The sandbox runs on the system clock; start it with a ManualClock to move time."
            )
        self.clock.advance(seconds)
        return format_wire(self.clock.now())

    def sweep(self) -> int:
        """Expire unanswered incoming referrals older than 14 days (Closed/Expired); how many changed."""
        now = self.clock.now()
        cutoff = format_wire(now - timedelta(days=lifecycle.EXPIRY_DAYS))
        due = self.store.ids_where(
            "status = ? AND direction = ? AND created_date_time <= ?", ("New", "Incoming", cutoff)
        )
        changed = 0
        for referral_id in due:
            doc = self.store.get(referral_id)
            if doc is None:
                continue
            before = doc["eTag"]
            if expire_if_due(doc, now) and self.store.replace(
                doc, expected_etag=before, at=format_wire(now), kind="expire"
            ):
                changed += 1
        return changed

    # --- counters ---------------------------------------------------------------------------------

    def count_request(self, method: str, status: int) -> None:
        with self._lock:
            self.requests[f"{method} {status}"] += 1

    def count_throttled(self) -> None:
        with self._lock:
            self.throttled += 1

    def count_injected(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by = dict(sorted(self.requests.items()))
            total = sum(self.requests.values())
            throttled = self.throttled
            injected = dict(self.injected)
        writes = self.store.writes_by_kind()
        return {
            "requests": total,
            "byMethodStatus": by,
            "throttled": throttled,
            "faultsInjected": injected,
            "referrals": self.store.count(),
            "writesApplied": sum(n for kind, n in writes.items() if kind != "expire"),
            "writesByKind": writes,
            "now": format_wire(self.clock.now()),
        }
