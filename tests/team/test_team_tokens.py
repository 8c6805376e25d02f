"""Team mode refuses every token it must refuse, over a real socket, with the status and header the
MCP authorization spec asks for: 401 + ``WWW-Authenticate: Bearer … resource_metadata=…`` (with
``error="invalid_token"`` only when a token was presented, RFC 6750 §3.1) for a bad or missing token,
403 + ``insufficient_scope`` naming the scope when the scope is missing. A new signing key is accepted
at once; forged key ids cannot make the server hammer the issuer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pcref_mcp.config import Settings
from pcref_mcp.team.app import plan_for, team_server, verifier_for
from pcref_mcp.team.standin_idp import API_CLIENT_ID, USERS, RunningIdp, StandInIdp
from tests.serving import INITIALIZE, MCP_HEADERS, free_port, tls
from tests.team.conftest import ServedTeam, serve_team

ADA = USERS["ada"]


@pytest.fixture(scope="module")
def team(idp: RunningIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTeam]:
    from pcref_mcp.team.serve import stand_in_settings
    from tests.team.conftest import base_settings

    settings = stand_in_settings(base_settings(tmp_path_factory.mktemp("team")), idp.url, idp.cert)
    with serve_team(settings) as served:
        yield served


def post(team: ServedTeam, token: str | None, body: Any = INITIALIZE) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
        return http.post(team.mcp, json=body, headers=headers)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))


def assert_refused(response: httpx.Response, team: ServedTeam) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{team.url}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_a_good_token_is_served(team: ServedTeam, idp: RunningIdp) -> None:
    response = post(team, idp.idp.access_token(ADA))
    assert response.status_code == 200, response.text
    assert "pcref-mcp" in response.text


@pytest.mark.parametrize("authorization", [None, "Basic YWRhOnNlY3JldA==", "bearer"])
def test_no_credentials_get_the_challenge_that_starts_discovery_without_an_error_code(
    team: ServedTeam, authorization: str | None
) -> None:
    headers = dict(MCP_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
        response = http.post(team.mcp, json=INITIALIZE, headers=headers)
        streams = http.get(team.mcp, headers=headers)
    for answer in (response, streams):
        assert answer.status_code == 401, answer.text
        challenge = answer.headers["www-authenticate"]
        # RFC 6750 §3.1: no error code when the request carried no credentials at all
        assert challenge == f'Bearer resource_metadata="{team.url}/.well-known/oauth-protected-resource/mcp"'
        assert "error" not in answer.json()


def forged_with_other_key(idp: StandInIdp) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return idp.sign(claims_of(idp.access_token(ADA)), key=key, kid="not-published")


def same_kid_other_key(idp: StandInIdp) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return idp.sign(claims_of(idp.access_token(ADA)), key=key)  # the current kid, the wrong key


def alg_none(idp: StandInIdp) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": idp.jwks()["keys"][-1]["kid"]}
    return f"{b64(header)}.{b64(claims_of(idp.access_token(ADA)))}."


def hs256_with_public_key(idp: StandInIdp) -> str:
    import hmac
    from hashlib import sha256

    header = {"alg": "HS256", "typ": "JWT", "kid": idp.jwks()["keys"][-1]["kid"]}
    signing_input = f"{b64(header)}.{b64(claims_of(idp.access_token(ADA)))}"
    secret = json.dumps(idp.jwks()["keys"][-1]).encode()
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input.encode(), sha256).digest())
    return f"{signing_input}.{signature.rstrip(b'=').decode()}"


BAD_TOKENS = {
    "wrong audience": lambda idp: idp.access_token(ADA, audience="api://some-other-app"),
    "wrong issuer": lambda idp: idp.access_token(ADA, iss="https://login.microsoftonline.com/evil/v2.0"),
    "expired": lambda idp: idp.access_token(ADA, lifetime=-600),
    "not yet valid": lambda idp: idp.access_token(ADA, nbf=int(idp.clock()) + 3600),
    "wrong tenant": lambda idp: idp.access_token(USERS["eve"]),
    "alg none": alg_none,
    "hs256 with the public key": hs256_with_public_key,
    "unpublished key": forged_with_other_key,
    "published kid, other key": same_kid_other_key,
    "no object id": lambda idp: idp.access_token(ADA, oid=None),
    "not a jwt": lambda idp: "abc.def",
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_bad_tokens_are_refused_with_401_and_the_resource_metadata(
    name: str, team: ServedTeam, idp: RunningIdp
) -> None:
    assert_refused(post(team, BAD_TOKENS[name](idp.idp)), team)


def test_a_missing_scope_is_403_naming_the_scope(team: ServedTeam, idp: RunningIdp) -> None:
    response = post(team, idp.idp.access_token(ADA, scopes="User.Read"))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f"api://{API_CLIENT_ID}/access_as_user" in challenge
    assert "resource_metadata=" in challenge


def test_protected_resource_metadata_names_this_server_as_authorization_server(team: ServedTeam) -> None:
    with httpx.Client(trust_env=False, verify=tls()) as http:
        prm = http.get(f"{team.url}/.well-known/oauth-protected-resource/mcp").json()
        asm = http.get(f"{team.url}/.well-known/oauth-authorization-server").json()
    assert prm["resource"] == team.mcp
    assert [s.rstrip("/") for s in prm["authorization_servers"]] == [team.url]
    assert prm["scopes_supported"] == [f"api://{API_CLIENT_ID}/access_as_user"]
    assert asm["registration_endpoint"] == f"{team.url}/register"
    assert asm["code_challenge_methods_supported"] == ["S256"]


def test_without_the_proxy_the_metadata_names_entra(settings: Settings, idp: RunningIdp) -> None:
    direct = settings.model_copy(update={"team_proxy": False})
    with serve_team(direct) as served, httpx.Client(trust_env=False, verify=tls()) as http:
        prm = http.get(f"{served.url}/.well-known/oauth-protected-resource/mcp").json()
        assert http.get(f"{served.url}/.well-known/oauth-authorization-server").status_code == 404
        ok = post(served, idp.idp.access_token(ADA))
    assert prm["authorization_servers"] == [f"{idp.url}/{settings.tenant_id}/v2.0"]
    assert ok.status_code == 200


def test_key_rollover_is_followed_and_a_dropped_key_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from pcref_mcp.team.serve import stand_in_settings
    from tests.team.conftest import base_settings

    with RunningIdp(StandInIdp(), tmp_path_factory.mktemp("rollover")) as own:
        settings = stand_in_settings(base_settings(tmp_path_factory.mktemp("t")), own.url, own.cert)
        port = free_port()
        plan = plan_for(settings, host="127.0.0.1", port=port)
        server = team_server(settings, plan, verifier=verifier_for(settings, plan))
        with serve_team(settings, server=server, port=port) as served:
            old = own.idp.access_token(ADA)
            assert post(served, old).status_code == 200
            own.idp.rotate_key()  # new signing key, old one still published
            # accepted at once: the unknown key id is looked up right away, no quiet period to wait out
            assert post(served, own.idp.access_token(ADA)).status_code == 200
            assert post(served, old).status_code == 200
            own.idp.rotate_key(drop_old=True)  # the earlier keys are withdrawn
            assert post(served, own.idp.access_token(ADA)).status_code == 200
            assert_refused(post(served, old), served)


@pytest.mark.anyio
async def test_a_storm_of_forged_key_ids_makes_a_bounded_number_of_fetches(
    idp: RunningIdp, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """1,000 tokens naming 1,000 unpublished key ids, all at once: each is refused, and the issuer is
    asked at most the per-minute budget (6) — yet a genuinely new key right after a quiet minute is
    accepted at once."""
    import anyio

    from pcref_mcp.team.serve import stand_in_settings
    from tests.team.conftest import base_settings

    now = [1000.0]
    settings = stand_in_settings(base_settings(tmp_path_factory.mktemp("storm")), idp.url, idp.cert)
    plan = plan_for(settings, host="127.0.0.1", port=free_port())
    verifier = verifier_for(settings, plan, clock=lambda: now[0])
    assert await verifier.verify_token(idp.idp.access_token(ADA)) is not None
    claims = claims_of(idp.idp.access_token(ADA))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = [idp.idp.sign(claims, key=key, kid=f"forged-{i}") for i in range(1000)]
    refused: list[str] = []

    async def check(token: str) -> None:
        if await verifier.verify_token(token) is None:
            refused.append(token)

    async with anyio.create_task_group() as tasks:
        for token in forged:
            tasks.start_soon(check, token)
    assert len(refused) == 1000
    assert verifier.keys.fetches <= 6
    now[0] += 61  # a minute later the budget is back: a rolled key is fetched and accepted at once
    idp.idp.rotate_key()
    assert await verifier.verify_token(idp.idp.access_token(ADA)) is not None


def test_each_request_is_verified_once(team: ServedTeam, idp: RunningIdp) -> None:
    """The gate checks the token from the headers; the claims gate and the SDK's bearer middleware,
    asking again for the same request, get the remembered answer instead of a second check."""
    from tests.team.test_team_identity import legacy_call

    verifier = team.server.team.verifier
    checked: list[str] = []
    real = verifier.claims_of

    async def counting(token: str) -> Any:
        checked.append(token)
        return await real(token)

    verifier.claims_of = counting
    try:  # initialize, notifications/initialized, tools/call (which the claims gate inspects too)
        call = {"name": "search_referrals", "arguments": {"limit": 1}}
        response = legacy_call(team.mcp, idp.idp.access_token(ADA), "tools/call", call)
    finally:
        del verifier.claims_of
    assert response.status_code == 200, response.text
    assert len(checked) == 3
