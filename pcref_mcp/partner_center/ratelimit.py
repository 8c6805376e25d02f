"""Client-side rate limiting, so a normal session never meets the service's 429.

A sliding window (default 100 calls per 60 s, the figure integrators use for Partner Center) shared by
every request of one client. When the service does answer 429 with ``Retry-After``, :meth:`pause`
holds back *all* callers until then, not just the one that was refused.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from pcref_mcp import identity

__all__ = ["Buckets", "PersonalRateLimiter", "RateLimiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most ``calls`` acquisitions in any ``window`` seconds; waiters are served in order."""

    def __init__(
        self,
        calls: int = 100,
        window: float = 60.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if calls < 1 or window <= 0:
            raise ValueError("calls must be >= 1 and window > 0")
        self.calls = calls
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._paused_until = 0.0
        self._lock: anyio.Lock | None = None  # created lazily: needs a running event loop

    async def acquire(self) -> None:
        """Wait until one more call fits in the window (and any server pause is over)."""
        if self._lock is None:
            self._lock = anyio.Lock()
        # Holding the lock while sleeping keeps the waiters first-come, first-served.
        async with self._lock:
            while True:
                wait = self._wait_time(self._clock())
                if wait <= 0:
                    self._stamps.append(self._clock())
                    return
                await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """The service asked us to wait (``Retry-After``): nobody calls before then."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def wait_time(self) -> float:
        """Seconds the next call would wait now (0 when it fits): for progress messages, not a reservation."""
        return max(0.0, self._wait_time(self._clock()))

    @property
    def paused_for(self) -> float:
        """Seconds left of a server-requested pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    def _wait_time(self, now: float) -> float:
        while self._stamps and self._stamps[0] + self.window <= now:
            self._stamps.popleft()
        if self._paused_until > now:
            return self._paused_until - now
        if len(self._stamps) < self.calls:
            return 0.0
        return self._stamps[0] + self.window - now


class Buckets(Protocol):
    """Where shared windows live (``pcref_mcp.store.Store`` implements this)."""

    async def rate_take(self, bucket: str, calls: int, window: float, now: float) -> float: ...

    async def rate_pause(self, bucket: str, until: float) -> None: ...


class PersonalRateLimiter(RateLimiter):
    """One window per person (``identity.current()``): Partner Center counts each signed-in user's
    calls, so one busy person must not hold back the rest of a team.

    With ``buckets`` (a team server's shared store) the window is kept there and shared by every
    replica, and a ``Retry-After`` pause holds back that person's calls on all of them; without, each
    person's window lives in this process.
    """

    def __init__(
        self,
        calls: int = 100,
        window: float = 60.0,
        *,
        buckets: Buckets | None = None,
        clock: Clock | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        # replicas compare stamps, so a shared window runs on the wall clock
        super().__init__(
            calls, window, clock=clock or (time.time if buckets else time.monotonic), sleep=sleep
        )
        self._buckets = buckets
        self._people: dict[str, RateLimiter] = {}
        self._pauses: dict[str, float] = {}  # to hand to the shared store on the person's next call

    async def acquire(self) -> None:
        person = identity.current().id
        if self._buckets is None:
            await self._local(person).acquire()
            return
        bucket = f"partner-center:{person}"
        until = self._pauses.pop(person, None)
        if until is not None:
            await self._buckets.rate_pause(bucket, until)
        while True:
            wait = await self._buckets.rate_take(bucket, self.calls, self.window, self._clock())
            if wait <= 0:
                self._local(person)._stamps.append(self._clock())  # this replica's share, for wait_time
                return
            await self._sleep(min(wait, self.window))

    def wait_time(self) -> float:
        """Seconds the current person's next call would wait (with a shared store: at least; the
        other replicas' calls are counted there)."""
        person = identity.current().id
        pause = max(0.0, self._pauses.get(person, 0.0) - self._clock())
        return max(self._local(person).wait_time(), pause)

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        person = identity.current().id
        if self._buckets is None:
            self._local(person).pause(seconds)
        else:
            self._pauses[person] = max(self._pauses.get(person, 0.0), self._clock() + seconds)

    @property
    def paused_for(self) -> float:
        person = identity.current().id
        if self._buckets is None:
            return self._local(person).paused_for
        return max(0.0, self._pauses.get(person, 0.0) - self._clock())

    def _local(self, person: str) -> RateLimiter:
        limiter = self._people.get(person)
        if limiter is None:
            limiter = self._people[person] = RateLimiter(
                self.calls, self.window, clock=self._clock, sleep=self._sleep
            )
        return limiter
