"""Our own transports end to end, as clients reach them: `python -m pcref_mcp` spawned over stdio, and
`pcref-mcp serve --http` on a real 127.0.0.1 socket, each doing search → get → a confirmed
update_field; plus the HTTP guards (Host, Origin, non-loopback bind, bearer token)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.servers import PCREF, Running, http_server, process_env, server_env
from tests.serving import INITIALIZE, MCP_HEADERS, free_port


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with http_server(tmp_path_factory.mktemp("http")) as running:
        yield running


async def _structured(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _search_get_confirmed_update(client: Client) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert {"search_referrals", "get_referral", "update_field"} <= tools

    found = await _structured(
        client, "search_referrals", {"filters": {"status": ["Active"], "substatus": ["Accepted"]}, "limit": 1}
    )
    assert found["total"] >= 1 and len(found["rows"]) == 1
    referral_id = found["rows"][0]["id"]

    got = await _structured(client, "get_referral", {"referral_id": referral_id})
    assert got["id"] == referral_id and got["etag"]

    args = {"referral_id": referral_id, "changes": [{"field": "notes", "value": "Checked end to end"}]}
    first = await _structured(client, "update_field", args)
    assert first["status"] == "confirmation_required", first
    assert first["confirm_token"] and first["preview"]["changes"][0]["after"] == "«Checked end to end»"

    done = await _structured(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert done["status"] == "applied", done
    assert done["change_id"] >= 1

    after = await _structured(client, "get_referral", {"referral_id": referral_id, "sections": ["details"]})
    assert after["etag"] != got["etag"]
    assert "Checked end to end" in str(after["referral"])


@pytest.mark.anyio
async def test_stdio_subprocess_search_get_and_confirmed_update(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "pcref_mcp"], env=server_env(tmp_path))
    async with Client(params, read_timeout_seconds=60) as client:
        await _search_get_confirmed_update(client)
    assert (tmp_path / "sandbox.db").exists() and (tmp_path / "journal.sqlite3").exists()


@pytest.mark.anyio
async def test_http_socket_search_get_and_confirmed_update(http: Running) -> None:
    async with Client(http.url, read_timeout_seconds=60) as client:
        await _search_get_confirmed_update(client)


def test_http_refuses_a_foreign_host_header(http: Running) -> None:
    port = http.url.split(":")[2].split("/")[0]
    ok = httpx.post(http.url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
    assert ok.status_code == 200, ok.text
    bad = httpx.post(
        http.url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": f"evil.example:{port}"}, timeout=10
    )
    assert bad.status_code == 421, bad.text


def test_http_refuses_a_foreign_origin(http: Running) -> None:
    bad = httpx.post(
        http.url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.example"}, timeout=10
    )
    assert bad.status_code == 403, bad.text
    local = http.url.rsplit("/", 1)[0]
    ok = httpx.post(http.url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": local}, timeout=10)
    assert ok.status_code == 200, ok.text


def test_binding_beyond_loopback_without_a_token_is_refused_at_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PCREF), "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=process_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Refusing to listen on 0.0.0.0" in proc.stderr
    assert "PCREF_HTTP_BEARER_TOKEN" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.anyio
async def test_bearer_token_is_required_when_set(tmp_path: Path) -> None:
    secret = "e2e-bearer-0123456789abcdef"
    env = process_env(tmp_path, PCREF_HTTP_BEARER_TOKEN=secret)
    with http_server(tmp_path, env=env) as running:
        missing = httpx.post(running.url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.post(
            running.url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}, timeout=10
        )
        assert wrong.status_code == 401

        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=60) as http_client,
            Client(
                streamable_http_client(running.url, http_client=http_client), read_timeout_seconds=60
            ) as client,
        ):
            tools = (await client.list_tools()).tools
            assert "search_referrals" in {t.name for t in tools}
            found = await _structured(client, "search_referrals", {"limit": 1})
            assert len(found["rows"]) == 1
    assert secret not in running.stderr and secret not in running.stdout


def test_bound_beyond_loopback_with_a_token_it_serves_its_own_names(tmp_path: Path) -> None:
    """`pcref-mcp serve --http --host 0.0.0.0` with a bearer token: a client of 127.0.0.1 or
    localhost is served (both got 421 while only the bind address was allowed); a foreign Host is not."""
    secret = "e2e-bearer-beyond-loopback-0123456789"
    port = free_port()
    argv = [str(PCREF), "serve", "--http", "--host", "0.0.0.0", "--port", str(port)]
    env = process_env(tmp_path, PCREF_HTTP_BEARER_TOKEN=secret)
    with http_server(tmp_path, argv, port=port, env=env) as running:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {secret}"}
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            ok = httpx.post(running.url, json=INITIALIZE, headers={**headers, "Host": host}, timeout=10)
            assert ok.status_code == 200, (host, ok.text)
        foreign = httpx.post(
            running.url, json=INITIALIZE, headers={**headers, "Host": "evil.example"}, timeout=10
        )
        assert foreign.status_code == 421
    assert secret not in running.stderr
