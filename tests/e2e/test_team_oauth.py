"""Team mode end to end with a third-party client doing the whole OAuth dance.

`pcref-mcp team --stand-in` (the documented one-command try-out) runs as a subprocess: the team server
on 127.0.0.1 and the stand-in identity provider over TLS. The TypeScript MCP SDK's own OAuth client
(npm `@modelcontextprotocol/sdk`, installed into `.tools/` by `make e2e`) discovers the authorization
server from the 401, registers itself, signs in with authorization code + PKCE (the "browser" approves
the client on pcref-mcp's consent page and picks a stand-in user), gets a token and calls tools; two
people, each in their own session. And the confused deputy: someone else's client gets a consent page,
not a code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp.team.standin_idp import API_CLIENT_ID, USERS, serve_in_thread
from tests.e2e.servers import PCREF, REQUIRED, ROOT, Running, free_port, http_server, process_env, stop

# `make e2e` installs @modelcontextprotocol/sdk (pinned, shared with the elicitation e2e) into .tools/
TOOLS = Path(os.environ.get("PCREF_TOOLS_DIR") or ROOT / ".tools")
SDK = TOOLS / "node_modules" / "@modelcontextprotocol" / "sdk"
SCRIPT = Path(__file__).resolve().parents[1] / "team" / "ts_oauth_session.mjs"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not REQUIRED and not (SDK / "package.json").exists(),
        reason=f"TypeScript MCP SDK not found at {SDK}; `make e2e` installs it",
    ),
]


class TsSession:
    """The node process: one JSON command in, one JSON answer out."""

    def __init__(self, url: str, cert: str) -> None:
        node = shutil.which("node")
        assert node, "the e2e check needs Node.js"
        env = {**os.environ, "PCREF_TS_SDK": str(SDK), "NODE_EXTRA_CA_CERTS": cert}
        self.proc = subprocess.Popen(
            [node, str(SCRIPT), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the TS client stopped: {self.proc.stderr.read() if self.proc.stderr else ''}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(cmd="quit")
            except (AssertionError, BrokenPipeError):
                pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    """One `pcref-mcp team --stand-in` for the module: no test needs a fresh one. Each test's TS
    session is a new client that registers itself and signs its people in again; the writes change
    notes only, and the one person whose absence of writes is checked (bob) never writes."""
    tmp = tmp_path_factory.mktemp("team-oauth")
    port, idp_port = free_port(), free_port()
    argv = [str(PCREF), "team", "--stand-in", "--port", str(port), "--stand-in-port", str(idp_port)]
    # the TS client approves by confirm token (the page flow has its own tests: test_team_approval_page)
    env = process_env(tmp, PCREF_APPROVAL_POLICY="token")
    with http_server(tmp, argv, port=port, env=env) as running:
        found = re.search(r"certificate (\S+?\.pem)", running.stderr)
        assert found, running.stderr
        yield running, found.group(1)


@pytest.fixture
def ts(team: tuple[Running, str]) -> Iterator[TsSession]:
    running, cert = team
    session = TsSession(running.url, cert)
    try:
        yield session
    finally:
        session.close()
        stop(session.proc)


def structured(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["ok"], answer
    result = answer["result"]
    assert not result.get("isError"), result
    content: dict[str, Any] = result["structuredContent"]
    return content


def test_two_people_sign_in_with_the_ts_sdk_oauth_client_and_call_tools(ts: TsSession) -> None:
    ada, bob = ts.ask(cmd="login", user="ada"), ts.ask(cmd="login", user="bob")
    for login, answer in (("ada", ada), ("bob", bob)):
        assert answer["ok"], answer
        assert "search_referrals" in answer["tools"]
        # The client holds a token for this server (audience = the API app), never a Partner Center
        # token, and its refresh token is an opaque handle, not Entra's.
        assert answer["token"] == {"aud": API_CLIENT_ID, "oid": USERS[login].oid, "scp": "access_as_user"}
        assert answer["has_refresh"] and answer["refresh_is_opaque"]
    assert ada["client_id"] != bob["client_id"]  # each registered itself (dynamic registration)

    found = structured(ts.ask(cmd="call", user="ada", tool="search_referrals", args={"limit": 3}))
    assert found["rows"]
    also = structured(
        ts.ask(cmd="call", user="bob", tool="get_referral", args={"referral_id": found["rows"][0]["id"]})
    )
    assert also["id"] == found["rows"][0]["id"]


@contextmanager
def metadata_document(cert: str, doc_for: Any) -> Iterator[str]:
    """Host a client ID metadata document over TLS with the stand-in's certificate (which the server
    trusts through PCREF_TEAM_CA_BUNDLE); yields its URL."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    port = free_port()
    url = f"https://127.0.0.1:{port}/client.json"

    async def document(request: Any) -> JSONResponse:
        return JSONResponse(doc_for(url))

    key = Path(cert).with_name("standin-idp-key.pem")
    app = Starlette(routes=[Route("/client.json", document)])
    with serve_in_thread(app, port=port, certfile=Path(cert), keyfile=key, name="document server"):
        yield url


