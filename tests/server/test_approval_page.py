"""Approval out of band: the person approves on pcref-mcp's own page, where the model cannot click.

Under the ``page`` policy a client without elicitation gets a link; the model's next call writes only
after the person's click, once. A client that declares URL-mode elicitation is sent to the page (a
live session waits for the click; a 2026-07-28 request gets -32042 and repeats the call). The link is
one browser's: another browser sees nothing; a replayed decision does nothing; a forged form does
nothing. Over stdio and in memory the page is served on a loopback port started on first need.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.types import ElicitRequestURLParams, ElicitResult

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from tests.server.conftest import Sandbox, call, call_error
from tests.server.test_write_tools import _active, _update
from tests.serving import tls

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db", approval_policy="page"
    )


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, timeout=10, verify=tls()) as b:
        yield b


def _csrf(html: str) -> str:
    found = re.search(r"name='csrf' value='([0-9a-f]+)'", html)
    assert found, html
    return found.group(1)


async def _approve(browser: httpx.AsyncClient, url: str, choice: str = "approve") -> httpx.Response:
    """A person opens the link and clicks a button (the form's own CSRF token, the browser's cookie)."""
    shown = await browser.get(url)
    assert shown.status_code == 200, shown.text
    return await browser.post(url.split("?")[0], data={"csrf": _csrf(shown.text), "decision": choice})


async def test_a_write_waits_for_the_click_and_lands_once(
    client: Client, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="Approved on the page")
    first = await call(client, "update_field", args)
    assert first["status"] == "confirmation_required"
    url, handle = first["approval_url"], first["confirm_token"]
    assert url.startswith("http://127.0.0.1:") and "/approvals/" in url and "?k=" in url
    assert "approval_url" in first["message"] and "not in this chat" in first["message"]

    # the model calls again before the person clicked: nothing is written, the same page is named
    early = await call(client, "update_field", {**args, "confirm_token": handle})
    assert early["status"] == "confirmation_required" and early["approval_url"] == url
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "Approved on the page"

    page = await browser.get(url)
    assert page.status_code == 200
    assert "Approved on the page" in page.text and "Operations" in page.text  # every request, in full
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    done = await browser.post(url.split("?")[0], data={"csrf": _csrf(page.text), "decision": "approve"})
    assert done.status_code == 200 and "Approved" in done.text

    applied = await call(client, "update_field", {**args, "confirm_token": handle})
    assert applied["status"] == "applied", applied
    assert (await sandbox.get(target["id"]))["details"]["notes"] == "Approved on the page"

    # replaying the decision or the call writes nothing more
    replay = await browser.post(url.split("?")[0], data={"csrf": _csrf(page.text), "decision": "approve"})
    assert replay.status_code == 409
    again = await call_error(client, "update_field", {**args, "confirm_token": handle})
    assert "nothing to change" in again  # the planner sees the write landed; the handle is spent too


async def test_a_confirm_token_alone_writes_nothing_under_the_page_policy(
    settings: Settings, sandbox: Sandbox, client: Client
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="The model approves itself")
    # a token issued by a server with the token policy (the same store), then sent here
    token_settings = settings.model_copy(update={"approval_policy": "token"})
    other = Runtime(token_settings, sandbox_app=sandbox.app)
    try:
        async with Client(build_server(token_settings, runtime=other)) as c:
            token = (await call(c, "update_field", args))["confirm_token"]
    finally:
        await other.aclose()
    answer = await call(client, "update_field", {**args, "confirm_token": token})
    assert answer["status"] == "confirmation_required" and answer["approval_url"]
    assert "confirm token alone does not approve" in answer["message"]
    forged = await call(client, "update_field", {**args, "confirm_token": "AAAA.BBBB"})
    assert forged["status"] == "confirmation_required"
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "The model approves itself"


async def test_the_link_is_one_browsers_and_a_forged_form_decides_nothing(
    client: Client, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="Only my browser")
    first = await call(client, "update_field", args)
    url = first["approval_url"]
    page = await browser.get(url)
    assert page.status_code == 200
    assert (await browser.get(url)).status_code == 200  # a reload in the same browser still works
    assert (await browser.get(url.split("?")[0])).status_code == 200

    async with httpx.AsyncClient(verify=tls()) as someone_else:
        seen = await someone_else.get(url)  # the same link, another browser
        assert seen.status_code == 403 and "Only my browser" not in seen.text
        posted = await someone_else.post(
            url.split("?")[0], data={"csrf": _csrf(page.text), "decision": "approve"}
        )
        assert posted.status_code == 403

    wrong = await browser.post(url.split("?")[0], data={"csrf": "0" * 64, "decision": "approve"})
    assert wrong.status_code == 403
    cross_site = await browser.post(
        url.split("?")[0],
        data={"csrf": _csrf(page.text), "decision": "approve"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    still = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert still["status"] == "confirmation_required"  # nothing was decided
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "Only my browser"


async def test_declined_on_the_page_writes_nothing_and_a_new_call_asks_again(
    client: Client, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="Declined on the page")
    first = await call(client, "update_field", args)
    declined = await _approve(browser, first["approval_url"], "decline")
    assert declined.status_code == 200 and "Declined" in declined.text
    answer = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert answer["status"] == "declined"
    fresh = await call(client, "update_field", args)
    assert fresh["status"] == "confirmation_required" and fresh["approval_url"] != first["approval_url"]
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "Declined on the page"


async def test_a_stale_preview_gets_a_new_page(
    client: Client, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="After someone else's change")
    first = await call(client, "update_field", args)
    await _approve(browser, first["approval_url"])
    await sandbox.patch(target["id"], [{"op": "replace", "path": "/details/dealValue", "value": 4242}])
    answer = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert answer["status"] == "stale" and answer["approval_url"] != first["approval_url"]
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "After someone else's change"


async def test_a_live_session_opens_the_page_and_the_click_completes_the_call(
    server: Any, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="URL mode, live")
    opened: list[ElicitRequestURLParams] = []

    async def person(ctx: Any, params: Any) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams), params
        opened.append(params)

        async def click() -> None:
            await _approve(browser, params.url)

        tasks.start_soon(click)  # the person clicks after agreeing to open the page
        return ElicitResult(action="accept")

    async with (
        anyio.create_task_group() as tasks,
        Client(server, mode="legacy", elicitation_callback=person) as c,  # type: ignore[arg-type]
    ):
        done = await call(c, "update_field", args)
    assert done["status"] == "applied", done
    assert len(opened) == 1 and "/approvals/" in opened[0].url
    assert (await sandbox.get(target["id"]))["details"]["notes"] == "URL mode, live"


async def test_a_live_session_whose_person_will_not_open_the_page_writes_nothing(
    server: Any, sandbox: Sandbox
) -> None:
    target = await _active(sandbox)

    async def refuse(ctx: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="decline")

    async with Client(server, mode="legacy", elicitation_callback=refuse) as c:  # type: ignore[arg-type]
        answer = await call(c, "update_field", _update(target["id"], notes="Not opened"))
    assert answer["status"] == "declined"
    assert (await sandbox.get(target["id"]))["details"].get("notes") != "Not opened"


async def test_a_2026_request_is_told_to_open_the_page_then_repeats_the_call(
    server: Any, sandbox: Sandbox, browser: httpx.AsyncClient
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="URL mode, stateless")

    async def unused(ctx: Any, params: Any) -> ElicitResult:  # declares elicitation (form and URL)
        raise AssertionError("a stateless request is not asked live")

    async with Client(server, elicitation_callback=unused) as c:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as raised:
            await c.call_tool("update_field", args)
        assert raised.value.error.code == -32042
        (wanted,) = raised.value.error.data["elicitations"]
        # before the click, repeating the call still asks
        with pytest.raises(MCPError):
            await c.call_tool("update_field", args)
        await _approve(browser, wanted["url"])
        done = await call(c, "update_field", args)
        assert done["status"] == "applied", done
        assert "nothing to change" in await call_error(c, "update_field", args)  # never a second write
    assert (await sandbox.get(target["id"]))["details"]["notes"] == "URL mode, stateless"
