"""``team.browser``: our own pages sign a browser in (the same auth-code flow and callback as the proxy,
in proxy and direct mode alike), learn its person from its cookie afterwards, refuse to send it
anywhere but a path on this server, and map only the browser that started the sign-in."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team.app import plan_for, team_server
from pcref_mcp.team.browser import BROWSER_COOKIE, person_of, safe_return_to, start_page_sign_in
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import USERS, RunningIdp
from tests.serving import free_port
from tests.team.conftest import ServedTeam, base_settings, serve_team


@pytest.fixture(params=["direct", "proxy"])
def team(request: pytest.FixtureRequest, tmp_path: Path, idp: RunningIdp) -> Iterator[ServedTeam]:
    settings: Settings = stand_in_settings(
        base_settings(tmp_path, team_proxy=request.param == "proxy"), idp.url, idp.cert
    )
    port = free_port()
    server = team_server(settings, plan_for(settings, host="127.0.0.1", port=port))
    assert (server.team.proxy is None) == (request.param == "direct")

    async def whoami(req: Any) -> Any:
        """A page of ours that needs its person (as the approval page will)."""
        from starlette.responses import PlainTextResponse

        oid = await person_of(server.team.runtime.store, req, __import__("time").time())
        if oid is None:
            return await start_page_sign_in(server.team, req, req.query_params.get("back", "/whoami"))
        return PlainTextResponse(oid)

    server.custom_route("/whoami", methods=["GET"])(whoami)
    pages = server.team.page_sign_in

    async def me(req: Any) -> Any:
        """The same through the approval page's PageSignIn protocol (person / sign_in)."""
        from starlette.responses import PlainTextResponse

        who = await pages.person(req)
        return PlainTextResponse(who) if who else await pages.sign_in(req, "/me")

    server.custom_route("/me", methods=["GET"])(me)
    with serve_team(settings, server=server, port=port) as served:
        yield served


def browser(idp: RunningIdp) -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=20, verify=ssl.create_default_context(cafile=str(idp.cert)))


def sign_in(http: httpx.Client, team: ServedTeam, start: httpx.Response, login: str) -> httpx.Response:
    """At the identity provider as ``login``, then its form_post to our callback: the callback's answer."""
    assert start.status_code == 303 and "/authorize" in start.headers["location"], start.text
    page = http.get(f"{start.headers['location']}&login={login}")
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    return http.post(f"{team.url}/oauth/callback", data=fields)


def test_a_page_signs_the_browser_in_and_then_knows_its_person(team: ServedTeam, idp: RunningIdp) -> None:
    with browser(idp) as http:
        start = http.get(f"{team.url}/whoami")
        assert BROWSER_COOKIE in start.cookies or http.cookies.get(BROWSER_COOKIE)
        back = sign_in(http, team, start, "ada")
        assert back.status_code == 303 and back.headers["location"].startswith("/oauth/signed-in?key=")
        landed = http.get(team.url + back.headers["location"])
        assert landed.status_code == 303 and landed.headers["location"] == "/whoami"
        assert http.get(f"{team.url}/whoami").text == USERS["ada"].oid
        assert http.get(f"{team.url}/me").text == USERS["ada"].oid
        assert http.get(team.url + back.headers["location"]).status_code == 400  # one time only
    with browser(idp) as other:  # another browser is nobody until it signs in
        assert other.get(f"{team.url}/whoami").status_code == 303
        me = other.get(f"{team.url}/me")
        assert me.status_code == 303 and me.headers["location"].startswith(idp.url)
        landed = other.get(team.url + sign_in(other, team, me, "bob").headers["location"])
        assert landed.headers["location"] == "/me" and other.get(f"{team.url}/me").text == USERS["bob"].oid


def test_a_sign_in_finished_in_another_browser_maps_nobody(team: ServedTeam, idp: RunningIdp) -> None:
    with browser(idp) as starter, browser(idp) as victim:
        start = starter.get(f"{team.url}/whoami")
        back = sign_in(victim, team, start, "bob")  # the IdP link forwarded to someone else
        wrong = victim.get(team.url + back.headers["location"])
        assert wrong.status_code == 400 and "another browser" in wrong.text
        assert victim.get(f"{team.url}/whoami").status_code == 303  # still nobody
        assert starter.get(f"{team.url}/whoami").status_code == 303


def test_only_a_path_on_this_server_is_a_place_to_return_to(team: ServedTeam, idp: RunningIdp) -> None:
    for bad in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "x",
        "/a b",
    ):
        with pytest.raises(ValueError):
            safe_return_to(bad)
    assert safe_return_to("/oauth/approve?id=1") == "/oauth/approve?id=1"
    with browser(idp) as http:  # a page asking for another site: a programming error, never a redirect
        refused = http.get(f"{team.url}/whoami", params={"back": "https://evil.example/"})
        assert refused.status_code == 500 and "location" not in refused.headers


def test_a_tenant_that_is_not_allowed_is_not_signed_in(team: ServedTeam, idp: RunningIdp) -> None:
    with browser(idp) as http:
        back = sign_in(http, team, http.get(f"{team.url}/whoami"), "eve")
        assert back.status_code == 403 and "allow-list" in back.text
        assert http.get(f"{team.url}/whoami").status_code == 303