def test_a_client_with_a_metadata_document_needs_no_registration(
    team: tuple[Running, str], ts: TsSession
) -> None:
    _, cert = team

    def doc(url: str) -> dict[str, Any]:
        return {
            "client_id": url,
            "client_name": "pcref e2e (CIMD)",
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }

    with metadata_document(cert, doc) as url:
        answer = ts.ask(cmd="login", user="bob", client_metadata_url=url)
        assert answer["ok"], answer
        assert answer["client_id"] == url  # no registration: the document's URL is the id
        assert answer["token"]["oid"] == USERS["bob"].oid
        assert structured(ts.ask(cmd="call", user="bob", tool="search_referrals", args={"limit": 1}))["rows"]


def test_a_person_of_another_tenant_is_refused_at_sign_in(ts: TsSession) -> None:
    answer = ts.ask(cmd="login", user="eve")
    assert answer == {"ok": False, "error": "access_denied"}


def test_a_claims_challenge_sends_the_person_through_sign_in_again(ts: TsSession) -> None:
    """mia's organisation requires MFA for Partner Center: her first call is answered 401
    insufficient_claims; the TS client signs her in again (the proxy asks Entra for the claims) and
    the retried call succeeds."""
    assert ts.ask(cmd="login", user="mia")["ok"]
    answer = ts.ask(cmd="call", user="mia", tool="search_referrals", args={"limit": 1})
    assert answer["ok"], answer
    assert answer.get("signed_in_again") and "mfa" in answer["amr"]
    assert not answer["result"].get("isError"), answer


ACTIVE = {"filters": {"status": ["Active"], "substatus": ["Accepted"]}, "limit": 1}


def preview_notes(ts: TsSession, text: str) -> tuple[dict[str, Any], str]:
    """ada previews a notes change: (the call's arguments, her confirm token)."""
    target = structured(ts.ask(cmd="call", user="ada", tool="search_referrals", args=ACTIVE))["rows"][0]
    change = {"referral_id": target["id"], "changes": [{"field": "notes", "value": text}]}
    asked = structured(ts.ask(cmd="call", user="ada", tool="update_field", args=change))
    assert asked["status"] == "confirmation_required"
    return change, str(asked["confirm_token"])


def not_applied(answer: dict[str, Any]) -> bool:
    assert answer["ok"], answer
    result = answer["result"]
    return bool(result.get("isError")) or result["structuredContent"]["status"] != "applied"


def test_a_person_writes_with_their_own_approval(ts: TsSession) -> None:
    assert ts.ask(cmd="login", user="ada")["ok"]
    change, token = preview_notes(ts, "from ada via team mode")
    done = structured(
        ts.ask(cmd="call", user="ada", tool="update_field", args={**change, "confirm_token": token})
    )
    assert done["status"] == "applied" and done["change_id"]


