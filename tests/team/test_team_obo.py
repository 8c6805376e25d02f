"""On-behalf-of, per person: each person's own msal cache, served silently, refreshed with the OBO
refresh token, never mixed with another person's; the assertion must be the caller's own token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from pcref_mcp.config import Settings
from pcref_mcp.errors import ClaimsChallenge, ConfigError, SignInError
from pcref_mcp.identity import Principal
from pcref_mcp.team.obo import OnBehalfOf
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import PARTNER_CENTER, USERS, RunningIdp, StandInIdp, StandInUser
from tests.team.conftest import base_settings

OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def person(user: StandInUser) -> Principal:
    return Principal(id=user.oid, name=user.upn, tenant=user.tenant)


def signed_in(token: str, user: StandInUser) -> AccessToken:
    return AccessToken(token=token, client_id="c", scopes=[], subject=user.oid, claims={"oid": user.oid})


async def token_for(obo: OnBehalfOf, user: StandInUser, incoming: str) -> str:
    reset = auth_context_var.set(AuthenticatedUser(signed_in(incoming, user)))
    try:
        return await obo.for_person(person(user)).get_token()
    finally:
        auth_context_var.reset(reset)


def claims(token: str) -> dict[str, object]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.mark.anyio
async def test_each_person_gets_their_own_partner_center_token(settings: Settings, idp: RunningIdp) -> None:
    obo = OnBehalfOf(settings)
    ada = await token_for(obo, USERS["ada"], idp.idp.access_token(USERS["ada"]))
    bob = await token_for(obo, USERS["bob"], idp.idp.access_token(USERS["bob"]))
    assert claims(ada)["aud"] == PARTNER_CENTER and claims(ada)["oid"] == USERS["ada"].oid
    assert claims(bob)["oid"] == USERS["bob"].oid
    ada_accounts = obo.for_person(person(USERS["ada"]))._app.get_accounts()
    assert [a["username"] for a in ada_accounts] == [USERS["ada"].upn]  # no one else in her cache


@pytest.mark.anyio
async def test_the_cached_token_is_reused_and_refreshed_when_it_nears_expiry(tmp_path: Path) -> None:
    with RunningIdp(StandInIdp(token_lifetime=120), tmp_path / "idp") as own:
        settings = stand_in_settings(base_settings(tmp_path), own.url, own.cert)
        obo = OnBehalfOf(settings)
        incoming = own.idp.access_token(USERS["ada"], lifetime=3600)
        first = await token_for(obo, USERS["ada"], incoming)
        assert own.idp.grants == {OBO: 1}
        # msal refreshes a token within 5 minutes of expiry: here, with the OBO refresh token
        second = await token_for(obo, USERS["ada"], incoming)
        assert own.idp.grants == {OBO: 1, "refresh_token": 1}
        assert second != first and claims(second)["oid"] == USERS["ada"].oid
        own.idp.token_lifetime = 3600
        await token_for(obo, USERS["ada"], incoming)
        third = await token_for(obo, USERS["ada"], incoming)
        assert own.idp.grants == {OBO: 1, "refresh_token": 2} and claims(third)["aud"] == PARTNER_CENTER


@pytest.mark.anyio
async def test_the_assertion_must_be_the_persons_own(settings: Settings, idp: RunningIdp) -> None:
    obo = OnBehalfOf(settings)
    bobs_token = idp.idp.access_token(USERS["bob"])
    reset = auth_context_var.set(AuthenticatedUser(signed_in(bobs_token, USERS["bob"])))
    try:
        with pytest.raises(SignInError, match="not signed in as the person"):
            await obo.for_person(person(USERS["ada"])).get_token()
    finally:
        auth_context_var.reset(reset)
    with pytest.raises(SignInError):
        await obo.for_person(person(USERS["ada"])).get_token()  # no request token at all


@pytest.mark.anyio
async def test_conditional_access_is_a_claims_challenge(settings: Settings, idp: RunningIdp) -> None:
    obo = OnBehalfOf(settings)
    with pytest.raises(ClaimsChallenge) as raised:
        await token_for(obo, USERS["mia"], idp.idp.access_token(USERS["mia"]))
    assert '"acrs"' in raised.value.claims
    assert "sign in again" in str(raised.value)
    assert await token_for(obo, USERS["mia"], idp.idp.access_token(USERS["mia"], mfa=True))


@pytest.mark.anyio
async def test_a_refused_grant_is_explained_without_secrets(settings: Settings, idp: RunningIdp) -> None:
    wrong = settings.model_copy(update={"client_secret": type(settings.client_secret)("not-the-secret")})
    with pytest.raises(SignInError) as raised:
        await token_for(OnBehalfOf(wrong), USERS["ada"], idp.idp.access_token(USERS["ada"]))
    text = str(raised.value)
    assert "invalid_client" in text and "not-the-secret" not in text and "Trace ID" not in text


def test_team_mode_needs_the_api_apps_credential(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PCREF_TENANT_ID"):
        OnBehalfOf(base_settings(tmp_path))
    with pytest.raises(ConfigError, match="PCREF_CLIENT_SECRET"):
        OnBehalfOf(base_settings(tmp_path, tenant_id="t", client_id="c"))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_replicas_share_each_persons_token_cache_sealed_in_the_store(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Two replicas over one store: the second serves ada from the cache the first obtained (one OBO
    grant in all), and the refresh token is stored sealed, never in clear."""
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.store.sqlite import SqliteStore

    if kind == "sqlite":
        stores = [SqliteStore(tmp_path / "store.sqlite3", secret=b"k" * 32) for _ in range(2)]
    else:
        url = request.getfixturevalue("postgres_url")
        stores = [PostgresStore(url, secret=b"k" * 32) for _ in range(2)]
    with RunningIdp(StandInIdp(), tmp_path / "idp") as own:
        settings = stand_in_settings(base_settings(tmp_path), own.url, own.cert)
        replicas = [OnBehalfOf(settings), OnBehalfOf(settings)]
        for obo, store in zip(replicas, stores, strict=True):
            obo.store = store
        incoming = own.idp.access_token(USERS["ada"], lifetime=3600)
        first = await token_for(replicas[0], USERS["ada"], incoming)
        second = await token_for(replicas[1], USERS["ada"], incoming)
        assert own.idp.grants == {OBO: 1}  # the second replica did not ask Entra again
        assert claims(second)["oid"] == claims(first)["oid"] == USERS["ada"].oid
        sealed = await stores[0]._token_get_sealed(USERS["ada"].oid)
        kept = await stores[1].token_get(USERS["ada"].oid)
        assert sealed is not None and kept is not None and b"RefreshToken" in kept
        secret = next(iter(json.loads(kept)["RefreshToken"].values()))["secret"]
        assert secret.encode() not in sealed and b"RefreshToken" not in sealed
        assert await stores[0].token_get(USERS["bob"].oid) is None  # nobody else's
    for store in stores:
        await store.close()


