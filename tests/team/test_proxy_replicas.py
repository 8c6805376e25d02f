"""Proxy mode behind several replicas (issue 14: any replica serves any request). Three team servers
on real sockets share one store (a SQLite file, and PostgreSQL) and one public URL, as behind nginx
without affinity: a client registers on one, authorizes on another, Entra's callback lands on a
third, the code is redeemed on the first. Single-use things are single use across replicas, refresh
rotates everywhere, revocation is seen everywhere, a restarted replica carries on, the Entra refresh
token lies sealed in the store, and a store that does not answer gives ``temporarily_unavailable``."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import httpx
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.store import open_store
from pcref_mcp.team.proxy import CLIENT_TTL, CODE_TTL, PENDING_TTL, REFRESH, REFRESH_TTL, _Refresh
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import USERS, RunningIdp
from tests.serving import MCP_HEADERS, free_port
from tests.team.conftest import ServedTeam, base_settings, serve_team
from tests.team.test_team_proxy import REDIRECT, Dance, pkce

STORE_KEY = "replicas-share-this-store-key-0123456789"


class Replicas:
    """Three team servers over one store; ``restart(i)`` replaces one with a fresh server object."""

    def __init__(self, settings: Settings, ports: list[int]) -> None:
        self.settings, self.ports = settings, ports
        self.teams: list[ServedTeam] = []
        self._running: list[AbstractContextManager[ServedTeam]] = []

    def __getitem__(self, i: int) -> ServedTeam:
        return self.teams[i]

    def start(self) -> None:
        for port in self.ports:
            served = serve_team(self.settings, port=port)
            self.teams.append(served.__enter__())
            self._running.append(served)

    def restart(self, i: int) -> ServedTeam:
        self._running[i].__exit__(None, None, None)
        served = serve_team(self.settings, port=self.ports[i])  # a new process object, the same store
        self.teams[i], self._running[i] = served.__enter__(), served
        return self.teams[i]

    def stop(self) -> None:
        for served in self._running:
            served.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path, idp: RunningIdp) -> Iterator[Replicas]:
    ports = [free_port() for _ in range(3)]
    extra = {"team_public_url": f"http://127.0.0.1:{ports[0]}"}  # one public URL, as behind nginx
    if request.param == "postgresql":
        extra |= {"store_url": request.getfixturevalue("postgres_url"), "store_key": STORE_KEY}
    settings = stand_in_settings(base_settings(tmp_path, **extra), idp.url, idp.cert)
    group = Replicas(settings, ports)
    try:
        group.start()
        yield group
    finally:
        group.stop()


class Across(Dance):
    """One client and its browser; ``on(i)`` sends the next steps to replica ``i``."""

    def __init__(self, replicas: Replicas, idp: RunningIdp) -> None:
        super().__init__(replicas[0], idp)
        self.replicas = replicas

    def on(self, i: int) -> Across:
        self.team = self.replicas[i]
        return self

    def entra_answer(self, at_idp: str, login: str) -> dict[str, str]:
        """What Entra's form_post page would send to /oauth/callback (not sent yet)."""
        page = self.http.get(f"{at_idp}&login={login}")
        assert page.status_code == 200, page.text
        return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))

    def revoke(self, client_id: str, token: str) -> httpx.Response:
        return self.http.post(f"{self.team.url}/revoke", data={"token": token, "client_id": client_id})

    def refresh(self, client_id: str, handle: str) -> httpx.Response:
        return self.token(grant_type="refresh_token", refresh_token=handle, client_id=client_id)

    def signed_in(self, login: str = "ada", client_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """Register on 0 (unless ``client_id`` is registered already), authorize on 1, Entra's
        callback on 2, redeem on 0."""
        client_id = client_id or self.on(0).register().json()["client_id"]
        verifier, challenge = pkce()
        at_idp = self.on(1).authorize(client_id, challenge).headers["location"]
        back = self.sign_in(at_idp, login, via=self.replicas[2])
        tokens = self.on(0).redeem(client_id, back["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        return client_id, tokens.json()


@pytest.fixture
def across(replicas: Replicas, idp: RunningIdp) -> Iterator[Across]:
    a = Across(replicas, idp)
    with a.http:
        yield a


def _at_rest(settings: Settings) -> list[dict[str, Any]]:
    """The broker table as it lies in the store (read by a store object of the test's own)."""

    async def read() -> list[dict[str, Any]]:
        store = open_store(settings.store_location, secret=settings.store_secret)
        await store.start()
        try:
            if store.dialect == "sqlite":
                rows = store._db.execute("SELECT * FROM broker").fetchall()  # type: ignore[attr-defined]
            else:
                rows = await store._run(lambda c: c.fetch("SELECT * FROM broker"))  # type: ignore[attr-defined]
            return [dict(r) for r in rows]
        finally:
            await store.close()

    return anyio.run(read)


def _upstream_of(settings: Settings, handle: str) -> str:
    """The Entra refresh token behind a handle, as the broker opens it."""

    async def read() -> str:
        store = open_store(settings.store_location, secret=settings.store_secret)
        try:
            held = await store.broker_get(REFRESH, handle, time.time())
            assert held is not None
            return _Refresh.model_validate_json(held).upstream
        finally:
            await store.close()

    return anyio.run(read)


def _race(*steps: Callable[[], httpx.Response]) -> list[int]:
    """Run the steps at the same moment on threads of their own; their status codes."""
    barrier, answers = threading.Barrier(len(steps)), [0] * len(steps)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = steps[i]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(steps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


# --- the happy path, spread over the replicas ------------------------------------------------------------


def test_one_sign_in_crosses_every_replica_and_its_code_is_good_once(across: Across) -> None:
    client_id = across.on(0).register().json()["client_id"]
    verifier, challenge = pkce()
    at_idp = across.on(1).authorize(client_id, challenge, state="st-1").headers["location"]
    back = across.sign_in(at_idp, "bob", via=across.replicas[2])
    assert back["state"] == "st-1"
    tokens = across.on(0).redeem(client_id, back["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    again = across.on(1).redeem(client_id, back["code"], verifier)  # another replica: already spent
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    for i in range(3):  # the token works on every replica
        assert across.on(i).mcp(tokens.json()["access_token"]).status_code == 200


def test_refresh_rotates_on_any_replica_and_a_replayed_handle_ends_the_grant_everywhere(
    across: Across,
) -> None:
    client_id, tokens = across.signed_in("ada")
    first = tokens["refresh_token"]
    renewed = across.on(1).refresh(client_id, first)
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()["refresh_token"]
    assert second != first
    third = across.on(2).refresh(client_id, second)  # rotation goes on, on any replica
    assert third.status_code == 200, third.text
    assert across.on(0).mcp(third.json()["access_token"]).status_code == 200
    other_client, elsewhere = across.signed_in("ada")  # the same person with another client: untouched
    # the first (rotated) handle comes back: one of its two holders is a thief; the grant ends
    for i in range(3):
        spent = across.on(i).refresh(client_id, first)
        assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    latest = across.on(0).refresh(client_id, third.json()["refresh_token"])
    assert latest.status_code == 400, latest.text
    assert across.on(1).refresh(other_client, elsewhere["refresh_token"]).status_code == 200


def test_revocation_on_one_replica_is_seen_by_the_others(across: Across) -> None:
    client_id, tokens = across.signed_in("ada")
    assert across.on(2).revoke(client_id, tokens["refresh_token"]).status_code == 200
    for i in range(3):
        assert across.on(i).refresh(client_id, tokens["refresh_token"]).status_code == 400
    # a rotated handle revoked on one replica; the client's other sign-in is untouched
    _, other = across.signed_in("ada", client_id=client_id)
    bob_client, bob = across.signed_in("bob")
    rotated = across.on(1).refresh(bob_client, bob["refresh_token"]).json()["refresh_token"]
    assert across.on(0).revoke(bob_client, rotated).status_code == 200
    assert across.on(2).refresh(bob_client, rotated).status_code == 400
    assert across.on(1).refresh(client_id, other["refresh_token"]).status_code == 200
    # revoking an access token ends every handle of that person with that client (RFC 7009), everywhere
    _, again = across.signed_in("bob", client_id=bob_client)  # bob signed in twice with that client
    other_client, elsewhere = across.signed_in("bob")  # and once with another client
    assert across.on(0).revoke(bob_client, again["access_token"]).status_code == 200
    assert across.on(1).refresh(bob_client, again["refresh_token"]).status_code == 400
    assert across.on(2).refresh(other_client, elsewhere["refresh_token"]).status_code == 200
    ada_client, ada = across.signed_in("ada")
    assert across.on(2).revoke(other_client, ada["access_token"]).status_code == 200  # not its token
    assert across.on(1).refresh(ada_client, ada["refresh_token"]).status_code == 200


def test_a_restarted_replica_still_refreshes_and_knows_its_clients(
    across: Across, replicas: Replicas
) -> None:
    client_id, tokens = across.signed_in("ada")
    replicas.restart(0)  # nothing of the sign-in lived in that process
    replicas.restart(1)
    renewed = across.on(0).refresh(client_id, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    verifier, challenge = pkce()  # the registration survived too
    at_idp = across.on(1).authorize(client_id, challenge).headers["location"]
    back = across.sign_in(at_idp, "ada", via=replicas[1])
    assert across.on(1).redeem(client_id, back["code"], verifier).status_code == 200


# --- single use under a race -----------------------------------------------------------------------------


def test_two_replicas_racing_to_redeem_one_code_give_one_token(across: Across) -> None:
    client_id = across.on(0).register().json()["client_id"]
    verifier, challenge = pkce()
    back = across.sign_in(across.on(1).authorize(client_id, challenge).headers["location"], "ada")
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    urls = [f"{across.replicas[i].url}/token" for i in (0, 1, 2)]
    assert sorted(_race(*(lambda u=u: across.http.post(u, data=form) for u in urls))) == [200, 400, 400]


def test_two_replicas_racing_to_refresh_one_handle_rotate_it_once(across: Across) -> None:
    client_id, tokens = across.signed_in("bob")
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    urls = [f"{across.replicas[i].url}/token" for i in (0, 1, 2)]
    assert sorted(_race(*(lambda u=u: across.http.post(u, data=form) for u in urls))) == [200, 400, 400]


# --- failure paths ---------------------------------------------------------------------------------------


def test_an_expired_sign_in_code_or_handle_is_refused_by_every_replica(across: Across) -> None:
    client_id, tokens = across.signed_in("ada")
    verifier, challenge = pkce()
    at_idp = across.on(0).authorize(client_id, challenge).headers["location"]
    later = time.time() + PENDING_TTL + 5
    across.replicas[2].server.team.proxy._clock = lambda: later  # this replica lives in the future
    late = across.http.post(
        f"{across.replicas[2].url}/oauth/callback", data=across.entra_answer(at_idp, "ada")
    )
    assert late.status_code == 400 and "expired" in late.text
    # a code past CODE_TTL, and a handle past REFRESH_TTL, are not found by the store's query
    back = across.sign_in(across.on(0).authorize(client_id, challenge).headers["location"], "ada")
    across.replicas[1].server.team.proxy._clock = lambda: time.time() + CODE_TTL + 5
    stale = across.on(1).redeem(client_id, back["code"], verifier)
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert across.on(0).redeem(client_id, back["code"], verifier).status_code == 200  # in time: fine
    across.replicas[1].server.team.proxy._clock = lambda: time.time() + REFRESH_TTL + 5
    assert across.on(1).refresh(client_id, tokens["refresh_token"]).status_code == 400
    assert across.on(0).refresh(client_id, tokens["refresh_token"]).status_code == 200
    # a registration unused for CLIENT_TTL is forgotten (each token issued renews it)
    across.replicas[1].server.team.proxy._clock = lambda: time.time() + CLIENT_TTL - 60
    assert across.on(1).raw_authorize(client_id, challenge).status_code == 302
    across.replicas[1].server.team.proxy._clock = lambda: time.time() + CLIENT_TTL + 5
    assert across.on(1).raw_authorize(client_id, challenge).status_code == 400


def test_a_code_or_handle_presented_by_another_client_is_refused(across: Across) -> None:
    client_id = across.on(0).register().json()["client_id"]
    thief = across.on(1).register().json()["client_id"]
    verifier, challenge = pkce()
    back = across.sign_in(across.on(2).authorize(client_id, challenge).headers["location"], "ada")
    stolen = across.on(1).redeem(thief, back["code"], verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    tokens = across.on(2).redeem(client_id, back["code"], verifier)  # not burnt by the thief
    assert tokens.status_code == 200
    handle = tokens.json()["refresh_token"]
    assert across.on(0).refresh(thief, handle).status_code == 400
    assert across.on(1).refresh(client_id, handle).status_code == 200


def test_a_claims_challenge_met_on_one_replica_reaches_the_sign_in_on_another(across: Across) -> None:
    client_id, tokens = across.signed_in("mia")  # Partner Center wants MFA she has not done
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "search_referrals", "arguments": {}},
    }
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {tokens['access_token']}"}
    headers["Mcp-Protocol-Version"] = "2026-07-28"
    refused = across.http.post(across.replicas[1].mcp, json=call, headers=headers)
    assert refused.status_code == 401 and 'error="insufficient_claims"' in refused.headers["www-authenticate"]
    # a refresh cannot satisfy Conditional Access, on any replica; the next sign-in asks for the claims
    assert across.on(2).refresh(client_id, tokens["refresh_token"]).status_code == 400
    at_idp = across.on(0).authorize(client_id, pkce()[1]).headers["location"]
    assert "acrs" in parse_qs(urlparse(at_idp).query)["claims"][0]


def test_the_entra_refresh_token_and_the_handles_lie_sealed_in_the_store(across: Across) -> None:
    client_id, tokens = across.signed_in("ada")
    upstream = _upstream_of(across.replicas.settings, tokens["refresh_token"])
    assert len(upstream) > 20 and upstream != tokens["refresh_token"]
    rows = _at_rest(across.replicas.settings)
    assert {r["kind"] for r in rows} >= {"client", "refresh", "issued-to"}
    raw = repr(rows).encode() + b"".join(bytes(r["sealed"]) for r in rows)
    for secret in (upstream, tokens["refresh_token"], tokens["access_token"]):
        assert secret.encode() not in raw
    held = [r for r in rows if r["kind"] == "refresh"]
    assert held[0]["client_id"] == client_id and held[0]["subject"] == USERS["ada"].oid


def test_a_store_that_does_not_answer_gives_temporarily_unavailable(across: Across, tmp_path: Path) -> None:
    """Every OAuth endpoint of a replica whose store is gone: ``temporarily_unavailable``, never a 500;
    the callback page says to try again; the replica recovers when the store does."""
    client_id, tokens = across.signed_in("ada")
    verifier, challenge = pkce()
    at_idp = across.on(0).authorize(client_id, challenge).headers["location"]
    proxy = across.replicas[2].server.team.proxy
    working = proxy.store
    proxy.store = _unreachable(working.dialect, tmp_path)
    try:
        assert_unavailable(across.on(2).register())
        assert_unavailable(across.on(2).refresh(client_id, tokens["refresh_token"]))
        assert_unavailable(across.on(2).redeem(client_id, "some-code", verifier))
        authorize = across.on(2).authorize(client_id, challenge)
        assert_unavailable(authorize)
        form = across.entra_answer(at_idp, "ada")
        callback = across.http.post(f"{across.replicas[2].url}/oauth/callback", data=form)
        assert callback.status_code == 503 and "Reload this page" in callback.text
    finally:
        proxy.store = working
    # nothing was spent while it was down: the same sign-in and handle still work
    back = across.http.post(f"{across.replicas[2].url}/oauth/callback", data=form)
    assert back.status_code == 303, back.text
    back = across.http.get(across.replicas[2].url + back.headers["location"])  # the consent step
    assert back.status_code == 303, back.text
    code = parse_qs(urlparse(back.headers["location"]).query)["code"][0]
    assert across.on(2).redeem(client_id, code, verifier).status_code == 200
    assert across.on(2).refresh(client_id, tokens["refresh_token"]).status_code == 200


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["retry-after"]


def _unreachable(dialect: str, tmp_path: Path) -> Any:
    """A store of ``dialect`` that does not answer: a SQLite file whose connection is closed, or a
    PostgreSQL server that is not there."""
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.store.sqlite import SqliteStore

    if dialect == "sqlite":
        store = SqliteStore(tmp_path / "gone.sqlite3")
        anyio.run(store.close)
        return store
    return PostgresStore(f"postgresql://pcref@127.0.0.1:{free_port()}/x", secret=b"k" * 32, retry_seconds=0.5)


def test_entra_not_answering_a_refresh_keeps_the_handle_for_a_retry(across: Across) -> None:
    client_id, tokens = across.signed_in("ada")
    proxy = across.replicas[1].server.team.proxy

    def unreachable(upstream: str) -> dict[str, Any]:
        raise ConnectionError("Entra is not reachable")

    proxy._refresh_upstream = unreachable
    try:
        assert_unavailable(across.on(1).refresh(client_id, tokens["refresh_token"]))
    finally:
        del proxy._refresh_upstream
    renewed = across.on(2).refresh(client_id, tokens["refresh_token"])  # the retry, on any replica
    assert renewed.status_code == 200, renewed.text


def test_the_bounds_count_every_replicas_entries(across: Across, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcref_mcp.team import proxy as proxy_module

    client_id = across.on(0).register().json()["client_id"]
    across.on(1).register()
    monkeypatch.setattr(proxy_module, "MAX_ENTRIES", 2)
    waiting = [across.on(i).raw_authorize(client_id, pkce()[1]).headers["location"] for i in range(3)]
    assert all("/oauth/consent?request=" in w for w in waiting)  # nobody refused: the oldest went
    assert across.http.get(waiting[0]).status_code == 400  # evicted (on another replica)
    assert all(across.http.get(w).status_code == 200 for w in waiting[1:])
    # sign-ins sent on to Entra (after a person's Approve) are bounded by refusing more
    approved = [across.decide(across.http.get(w), "approve") for w in waiting[1:]]
    assert [a.status_code for a in approved] == [303, 303]
    one_more = across.on(2).authorize(client_id, pkce()[1])
    assert one_more.status_code == 503 and "Too many sign-ins" in one_more.text
    # unused registrations are bounded by evicting the oldest, on whichever replica: never refused
    monkeypatch.setattr(proxy_module, "MAX_UNUSED_CLIENTS", 2)
    newest = [across.on(i % 3).register() for i in range(3)]
    assert all(r.status_code == 201 for r in newest), [r.text for r in newest]
    assert across.on(1).raw_authorize(client_id, pkce()[1]).status_code == 400  # the oldest went
    for r in newest[1:]:
        assert across.on(2).raw_authorize(r.json()["client_id"], pkce()[1]).status_code == 302