def test_b_cannot_redeem_as_confirm_token(ts: TsSession) -> None:
    assert ts.ask(cmd="login", user="ada")["ok"] and ts.ask(cmd="login", user="bob")["ok"]
    change, token = preview_notes(ts, "ada's approval only")
    stolen = ts.ask(cmd="call", user="bob", tool="update_field", args={**change, "confirm_token": token})
    assert not_applied(stolen)


def test_b_cannot_read_as_journal_or_undo_as_change(ts: TsSession) -> None:
    assert ts.ask(cmd="login", user="ada")["ok"] and ts.ask(cmd="login", user="bob")["ok"]
    change, token = preview_notes(ts, "ada keeps this")
    done = structured(
        ts.ask(cmd="call", user="ada", tool="update_field", args={**change, "confirm_token": token})
    )
    mine = structured(ts.ask(cmd="call", user="ada", tool="recent_changes"))["changes"]
    assert mine  # and this very change among them (the server is the module's: she wrote before)
    assert any(line.startswith(f"change_id {done['change_id']} ") for line in mine), mine
    assert structured(ts.ask(cmd="call", user="bob", tool="recent_changes"))["changes"] == []
    undo = ts.ask(cmd="call", user="bob", tool="undo_change", args={"change_id": done["change_id"]})
    result = undo["result"] if undo["ok"] else {}
    if (
        not result.get("isError")
        and result.get("structuredContent", {}).get("status") == "confirmation_required"
    ):
        again = {
            "change_id": done["change_id"],
            "confirm_token": result["structuredContent"]["confirm_token"],
        }
        undo = ts.ask(cmd="call", user="bob", tool="undo_change", args=again)
    assert not_applied(undo)


def test_a_person_who_denies_on_the_consent_page_gives_the_client_access_denied(ts: TsSession) -> None:
    assert ts.ask(cmd="login", user="bob", consent="deny") == {"ok": False, "error": "access_denied"}
    assert ts.ask(cmd="login", user="bob")["ok"]  # asked again, approved: signed in


def test_a_link_from_someone_elses_client_yields_the_consent_page_not_a_code(
    team: tuple[Running, str],
) -> None:
    """The confused deputy, against `pcref-mcp team --stand-in`: a client registered by someone else
    (its redirect URI theirs), a person already signed in here, the link opened in their browser: our
    consent page, no code. Approve: the client works. Deny: access_denied."""
    from types import SimpleNamespace

    from tests.team.test_team_proxy import REDIRECT, Dance, pkce

    running, cert = team
    base = running.url.removesuffix("/mcp")
    served = SimpleNamespace(url=base, mcp=f"{base}/mcp")
    idp = SimpleNamespace(cert=cert, url="")
    attacker, person = Dance(served, idp), Dance(served, idp)  # type: ignore[arg-type]
    with attacker.http, person.http:
        person.full("ada")  # the person uses the server already: this browser is signed in as ada
        client_id = attacker.register(client_name="Helpful <b>assistant</b>").json()["client_id"]
        verifier, challenge = pkce()
        link = person.raw_authorize(client_id, challenge)
        page = person.http.get(link.headers["location"])
        assert (
            page.status_code == 200 and "code=" not in page.text and "code=" not in link.headers["location"]
        )
        assert (
            "Helpful &lt;b&gt;assistant&lt;/b&gt;" in page.text
            and 'id="redirect-host">127.0.0.1:9<' in page.text
        )
        denied = person.decide(page, "deny")
        assert denied.status_code == 303 and denied.headers["location"].startswith(REDIRECT)
        assert (
            "error=access_denied" in denied.headers["location"] and "code=" not in denied.headers["location"]
        )
        approved = person.authorize(client_id, challenge)  # the same link again; Approve this time
        back = person.sign_in(approved.headers["location"], "ada")
        tokens = person.redeem(client_id, back["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        assert person.mcp(tokens.json()["access_token"]).status_code == 200
