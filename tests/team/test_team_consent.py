"""The consent step of proxy mode (issue 19, item 1): a link alone never yields a code. A person
approves a client on pcref-mcp's own page (CSRF-protected, a double load harmless), the approval is
remembered per person and client in the store and revocable on the connected-apps page, and an
approval given in one browser does not let a sign-in finished in another browser through."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team.standin_idp import USERS, RunningIdp
from tests.team.conftest import ServedTeam, serve_team
from tests.team.test_team_proxy import REDIRECT, Dance, pkce

ATTACKER = "https://attacker.example/cb"


@pytest.fixture
def team(settings: Settings) -> Iterator[ServedTeam]:
    with serve_team(settings) as served:
        yield served


@pytest.fixture
def victim(team: ServedTeam, idp: RunningIdp) -> Iterator[Dance]:
    """The person's browser (its own cookies)."""
    d = Dance(team, idp)
    with d.http:
        yield d


@pytest.fixture
def attacker(team: ServedTeam, idp: RunningIdp) -> Iterator[Dance]:
    """Someone else's client and browser."""
    d = Dance(team, idp)
    with d.http:
        yield d


def consent_page(dance: Dance, authorize: httpx.Response) -> httpx.Response:
    location = authorize.headers["location"]
    assert authorize.status_code == 302 and location.startswith(f"{dance.team.url}/oauth/consent?request="), (
        location
    )
    return dance.http.get(location)


def hidden(page: httpx.Response) -> dict[str, str]:
    return {
        k: html.unescape(v) for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }


def query(response: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["location"]).query).items()}


def at_idp(response: httpx.Response, dance: Dance) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith(dance.idp.url)


def test_a_link_from_someone_elses_client_shows_the_consent_page_and_no_code(
    attacker: Dance, victim: Dance
) -> None:
    name = 'Totally Legit <script>alert("x")</script> & Co'
    client_id = attacker.register(client_name=name, redirect_uris=[ATTACKER]).json()["client_id"]
    _, challenge = pkce()
    link = victim.raw_authorize(client_id, challenge, redirect=ATTACKER)
    page = consent_page(victim, link)
    assert page.status_code == 200
    assert "attacker.example" not in link.headers["location"]  # the browser stays with us
    assert "<script>" not in page.text and html.escape(name, quote=True) in page.text
    assert re.search(r'id="redirect-host">attacker\.example<', page.text)
    assert "work your Partner Center referrals as you" in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    assert "chose this name itself" in page.text
    for header, value in {
        "x-frame-options": "DENY",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
    }.items():
        assert page.headers[header] == value
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy and "'unsafe-inline'" not in policy
    nonce = re.search(r"style-src 'nonce-([^']+)'", policy)
    assert nonce and f'<style nonce="{nonce.group(1)}">' in page.text
    assert "form-action 'self'" in policy and "https://attacker.example" in policy
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # http on loopback: a Secure cookie would never come back


