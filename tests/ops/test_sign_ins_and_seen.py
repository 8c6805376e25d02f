"""Sign-ins counted exactly, wherever they happen (``pcref_sign_ins_total`` by ``via`` and
``outcome``), and who was seen when (``pcref-mcp admin people``): a scripted workload against real
team servers on sockets, with the stand-in identity provider.

- proxy mode: each OAuth client's sign-in through the proxy's callback (``via="proxy"``), each
  browser's sign-in for our pages (``via="page"``), a refused tenant counted as ``refused``; the
  proxy's own tokens never count as a resource server's sign-in;
- resource-server mode, two replicas over one store: a new access token (``iat`` later than any
  before for that person and client) counts once on whichever replica sees it first
  (``via="bearer"``), whatever the number of calls or replicas; an older token again counts nothing;
- last seen: every call sees its person with its client, but a replica writes it at most once a
  minute per person (and client), and at once for a newer token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp import metrics
from pcref_mcp.team.app import plan_for, team_server
from pcref_mcp.team.browser import start_page_sign_in
from pcref_mcp.team.seen import SEEN_EVERY, SeenRecorder
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import USERS, RunningIdp, StandInIdp
from tests.serving import INITIALIZE, MCP_HEADERS, free_port
from tests.team.conftest import ServedTeam, base_settings, serve_team
from tests.team.test_team_proxy import Dance, pkce

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdp]:
    with RunningIdp(StandInIdp(), tmp_path_factory.mktemp("idp")) as running:
        yield running


@pytest.fixture(autouse=True)
def _metrics_on() -> Iterator[None]:
    metrics.reset_for_tests()
    metrics.enable()
    yield
    metrics.reset_for_tests()


def sign_ins(via: str, outcome: str) -> float:
    assert metrics._registry is not None
    value = metrics._registry.get_sample_value("pcref_sign_ins_total", {"via": via, "outcome": outcome})
    return float(value or 0.0)


def _with_whoami(settings: Any, port: int) -> Any:
    """A team server with a page of ours that needs its person (as the approval page does)."""
    server = team_server(settings, plan_for(settings, host="127.0.0.1", port=port))

    async def whoami(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        who = await server.team.page_sign_in.person(request)
        return PlainTextResponse(who) if who else await start_page_sign_in(server.team, request, "/whoami")

    server.custom_route("/whoami", methods=["GET"])(whoami)
    return server


def _page_sign_in(idp: RunningIdp, team: ServedTeam, login: str) -> httpx.Response:
    """A browser of its own signs in for one of our pages: the callback's answer."""
    with Dance(team, idp).http as browser:
        start = browser.get(f"{team.url}/whoami")
        assert start.status_code == 303, start.text
        page = browser.get(f"{start.headers['location']}&login={login}")
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
        return browser.post(f"{team.url}/oauth/callback", data=fields)


def _call(team: ServedTeam, token: str) -> int:
    answer = httpx.post(
        team.mcp, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}, timeout=20
    )
    return answer.status_code


