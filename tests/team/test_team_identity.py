"""Every request in team mode runs as the person whose token came with it, in both protocol eras,
and reaches Partner Center through that person's own on-behalf-of token and rate limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pcref_mcp import identity
from pcref_mcp.config import Settings
from pcref_mcp.team.app import plan_for, team_server
from pcref_mcp.team.standin_idp import USERS, RunningIdp
from tests.serving import INITIALIZE, MCP_HEADERS, free_port, tls
from tests.team.conftest import serve_team

MODES = ["legacy", "auto"]  # 2025-11-25 sessions and sessionless 2026-07-28 requests


def whoami() -> dict[str, Any]:
    """Probe tool: who the layers below see."""
    me = identity.current()
    return {"id": me.id, "name": me.name, "tenant": me.tenant}


def with_probe(settings: Settings, port: int) -> Any:
    server = team_server(settings, plan_for(settings, host="127.0.0.1", port=port))
    server.add_tool(whoami, name="whoami_probe", structured_output=True)
    return server


@asynccontextmanager
async def connect(url: str, token: str, mode: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:  # type: ignore[arg-type]
        yield client


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_each_call_runs_as_the_person_who_sent_it(
    settings: Settings, idp: RunningIdp, mode: str
) -> None:
    port = free_port()
    with serve_team(settings, server=with_probe(settings, port), port=port) as team:
        for login in ("ada", "bob"):
            user = USERS[login]
            async with connect(team.mcp, idp.idp.access_token(user), mode) as client:
                result = await client.call_tool("whoami_probe", {})
                assert result.structured_content == {"id": user.oid, "name": user.upn, "tenant": user.tenant}
    assert identity.current() is identity.LOCAL  # nothing leaks into the test's own context


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_partner_center_is_called_on_behalf_of_each_person(
    settings: Settings, idp: RunningIdp, mode: str
) -> None:
    with serve_team(settings) as team:
        before = idp.idp.grants.get("urn:ietf:params:oauth:grant-type:jwt-bearer", 0)
        for login in ("ada", "bob"):
            async with connect(team.mcp, idp.idp.access_token(USERS[login]), mode) as client:
                result = await client.call_tool("search_referrals", {"limit": 2})
                assert not result.is_error, result.content
                again = await client.call_tool("search_referrals", {"limit": 1})
                assert not again.is_error
        after = idp.idp.grants.get("urn:ietf:params:oauth:grant-type:jwt-bearer", 0)
        runtime = team.runtime
        ada, bob = runtime.limiter_of(USERS["ada"].oid), runtime.limiter_of(USERS["bob"].oid)
    assert after - before == 2  # one OBO grant per person; the second call is served from their cache
    assert ada is not None and bob is not None and ada is not bob  # a rate limiter each
    assert runtime.limiter_of(USERS["ada"].oid) is None  # shut down: every person's client closed


@pytest.mark.anyio
async def test_a_session_cannot_be_taken_over_with_another_persons_token(
    settings: Settings, idp: RunningIdp
) -> None:
    """The SDK binds a legacy session to the (client, issuer, subject) that opened it; the verifier
    supplies the person's object id as the subject, so bob cannot ride ada's session."""
    with serve_team(settings) as team:
        headers = MCP_HEADERS
        async with httpx2.AsyncClient(timeout=20) as http:
            opened = await http.post(
                team.mcp,
                json=INITIALIZE,
                headers={**headers, "Authorization": f"Bearer {idp.idp.access_token(USERS['ada'])}"},
            )
            session = opened.headers["mcp-session-id"]
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            hijack = await http.post(
                team.mcp,
                json=call,
                headers={
                    **headers,
                    "Authorization": f"Bearer {idp.idp.access_token(USERS['bob'])}",
                    "Mcp-Session-Id": session,
                    "Mcp-Protocol-Version": "2025-11-25",
                },
            )
    assert hijack.status_code == 404


def legacy_call(url: str, token: str, method: str, params: dict[str, Any]) -> Any:
    """initialize, then one request in that session; returns the raw HTTP response."""
    import httpx

    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
        opened = http.post(url, json=INITIALIZE, headers=headers)
        assert opened.status_code == 200, opened.text
        headers = {
            **headers,
            "Mcp-Session-Id": opened.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        }
        http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        return http.post(
            url, json={"jsonrpc": "2.0", "id": 2, "method": method, "params": params}, headers=headers
        )


@pytest.mark.anyio
async def test_conditional_access_comes_back_as_a_401_claims_challenge(
    settings: Settings, idp: RunningIdp
) -> None:
    """mia's policy demands MFA for Partner Center: the call is answered 401 insufficient_claims with
    the claims Entra asked for (base64), so her client signs her in again; nothing reaches the tool."""
    import base64

    from pcref_mcp.team.standin_idp import MFA_CLAIMS

    with serve_team(settings) as team:
        call = {"name": "search_referrals", "arguments": {"limit": 1}}
        refused = legacy_call(team.mcp, idp.idp.access_token(USERS["mia"]), "tools/call", call)
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert 'error="insufficient_claims"' in challenge
        claims = challenge.split('claims="')[1].split('"')[0]
        assert base64.b64decode(claims).decode() == MFA_CLAIMS
        assert f'resource_metadata="{team.url}/.well-known/oauth-protected-resource/mcp"' in challenge
        listed = legacy_call(team.mcp, idp.idp.access_token(USERS["mia"]), "tools/list", {})
        assert listed.status_code == 200  # only what reaches Partner Center is held back
        async with connect(team.mcp, idp.idp.access_token(USERS["mia"], mfa=True), "auto") as client:
            ok = await client.call_tool("search_referrals", {"limit": 1})
        assert not ok.is_error


def test_a_replica_reaches_the_standalone_sandbox_its_team_shares(tmp_path: Any, idp: RunningIdp) -> None:
    """PCREF_BASE_URL naming a standalone sandbox (a team deployment's one backend): each person's
    client calls it over HTTP, as the single-user server does, and no sandbox is made in-process."""
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.team.serve import stand_in_settings
    from pcref_mcp.team.standin_idp import serve_in_thread
    from tests.team.conftest import base_settings

    shared, seen = create_app(SandboxConfig(db_path=None, seed_size=5)), []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await shared(scope, receive, send)

    with serve_in_thread(counting, name="standalone sandbox") as url:
        base = base_settings(tmp_path, base_url=f"{url}/v1.0/engagements/")
        with serve_team(stand_in_settings(base, idp.url, idp.cert)) as team:
            token = idp.idp.access_token(USERS["ada"])
            listed = legacy_call(
                team.mcp, token, "tools/call", {"name": "search_referrals", "arguments": {"limit": 2}}
            )
            assert listed.status_code == 200 and '"rows"' in listed.text, listed.text[:300]
            assert team.runtime.sandbox_app is None
    assert any(path.startswith("/v1.0/engagements/referrals") for path in seen), seen
