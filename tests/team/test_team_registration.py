"""Registration bounded, and the proxy's smaller fixes of issue 19: body and field limits, a rate per
source address, unused registrations short-lived and capped by evicting the oldest (a flood never
locks out the next real client), the metadata advertising what registration hands out, public clients
revoking, and a total deadline on client ID metadata documents."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team import limits
from pcref_mcp.team import proxy as proxy_module
from pcref_mcp.team.limits import MAX_REGISTRATION_BYTES, RegistrationRate
from pcref_mcp.team.proxy import UNUSED, UNUSED_CLIENT_TTL
from pcref_mcp.team.standin_idp import RunningIdp, serve_in_thread
from tests.serving import free_port
from tests.team.conftest import ServedTeam, serve_team
from tests.team.test_team_proxy import REDIRECT, Dance, pkce


@pytest.fixture
def team(settings: Settings) -> Iterator[ServedTeam]:
    with serve_team(settings) as served:
        yield served


@pytest.fixture
def dance(team: ServedTeam, idp: RunningIdp) -> Iterator[Dance]:
    d = Dance(team, idp)
    with d.http:
        yield d


def unused_count(team: ServedTeam) -> int:
    return anyio.run(lambda: team.runtime.store.broker_count(UNUSED, time.time()))


def test_an_oversized_registration_is_refused_before_it_is_read(dance: Dance) -> None:
    huge = {
        "client_name": "x",
        "redirect_uris": [f"https://a.example/{i:05d}/{'p' * 100}" for i in range(20_000)],
        "token_endpoint_auth_method": "none",
    }
    body = json.dumps(huge).encode()
    assert len(body) > 2_500_000
    declared = dance.http.post(
        f"{dance.team.url}/register", content=body, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and "at most 5 redirect URIs" in declared.json()["error_description"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(body), 65_536):
            yield body[i : i + 65_536]

    streamed = dance.http.post(
        f"{dance.team.url}/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert unused_count(dance.team) == 0


def test_field_limits_say_what_to_change(dance: Dance) -> None:
    many = dance.register(redirect_uris=[f"http://127.0.0.1:9/cb{i}" for i in range(6)])
    assert many.status_code == 400 and many.json()["error"] == "invalid_redirect_uri"
    assert "At most 5 redirect URIs" in many.json()["error_description"]
    long_uri = dance.register(redirect_uris=["https://a.example/" + "x" * 2_000])
    assert long_uri.status_code == 400 and "2000 characters" in long_uri.json()["error_description"]
    long_name = dance.register(client_name="n" * 201)
    assert long_name.status_code == 400 and "client_name" in long_name.json()["error_description"]
    contacts = dance.register(contacts=[f"a{i}@example.com" for i in range(11)])
    assert contacts.status_code == 400 and "contacts" in contacts.json()["error_description"]
    fits = dance.register(
        client_name="n" * 200, redirect_uris=[f"https://a.example/{i}/" + "x" * 1_900 for i in range(5)]
    )
    assert fits.status_code == 201, fits.text  # the largest registration allowed is under the size limit
    assert len(fits.content) < MAX_REGISTRATION_BYTES


def test_a_flood_from_one_address_is_slowed_and_others_are_not(
    settings: Settings, idp: RunningIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RATE_PER_MINUTE", 0.0001)  # no refill while the test runs, however slow
    with serve_team(settings) as team:
        dance = Dance(team, idp)
        with dance.http:
            _flood_from_one_address(dance)


def _flood_from_one_address(dance: Dance) -> None:
    answers = [dance.register(**{}) for _ in range(limits.RATE_BURST)]
    assert all(a.status_code == 201 for a in answers)
    slowed = dance.register()
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) >= 1
    assert "try again in" in slowed.json()["error_description"]
    # another source (uvicorn takes X-Forwarded-For from a trusted proxy, as behind nginx)
    other = dance.http.post(
        f"{dance.team.url}/register",
        json={"client_name": "real", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert other.status_code == 201, other.text


def test_the_rate_refills_over_time() -> None:
    now = [0.0]
    rate = RegistrationRate(2, 6.0, clock=lambda: now[0])  # 2 at once, then one every 10 s
    assert rate.take("a") == 0 and rate.take("a") == 0
    assert rate.take("a") == pytest.approx(10.0)
    assert rate.take("b") == 0
    now[0] = 10.0
    assert rate.take("a") == 0 and rate.take("a") > 0


def test_a_registration_flood_does_not_lock_out_the_next_real_client(
    settings: Settings, idp: RunningIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RATE_BURST", 100_000)  # many sources, as a botnet would be
    monkeypatch.setattr(proxy_module, "MAX_UNUSED_CLIENTS", 50)
    with serve_team(settings) as team:
        dance = Dance(team, idp)
        with dance.http:
            early = dance.full("ada")[0]  # a client in use before the flood
            for i in range(200):
                junk = dance.register(client_name=f"junk {i}", redirect_uris=[f"https://junk{i}.example/cb"])
                assert junk.status_code == 201, junk.text
            assert unused_count(team) <= 50
            _, tokens = dance.full("bob")  # registers after the flood and signs in
            assert dance.mcp(tokens["access_token"]).status_code == 200
            again = dance.raw_authorize(early, pkce()[1])  # a used client is not evicted with the junk
            assert again.status_code == 302, again.text
            assert unused_count(team) <= 50


def test_an_unused_registration_expires_in_hours_a_used_one_lives_on(dance: Dance) -> None:
    unused = dance.register().json()["client_id"]
    used, _ = dance.full("ada")
    proxy = dance.team.server.team.proxy
    later = time.time() + UNUSED_CLIENT_TTL + 60
    proxy._clock = lambda: later
    assert dance.raw_authorize(unused, pkce()[1]).status_code == 400
    assert dance.raw_authorize(used, pkce()[1]).status_code == 302


def test_the_metadata_lists_the_authentication_methods_registration_hands_out(dance: Dance) -> None:
    meta = dance.http.get(f"{dance.team.url}/.well-known/oauth-authorization-server").json()
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_post",
        "client_secret_basic",
    }
    assert set(meta["revocation_endpoint_auth_methods_supported"]) == set(
        meta["token_endpoint_auth_methods_supported"]
    )
    public = dance.register(token_endpoint_auth_method="none").json()
    assert public["token_endpoint_auth_method"] == "none" and not public.get("client_secret")
    secret = dance.register(token_endpoint_auth_method="client_secret_basic").json()
    assert secret["client_secret"]
    refused = dance.register(token_endpoint_auth_method="private_key_jwt")
    assert refused.status_code == 400  # not advertised: not accepted


def test_a_public_client_revokes_its_refresh_handle(dance: Dance) -> None:
    client_id, tokens = dance.full("ada")
    revoked = dance.http.post(
        f"{dance.team.url}/revoke", data={"token": tokens["refresh_token"], "client_id": client_id}
    )  # no client_secret key at all, as RFC 7009 allows a public client
    assert revoked.status_code == 200, revoked.text
    after = dance.token(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=client_id
    )
    assert after.status_code == 400
    # a confidential client must still prove its secret
    secret = dance.register(token_endpoint_auth_method="client_secret_post").json()
    unproven = dance.http.post(
        f"{dance.team.url}/revoke", data={"token": "x", "client_id": secret["client_id"]}
    )
    assert unproven.status_code == 401
    huge = dance.http.post(f"{dance.team.url}/revoke", data={"token": "x" * 20_000, "client_id": client_id})
    assert huge.status_code == 413


def test_a_metadata_document_server_that_drips_does_not_hold_authorize(
    dance: Dance, idp: RunningIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def drip() -> AsyncIterator[bytes]:
        yield b'{"client_id": '
        for _ in range(600):  # a byte now and then: each read is well within the per-read timeout
            await anyio.sleep(0.2)
            yield b" "

    async def document(request: Any) -> StreamingResponse:
        return StreamingResponse(drip(), media_type="application/json")

    monkeypatch.setattr(proxy_module, "DOCUMENT_DEADLINE", 1.0)
    port = free_port()
    key = Path(idp.cert).with_name("standin-idp-key.pem")
    app = Starlette(routes=[Route("/client.json", document)])
    with serve_in_thread(app, port=port, certfile=Path(idp.cert), keyfile=key, name="dripping server"):
        answer = dance.raw_authorize(f"https://127.0.0.1:{port}/client.json", pkce()[1])
    assert answer.status_code == 400  # given up at the deadline (the client's timeout is 20 s)
