"""Team mode's default approval: the person approves a write on pcref-mcp's page, signed in as
themselves; the model's token alone writes nothing; another person sees and approves nothing; a
replayed approval does nothing. Real sockets, the stand-in identity provider, the real tools."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import RunningIdp
from tests.team.conftest import ServedTeam, base_settings, serve_team
from tests.team.test_team_isolation import ACTIVE, ADA, BOB, as_person, ok
from tests.team.test_team_page_sign_in import browser, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def team(tmp_path: Path, idp: RunningIdp) -> Iterator[ServedTeam]:
    settings: Settings = stand_in_settings(base_settings(tmp_path, approval_policy=None), idp.url, idp.cert)
    assert settings.approval_policy is None  # the team default: strictest
    with serve_team(settings) as served:
        yield served


def _open_signed_in(http: httpx.Client, team: ServedTeam, url: str, login: str) -> httpx.Response:
    """Open ``url`` in a browser that signs in as ``login`` on the way (the page asks first)."""
    start = http.get(url)
    if start.status_code != 303:
        return start
    back = sign_in(http, team, start, login)
    landed = http.get(team.url + back.headers["location"])
    assert landed.status_code == 303, landed.text
    return http.get(team.url + landed.headers["location"])


def _csrf(page: httpx.Response) -> str:
    found = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    assert found, page.text
    return found.group(1)


async def _prepare(team: ServedTeam, idp: RunningIdp, notes: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with as_person(team, idp, ADA) as ada:
        target = ok(await ada.call_tool("search_referrals", ACTIVE))["rows"][0]
        change = {"referral_id": target["id"], "changes": [{"field": "notes", "value": notes}]}
        asked = ok(await ada.call_tool("update_field", change))
    assert asked["status"] == "confirmation_required", asked
    assert asked["approval_url"].startswith(f"{team.url}/approvals/") and "?k=" not in asked["approval_url"]
    return change, asked


async def test_the_person_approves_on_the_page_and_the_write_lands_once(
    team: ServedTeam, idp: RunningIdp
) -> None:
    change, asked = await _prepare(team, idp, "Approved by ada on the page")
    url, handle = asked["approval_url"], asked["confirm_token"]

    async with as_person(team, idp, ADA) as ada:  # the model sends the token back: not an approval
        early = ok(await ada.call_tool("update_field", {**change, "confirm_token": handle}))
        assert early["status"] == "confirmation_required"

    with browser(idp) as other:  # bob signs in and opens ada's page: nothing shown, nothing decided
        seen = _open_signed_in(other, team, url, "bob")
        assert seen.status_code == 403 and "Approved by ada" not in seen.text
        forged = other.post(url, data={"csrf": "0" * 64, "decision": "approve"})
        assert forged.status_code == 403

    async with as_person(team, idp, BOB) as bob:  # nor can bob's client use ada's handle
        stolen = await bob.call_tool("update_field", {**change, "confirm_token": handle})
        assert stolen.is_error and "another person" in stolen.content[0].text  # type: ignore[union-attr]

    with browser(idp) as mine:
        page = _open_signed_in(mine, team, url, "ada")
        assert page.status_code == 200 and "Approved by ada on the page" in page.text
        assert "For " in page.text  # whose approval it is, by name
        done = mine.post(url, data={"csrf": _csrf(page), "decision": "approve"})
        assert done.status_code == 200 and "Approved" in done.text
        assert mine.post(url, data={"csrf": _csrf(page), "decision": "approve"}).status_code == 409

    async with as_person(team, idp, ADA) as ada:
        applied = ok(await ada.call_tool("update_field", {**change, "confirm_token": handle}))
        assert applied["status"] == "applied", applied
        again = await ada.call_tool("update_field", {**change, "confirm_token": handle})
        assert again.is_error  # nothing to change: it landed once
    rows = await team.runtime.journal.recent(limit=20, referral_id=change["referral_id"], any_actor=True)
    assert sum(1 for r in rows if "Approved by ada on the page" in str(r.operations)) == 1
