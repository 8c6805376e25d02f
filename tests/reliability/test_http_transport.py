"""Streamable HTTP at the app level, on a real 127.0.0.1 socket (uvicorn in a thread): a wrong Host or
Origin is refused (DNS rebinding), a non-loopback bind without a bearer token is refused at start,
and a missing or wrong bearer token gets 401."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pcref_mcp.config import Settings
from pcref_mcp.errors import ConfigError
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.server.app import build_server
from pcref_mcp.server.http import http_app
from pcref_mcp.server.runtime import Runtime
from tests.serving import MCP_HEADERS as HEADERS
from tests.serving import free_port, initialize, serve_in_thread

BEARER = "b" * 48
INIT = initialize("2025-06-18", client="reliability")


def _settings(tmp: Path, token: str | None = None) -> Settings:
    return Settings(
        journal_path=tmp / "journal.sqlite3",
        sandbox_db=tmp / "sandbox.db",
        http_bearer_token=SecretStr(token) if token else None,
    )


def _server(settings: Settings) -> Any:
    return build_server(
        settings, runtime=Runtime(settings, sandbox_app=create_app(SandboxConfig(seed_size=5)))
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as servers:

        def start(token: str | None = None) -> str:
            settings = _settings(tmp_path, token)
            port = free_port()
            app = http_app(settings, _server(settings), host="127.0.0.1", port=port)
            servers.enter_context(serve_in_thread(app, port=port, lifespan="on"))
            return f"127.0.0.1:{port}"

        yield start


def _post(where: str, **headers: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=20) as http:
        return http.post(f"http://{where}/mcp", json=INIT, headers={**HEADERS, **headers})


def test_wrong_host_or_origin_is_refused(serve: Any) -> None:
    where = serve()
    port = where.split(":")[1]
    assert _post(where).status_code == 200
    assert _post(where, Origin=f"http://127.0.0.1:{port}").status_code == 200
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", "localhost:1"):
        assert _post(where, Host=host).status_code in (400, 403, 421), host
    for origin in (
        "http://evil.example",
        f"http://evil.example:{port}",
        "null",
        f"http://127.0.0.1:{int(port) + 1}",
    ):
        assert _post(where, Origin=origin).status_code in (400, 403), origin


def test_missing_or_wrong_bearer_is_refused(serve: Any) -> None:
    where = serve(BEARER)
    assert _post(where).status_code == 401
    wrong = _post(where, Authorization="Bearer " + "c" * 48)
    assert wrong.status_code == 401 and "www-authenticate" in wrong.headers
    assert BEARER not in wrong.text
    assert _post(where, Authorization=BEARER).status_code == 401  # scheme missing
    assert _post(where, Authorization=f"Basic {BEARER}").status_code == 401
    assert _post(where, Authorization=f"Bearer {BEARER}x").status_code == 401
    assert _post(where, Authorization=f"Bearer {BEARER}").status_code == 200
    # a valid bearer does not bypass the Host check
    assert _post(where, Authorization=f"Bearer {BEARER}", Host="evil.example").status_code in (400, 403, 421)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "my-host.example"])
def test_non_loopback_bind_without_token_is_refused_at_start(tmp_path: Path, host: str) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(ConfigError, match="PCREF_HTTP_BEARER_TOKEN"):
        http_app(settings, _server(settings), host=host, port=8765)
    with_token = _settings(tmp_path, BEARER)
    assert http_app(with_token, _server(with_token), host=host, port=8765) is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_bind_without_token_is_allowed(tmp_path: Path, host: str) -> None:
    settings = _settings(tmp_path)
    assert http_app(settings, _server(settings), host=host, port=8765) is not None
