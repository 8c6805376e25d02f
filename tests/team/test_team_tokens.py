"""Team mode refuses every token it must refuse, over a real socket, with the status and header the
MCP authorization spec asks for: 401 + ``WWW-Authenticate: Bearer … resource_metadata=…`` for a bad
token, 403 + ``insufficient_scope`` naming the scope when the scope is missing."""

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
from tests.serving import INITIALIZE, MCP_HEADERS, free_port
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
    with httpx.Client(trust_env=False, timeout=20) as http:
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


def test_no_token_gets_the_challenge_that_starts_discovery(team: ServedTeam) -> None:
    assert_refused(post(team, None), team)


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
    with httpx.Client(trust_env=False) as http:
        prm = http.get(f"{team.url}/.well-known/oauth-protected-resource/mcp").json()
        asm = http.get(f"{team.url}/.well-known/oauth-authorization-server").json()
    assert prm["resource"] == team.mcp
    assert [s.rstrip("/") for s in prm["authorization_servers"]] == [team.url]
    assert prm["scopes_supported"] == [f"api://{API_CLIENT_ID}/access_as_user"]
    assert asm["registration_endpoint"] == f"{team.url}/register"
    assert asm["code_challenge_methods_supported"] == ["S256"]


def test_without_the_proxy_the_metadata_names_entra(settings: Settings, idp: RunningIdp) -> None:
    direct = settings.model_copy(update={"team_proxy": False})
    with serve_team(direct) as served, httpx.Client(trust_env=False) as http:
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
        server = team_server(settings, plan, verifier=verifier_for(settings, plan, refetch_interval=0))
        with serve_team(settings, server=server, port=port) as served:
            old = own.idp.access_token(ADA)
            assert post(served, old).status_code == 200
            own.idp.rotate_key()  # new signing key, old one still published
            assert post(served, own.idp.access_token(ADA)).status_code == 200
            assert post(served, old).status_code == 200
            own.idp.rotate_key(drop_old=True)  # the earlier keys are withdrawn
            assert post(served, own.idp.access_token(ADA)).status_code == 200
            assert_refused(post(served, old), served)
