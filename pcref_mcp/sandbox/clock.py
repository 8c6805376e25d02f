"""Time for the sandbox: a clock tests can move, and the service's wire format for timestamps.

Everything time-dependent in the sandbox (expiry of unanswered referrals after 14 days, the 72-hour
rule for deal registrations, the throttling window) reads one ``Clock``, so a test can jump two weeks
ahead with ``ManualClock.advance`` instead of sleeping.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

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


def format_wire(when: datetime) -> str:
    """``2019-02-23T02:05:23.2931817Z``: UTC with seven fractional digits, like the service.

    A fixed width also makes the text sort in time order, which the store's indexes rely on.
    """
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}0Z"


_WIRE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_wire(text: str) -> datetime | None:
    """An ISO 8601 timestamp (date only, any fraction, Z or offset) as aware UTC; None if it is not one."""
    m = _WIRE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hh or 0),
            int(mm or 0),
            int(ss or 0),
            int((frac or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when
