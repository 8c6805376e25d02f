"""Streamable HTTP at the app level, on a real socket (uvicorn in a thread): a wrong Host or Origin is
refused (DNS rebinding), a non-loopback bind without a bearer token is refused at start, a missing or
wrong bearer token gets 401 (an error code only for a wrong one), and a server bound beyond loopback
answers to the names it is reached by — 127.0.0.1, the machine's own address, configured names — and
still refuses a foreign one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
from tests.serving import free_port, initialize, serve_in_thread, tls

BEARER = "b" * 48
INIT = initialize("2025-06-18", client="reliability")


def _settings(tmp: Path, token: str | None = None, **extra: Any) -> Settings:
    return Settings(
        journal_path=tmp / "journal.sqlite3",
        sandbox_db=tmp / "sandbox.db",
        http_bearer_token=SecretStr(token) if token else None,
        **extra,
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
    with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
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
    missing = _post(where)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="pcref-mcp"'  # RFC 6750: no error code
    wrong = _post(where, Authorization="Bearer " + "c" * 48)
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="pcref-mcp", error="invalid_token"'
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


def _own_address() -> str | None:
    """The address this machine sends from beyond loopback (a UDP connect sends nothing), if any."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.connect(("198.51.100.1", 9))
            address = str(udp.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


@contextmanager
def _served_on_all_interfaces(tmp_path: Path, **extra: Any) -> Iterator[int]:
    settings = _settings(tmp_path, BEARER, **extra)
    port = free_port()
    app = http_app(settings, _server(settings), host="0.0.0.0", port=port)
    with serve_in_thread(app, host="0.0.0.0", port=port, lifespan="on"):
        yield port


def _post_to(address: str, port: int, **headers: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
        return http.post(
            f"http://{address}:{port}/mcp",
            json=INIT,
            headers={**HEADERS, "Authorization": f"Bearer {BEARER}", **headers},
        )


def test_bound_beyond_loopback_it_answers_to_the_names_it_is_reached_by(tmp_path: Path) -> None:
    """Bound to 0.0.0.0 with a bearer token: requests to 127.0.0.1, localhost and the machine's own
    address are served (they all got 421 when only the bind address was allowed); a foreign Host is
    still refused, with or without the port."""
    with _served_on_all_interfaces(tmp_path) as port:
        assert _post_to("127.0.0.1", port).status_code == 200
        assert _post_to("127.0.0.1", port, Host=f"localhost:{port}").status_code == 200
        own = _own_address()
        if own is not None:
            assert _post_to(own, port).status_code == 200
            assert _post_to(own, port, Origin=f"http://{own}:{port}").status_code == 200
            assert _post_to(own, port, Host="evil.example").status_code == 421
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}"):
            assert _post_to("127.0.0.1", port, Host=host).status_code == 421, host
        assert _post_to("127.0.0.1", port, Origin="http://evil.example").status_code == 403


def test_configured_host_names_replace_the_defaults(tmp_path: Path) -> None:
    with _served_on_all_interfaces(tmp_path, http_allowed_hosts=("pcref.lan", "127.0.0.1")) as port:
        assert _post_to("127.0.0.1", port, Host="pcref.lan").status_code == 200
        assert _post_to("127.0.0.1", port, Host=f"pcref.lan:{port}").status_code == 200
        assert _post_to("127.0.0.1", port).status_code == 200
        assert _post_to("127.0.0.1", port, Host=f"localhost:{port}").status_code == 421  # not listed
        assert _post_to("127.0.0.1", port, Host="evil.example").status_code == 421


@pytest.mark.parametrize("value", ["*", "*.example", "http://pcref.lan/", "pcref.lan/mcp"])
def test_a_wildcard_or_a_url_is_not_a_host_name(value: str) -> None:
    from pcref_mcp.config import load_settings

    with pytest.raises(ConfigError, match="PCREF_HTTP_ALLOWED_HOSTS"):
        load_settings(env={"PCREF_HTTP_ALLOWED_HOSTS": value})
