# ruff: noqa: F811  (the team tests' idp fixture is imported by name)
"""The approval page in a real headless Chromium, against the real `pcref-mcp serve --http`.

A person approves a write the model prepared: the page renders the preview and both buttons (checked
on screenshots, at a desktop and a phone size), works with the keyboard alone, loads nothing from
elsewhere (its CSP blocks it and no request leaves the server's origin), and the write lands once,
only after the click. Chromium is the distribution's package (`make e2e` installs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import RunningIdp
from tests.browser import headless_chromium
from tests.e2e.servers import http_server, process_env
from tests.team.conftest import base_settings, idp, serve_team  # noqa: F401 - idp is a fixture
from tests.team.test_team_isolation import ACTIVE, ADA, as_person

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PHONE = {"width": 390, "height": 844}


async def _prepare(client: Client, notes: str) -> tuple[dict[str, Any], dict[str, Any]]:
    found = await client.call_tool("search_referrals", {"status": "active", "limit": 1})
    referral_id = found.structured_content["rows"][0]["id"]  # type: ignore[index]
    args = {"referral_id": referral_id, "changes": [{"field": "notes", "value": notes}]}
    first = await client.call_tool("update_field", args)
    assert not first.is_error, first.content
    answer = dict(first.structured_content or {})
    assert answer["status"] == "confirmation_required" and answer["approval_url"], answer
    return args, answer


async def _visible(page: Any, selector: str, shots: Path, name: str) -> None:
    element = page.locator(selector)
    await element.wait_for(state="visible")
    box = await element.bounding_box()
    assert box and box["width"] > 20 and box["height"] > 10, (selector, box)
    shot = await element.screenshot(path=str(shots / f"{name}.png"))
    assert len(shot) > 500, name  # rendered pixels, not an empty box


async def test_a_person_approves_on_the_page_with_the_keyboard(tmp_path: Path) -> None:
    env = process_env(tmp_path, PCREF_APPROVAL_POLICY="page")
    with http_server(tmp_path, env=env) as running:
        async with Client(running.url, read_timeout_seconds=60) as client:
            args, answer = await _prepare(client, 'Agreed <b>pilot</b> & "phase 2"')
            origins: set[str] = set()
            async with headless_chromium() as browser:
                page = await browser.new_page()
                page.on("request", lambda r: origins.add(r.url.split("/approvals/")[0]))
                await page.goto(answer["approval_url"])
                text = await page.inner_text("main")
                assert 'Agreed <b>pilot</b> & "phase 2"' in text  # escaped: shown as text, not markup
                assert await page.locator("main b").count() == 0
                await _visible(page, "section pre", tmp_path, "preview")
                await _visible(page, "button[value=approve]", tmp_path, "approve")
                await _visible(page, "button[value=decline]", tmp_path, "decline")
                whole = await page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
                assert len(whole) > 5_000

                # keyboard only: focus reaches Approve, Enter submits
                for _ in range(10):
                    if (
                        await page.evaluate("document.activeElement && document.activeElement.value")
                        == "approve"
                    ):
                        break
                    await page.keyboard.press("Tab")
                assert await page.evaluate("document.activeElement.value") == "approve"
                async with page.expect_navigation():
                    await page.keyboard.press("Enter")
                assert "Approved" in await page.inner_text("h1")
                assert origins == {f"http://127.0.0.1:{running.port}"}  # nothing from elsewhere

            done = await client.call_tool("update_field", {**args, "confirm_token": answer["confirm_token"]})
            assert done.structured_content and done.structured_content["status"] == "applied", done.content
            again = await client.call_tool("update_field", {**args, "confirm_token": answer["confirm_token"]})
            assert again.is_error  # nothing to change: it landed once


async def test_the_page_reads_on_a_phone_and_decline_writes_nothing(tmp_path: Path) -> None:
    env = process_env(tmp_path, PCREF_APPROVAL_POLICY="page")
    with http_server(tmp_path, env=env) as running:
        async with Client(running.url, read_timeout_seconds=60) as client:
            args, answer = await _prepare(client, "Declined on a phone")
            async with headless_chromium(viewport=PHONE, is_mobile=True, has_touch=True) as browser:
                page = await browser.new_page()
                await page.goto(answer["approval_url"])
                assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
                await _visible(page, "button[value=approve]", tmp_path, "phone-approve")
                await _visible(page, "button[value=decline]", tmp_path, "phone-decline")
                await page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
                async with page.expect_navigation():
                    await page.tap("button[value=decline]")
                assert "Declined" in await page.inner_text("h1")

                # the same link in another browser shows nothing
                async with headless_chromium() as other:
                    stranger = await other.new_page()
                    response = await stranger.goto(answer["approval_url"])
                    assert response is not None and response.status == 403
                    assert "Declined on a phone" not in await stranger.inner_text("main")

            declined = await client.call_tool(
                "update_field", {**args, "confirm_token": answer["confirm_token"]}
            )
            assert declined.structured_content and declined.structured_content["status"] == "declined"


async def test_over_stdio_the_page_is_served_on_loopback_and_the_server_still_stops(tmp_path: Path) -> None:
    """A desktop client spawns the server: the page starts on a loopback port on first need, the write
    lands after the click, and closing the client stops the process (the page server with it)."""
    import sys

    import httpx
    from mcp import StdioServerParameters

    from tests.e2e.servers import server_env

    env = server_env(tmp_path, PCREF_APPROVAL_POLICY="page")
    params = StdioServerParameters(command=sys.executable, args=["-m", "pcref_mcp"], env=env)
    async with Client(params, read_timeout_seconds=60) as client:
        args, answer = await _prepare(client, "Approved from a stdio server's page")
        assert answer["approval_url"].startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(timeout=10) as person:
            shown = await person.get(answer["approval_url"])
            assert shown.status_code == 200
            token = shown.text.split("name='csrf' value='")[1].split("'")[0]
            done = await person.post(
                answer["approval_url"].split("?")[0], data={"csrf": token, "decision": "approve"}
            )
            assert done.status_code == 200
        applied = await client.call_tool("update_field", {**args, "confirm_token": answer["confirm_token"]})
        assert applied.structured_content and applied.structured_content["status"] == "applied"
    async with httpx.AsyncClient(timeout=5) as late:  # the process and its page server are gone
        with pytest.raises(httpx.HTTPError):
            await late.get(answer["approval_url"])


async def test_in_team_mode_the_person_signs_in_on_the_way_and_approves(
    tmp_path: Path, idp: RunningIdp
) -> None:
    """The team default: ada's model prepares a write; ada opens the link in her browser, signs in at
    the identity provider on the way, sees the preview and approves; only then does the write land."""
    settings = stand_in_settings(base_settings(tmp_path, approval_policy=None), idp.url, idp.cert)
    with serve_team(settings) as team:
        async with as_person(team, idp, ADA) as ada:
            target = (await ada.call_tool("search_referrals", ACTIVE)).structured_content["rows"][0]  # type: ignore[index]
            change = {
                "referral_id": target["id"],
                "changes": [{"field": "notes", "value": "Ada, in Chromium"}],
            }
            asked = dict((await ada.call_tool("update_field", change)).structured_content or {})
            assert asked["status"] == "confirmation_required", asked
            async with headless_chromium(ignore_https_errors=True) as browser:
                page = await browser.new_page()
                await page.goto(asked["approval_url"])  # not signed in yet: to the identity provider
                await page.get_by_role("link", name="Ada").first.click()
                await page.wait_for_url(asked["approval_url"])
                assert "Ada, in Chromium" in await page.inner_text("main")
                await _visible(page, "button[value=approve]", tmp_path, "team-approve")
                await _visible(page, "button[value=decline]", tmp_path, "team-decline")
                await page.screenshot(path=str(tmp_path / "team-page.png"), full_page=True)
                async with page.expect_navigation():
                    await page.get_by_role("button", name="Approve").click()
                assert "Approved" in await page.inner_text("h1")
            done = await ada.call_tool("update_field", {**change, "confirm_token": asked["confirm_token"]})
            assert done.structured_content and done.structured_content["status"] == "applied", done.content
