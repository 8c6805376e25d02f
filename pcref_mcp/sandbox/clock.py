"""Time for the sandbox: a clock tests can move. The wire form of timestamps is the domain's
(:mod:`pcref_mcp.referrals.timestamps`), re-exported here for the sandbox's modules.

Everything time-dependent in the sandbox (expiry of unanswered referrals after 14 days, the 72-hour
rule for deal registrations, the throttling window) reads one ``Clock``, so a test can jump two weeks
ahead with ``ManualClock.advance`` instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from pcref_mcp.referrals.timestamps import format_wire, parse_wire

__all__ = ["Clock", "ManualClock", "SystemClock", "format_wire", "parse_wire"]


@runtime_checkable
class Clock(Protocol):
    """What the sandbox needs to know about time: the current UTC instant."""

    def now(self) -> datetime: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to; ``advance(seconds)`` is what tests call."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime.fromtimestamp(int(time.time()), UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward (a negative value moves back) and return the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when if when.tzinfo else when.replace(tzinfo=UTC)

    def __repr__(self) -> str:
        return f"ManualClock({format_wire(self.now())!r})"
