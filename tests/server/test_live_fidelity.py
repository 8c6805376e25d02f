"""Issue 20 against the sandbox's service behaviours (``ignore_orderby``, ``ignore_skip``,
``ignore_filter``, ``page_count``, ``no_next_link``, ``fail_after_write``, ``lagging_reads``): the
feed, search, export and writes are never wrong when the service is odd."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import EmbeddedResource

from pcref_mcp.errors import ServiceUnavailable
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server import exchange
from pcref_mcp.server import search as searching
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.writes import feed as feeds
from tests.server.conftest import START, Sandbox, call, call_error

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """60 referrals in pages of 10, so paging matters."""
    clock = ManualClock(START)
    config = SandboxConfig(
        db_path=tmp_path / "sandbox.db", seed_size=60, clock=clock, rate_limit=0, page_cap=10
    )
    handle = Sandbox(create_app(config), clock)
    yield handle
    await handle.http.aclose()


def _faults(sandbox: Sandbox, **changes: Any) -> None:
    sandbox.app.state.sandbox.faults.update(**changes)


async def _learn(runtime: Runtime) -> None:
    """The capabilities as the probe sees the well-behaved service (then it changes underneath)."""
    await runtime.query_capabilities()


# --- the change feed ---------------------------------------------------------------------------


async def _updated_since(sandbox: Sandbox, since: str) -> set[str]:
    return {d["id"] for d in await sandbox.find(f"updatedDateTime ge {since}T00:00:00Z", top=1000)}


def _ids(lines: list[str]) -> set[str]:
    return {line.split()[1] for line in lines[1:]}


async def test_feed_finds_every_update_when_the_service_ignores_orderby(
    client: Client, sandbox: Sandbox, runtime: Runtime
) -> None:
    since = (START - timedelta(days=5)).date().isoformat()
    expected = await _updated_since(sandbox, since)
    assert 0 < len(expected) < 60
    await _learn(runtime)
    _faults(sandbox, ignore_orderby=True)  # rows come by creation time from now on
    out = await call(client, "recent_changes", {"since": since})
    assert _ids(out["referrals"]) == expected
    assert out["referrals"][0].startswith(f"Since {since} 00:00 UTC: {len(expected)} referral(s) updated")
    assert "may not be complete" not in out["referrals"][0]


async def test_feed_says_it_may_be_incomplete_when_paging_cannot_be_trusted(
    client: Client, sandbox: Sandbox, runtime: Runtime
) -> None:
    since = "2000-01-01"  # everything
    await _learn(runtime)  # $skip learnt as working
    _faults(sandbox, ignore_orderby=True, ignore_skip=True, no_next_link=True)
    out = await call(client, "recent_changes", {"since": since})
    lines = out["referrals"]
    assert len(_ids(lines)) == len(lines) - 1  # nothing listed twice
    assert len(lines) - 1 < 60
    assert "may not be complete" in lines[0] and "$skip seems ignored" in lines[0]


async def test_feed_with_a_page_sized_count_and_no_next_links(
    client: Client, sandbox: Sandbox, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "PAGE", 10)  # asks for the sandbox's page size: every page is full
    _faults(sandbox, page_count=True, ignore_skip=True)
    await _learn(runtime)  # learns: count counts the page, skip is ignored
    _faults(sandbox, no_next_link=True)
    out = await call(client, "recent_changes", {"since": "2000-01-01"})
    assert "may not be complete" in out["referrals"][0] and "no next link" in out["referrals"][0]


# --- search ------------------------------------------------------------------------------------------


async def test_search_filters_here_when_the_service_ignores_filter(client: Client, sandbox: Sandbox) -> None:
    _faults(sandbox, ignore_filter=True)  # seen by the probe on first use
    out = await call(client, "search_referrals", {"filters": {"currency": "GBP"}, "limit": 100})
    expected = {d["id"] for d in await sandbox.find("details/currency eq 'GBP'")}
    assert {r["id"] for r in out["rows"]} == expected
    assert out.get("total") in (None, len(expected))
    assert "Done here, not by the service" in out["note"]


async def test_search_does_not_trust_a_total_the_filter_did_not_produce(
    client: Client, sandbox: Sandbox, runtime: Runtime
) -> None:
    await _learn(runtime)  # every feature seen working
    _faults(sandbox, ignore_filter=True)  # then the service stops applying filters
    out = await call(client, "search_referrals", {"filters": {"status": "Active"}, "limit": 5})
    expected = {d["id"] for d in await sandbox.find("status eq 'Active'", top=1000)}
    assert {r["id"] for r in out["rows"]} <= expected
    assert out.get("total") in (None, len(expected)) and out.get("total") != 60
    assert "its filter should have excluded" in out["note"]


async def test_sort_by_value_is_done_here_when_the_service_ignores_orderby(
    client: Client, sandbox: Sandbox, runtime: Runtime
) -> None:
    await _learn(runtime)  # orderby on deal value seen working
    _faults(sandbox, ignore_orderby=True)
    out = await call(client, "search_referrals", {"sort": "value_desc", "limit": 20})
    ids = [r["id"] for r in out["rows"]]
    values = [((await sandbox.get(i)).get("details") or {}).get("dealValue") for i in ids]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True)
    if sandbox.strict:  # never sorted by the service there: done here from the start
        assert "sort value_desc" in out["note"]
    else:
        assert "ignored $orderby details/dealValue" in out["note"]


async def test_probe_at_first_use_sorts_here_when_orderby_is_ignored(
    client: Client, sandbox: Sandbox
) -> None:
    _faults(sandbox, ignore_orderby=True)
    out = await call(client, "search_referrals", {"sort": "value_asc", "limit": 10})
    values = [((await sandbox.get(r["id"])).get("details") or {}).get("dealValue") for r in out["rows"]]
    present = [v for v in values if v is not None]
    assert present == sorted(present)
    assert "sort value_asc" in out["note"]


# --- export ----------------------------------------------------------------------------------------


def _csv_ids(result: Any) -> list[str]:
    files = [c for c in result.content if isinstance(c, EmbeddedResource)]
    return [row["id"] for row in csv.DictReader(io.StringIO(str(files[0].resource.text)))]  # type: ignore[union-attr]


async def test_export_never_writes_a_row_twice_and_says_where_paging_failed(
    client: Client, sandbox: Sandbox, runtime: Runtime
) -> None:
    await _learn(runtime)  # $skip learnt as working
    _faults(sandbox, ignore_skip=True, no_next_link=True)  # every page is the first page again
    result = await client.call_tool("search_referrals", {"format": "csv"})
    assert not result.is_error
    ids = _csv_ids(result)
    assert len(ids) == len(set(ids))
    note = dict(result.structured_content or {})["note"]
    if not sandbox.strict:  # a count of all matches shows more pages exist, and their repeats
        assert "does not page as asked" in note and "may lack matches" in note
    # strict: no count, a short page, no next link: taken as the end (an assumption the
    # live-readiness page lists); still nothing twice


async def test_export_all_pages_without_faults_has_each_referral_once(client: Client) -> None:
    result = await client.call_tool("search_referrals", {"format": "csv"})
    ids = _csv_ids(result)
    assert len(ids) == len(set(ids)) == 60


async def test_export_failing_mid_way_says_it_stopped_and_how_far(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = searching.run
    calls = 0

    async def failing(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ServiceUnavailable(
                "Partner Center answered 503 Service Unavailable.", correlation_id="cid-1"
            )
        runtime_, filters, sort, _, cursor = args
        return await real(runtime_, filters, sort, 20, cursor)  # pages of 20

    monkeypatch.setattr(searching, "run", failing)
    with pytest.raises(ServiceUnavailable) as info:
        await exchange.export(runtime, searching.Filters())
    text = str(info.value)
    assert "The export stopped after 40 referral(s) in 2 page(s)" in text
    assert "Nothing was exported" in text and "503" in text and "cid-1" in text


# --- writes -----------------------------------------------------------------------------------------


async def _confirmed(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    first = await call(client, tool, args)
    assert first["status"] == "confirmation_required", first
    return await call(client, tool, {**args, "confirm_token": first["confirm_token"]})


async def _active(sandbox: Sandbox) -> dict[str, Any]:
    return (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]


async def test_a_write_answered_503_behind_a_lagging_replica_is_applied(
    client: Client, sandbox: Sandbox
) -> None:
    target = await _active(sandbox)
    args = {"referral_id": target["id"], "changes": [{"field": "deal value", "value": 424242}]}
    first = await call(client, "update_field", args)
    _faults(sandbox, fail_after_write=1, lagging_reads=1)
    done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert done["status"] == "applied", done
    assert "safe to try again" not in str(done)
    assert (await sandbox.get(target["id"]))["details"]["dealValue"] == 424242


async def test_a_landed_append_behind_a_long_lag_is_in_doubt_never_safe_to_retry(
    client: Client, sandbox: Sandbox
) -> None:
    target = await _active(sandbox)
    member = {"first_name": "Ria", "last_name": "Sen", "email": "ria.sen@partner.example"}
    args = {"referral_id": target["id"], "changes": [{"field": "add sales team member", "value": member}]}
    first = await call(client, "update_field", args)
    _faults(sandbox, fail_after_write=1, lagging_reads=10)
    done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert done["status"] == "in_doubt", done
    assert "safe to try again" not in str(done)


async def test_a_retried_notes_append_never_writes_the_text_twice(client: Client, sandbox: Sandbox) -> None:
    target = await _active(sandbox)
    text = "Called the customer; demo on Friday."
    args = {"referral_id": target["id"], "changes": [{"field": "notes", "value": text, "mode": "append"}]}
    first = await call(client, "update_field", args)
    _faults(sandbox, fail_after_write=1, lagging_reads=10)
    done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    assert done["status"] in ("in_doubt", "failed", "applied")
    _faults(sandbox, lagging_reads=0)
    sandbox.app.state.sandbox.faults.clear()
    notes = (await sandbox.get(target["id"]))["details"]["notes"]
    assert notes.count(text) == 1  # landed once
    # the person retries: the text is there already, nothing is written
    msg = await call_error(client, "update_field", args)
    assert "not added twice" in msg
    assert (await sandbox.get(target["id"]))["details"]["notes"].count(text) == 1


async def test_notes_append_with_another_change_skips_only_the_notes(
    client: Client, sandbox: Sandbox
) -> None:
    target = await _active(sandbox)
    text = "Budget approved."
    once = {"referral_id": target["id"], "changes": [{"field": "notes", "value": text, "mode": "append"}]}
    assert (await _confirmed(client, "update_field", once))["status"] == "applied"
    both = {
        "referral_id": target["id"],
        "changes": [
            {"field": "notes", "value": text, "mode": "append"},
            {"field": "deal value", "value": 999},
        ],
    }
    first = await call(client, "update_field", both)
    assert any("not added again" in w for w in first["preview"]["warnings"])
    assert (await _confirmed(client, "update_field", both))["status"] == "applied"
    notes = (await sandbox.get(target["id"]))["details"]["notes"]
    assert notes.count(text) == 1


async def test_a_page_cap_below_the_limit_keeps_paging_by_skip(client: Client, runtime: Runtime) -> None:
    """$top=20 answered in pages of 10 whose next links end at 20: the search goes on by $skip."""
    await _learn(runtime)
    first = await call(client, "search_referrals", {"limit": 20})
    assert len(first["rows"]) == 20 and first.get("next_cursor")
    seen = {r["id"] for r in first["rows"]}
    cursor = first["next_cursor"]
    while cursor:
        page = await call(client, "search_referrals", {"cursor": cursor, "limit": 20})
        ids = {r["id"] for r in page["rows"]}
        assert not ids & seen
        seen |= ids
        cursor = page.get("next_cursor")
    assert len(seen) == 60


async def test_a_sort_done_here_lists_a_referral_repeated_across_pages_once(
    client: Client, sandbox: Sandbox, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's next page starts one row early (a referral moved while paging)."""
    from pcref_mcp.partner_center.client import PartnerCenterClient

    real = PartnerCenterClient.list_page
    last: list[Any] = []

    async def shifting(self: Any, query: Any = None, *, next_link: str | None = None) -> Any:
        page = await real(self, query, next_link=next_link)
        if next_link is not None and last:
            page.value.insert(0, last[-1])  # the previous page's last row, again
        if page.value:
            last.append(page.value[-1])
        return page

    monkeypatch.setattr(PartnerCenterClient, "list_page", shifting)
    _faults(sandbox, ignore_orderby=True)  # the probe sees it: the sort is done here
    out = await call(client, "search_referrals", {"sort": "value_desc", "limit": 100})
    ids = [r["id"] for r in out["rows"]]
    assert len(ids) == len(set(ids)) == 60
