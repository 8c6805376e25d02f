"""Contract tests, write engine and MCP tools: the oddities of issue 12 replayed end to end.

The engine runs on a real journal (SQLite in tmp_path); the tools run through the in-memory MCP
client with the server's runtime pointed at the replayed service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center.recording import Replay
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.writes.engine import WriteEngine
from pcref_mcp.writes.journal import Journal
from pcref_mcp.writes.preview import WritePlan
from tests.contract.replay import client_for, replay
from tests.server.conftest import call, call_error

pytestmark = pytest.mark.anyio


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite3")


async def _engine(scenario: str, journal: Journal) -> tuple[WriteEngine, Replay]:
    transport = replay(scenario)
    return WriteEngine(client_for(transport), journal), transport


# --- the write engine -----------------------------------------------------------------------------


async def test_status_change_on_a_pascal_case_referral(journal: Journal) -> None:
    engine, transport = await _engine("pascal-case", journal)
    plan = await engine.plan_update(
        "R-PASCAL", [("status", "Closed"), ("substatus", "Won"), ("statusReason", "Signed")]
    )
    assert plan.lifecycle == "Active/Accepted → Closed/Won"
    assert plan.etag == '"aa00f96c-0000-1000-0000-6218f27c0000"'
    outcome = await engine.execute(plan)
    await engine.client.aclose()
    assert outcome.status == "applied", outcome.message
    assert outcome.referral is not None and outcome.referral.substatus == "Won"
    patch = next(r for r in transport.requests if r.method == "PATCH")
    assert patch.headers["If-Match"] == plan.etag
    entry = await journal.get(outcome.change_id or 0)
    assert entry is not None and entry.status == "applied"
    assert entry.etag_after == '"bb00f96c-0000-1000-0000-6218f27c0000"'


async def test_no_etag_is_refused_before_anything_is_journaled_or_sent(journal: Journal) -> None:
    engine, transport = await _engine("no-etag", journal)
    plan = await engine.plan_update("R-NOETAG", [("notes", "checked")])
    with pytest.raises(InvalidInput, match="without an ETag"):
        await engine.execute(plan)
    await engine.client.aclose()
    assert await journal.recent() == []
    assert [r.method for r in transport.requests] == ["GET"]


async def test_a_plan_without_referral_id_is_a_clear_error_not_an_assertion(journal: Journal) -> None:
    engine, transport = await _engine("no-etag", journal)
    plan = WritePlan(tool="update_field", kind="update", summary="Update", referral_id=None, etag='"x"')
    with pytest.raises(InvalidInput, match="without its id"):
        await engine.execute(plan)
    await engine.client.aclose()
    assert await journal.recent() == [] and transport.requests == []


async def test_409_resource_modified_is_reported_stale_with_what_changed(journal: Journal) -> None:
    engine, _ = await _engine("resource-modified", journal)
    plan = await engine.plan_update("R-STALE", [("notes", "mine")])
    outcome = await engine.execute(plan)
    await engine.client.aclose()
    assert outcome.status == "stale", outcome.message
    assert "Nothing was written" in outcome.message
    assert any("notes" in c.field for c in outcome.changed_underneath)
    entry = await journal.get(outcome.change_id or 0)
    assert entry is not None and entry.status == "failed"


async def test_create_after_504_stays_in_doubt(journal: Journal) -> None:
    engine, transport = await _engine("create-504", journal)
    body = {"type": "Independent", "externalReferenceId": "CRM-504", "name": "Gateway timeout"}
    plan = WritePlan(
        tool="create_referral", kind="create", summary="Create", bodies=[body], external_ref="CRM-504"
    )
    outcome = await engine.execute(plan)
    await engine.client.aclose()
    assert outcome.status == "in_doubt", outcome.message
    assert "not found yet" in outcome.message and "safe to try again" not in outcome.message
    entry = await journal.get(outcome.change_id or 0)
    assert entry is not None and entry.status == "in_doubt"
    assert [r.method for r in transport.requests].count("POST") == 1


# --- the tools --------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db")


async def _tools(settings: Settings, scenario: str) -> AsyncIterator[tuple[Client, Replay]]:
    transport = replay(scenario)
    runtime = Runtime(settings, transport=transport)
    try:
        async with Client(build_server(settings, runtime=runtime), raise_exceptions=True) as client:
            yield client, transport
    finally:
        await runtime.aclose()


@pytest.fixture
async def odd_tools(settings: Settings) -> AsyncIterator[tuple[Client, Replay]]:
    async for pair in _tools(settings, "odd-page"):
        yield pair


@pytest.fixture
async def pascal_tools(settings: Settings) -> AsyncIterator[tuple[Client, Replay]]:
    async for pair in _tools(settings, "pascal-case"):
        yield pair


@pytest.fixture
async def no_etag_tools(settings: Settings) -> AsyncIterator[tuple[Client, Replay]]:
    async for pair in _tools(settings, "no-etag"):
        yield pair


async def test_search_shows_the_readable_and_names_the_unreadable(odd_tools: tuple[Client, Replay]) -> None:
    client, _ = odd_tools
    found = await call(client, "search_referrals", {})
    ids = {row["id"] for row in found["rows"]}
    assert ids == {"R-ODD", "R-PASCAL", "R-PLAIN"}
    note = found.get("note", "")
    assert "2 referral(s) could not be read" in note
    assert "Values of R-ODD could not be read" in note  # its price "N/A": not the same as no price
    pascal = next(row for row in found["rows"] if row["id"] == "R-PASCAL")
    assert pascal["status"] == "Active/Accepted" and pascal["customer"] == "«Northwind Traders»"


async def test_get_referral_shows_how_odd_values_were_read(odd_tools: tuple[Client, Replay]) -> None:
    client, _ = odd_tools
    view = await call(client, "get_referral", {"referral_id": "R-ODD"})
    referral: dict[str, Any] = view["referral"]
    assert referral["mpnId"] == "6193175" and referral["details"]["dealValue"] == 25000
    problems = referral["readProblems"]
    assert any(p.startswith("/details/requirements/solutions/0/price") and "left out" in p for p in problems)
    assert any(p.startswith("/mpnId") and "read as" in p for p in problems)
    # the default sections leave contacts out, and so do the notes about them
    assert not any("example.invalid" in p for p in problems)
    assert any(p.startswith("/team") for p in problems)


async def test_update_field_closes_a_pascal_case_referral(pascal_tools: tuple[Client, Replay]) -> None:
    client, transport = pascal_tools
    args = {
        "referral_id": "R-PASCAL",
        "changes": [
            {"field": "status", "value": "Closed"},
            {"field": "substatus", "value": "Won"},
            {"field": "status reason", "value": "Signed"},
        ],
    }
    first = await call(client, "update_field", args)
    assert first["status"] == "confirmation_required", first
    done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert done["status"] == "applied", done
    assert [r.method for r in transport.requests].count("PATCH") == 1


async def test_update_field_without_etag_is_refused_and_nothing_sent(
    no_etag_tools: tuple[Client, Replay],
) -> None:
    client, transport = no_etag_tools
    args = {"referral_id": "R-NOETAG", "changes": [{"field": "notes", "value": "x"}]}
    first = await call(client, "update_field", args)
    assert first["status"] == "confirmation_required", first
    message = await call_error(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert "without an ETag" in message and "nothing was sent" in message
    assert "PATCH" not in [r.method for r in transport.requests]


async def test_a_list_with_an_unreadable_entry_is_never_replaced_unseen(journal: Journal) -> None:
    from pcref_mcp.partner_center.recording import Exchange
    from pcref_mcp.referrals.patch_paths import Edit

    doc = {
        "id": "R-TEAM",
        "eTag": '"t"',
        "status": "Active",
        "substatus": "Accepted",
        "team": [
            {"firstName": "Scrubbed", "lastName": "Person", "email": "a@example.invalid"},
            "not a member",
        ],
    }
    transport = Replay([Exchange("GET", "/v1.0/engagements/referrals/R-TEAM", "", 200, {}, doc)])
    engine = WriteEngine(client_for(transport), journal)
    member = {"first_name": "New", "last_name": "Member", "email": "new@example.invalid"}
    with pytest.raises(InvalidInput, match="would remove"):  # a plain replace is refused before anything
        await engine.plan_update("R-TEAM", [("/team", [member])])
    with pytest.raises(InvalidInput, match="could not be read") as info:  # an explicit one still is
        await engine.plan_update("R-TEAM", [Edit("/team", [member], "replace")])
    assert info.value.field == "/team" and "not a member" not in str(info.value)  # no values in the message
    appended = await engine.plan_update("R-TEAM", [("/team/-", member)])  # adding touches nothing else
    assert [op.path for op in appended.operations] == ["/team/-"]
    await engine.client.aclose()
