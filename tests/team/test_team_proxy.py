"""Proxy mode: pcref-mcp is the authorization server clients register with and brokers to Entra
(here the stand-in). PKCE end to end, one-time codes, rotating opaque refresh handles, revocation,
redirect URIs checked; the token a client holds is Entra's token for this server, never Partner
Center's, and the Entra refresh token never leaves the server."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team.standin_idp import API_CLIENT_ID, PARTNER_CENTER, USERS, RunningIdp
from tests.serving import INITIALIZE, MCP_HEADERS
from tests.team.conftest import ServedTeam, serve_team

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
def team(settings: Settings) -> Iterator[ServedTeam]:
    with serve_team(settings) as served:
        yield served


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Dance:
    """A client and its browser, step by step."""

    def __init__(self, team: ServedTeam, idp: RunningIdp) -> None:
        self.team, self.idp = team, idp
        self.http = httpx.Client(
            trust_env=False, timeout=20, verify=ssl.create_default_context(cafile=str(idp.cert))
        )
        self.scope = f"api://{API_CLIENT_ID}/access_as_user"
        self.on_consent: str | None = "approve"  # what the person presses if asked after sign-in

    def register(self, **extra: Any) -> httpx.Response:
        body = {
            "client_name": "test client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **extra,
        }
        return self.http.post(f"{self.team.url}/register", json=body)

    def authorize(
        self,
        client_id: str,
        challenge: str,
        *,
        redirect: str = REDIRECT,
        state: str = "s1",
        decision: str | None = "approve",
    ) -> httpx.Response:
        """/authorize; unless ``decision`` is None, on through our consent page (the person choosing
        ``decision`` there if it asks): the answer that sends the browser to the identity provider."""
        answer = self.raw_authorize(client_id, challenge, redirect=redirect, state=state)
        if decision is None or "/oauth/consent?" not in answer.headers.get("location", ""):
            return answer
        page = self.http.get(answer.headers["location"])
        if page.status_code != 200:
            return page  # known person who approved before: straight on (303)
        return self.decide(page, decision)

    def decide(self, page: httpx.Response, decision: str, **override: str) -> httpx.Response:
        """Press ``decision`` on a consent page (its own hidden fields, unless overridden)."""
        assert page.status_code == 200 and 'name="decision"' in page.text, page.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        fields = {k: html.unescape(v) for k, v in fields.items()} | override
        return self.http.post(f"{self.team.url}/oauth/consent", data={**fields, "decision": decision})

    def raw_authorize(
        self, client_id: str, challenge: str, *, redirect: str = REDIRECT, state: str = "s1"
    ) -> httpx.Response:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": self.scope,
            "resource": self.team.mcp,
        }
        return self.http.get(f"{self.team.url}/authorize", params=params)

    def sign_in(self, at_idp: str, login: str, *, via: ServedTeam | None = None) -> dict[str, str]:
        """The browser at the stand-in picks ``login``; back through /oauth/callback to the client
        (``via``: on that replica, whatever the public URL names)."""
        page = self.http.get(f"{at_idp}&login={login}")  # form_post: an auto-submitting form
        assert page.status_code == 200, page.text
        form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
        assert form, page.text
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
        assert "code" in fields and urlparse(at_idp).query  # the code is in the body, not the URL
        action = html.unescape(form.group(1))
        if via is not None:
            action = via.url + urlparse(action).path
        back = self.http.post(action, data=fields)
        assert back.status_code == 303, back.text
        location = back.headers["location"]
        if location.startswith("/oauth/consent?signed="):  # the consent step, now with the person known
            back = self.http.get((via or self.team).url + location)
            if back.status_code == 200 and self.on_consent is not None:
                back = self.decide(back, self.on_consent)
            assert back.status_code == 303, back.text
            location = back.headers["location"]
        assert location.startswith(REDIRECT), location
        return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}

    def token(self, **form: str) -> httpx.Response:
        return self.http.post(f"{self.team.url}/token", data=form)

    def full(self, login: str = "ada") -> tuple[str, dict[str, Any]]:
        client_id = self.register().json()["client_id"]
        verifier, challenge = pkce()
        at_idp = self.authorize(client_id, challenge).headers["location"]
        back = self.sign_in(at_idp, login)
        tokens = self.redeem(client_id, back["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        return client_id, tokens.json()

    def redeem(self, client_id: str, code: str, verifier: str) -> httpx.Response:
        """The client exchanges the code it got back at REDIRECT, proving PKCE with ``verifier``."""
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            client_id=client_id,
            code_verifier=verifier,
        )

    def mcp(self, access_token: str) -> httpx.Response:
        return self.http.post(
            self.team.mcp, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
        )


@pytest.fixture
def dance(team: ServedTeam, idp: RunningIdp) -> Iterator[Dance]:
    d = Dance(team, idp)
    with d.http:
        yield d


def test_the_whole_dance_gives_a_token_for_this_server_not_for_partner_center(dance: Dance) -> None:
    _, tokens = dance.full("ada")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == API_CLIENT_ID and claims["aud"] != PARTNER_CENTER
    assert claims["oid"] == USERS["ada"].oid
    assert tokens["refresh_token"].count(".") != 2  # an opaque handle, not Entra's refresh token
    assert tokens["scope"] == dance.scope
    assert dance.mcp(tokens["access_token"]).status_code == 200


def test_the_browser_goes_to_entra_with_the_servers_own_pkce_and_client(dance: Dance) -> None:
    client_id = dance.register().json()["client_id"]
    _, challenge = pkce()
    answer = dance.authorize(client_id, challenge)
    assert answer.status_code == 303
    upstream = parse_qs(urlparse(answer.headers["location"]).query)
    assert upstream["client_id"] == [API_CLIENT_ID]  # the API app, not the MCP client
    assert upstream["code_challenge_method"] == ["S256"]
    assert upstream["code_challenge"] != [challenge]  # a pair of our own, not the client's
    assert upstream["redirect_uri"] == [f"{dance.team.url}/oauth/callback"]


def test_a_code_is_good_once_and_only_with_its_verifier(dance: Dance) -> None:
    client_id = dance.register().json()["client_id"]
    verifier, challenge = pkce()
    back = dance.sign_in(dance.authorize(client_id, challenge, state="xyz").headers["location"], "bob")
    assert back["state"] == "xyz"
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": REDIRECT,
        "client_id": client_id,
    }
    wrong = dance.token(**form, code_verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert dance.token(**form, code_verifier=verifier).status_code == 200
    again = dance.token(**form, code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_rotates_the_handle_and_revocation_ends_it(dance: Dance) -> None:
    client_id, tokens = dance.full("ada")
    first = tokens["refresh_token"]
    renewed = dance.token(grant_type="refresh_token", refresh_token=first, client_id=client_id)
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()
    assert second["refresh_token"] != first
    assert dance.mcp(second["access_token"]).status_code == 200
    spent = dance.token(grant_type="refresh_token", refresh_token=first, client_id=client_id)
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    other_client = dance.register().json()["client_id"]
    stolen = dance.token(
        grant_type="refresh_token", refresh_token=second["refresh_token"], client_id=other_client
    )
    assert stolen.status_code == 400
    revoked = dance.http.post(
        f"{dance.team.url}/revoke",
        data={"token": second["refresh_token"], "client_id": client_id},  # a public client: no secret
    )
    assert revoked.status_code == 200
    after = dance.token(
        grant_type="refresh_token", refresh_token=second["refresh_token"], client_id=client_id
    )
    assert after.status_code == 400


def test_redirect_uris_are_checked_at_registration_and_authorization(dance: Dance) -> None:
    refused = dance.register(redirect_uris=["http://attacker.example/cb"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    client_id = dance.register().json()["client_id"]
    other = dance.authorize(client_id, pkce()[1], redirect="http://127.0.0.1:9/elsewhere")
    assert other.status_code == 400
    unknown = dance.authorize("no-such-client", pkce()[1])
    assert unknown.status_code == 400


def test_a_scope_this_server_does_not_offer_is_refused(dance: Dance) -> None:
    client_id = dance.register().json()["client_id"]
    dance.scope = "https://graph.microsoft.com/Mail.Read"
    answer = dance.raw_authorize(client_id, pkce()[1])
    assert answer.status_code in (302, 400)
    if answer.status_code == 302:
        assert "error=invalid_scope" in answer.headers["location"]


def test_a_stale_or_forged_callback_is_refused(dance: Dance) -> None:
    answer = dance.http.post(f"{dance.team.url}/oauth/callback", data={"state": "forged", "code": "x"})
    assert answer.status_code == 400 and "Start again" in answer.text
    assert (
        answer.headers["x-frame-options"] == "DENY"
        and "default-src 'none'" in answer.headers["content-security-policy"]
    )
    assert dance.http.get(f"{dance.team.url}/oauth/callback", params={"state": "forged"}).status_code == 400


def test_a_claims_challenge_is_carried_into_the_next_sign_in(dance: Dance) -> None:
    """mia signs in without MFA; Partner Center (OBO) wants MFA: 401 insufficient_claims; her client
    signs in again and the server asks Entra for those claims; the new token works."""
    client_id, tokens = dance.full("mia")
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "search_referrals", "arguments": {}},
    }
    headers = {
        **MCP_HEADERS,
        "Authorization": f"Bearer {tokens['access_token']}",
        "Mcp-Protocol-Version": "2026-07-28",
    }
    refused = dance.http.post(dance.team.mcp, json=call, headers=headers)
    assert refused.status_code == 401 and 'error="insufficient_claims"' in refused.headers["www-authenticate"]

    verifier, challenge = pkce()
    at_idp = dance.authorize(client_id, challenge).headers["location"]
    assert "acrs" in parse_qs(urlparse(at_idp).query)["claims"][0]  # the claims go to Entra
    back = dance.sign_in(at_idp, "mia")
    again = dance.redeem(client_id, back["code"], verifier).json()
    assert "mfa" in jwt.decode(again["access_token"], options={"verify_signature": False})["amr"]
    headers["Authorization"] = f"Bearer {again['access_token']}"
    assert dance.http.post(dance.team.mcp, json=call, headers=headers).status_code != 401


def test_a_client_id_metadata_document_works_without_registration(dance: Dance, idp: RunningIdp) -> None:
    asm = dance.http.get(f"{dance.team.url}/.well-known/oauth-authorization-server").json()
    assert asm["client_id_metadata_document_supported"] is True
    client_id = idp.idp.client_document("cimd-client", [REDIRECT])
    verifier, challenge = pkce()
    back = dance.sign_in(dance.authorize(client_id, challenge).headers["location"], "bob")
    tokens = dance.redeem(client_id, back["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert dance.mcp(tokens.json()["access_token"]).status_code == 200


def test_a_metadata_document_that_does_not_name_itself_is_refused(dance: Dance, idp: RunningIdp) -> None:
    url = idp.idp.client_document("impostor", [REDIRECT])
    idp.idp.documents["impostor"]["client_id"] = "https://someone-else.example/client"
    assert dance.authorize(url, pkce()[1]).status_code == 400
    missing = f"{idp.url}/clients/nothing-here"
    assert dance.authorize(missing, pkce()[1]).status_code == 400


def test_a_client_may_ask_for_offline_access_too(dance: Dance) -> None:
    registered = dance.register(scope=f"{dance.scope} offline_access")
    assert registered.status_code == 201, registered.text
    dance.scope = f"{dance.scope} offline_access"
    answer = dance.authorize(registered.json()["client_id"], pkce()[1])
    assert answer.status_code == 303 and answer.headers["location"].startswith(dance.idp.url)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "local", "allowed"),
    [
        ("https://127.0.0.1:8443/client.json", True, True),  # the local try-out fetches locally
        ("https://127.0.0.1:8443/client.json", False, False),  # a public server never does
        ("https://10.1.2.3/client.json", False, False),
        ("https://169.254.169.254/latest/meta-data", False, False),
        ("http://8.8.8.8/client.json", False, False),  # https only
        ("https://user@8.8.8.8/client.json", False, False),
        ("https://8.8.8.8/client.json", False, True),
    ],
)
async def test_metadata_documents_are_fetched_only_from_public_https_addresses(
    settings: Settings, url: str, local: bool, allowed: bool
) -> None:
    from pcref_mcp.team.proxy import EntraProxy

    base = "http://127.0.0.1:8765" if local else "https://pcref.contoso.example"
    proxy = EntraProxy(settings, verifier=None, store=None, base_url=base, scope="api://x/access_as_user")  # type: ignore[arg-type]
    assert await proxy._may_fetch(url) is allowed


@pytest.mark.anyio
async def test_a_client_moving_from_unused_to_in_use_is_found_by_a_replica_reading_meanwhile(
    settings: Settings, tmp_path: Any
) -> None:
    """Another replica issues the client's first token (put CLIENT, take UNUSED) exactly between our
    read of CLIENT and our read of UNUSED: the client is still found, never refused as unknown."""
    from mcp.shared.auth import OAuthClientInformationFull

    from pcref_mcp.store import open_store
    from pcref_mcp.team.proxy import CLIENT, UNUSED, EntraProxy

    store = open_store(f"sqlite:///{tmp_path}/broker.sqlite3", secret=b"k" * 32)
    proxy = EntraProxy(settings, verifier=None, store=store, base_url="http://127.0.0.1:8765", scope="s")  # type: ignore[arg-type]
    client = OAuthClientInformationFull(client_id="c1", redirect_uris=[REDIRECT])  # type: ignore[list-item]
    await proxy.register_client(client)
    reads: list[str] = []
    real_get = proxy._get

    async def interleaved(kind: str, key: str) -> bytes | None:
        found = await real_get(kind, key)
        reads.append(kind)
        if kind == CLIENT and len(reads) == 1:  # the other replica moves it now
            await proxy._put(CLIENT, "c1", client, expires=None, client_id="c1")
            await proxy._take(UNUSED, "c1")
        return found

    proxy._get = interleaved  # type: ignore[method-assign]
    found = await proxy.get_client("c1")
    assert found is not None and found.client_id == "c1"
    assert reads == [CLIENT, UNUSED, CLIENT]
    assert await proxy.get_client("unknown") is None