@pytest.mark.anyio
async def test_a_fresh_token_is_served_in_process_without_the_store_or_msal(tmp_path: Path) -> None:
    """A busy person's calls reuse the Partner Center token until 5 minutes before it expires: no
    store read, no msal call; nearer expiry the store and msal are asked again (and refresh it)."""
    from pcref_mcp.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "store.sqlite3", secret=b"k" * 32)
    reads = 0
    real_get = store.token_get

    async def counted(person_id: str) -> bytes | None:
        nonlocal reads
        reads += 1
        return await real_get(person_id)

    store.token_get = counted  # type: ignore[method-assign]
    with RunningIdp(StandInIdp(token_lifetime=3600), tmp_path / "idp") as own:
        obo = OnBehalfOf(stand_in_settings(base_settings(tmp_path), own.url, own.cert))
        obo.store = store
        incoming = own.idp.access_token(USERS["ada"], lifetime=3600)
        tokens = {await token_for(obo, USERS["ada"], incoming) for _ in range(5)}
        assert len(tokens) == 1 and reads == 1 and own.idp.grants == {OBO: 1}
        tokens_of = obo.for_person(person(USERS["ada"]))
        token, _ = tokens_of._fresh or ("", 0.0)
        tokens_of._fresh = (token, time.time() + 200)  # within the margin: ask again
        await token_for(obo, USERS["ada"], incoming)
        assert reads == 2
    await store.close()
