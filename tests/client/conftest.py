from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pc_fakes import BASE, TOKEN, FakeService, Sleeps

from pcref_mcp.partner_center import PartnerCenterClient, RateLimiter, StaticTokenProvider


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(service: FakeService, sleeps: Sleeps) -> AsyncIterator[PartnerCenterClient]:
    async with PartnerCenterClient(
        BASE,
        StaticTokenProvider(TOKEN),
        transport=service.transport,
        limiter=RateLimiter(1000, 60.0, clock=sleeps.clock, sleep=sleeps),
        sleep=sleeps,
    ) as c:
        yield c