def test_proxy_and_page_sign_ins_are_counted_exactly_and_people_seen_with_their_clients(
    tmp_path: Path, idp: RunningIdp, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stand_in_settings(
        base_settings(tmp_path, team_proxy=True, store_key="k" * 40), idp.url, idp.cert
    )
    port = free_port()
    with serve_team(settings, server=_with_whoami(settings, port), port=port) as team:
        dance = Dance(team, idp)
        with dance.http:
            tokens = {}
            for login, client_name in (("ada", "Claude"), ("mia", "VS Code"), ("ada", "VS Code")):
                client_id = dance.register(client_name=client_name).json()["client_id"]
                verifier, challenge = pkce()
                back = dance.sign_in(dance.authorize(client_id, challenge).headers["location"], login)
                got = dance.redeem(client_id, back["code"], verifier)
                assert got.status_code == 200, got.text
                tokens[(login, client_name)] = (client_id, got.json()["access_token"])
            client_id = dance.register(client_name="Elsewhere").json()["client_id"]
            verifier, challenge = pkce()
            refused = dance.sign_in(dance.authorize(client_id, challenge).headers["location"], "eve")
            assert refused["error"] == "access_denied"  # another tenant
            for _ in range(5):  # calls: none of them is a sign-in
                for _client, token in tokens.values():
                    assert _call(team, token) == 200
            assert _page_sign_in(idp, team, "bob").status_code == 303
            assert _page_sign_in(idp, team, "eve").status_code == 403
    assert (sign_ins("proxy", "completed"), sign_ins("proxy", "refused")) == (3, 1)
    assert (sign_ins("page", "completed"), sign_ins("page", "refused")) == (1, 1)
    assert sign_ins("bearer", "completed") == 0  # the proxy's tokens are its own sign-ins
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(tmp_path / "journal.sqlite3"))
    monkeypatch.setenv("PCREF_STORE_KEY", "k" * 40)
    from pcref_mcp.cli import main

    assert main(["admin", "people"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    ada, mia, bob = (USERS[n].oid for n in ("ada", "mia", "bob"))
    assert set(listed) == {ada, mia, bob}  # seen, though none of them wrote; eve never got in
    claude, vscode = tokens[("ada", "Claude")][0], tokens[("ada", "VS Code")][0]
    assert f"Claude ({claude})" in listed[ada] and f"VS Code ({vscode})" in listed[ada]
    assert "VS Code (" in listed[mia] and "Claude" not in listed[mia]
    assert USERS["ada"].upn in listed[ada] and " UTC " in listed[ada]
    assert listed[bob].split()[-1] == "-"  # signed in on a page only: no client


def test_a_resource_servers_sign_ins_are_its_new_tokens_once_across_replicas(
    tmp_path: Path, idp: RunningIdp
) -> None:
    settings = stand_in_settings(
        base_settings(
            tmp_path,
            team_proxy=False,
            store_url=f"sqlite:///{tmp_path / 'shared.sqlite3'}",
            store_key="k" * 40,
        ),
        idp.url,
        idp.cert,
    )
    ada, bob = USERS["ada"], USERS["bob"]
    now = int(time.time())
    first = {p.login: idp.idp.access_token(p, iat=now - 30) for p in (ada, bob)}
    with serve_team(settings) as one, serve_team(settings) as two:
        for _ in range(3):
            for replica in (one, two):
                for token in first.values():
                    assert _call(replica, token) == 200
        assert sign_ins("bearer", "completed") == 2  # ada's and bob's tokens, each counted once
        newer = idp.idp.access_token(ada, iat=now)  # ada's client got a new token (sign-in or refresh)
        assert _call(two, newer) == 200 and _call(one, newer) == 200
        assert _call(one, first["ada"]) == 200  # the older one again: nothing new
        assert sign_ins("bearer", "completed") == 3
        assert (sign_ins("proxy", "completed"), sign_ins("page", "completed")) == (0, 0)


class _CountingStore:
    def __init__(self) -> None:
        self.touches: list[tuple[str, str, float]] = []
        self.issued: dict[tuple[str, str], float] = {}

    async def seen_touch(self, person: str, client_id: str, **kw: Any) -> bool:
        self.touches.append((person, client_id, kw["issued"]))
        before = self.issued.get((person, client_id), 0.0)
        self.issued[(person, client_id)] = max(before, kw["issued"])
        return bool(kw["issued"] > before)


async def test_a_replica_writes_last_seen_at_most_once_a_minute_per_person_and_at_once_for_a_new_token() -> (
    None
):
    store, clock = _CountingStore(), [1000.0]
    seen = SeenRecorder(store, monotonic=lambda: clock[0], count_sign_ins=True)  # type: ignore[arg-type]
    for _ in range(50):  # fifty calls in the same minute with one token
        await seen.saw("ada", name="ada@x", client_id="app-1", issued=100.0)
        clock[0] += 1.0
    assert store.touches == [("ada", "", 100.0), ("ada", "app-1", 100.0)]
    clock[0] = 1000.0 + SEEN_EVERY + 1
    await seen.saw("ada", name="ada@x", client_id="app-1", issued=100.0)
    assert len(store.touches) == 4  # a minute on: written again
    await seen.saw("ada", name="ada@x", client_id="app-1", issued=200.0)  # a new token: at once
    assert len(store.touches) == 6
    assert sign_ins("bearer", "completed") == 2  # the first token and the new one, nothing else

    class Down:
        async def seen_touch(self, *a: Any, **kw: Any) -> bool:
            raise OSError("the store is away")

    await SeenRecorder(Down()).saw("bob", name=None)  # type: ignore[arg-type] # never fails a call


def test_after_a_revoke_a_token_issued_later_is_served_and_an_older_one_refused(
    tmp_path: Path, idp: RunningIdp
) -> None:
    """Through the real token verifier: it keeps the token's ``iat``, so a revoke refuses only the
    tokens issued before it (signing in again works, as ``admin revoke`` says)."""
    import anyio

    from pcref_mcp.store import open_store
    from pcref_mcp.team.revocation import Revocations

    settings = stand_in_settings(
        base_settings(tmp_path, team_proxy=False, store_key="k" * 40), idp.url, idp.cert
    )
    ada, now = USERS["ada"], int(time.time())

    async def revoke() -> None:
        store = open_store(settings.store_location, secret=settings.store_secret)
        await store.start()
        await Revocations(store).revoke_person(ada.oid)
        await store.close()

    anyio.run(revoke)
    with serve_team(settings) as team:
        assert _call(team, idp.idp.access_token(ada, iat=now - 30)) == 401  # issued before the revoke
        assert _call(team, idp.idp.access_token(ada, iat=now + 5)) == 200  # signed in again after it
