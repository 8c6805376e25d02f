"""The sandbox's /_sandbox/ control routes answer only the test that owns it (issue 16.10): a
cross-site page (a ``text/plain`` POST needs no preflight) once wiped the sandbox with one request."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.server import control_token_path, write_control_token
from tests.sandbox.conftest import make_config

pytestmark = pytest.mark.anyio


def _raw(app: Any, base: str = "http://127.0.0.1:8780") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


async def _count(app: Any) -> int:
    return int(app.state.sandbox.stats()["referrals"])


@pytest.mark.parametrize(
    ("base", "headers", "status"),
    [
        # a cross-site simple request: text/plain, the attacker's Origin, no token
        ("http://127.0.0.1:8780", {"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403),
        # the right token is not enough from another site
        ("http://127.0.0.1:8780", {"Origin": "https://evil.example", "X-Sandbox-Control": "TOKEN"}, 403),
        ("http://127.0.0.1:8780", {"Origin": "null", "X-Sandbox-Control": "TOKEN"}, 403),
        # DNS rebinding: the attacker's name resolving to 127.0.0.1
        ("http://evil.example:8780", {"X-Sandbox-Control": "TOKEN"}, 421),
        # local, but without (or with a wrong) token
        ("http://127.0.0.1:8780", {}, 403),
        ("http://localhost:8780", {"X-Sandbox-Control": "wrong"}, 403),
    ],
)
async def test_reset_is_refused_unless_local_and_with_the_token(
    base: str, headers: dict[str, str], status: int
) -> None:
    app = create_app(make_config(control_token="TOKEN"))
    before = await _count(app)
    assert before > 0
    async with _raw(app, base) as client:
        response = await client.post("/_sandbox/reset", content=b'{"size": 0}', headers=headers)
    assert response.status_code == status, response.text
    assert "TOKEN" not in response.text  # never echoed
    assert response.json()["error"]["code"] == "accessDenied"
    assert await _count(app) == before  # nothing wiped


@pytest.mark.parametrize(
    ("base", "origin"),
    [
        ("http://127.0.0.1:8780", None),
        ("http://localhost:8780", "http://localhost:8780"),
        ("http://[::1]:8780", None),
        ("https://sandbox.test", None),
    ],
)
async def test_reset_works_locally_with_the_token(base: str, origin: str | None) -> None:
    app = create_app(make_config(control_token="TOKEN"))
    headers = {"X-Sandbox-Control": "TOKEN"} | ({"Origin": origin} if origin else {})
    async with _raw(app, base) as client:
        response = await client.post("/_sandbox/reset", json={"size": 3}, headers=headers)
    assert response.status_code == 200, response.text
    assert await _count(app) == 3


async def test_each_app_gets_its_own_random_token_and_the_api_needs_none() -> None:
    one, two = create_app(make_config()), create_app(make_config())
    assert one.state.control_token != two.state.control_token and len(one.state.control_token) >= 24
    async with _raw(one) as client:
        stolen = {"X-Sandbox-Control": two.state.control_token}
        assert (await client.get("/_sandbox/stats", headers=stolen)).status_code == 403
        ok = {"X-Sandbox-Control": one.state.control_token}
        assert (await client.get("/_sandbox/stats", headers=ok)).status_code == 200
        api = await client.get("/v1.0/engagements/referrals", headers={"Authorization": "Bearer t"})
        assert api.status_code == 200  # the Referrals API itself is unchanged


def test_standalone_token_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "data" / "sandbox.db"
    path = write_control_token(db, "secret-control")
    assert path == control_token_path(db) and path.read_text() == "secret-control"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_sandbox_database_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "sandbox.db"
    app = create_app(SandboxConfig(db_path=db, seed_size=3))
    app.state.sandbox.stats()
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for suffix in ("", "-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    assert os.path.exists(db)
