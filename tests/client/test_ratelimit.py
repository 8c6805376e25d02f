"""The client-side limiter never lets more than N calls through in any window (fake clock)."""

from __future__ import annotations

import bisect

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcref_mcp.partner_center import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await anyio.sleep(0)  # let other tasks run, as a real sleep would


def max_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    # Any window [t, t + window) that holds the most calls starts at a call.
    return max((bisect.bisect_left(stamps, t + window) - i for i, t in enumerate(stamps)), default=0)


async def run(calls: int, window: float, callers: int, per_caller: int, gaps: list[float]) -> list[float]:
    ft = FakeTime()
    limiter = RateLimiter(calls, window, clock=ft.clock, sleep=ft.sleep)
    stamps: list[float] = []

    async def caller(i: int) -> None:
        for j in range(per_caller):
            await limiter.acquire()
            stamps.append(ft.now)
            ft.now += gaps[(i + j) % len(gaps)]

    async with anyio.create_task_group() as tg:
        for i in range(callers):
            tg.start_soon(caller, i)
    return stamps


@pytest.mark.anyio
async def test_never_more_than_n_in_a_window() -> None:
    stamps = await run(calls=100, window=60.0, callers=8, per_caller=60, gaps=[0.0, 0.01, 0.5])
    assert len(stamps) == 480
    assert max_in_any_window(stamps, 60.0) <= 100


@settings(max_examples=40, deadline=None)
@given(
    calls=st.integers(1, 12),
    window=st.floats(0.5, 100.0),
    callers=st.integers(1, 5),
    per_caller=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=5),
)
def test_window_property(calls: int, window: float, callers: int, per_caller: int, gaps: list[float]) -> None:
    stamps = anyio.run(run, calls, window, callers, per_caller, gaps)
    assert len(stamps) == callers * per_caller
    assert max_in_any_window(stamps, window) <= calls


@pytest.mark.anyio
async def test_normal_pace_never_waits() -> None:
    ft = FakeTime()
    waited: list[float] = []

    async def sleep(s: float) -> None:
        waited.append(s)
        await ft.sleep(s)

    limiter = RateLimiter(100, 60.0, clock=ft.clock, sleep=sleep)
    for _ in range(300):
        await limiter.acquire()
        ft.now += 0.7  # ~86 calls a minute
    assert waited == []


@pytest.mark.anyio
async def test_pause_holds_every_caller() -> None:
    ft = FakeTime()
    limiter = RateLimiter(100, 60.0, clock=ft.clock, sleep=ft.sleep)
    limiter.pause(30)
    assert limiter.paused_for == 30
    times: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        times.append(ft.now)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(caller)
    assert times and min(times) >= 30
    limiter.pause(5)  # a shorter pause never shortens a longer one
    limiter.pause(-1)
    assert limiter.paused_for == 5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 60)
    with pytest.raises(ValueError):
        RateLimiter(1, 0)
