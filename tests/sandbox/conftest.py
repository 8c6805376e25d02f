"""Fixtures for the sandbox tests.

``service`` is the contract-test target: the in-process sandbox, and the live Partner Center when
``PCREF_LIVE_TESTS=1`` and ``PCREF_LIVE_TOKEN`` are set (run them with ``-m live``). Contract tests
use only ``service``; tests that need the sandbox's knobs (clock, faults, throttle, seed) use
``sandbox`` and ``state`` directly.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pcref_mcp.sandbox import Faults, ManualClock, SandboxConfig, create_app
from pcref_mcp.sandbox.state import SandboxState

START = datetime(2025, 6, 2, 12, 0, 0, tzinfo=UTC)
SANDBOX_BASE = "https://sandbox.local/v1.0/engagements/"
LIVE_BASE = "https://api.partner.microsoft.com/v1.0/engagements/"
TOKEN = "sandbox-test-token"


@dataclass
class Service:
    """An HTTP client pointed at a Referrals service, with the headers every call needs."""

    kind: str
    client: httpx.AsyncClient
    headers: dict[str, str]
    state: SandboxState | None = None

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.put(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def make_config(**overrides: Any) -> SandboxConfig:
    settings: dict[str, Any] = {"clock": ManualClock(START), "faults": Faults(seed=7), "rate_limit": 0}
    settings.update(overrides)
    return SandboxConfig(**settings)


def client_for(app: Any) -> httpx.AsyncClient:
    """An in-process client; it carries the control token, so the /_sandbox/ routes answer it."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=SANDBOX_BASE,
        headers={"X-Sandbox-Control": app.state.control_token},
    )


@pytest.fixture
def sandbox_profile() -> str | None:
    """None: the profile the suite runs with (PCREF_SANDBOX_PROFILE); a test about the lenient
    profile's query language pins it with ``@pytest.mark.parametrize("sandbox_profile", ["lenient"])``."""
    return None


@pytest.fixture
def sandbox_config(sandbox_profile: str | None) -> SandboxConfig:
    return make_config(**({"profile": sandbox_profile} if sandbox_profile else {}))


@pytest.fixture
def sandbox_app(sandbox_config: SandboxConfig) -> Any:
    return create_app(sandbox_config)


@pytest.fixture
def state(sandbox_app: Any) -> SandboxState:
    return sandbox_app.state.sandbox


@pytest.fixture
async def sandbox(sandbox_app: Any) -> AsyncIterator[Service]:
    async with client_for(sandbox_app) as client:
        yield Service("sandbox", client, {"Authorization": f"Bearer {TOKEN}"}, sandbox_app.state.sandbox)


_LIVE_READY = os.environ.get("PCREF_LIVE_TESTS") == "1" and bool(os.environ.get("PCREF_LIVE_TOKEN"))
_LIVE_MARKS = [
    pytest.mark.live,
    pytest.mark.skipif(
        not _LIVE_READY,
        reason="live contract tests need PCREF_LIVE_TESTS=1 and PCREF_LIVE_TOKEN (a Partner Center user token)",
    ),
]


@pytest.fixture(params=["sandbox", pytest.param("live", marks=_LIVE_MARKS)])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    if request.param == "sandbox":
        app = create_app(make_config())
        async with client_for(app) as client:
            yield Service("sandbox", client, {"Authorization": f"Bearer {TOKEN}"}, app.state.sandbox)
        return
    token = os.environ["PCREF_LIVE_TOKEN"]
    async with httpx.AsyncClient(
        base_url=os.environ.get("PCREF_LIVE_BASE_URL", LIVE_BASE), timeout=60
    ) as client:
        yield Service("live", client, {"Authorization": f"Bearer {token}"})
