"""Rate limits per person: one busy person does not hold back another; with a shared store the
window and a Retry-After pause are the same on every replica."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp import identity
from pcref_mcp.config import load_settings
from pcref_mcp.partner_center.ratelimit import PersonalRateLimiter

pytestmark = pytest.mark.anyio

ADA = identity.Principal(id="oid-ada")
BOB = identity.Principal(id="oid-bob")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_each_person_has_their_own_window_in_one_process() -> None:
    clock = Clock()
    limiter = PersonalRateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    with identity.acting_as(ADA):
        for _ in range(3):
            await limiter.acquire()
    with identity.acting_as(BOB):
        await limiter.acquire()  # bob is not held back by ada's three
    assert clock.slept == []
    with identity.acting_as(ADA):
        await limiter.acquire()  # ada's fourth waits for her first to age out
    assert clock.slept and 59.0 < sum(clock.slept) <= 60.0


async def test_replicas_share_a_window_and_a_pause_through_the_store(new_store: Any) -> None:
    clock = Clock()
    one, two = new_store(), new_store()
    a = PersonalRateLimiter(4, 60.0, buckets=one, clock=clock, sleep=clock.sleep)
    b = PersonalRateLimiter(4, 60.0, buckets=two, clock=clock, sleep=clock.sleep)
    with identity.acting_as(ADA):
        for limiter in (a, b, a, b):
            await limiter.acquire()
        assert clock.slept == []
        await b.acquire()  # the fifth call on either replica waits out the shared window
        assert 59.0 < sum(clock.slept) <= 60.0
        clock.slept.clear()
        a.pause(30)  # the service said Retry-After: 30 to replica a
        await a.acquire()  # handed to the store on a's next call
        assert 29.0 < sum(clock.slept) <= 30.0
    await one.close()
    await two.close()


def test_store_settings_are_shown_without_secrets(tmp_path: Any) -> None:
    env = {
        "HOME": str(tmp_path),
        "PCREF_STORE_URL": "postgresql://pcref:hunter2@db.internal:5432/pcref",
        "PCREF_STORE_KEY": "k" * 40,
        "PCREF_HTTP_STATELESS": "1",
    }
    settings = load_settings(env)
    shown = dict((name, value) for name, value, _ in settings.describe())
    assert (
        "hunter2" not in str(shown) and shown["store_url"] == "postgresql://pcref:****@db.internal:5432/pcref"
    )
    assert shown["store_key"] == "****" and settings.http_stateless is True
    default = load_settings({"HOME": str(tmp_path)})
    assert default.store_location == f"sqlite:///{default.journal_path}"
