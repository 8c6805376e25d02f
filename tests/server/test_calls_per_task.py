"""API calls per task, counted where they land (the sandbox's own request counters): each figure of
docs/benchmarks.md section 4 at its minimum, so a regression (an extra probe, a re-read page) fails
here rather than in a benchmark nobody reads. Counts are deterministic, unlike times."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from tests.profiles import STRICT
from tests.server.conftest import START, call

pytestmark = pytest.mark.anyio

SIZE = 1000
THURSDAY = START.replace(day=5, hour=15)  # "this week" spans three and a half days of activity


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Client, Any]]:
    """A fresh process's view: a sandbox of 1,000 referrals, a runtime that has learnt nothing yet."""
    app = create_app(
        SandboxConfig(
            db_path=tmp_path / "sandbox.db", seed_size=SIZE, clock=ManualClock(THURSDAY), rate_limit=0
        )
    )
    settings = Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db")
    runtime = Runtime(settings, sandbox_app=app)
    try:
        async with Client(build_server(settings, runtime=runtime), raise_exceptions=True) as client:
            yield client, app
    finally:
        await runtime.aclose()
        app.state.sandbox.store.close()


def calls(app: Any) -> int:
    return int(sum(app.state.sandbox.requests.values()))


def reset(app: Any) -> None:
    state = app.state.sandbox
    with state._lock:
        state.requests.clear()


async def page_through(client: Client, filters: dict[str, Any] | None = None) -> tuple[set[str], int]:
    seen, tool_calls, _ = await page_through_totals(client, filters)
    return seen, tool_calls


async def page_through_totals(
    client: Client, filters: dict[str, Any] | None = None
) -> tuple[set[str], int, list[int | None]]:
    seen: set[str] = set()
    totals: list[int | None] = []
    tool_calls, cursor = 0, None
    while True:
        args: dict[str, Any] = {"limit": 100, **({"filters": filters} if filters else {})}
        out = await call(client, "search_referrals", {**args, **({"cursor": cursor} if cursor else {})})
        tool_calls += 1
        seen.update(r["id"] for r in out["rows"])
        totals.append(out.get("total"))
        cursor = out.get("next_cursor")
        if not cursor:
            return seen, tool_calls, totals


async def test_a_pipeline_summary_costs_one_call_per_hundred_referrals_and_no_probe(
    setup: tuple[Client, Any],
) -> None:
    """Paging through everything needs only documented features ($top, the next links, the documented
    order, checked on every page read): nothing is probed, one call per page of 100."""
    client, app = setup
    n = app.state.sandbox.store.count()
    seen, tool_calls, totals = await page_through_totals(client)
    assert len(seen) == n == SIZE
    # $count=true rides on the real requests: its answer is a total only where it shows it is not
    # the page's own count (the strict profile's per-page count never does); the last page knows
    assert totals == ([None] * (len(totals) - 1) if STRICT else [n] * (len(totals) - 1)) + [n]
    assert tool_calls == math.ceil(n / 100)
    assert calls(app) == math.ceil(n / 100)


async def test_one_referral_costs_one_call(setup: tuple[Client, Any]) -> None:
    client, app = setup
    rid = app.state.sandbox.store.ids_where("1", ())[0]
    await call(client, "get_referral", {"referral_id": rid})
    assert calls(app) == 1


async def test_a_filtered_task_learns_only_the_feature_it_needs_once_then_costs_its_minimum(
    setup: tuple[Client, Any],
) -> None:
    """ "Active incoming updated this week": status and direction are documented; the date range is
    probed the first time (see it exclude a range no referral is in, read a sample, see it keep the
    sample's own range: 3 calls; 1 where the service refuses it), never again in this process."""
    client, app = setup
    state = app.state.sandbox
    today = state.clock.now().date()
    monday = today - timedelta(days=today.weekday())
    filters = {"status": ["Active"], "direction": "Incoming", "updated_from": monday.isoformat()}
    matches = state.store.count(
        "status = ? AND direction = ? AND updated_date_time >= ?",
        ("Active", "Incoming", f"{monday}T00:00:00"),
    )
    documented = state.store.count("status = ? AND direction = ?", ("Active", "Incoming"))
    assert 0 < matches < documented
    # strict: the service refuses the range, so it is applied here over the documented matches
    minimum = math.ceil(documented / 100) if STRICT else max(1, math.ceil(matches / 100))
    probe = 1 if STRICT else 3

    seen, _ = await page_through(client, filters)
    assert len(seen) == matches
    assert calls(app) == minimum + probe

    reset(app)
    seen, _ = await page_through(client, filters)
    assert len(seen) == matches
    assert calls(app) == minimum


async def test_a_small_page_learns_skip_and_count_once_then_costs_one_call_a_page(
    setup: tuple[Client, Any],
) -> None:
    """A page smaller than the service's own asks for just its rows ($top with $skip), which needs
    $skip and @odata.count learnt (two requests each, once); after that, one call per page."""
    client, app = setup
    first = await call(client, "search_referrals", {"limit": 20})
    assert calls(app) == 1 + 2 + 2
    reset(app)
    second = await call(client, "search_referrals", {"cursor": first["next_cursor"]})
    assert calls(app) == 1
    assert not {r["id"] for r in first["rows"]} & {r["id"] for r in second["rows"]}
    assert first.get("total") == (None if STRICT else SIZE)  # strict: the count is the page's


def _new_referral(name: str) -> dict[str, Any]:
    return {
        "referral": {
            "name": name,
            "customer_name": "Fabrikam Retail GmbH",
            "customer_country": "DE",
            "customer_city": "Berlin",
            "deal_kind": "partner_led",
            "customer_consent_to_contact": True,
            "deal_value": 250000,
            "currency": "EUR",
            "closing_date": "2027-03-31",
            "products": ["Azure"],
            "customer_contacts": [
                {"first_name": "Ana", "last_name": "Weber", "email": "ana@fabrikam.example"}
            ],
        }
    }


async def test_a_create_reads_the_newest_referrals_once_for_both_its_look_ups(
    setup: tuple[Client, Any],
) -> None:
    """A create looks itself up (external reference id) and checks for a duplicate (name and customer).
    Where the service refuses those filters (strict: a 400 each, learnt once), both match the newest
    referrals read the documented way, one scan of three pages for the two; the look-up just before
    sending reads afresh. Where the service filters (lenient), one request each. Then "who we are"
    (one filtered page, once)."""
    client, app = setup
    scan = 3  # RECENT_SCAN_PAGES: 1,000 referrals fill more than three pages
    one_lookup = scan if STRICT else 1  # strict: one scan for both look-ups
    both_lookups = scan if STRICT else 2
    learn = 2 if STRICT else 0  # the two refused filters, learnt once
    first = await call(client, "create_referral", _new_referral("Data platform"))
    assert first["status"] == "confirmation_required"
    assert calls(app) == learn + both_lookups + 1
    reset(app)
    second = await call(client, "create_referral", _new_referral("Another platform"))
    assert second["status"] == "confirmation_required"
    assert calls(app) == both_lookups
    reset(app)
    done = await call(
        client, "create_referral", {**_new_referral("Data platform"), "confirm_token": first["confirm_token"]}
    )
    assert done["status"] == "applied"
    assert calls(app) == both_lookups + one_lookup + 1  # the plan again, the fresh look-up, the POST