def test_approve_signs_in_and_the_client_works_deny_returns_access_denied(victim: Dance) -> None:
    client_id = victim.register().json()["client_id"]
    verifier, challenge = pkce()
    page = consent_page(victim, victim.raw_authorize(client_id, challenge))
    approved = victim.decide(page, "approve")
    assert at_idp(approved, victim)
    back = victim.sign_in(approved.headers["location"], "ada")
    tokens = victim.redeem(client_id, back["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert victim.mcp(tokens.json()["access_token"]).status_code == 200

    other = victim.register(client_name="another").json()["client_id"]
    denied = victim.decide(consent_page(victim, victim.raw_authorize(other, pkce()[1], state="st")), "deny")
    assert denied.status_code == 303 and denied.headers["location"].startswith(REDIRECT)
    answer = query(denied)
    assert answer["error"] == "access_denied" and answer["state"] == "st" and answer["error_description"]
    assert "code" not in answer


def test_the_form_needs_this_browsers_token_and_survives_a_double_load(
    victim: Dance, attacker: Dance
) -> None:
    client_id = victim.register().json()["client_id"]
    link = victim.raw_authorize(client_id, pkce()[1])
    first = consent_page(victim, link)
    second = victim.http.get(link.headers["location"])  # loaded again (a reload, a second tab)
    assert hidden(first) == hidden(second)  # the same token: the first tab's form still works
    good = hidden(first)["csrf"]
    off_by_one = good[:-1] + ("1" if good.endswith("0") else "0")
    for wrong in ({"csrf": ""}, {"csrf": "0" * 64}, {"csrf": off_by_one}):
        refused = victim.decide(first, "approve", **wrong)
        assert refused.status_code == 403 and "Reload the page" in refused.text
    # another browser posting this browser's form (a cross-site post: not our cookie) is refused
    stolen = attacker.http.post(
        f"{victim.team.url}/oauth/consent", data={**hidden(first), "decision": "approve"}
    )
    assert stolen.status_code == 403
    assert at_idp(victim.decide(first, "approve"), victim)  # nothing was spent by the refusals
    again = victim.decide(second, "approve")  # answered once: the request is gone
    assert again.status_code == 400 and "expired" in again.text


def test_an_approval_in_one_browser_does_not_sign_in_another(attacker: Dance, victim: Dance) -> None:
    """The attacker approves their own client in their own browser and forwards the identity
    provider's URL to the victim, who signs in: the victim gets the consent page, by name, not a code."""
    client_id = attacker.register(redirect_uris=[REDIRECT]).json()["client_id"]
    approved = attacker.decide(
        consent_page(attacker, attacker.raw_authorize(client_id, pkce()[1])), "approve"
    )
    assert at_idp(approved, attacker)
    page = victim.http.get(f"{approved.headers['location']}&login=ada")  # in the victim's browser
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    back = victim.http.post(f"{victim.team.url}/oauth/callback", data=fields)
    assert back.status_code == 303 and back.headers["location"].startswith("/oauth/consent?signed=")
    shown = victim.http.get(victim.team.url + back.headers["location"])
    assert shown.status_code == 200 and "code=" not in shown.text
    assert f'Signed in as <strong class="untrusted">{USERS["ada"].name}' in shown.text
    # the attacker's browser cannot finish it (the victim's browser claimed it) nor use its form
    assert attacker.http.get(victim.team.url + back.headers["location"]).status_code == 400
    assert (
        attacker.http.post(
            f"{victim.team.url}/oauth/consent", data={**hidden(shown), "decision": "approve"}
        ).status_code
        == 403
    )
    denied = victim.decide(shown, "deny")
    assert denied.status_code == 303 and query(denied)["error"] == "access_denied"


def test_a_person_who_signed_in_after_approving_elsewhere_approves_on_the_page(
    victim: Dance, idp: RunningIdp
) -> None:
    """The same situation, the person approves on the page shown after sign-in: the code is issued
    then, and the consent remembered."""
    client_id = victim.register().json()["client_id"]
    stranger = Dance(victim.team, idp)
    with stranger.http:
        approved = stranger.decide(
            consent_page(stranger, stranger.raw_authorize(client_id, pkce()[1])), "approve"
        )
    victim.on_consent = "approve"
    back = victim.sign_in(approved.headers["location"], "bob")
    assert back["code"]


def test_an_approval_is_remembered_per_person_and_client_and_revoked_on_connected_apps(victim: Dance) -> None:
    client_id, tokens = victim.full("ada")  # approved on the page
    verifier, challenge = pkce()
    straight = victim.authorize(client_id, challenge, decision=None)
    onward = victim.http.get(straight.headers["location"])
    assert at_idp(onward, victim)  # this browser is ada, who approved this client: no page
    victim.on_consent = None  # if a page came now, sign_in would fail
    back = victim.sign_in(onward.headers["location"], "ada")
    assert victim.redeem(client_id, back["code"], verifier).status_code == 200
    another = victim.register(client_name="second app").json()["client_id"]
    assert consent_page(victim, victim.raw_authorize(another, pkce()[1])).status_code == 200  # per client

    apps = victim.http.get(f"{victim.team.url}/oauth/connected-apps")
    assert apps.status_code == 200 and "test client" in apps.text and USERS["ada"].name in apps.text
    assert apps.headers["x-frame-options"] == "DENY"
    form = dict(re.findall(r'name="(client_id|csrf)" value="([^"]*)"', apps.text))
    assert form["client_id"] == client_id
    forged = victim.http.post(f"{victim.team.url}/oauth/connected-apps", data={**form, "csrf": "x"})
    assert forged.status_code == 403
    renewed = refresh(victim, client_id, tokens["refresh_token"])
    assert renewed.status_code == 200
    revoked = victim.http.post(f"{victim.team.url}/oauth/connected-apps", data=form)
    assert revoked.status_code == 303
    assert "test client" not in victim.http.get(f"{victim.team.url}/oauth/connected-apps").text
    ended = refresh(victim, client_id, renewed.json()["refresh_token"])
    assert ended.status_code == 400  # its handles ended too
    assert consent_page(victim, victim.raw_authorize(client_id, pkce()[1])).status_code == 200  # asks again


def test_connected_apps_signs_an_unknown_browser_in_first(victim: Dance) -> None:
    start = victim.http.get(f"{victim.team.url}/oauth/connected-apps")
    assert at_idp(start, victim)
    page = victim.http.get(f"{start.headers['location']}&login=bob")
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    back = victim.http.post(f"{victim.team.url}/oauth/callback", data=fields)
    assert back.status_code == 303 and back.headers["location"].startswith("/oauth/signed-in?key=")
    landed = victim.http.get(victim.team.url + back.headers["location"])
    assert landed.status_code == 303 and landed.headers["location"] == "/oauth/connected-apps"
    apps = victim.http.get(f"{victim.team.url}/oauth/connected-apps")
    assert apps.status_code == 200 and USERS["bob"].name in apps.text and "not approved any app" in apps.text
    again = victim.http.get(victim.team.url + back.headers["location"])  # the one-time link, again
    assert again.status_code == 400


def test_a_person_of_another_tenant_gets_access_denied_with_a_description(victim: Dance) -> None:
    client_id = victim.register().json()["client_id"]
    at = victim.authorize(client_id, pkce()[1])
    back = victim.sign_in(at.headers["location"], "eve")
    assert back["error"] == "access_denied" and "allow-list" in back["error_description"]


def refresh(dance: Dance, client_id: str, handle: str) -> httpx.Response:
    return dance.token(grant_type="refresh_token", refresh_token=handle, client_id=client_id)


def test_a_refresh_needs_the_persons_approval_still(victim: Dance) -> None:
    """A handle that outlived its approval (a refresh racing the revocation, or a grant from before
    consent existed) gives no new token."""
    import time

    import anyio

    from pcref_mcp.team.proxy import CONSENT, consent_key

    client_id, tokens = victim.full("ada")
    store = victim.team.runtime.store
    assert anyio.run(
        lambda: store.broker_take(CONSENT, consent_key(USERS["ada"].oid, client_id), time.time())
    )
    refused = refresh(victim, client_id, tokens["refresh_token"])
    assert refused.status_code == 400 and "not approved" in refused.json()["error_description"]
