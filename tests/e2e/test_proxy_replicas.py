"""Proxy mode end to end across replicas: the OAuth authorization server that Claude.ai and ChatGPT
sign in with, served by three `pcref-mcp team` replicas behind nginx over PostgreSQL (issue 14).

`deploy/` starts the stack with `Stack(team=True, proxy=True)`: the replicas are the authorization
server at nginx's URL and broker each sign-in to one stand-in identity provider, which sends the
person back to nginx's `/oauth/callback`. nginx round-robins without affinity, so the steps of one
sign-in (register, authorize, the identity provider's callback, the code's redemption) and every
refresh land on different replicas; its access log names the replica that served each request, and
the tests check that they did. The client is the TypeScript MCP SDK's own OAuth client
(`tests/team/ts_oauth_session.mjs`, as in `test_team_oauth.py`): it discovers the authorization
server from the 401, registers, signs in with authorization code + PKCE, calls tools (a preview and a
confirmed write), refreshes when its access token stops working, and carries on when a replica is
killed. Two people, each in their own session, see only their own changes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from deploy.stack import Served, Stack
from pcref_mcp.team.standin_idp import API_CLIENT_ID
from tests.e2e.servers import REQUIRED, need_stack_tools
from tests.e2e.test_team_oauth import ACTIVE, SDK, TsSession, not_applied, structured

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not REQUIRED and not (SDK / "package.json").exists(),
        reason=f"TypeScript MCP SDK not found at {SDK}; `make e2e` installs it",
    ),
]

# The steps of one sign-in, each a request to the authorization server (the replicas, via nginx): the
# client registers and sends the browser to /authorize, which sends it to our consent page; the person
# approves (POST), signs in at the identity provider, whose form_post reaches the callback; back at the
# consent step (same-site GET, the browser's cookie arrives) the code is issued; the client redeems it.
SIGN_IN = [
    ("POST", "/register", 201),
    ("GET", "/authorize", 302),
    ("GET", "/oauth/consent", 200),
    ("POST", "/oauth/consent", 303),
    ("POST", "/oauth/callback", 303),
    ("GET", "/oauth/consent", 303),
    ("POST", "/token", 200),
]
SIGN_IN_PATHS = {path for _, path, _ in SIGN_IN}
PEOPLE = ("person01", "person02")


@dataclass
class SignedIn:
    """One person's sign-in through nginx: the client's answer and the requests nginx passed on."""

    login: str
    answer: dict[str, Any]
    served: list[Served]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_stack_tools()
    root = tmp_path_factory.mktemp("proxy-stack")
    with Stack(root, replicas=3, sandbox_size=60, team=True, proxy=True, people=len(PEOPLE)) as running:
        yield running


@pytest.fixture(scope="module")
def ts(stack: Stack) -> Iterator[TsSession]:
    assert stack.identity is not None
    session = TsSession(stack.url, str(stack.identity.cert))
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="module")
def signed_in(stack: Stack, ts: TsSession) -> dict[str, SignedIn]:
    """Both people sign in through nginx, one after the other."""
    people = {}
    for login in PEOPLE:
        start = mark(stack)
        answer = ts.ask(cmd="login", user=login)
        people[login] = SignedIn(login, answer, since(stack, start))
    return people


def test_each_sign_in_is_served_by_several_replicas(stack: Stack, signed_in: dict[str, SignedIn]) -> None:
    assert stack.identity is not None
    for n, person in enumerate(signed_in.values()):
        answer = person.answer
        assert answer["ok"], answer
        assert "search_referrals" in answer["tools"]
        # Entra's (the stand-in's) token for this server; the refresh token is the broker's opaque handle
        oid = stack.identity.people[n].oid
        assert answer["token"] == {"aud": API_CLIENT_ID, "oid": oid, "scp": "access_as_user"}
        assert answer["has_refresh"] and answer["refresh_is_opaque"]
        # discovered through nginx from the 401: the resource's metadata, then the authorization server's
        paths = [s.path for s in person.served]
        assert "/.well-known/oauth-protected-resource/mcp" in paths, paths
        assert any(p.startswith("/.well-known/oauth-authorization-server") for p in paths), paths
        # each step of the sign-in once, answered as it should be, and not all by one replica: each step
        # needs what the one before left in the store (the client, the sign-in's state, the code), so
        # two replicas among them means at least one hand-over between replicas
        steps = [s for s in person.served if s.path in SIGN_IN_PATHS]
        assert sorted((s.method, s.path, s.status) for s in steps) == sorted(SIGN_IN), steps
        replicas = {s.replica for s in steps}
        assert len(replicas) >= 2 and None not in replicas, steps
    first, second = signed_in.values()
    assert first.answer["client_id"] != second.answer["client_id"]  # each client registered itself


def test_tools_and_a_confirmed_write_through_nginx_each_person_their_own(
    stack: Stack, ts: TsSession, signed_in: dict[str, SignedIn]
) -> None:
    start = mark(stack)
    previews = {}
    for n, login in enumerate(PEOPLE):
        found = ts.ask(cmd="call", user=login, tool="search_referrals", args={**ACTIVE, "limit": 2})
        change = {
            "referral_id": structured(found)["rows"][n]["id"],
            "changes": [{"field": "notes", "value": f"from {login} through nginx"}],
        }
        asked = structured(ts.ask(cmd="call", user=login, tool="update_field", args=change))
        assert asked["status"] == "confirmation_required", asked
        previews[login] = {**change, "confirm_token": str(asked["confirm_token"])}
    # the second person presents the first one's confirm token: nothing is written, and it stays hers
    assert not_applied(ts.ask(cmd="call", user=PEOPLE[1], tool="update_field", args=previews[PEOPLE[0]]))
    written = {}
    for login, confirmed in previews.items():
        done = structured(ts.ask(cmd="call", user=login, tool="update_field", args=confirmed))
        assert done["status"] == "applied" and done["change_id"], done
        written[login] = str(done["change_id"])
    for login, change_id in written.items():
        listed = structured(ts.ask(cmd="call", user=login, tool="recent_changes"))["changes"]
        assert {line.split()[1] for line in listed} == {change_id}, (login, listed)
    # the tool calls went round the replicas: a preview on one, its confirmation on another
    calls = [s for s in since(stack, start) if s.path == "/mcp" and s.method == "POST"]
    assert len({s.replica for s in calls}) == 3 and all(s.status == 200 for s in calls), calls


def test_an_expired_access_token_is_refreshed_through_the_replicas(
    stack: Stack, ts: TsSession, signed_in: dict[str, SignedIn]
) -> None:
    for login in PEOPLE:
        start = mark(stack)
        expired = ts.ask(cmd="expire", user=login)
        assert expired["ok"] and expired["has_refresh"], expired
        again = ts.ask(cmd="call", user=login, tool="search_referrals", args={"limit": 1})
        assert structured(again)["rows"]
        assert again["token_id"] != expired["token_id"]  # a new access token, from the refresh
        served = since(stack, start)
        refreshed = [s for s in served if s.path == "/token"]
        assert [s.status for s in refreshed] == [200], served
        # the refused call, the refresh and the retried call: not all on one replica
        assert len({s.replica for s in served if s.path in ("/mcp", "/token")}) >= 2, served


def test_a_session_carries_on_when_a_replica_dies(
    stack: Stack, ts: TsSession, signed_in: dict[str, SignedIn]
) -> None:
    """The replica that answered the first person's callback is killed (SIGKILL): both sessions
    refresh and call tools through nginx on the survivors, and a new sign-in completes on them."""
    dead = next(s.replica for s in signed_in[PEOPLE[0]].served if s.path == "/oauth/callback")
    assert dead is not None
    changes = structured(ts.ask(cmd="call", user=PEOPLE[0], tool="recent_changes"))["changes"]
    stack.kill_replica(dead)
    start = mark(stack) - 1  # with the mark's own request, which may be the first sent to the dead one
    for login in PEOPLE:
        expired = ts.ask(cmd="expire", user=login)
        for _ in range(2):  # a refresh, then calls that go round the survivors
            answer = ts.ask(cmd="call", user=login, tool="search_referrals", args={"limit": 1})
            assert structured(answer)["rows"] and answer["token_id"] != expired["token_id"]
    again = ts.ask(cmd="login", user=PEOPLE[0])  # a whole sign-in on the two survivors
    assert again["ok"] and again["client_id"] != signed_in[PEOPLE[0]].answer["client_id"], again
    assert structured(ts.ask(cmd="call", user=PEOPLE[0], tool="recent_changes"))["changes"] == changes
    # (a client's event stream, GET /mcp, that was open on the dead replica ends with it: not a request
    # made after the kill)
    served = [s for s in since(stack, start) if (s.method, s.path) != ("GET", "/mcp")]
    assert [s.status for s in served if s.path == "/token"] == [200, 200, 200], served
    expected = [path for _, path, _ in SIGN_IN] + ["/token", "/token"]
    assert sorted(s.path for s in served if s.path in SIGN_IN_PATHS) == sorted(expected), served
    # every request answered by a survivor; those nginx sent to the dead replica it passed on
    assert all(s.replica is not None and s.replica != dead for s in served), served
    assert all(s.status < 500 for s in served), served
    assert any(dead in s.tried for s in served), served


# --- helpers ------------------------------------------------------------------------------------------


def since(stack: Stack, start: int) -> list[Served]:
    """The requests nginx passed on from ``start`` (a :func:`mark`) until now."""
    end = mark(stack)
    return stack.served()[start : end - 1]


def mark(stack: Stack) -> int:
    """How many requests nginx has logged once everything sent so far is logged: a request of its own
    goes through nginx, and the log is read up to it (nginx logs a request when it ends, so a line can
    come a moment after its answer)."""
    path = f"/.e2e-mark/{uuid.uuid4().hex}"
    httpx.get(stack.url.removesuffix("/mcp") + path, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        served = stack.served()
        found = next((i for i, s in enumerate(served) if s.path == path), None)
        if found is not None:
            return found + 1
        time.sleep(0.02)
    raise AssertionError(f"nginx did not log {path}")
