# ruff: noqa: F811  (the team tests' fixtures are imported by name: idp, settings)
"""The consent page in a real headless Chromium (issue 19): what a person sees and does there.

The client's self-chosen name is shown as text (markup in it stays text), the redirect host stands
out, both buttons are there and reachable with the keyboard (Tab to Approve, Enter), the page fits a
phone's width, the strict Content-Security-Policy lets the page's own stylesheet apply and nothing
else, and its ``form-action`` lets the decision's redirects through (to the identity provider after
Approve, to the client after Deny): Approve, a sign-in at the stand-in, and the browser arrives at the
client with a code. A screenshot is taken and must not be blank.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team.standin_idp import RunningIdp
from tests.browser import headless_chromium
from tests.serving import free_port, serve_in_thread
from tests.team.conftest import ServedTeam, idp, serve_team, settings  # noqa: F401 - fixtures
from tests.team.test_team_proxy import Dance, pkce

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

NAME = '<img src=x onerror="alert(1)"> Pipeline "Helper" & Co'
PHONE = {"width": 390, "height": 844}
# the client's redirect URI, served by a stand-in client site that records where the browser arrived
# (not the other tests' port 9, which Chromium refuses outright as an unsafe port)
CLIENT_PORT = free_port()
REDIRECT = f"http://127.0.0.1:{CLIENT_PORT}/callback"


@pytest.fixture
def arrived() -> Iterator[list[str]]:
    """The client's site: every URL the browser was sent to there."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    seen: list[str] = []

    async def callback(request: Any) -> PlainTextResponse:
        seen.append(str(request.url))
        return PlainTextResponse("the client")

    app = Starlette(routes=[Route("/callback", callback)])
    with serve_in_thread(app, port=CLIENT_PORT, name="client site"):
        yield seen


@pytest.fixture
def team(settings: Settings) -> Iterator[ServedTeam]:
    with serve_team(settings) as served:
        yield served


@pytest.fixture
def consent_url(team: ServedTeam, idp: RunningIdp) -> str:
    """Someone's client asks; the link a person opens leads to our consent page."""
    dance = Dance(team, idp)
    with dance.http:
        client_id = dance.register(client_name=NAME, redirect_uris=[REDIRECT]).json()["client_id"]
        link = dance.raw_authorize(client_id, pkce()[1], redirect=REDIRECT, state="browser-state")
    assert link.status_code == 302
    return str(link.headers["location"])


async def open_page(context: Any, url: str) -> tuple[Any, list[str]]:
    page = await context.new_page()
    complaints: list[str] = []

    def console(message: Any) -> None:
        # the browser's own favicon request (a 404 here and at the stand-in) is not the page's doing
        if message.type in ("error", "warning") and not str(message.location.get("url", "")).endswith(
            "/favicon.ico"
        ):
            complaints.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", console)
    page.on("pageerror", lambda e: complaints.append(str(e)))
    answer = await page.goto(url)
    assert answer is not None and answer.status == 200
    return page, complaints


async def test_the_consent_page_shows_the_client_as_text_the_host_and_both_buttons(
    consent_url: str, tmp_path: Path
) -> None:
    async with headless_chromium(viewport=PHONE, ignore_https_errors=True) as context:
        page, complaints = await open_page(context, consent_url)
        assert NAME in await page.locator("#client-name").inner_text()
        assert await page.locator("img").count() == 0  # the name's markup stayed text
        assert await page.locator("#redirect-host").inner_text() == f"127.0.0.1:{CLIENT_PORT}"
        approve = page.get_by_role("button", name="Approve")
        deny = page.get_by_role("button", name="Deny")
        assert await approve.is_visible() and await deny.is_visible()
        assert "work your Partner Center referrals as you" in await page.inner_text("body")
        # readable on a phone: no sideways scrolling, body text at least 16 px, buttons big enough to tap
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        assert await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16
        for button in (approve, deny):
            box = await button.bounding_box()
            assert box is not None and box["height"] >= 44 and box["x"] >= 0
            assert box["x"] + box["width"] <= PHONE["width"]
        # the page's own stylesheet applied (its nonce allowed it), and nothing was refused or run
        colour = await approve.evaluate("b => getComputedStyle(b).backgroundColor")
        assert colour not in ("rgba(0, 0, 0, 0)", "rgb(239, 239, 239)", "rgb(240, 240, 240)")
        assert complaints == []
        shot = await page.screenshot(path=str(tmp_path / "consent.png"), full_page=True)
        blank_page = await context.new_page()
        await blank_page.set_content("<html><body></body></html>")
        blank = await blank_page.screenshot(full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(shot) > 3 * len(blank)  # much more than an empty page of the same size
    assert distinct_pixels(shot) > 50


async def test_tab_to_approve_and_enter_signs_in_and_the_client_gets_a_code(
    consent_url: str, idp: RunningIdp, arrived: list[str]
) -> None:
    async with headless_chromium(viewport=PHONE, ignore_https_errors=True) as context:
        page, complaints = await open_page(context, consent_url)
        await page.reload()  # a double load does not break the form
        await page.evaluate("document.activeElement && document.activeElement.blur()")
        for _ in range(10):  # the keyboard alone: Tab until Approve has the focus
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.value") == "approve":
                break
        else:
            pytest.fail("Approve cannot be reached with Tab")
        async with page.expect_navigation(url=lambda u: u.startswith(idp.url)):
            await page.keyboard.press("Enter")
        assert complaints == []  # the CSP's form-action let the redirect to the identity provider through
        await page.get_by_role("link", name="Ada").first.click()  # the stand-in's sign-in: pick a person
        await page.wait_for_url(lambda u: u.startswith(REDIRECT))
    assert len(arrived) == 1
    answer = {k: v[0] for k, v in parse_qs(urlparse(arrived[0]).query).items()}
    assert answer["code"] and answer["state"] == "browser-state"


async def test_deny_in_the_browser_sends_access_denied_to_the_client(
    consent_url: str, arrived: list[str]
) -> None:
    async with headless_chromium(ignore_https_errors=True) as context:
        page, _ = await open_page(context, consent_url)
        await page.get_by_role("button", name="Deny").click()
        await page.wait_for_url(lambda u: u.startswith(REDIRECT))
    answer = {k: v[0] for k, v in parse_qs(urlparse(arrived[0]).query).items()}
    assert answer["error"] == "access_denied" and "code" not in answer and answer["error_description"]


def distinct_pixels(png: bytes) -> int:
    """How many different RGB(A) pixel values an 8-bit PNG holds (no imaging library needed)."""
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, colour = struct.unpack(">IIBB", data[:10])
            channels = {2: 3, 6: 4}.get(colour, 4)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    seen: set[bytes] = set()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # undo the PNG row filters
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        seen.update(bytes(line[i : i + channels]) for i in range(0, stride, channels * 7))
        previous = line
    return len(seen)
