"""MCP-level fixtures: one sandbox (file DB, manual clock), one runtime, a server, an in-memory client."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.app import DEFAULT_ORDER
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.sandbox.odata import compile_filter
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Sandbox:
    """Direct access to the sandbox service, to set up and check stored state."""

    def __init__(self, app: Any, clock: ManualClock) -> None:
        self.app = app
        self.clock = clock
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://sandbox.test/v1.0/engagements/",
            headers={"Authorization": "Bearer test", "Content-Type": "application/json"},
        )

    async def get(self, referral_id: str) -> dict[str, Any]:
        r = await self.http.get(f"referrals/{referral_id}")
        r.raise_for_status()
        return dict(r.json())

    async def find(self, filter_: str, top: int = 100) -> list[dict[str, Any]]:
        """Stored referrals matching an OData filter, read past the service's query rules (a test's
        back door: the strict profile refuses undocumented filters over HTTP)."""
        state = self.app.state.sandbox
        state.sweep()
        where, args = compile_filter(filter_)
        return [json.loads(doc) for doc in state.store.query(where, args, DEFAULT_ORDER, top, 0)]

    async def patch(self, referral_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        r = await self.http.patch(
            f"referrals/{referral_id}", json=ops, headers={"Prefer": "return=representation"}
        )
        r.raise_for_status()
        return dict(r.json())

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post("referrals", json=body)
        r.raise_for_status()
        return dict(r.json())

    async def count(self) -> int:
        """Every referral, counted page by page (the strict profile's @odata.count counts a page)."""
        body = (await self.http.get("referrals")).json()
        total = len(body["value"])
        while body.get("@odata.nextLink"):
            body = (await self.http.get(body["@odata.nextLink"])).json()
            total += len(body["value"])
        return total

    @property
    def strict(self) -> bool:
        return bool(self.app.state.sandbox.config.profile == "strict")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    clock = ManualClock(START)
    app = create_app(SandboxConfig(db_path=tmp_path / "sandbox.db", seed_size=60, clock=clock, rate_limit=0))
    handle = Sandbox(app, clock)
    yield handle
    await handle.http.aclose()


@pytest.fixture
async def runtime(settings: Settings, sandbox: Sandbox) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, sandbox_app=sandbox.app)
    yield rt
    await rt.aclose()


@pytest.fixture
def server(settings: Settings, runtime: Runtime) -> Any:
    return build_server(settings, runtime=runtime)


@pytest.fixture
async def client(server: Any) -> AsyncIterator[Client]:
    async with Client(server, raise_exceptions=True) as c:
        yield c


async def call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return dict(result.structured_content)


async def call_error(client: Client, name: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail; return the message the model reads."""
    result = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    return str(result.content[0].text)  # type: ignore[union-attr]


def fill_roles(value: Any, roles: dict[str, str]) -> Any:
    """A corpus case's arguments with its ``$role`` placeholders (``$active``…) replaced by the ids
    the sandbox gave those roles."""
    if isinstance(value, str):
        return re.sub(r"\$\w+", lambda m: roles.get(m[0], m[0]), value)
    if isinstance(value, dict):
        return {k: fill_roles(v, roles) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_roles(v, roles) for v in value]
    return value
