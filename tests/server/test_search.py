"""search_referrals and the connector pair as people ask: any case, names for codes, scalar or list,
"Closed/Won", the newer filters; what the service cannot do is done here and said; the cursor never
skips. Runs against both sandbox profiles (PCREF_SANDBOX_PROFILE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.partner_center.capabilities import Capabilities
from pcref_mcp.referrals import when
from pcref_mcp.referrals.lifecycle import wire_time
from pcref_mcp.server import search as searching
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.server.search import paging
from pcref_mcp.server.search.answer import _leans_on_probed
from pcref_mcp.server.search.cursor import CursorSigner
from pcref_mcp.server.tools import UNTRUSTED
from tests.server.conftest import START, Sandbox, call, call_error

pytestmark = pytest.mark.anyio


async def everything(sandbox: Sandbox) -> list[dict[str, Any]]:
    return await sandbox.find("id ne null", top=1000)


async def ids_of(client: Client, filters: dict[str, Any], **args: Any) -> tuple[set[str], dict[str, Any]]:
    """All ids a search finds (following cursors) and its first answer."""
    out = await call(client, "search_referrals", {"filters": filters, "limit": 100, **args})
    first, found = out, {r["id"] for r in out["rows"]}
    while out.get("next_cursor"):
        out = await call(client, "search_referrals", {"cursor": out["next_cursor"]})
        found |= {r["id"] for r in out["rows"]}
    return found, first


def where(docs: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {d["id"] for d in docs if test(d)}


# --- reading the filters as people write them ---------------------------------------------------


async def test_text_is_case_insensitive(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    customer = docs[0]["customerProfile"]["name"]
    word = customer.split()[0].lower()
    found, _ = await ids_of(client, {"text": word})
    expected = where(
        docs,
        lambda d: any(
            word in (v or "").lower()
            for v in (d.get("name"), d["customerProfile"].get("name"), (d.get("details") or {}).get("notes"))
        ),
    )
    assert found == expected and docs[0]["id"] in found
    upper, _ = await ids_of(client, {"customer_contains": customer.upper()})
    assert docs[0]["id"] in upper


@pytest.mark.parametrize(
    ("given", "code"), [("UK", "GB"), ("Germany", "DE"), ("holland", "NL"), ("gb", "GB")]
)
async def test_country_names_and_aliases(client: Client, sandbox: Sandbox, given: str, code: str) -> None:
    docs = await everything(sandbox)
    found, out = await ids_of(client, {"country": given})
    assert found == where(docs, lambda d: d["customerProfile"]["address"]["country"] == code) != set()
    if given.upper() != code:
        assert f"country {given!r} as {code}" in out["note"]


async def test_unknown_country_is_refused_naming_the_code(client: Client) -> None:
    msg = await call_error(client, "search_referrals", {"filters": {"country": "Germny"}})
    assert "'DE'" in msg and "country" in msg


async def test_scalar_or_list_for_multi_value_filters(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    scalar, _ = await ids_of(client, {"status": "Closed"})
    listed, _ = await ids_of(client, {"status": ["closed"]})
    assert scalar == listed == where(docs, lambda d: d["status"] == "Closed") != set()
    both, _ = await ids_of(client, {"country": ["UK", "DE"], "currency": ["gbp", "Euro"]})
    assert both == where(
        docs,
        lambda d: (
            d["customerProfile"]["address"]["country"] in ("GB", "DE")
            and (d.get("details") or {}).get("currency") in ("GBP", "EUR")
        ),
    )


@pytest.mark.parametrize("given", ["Closed/Won", "closed - won", "won", "Won"])
async def test_status_in_the_form_rows_show_reads_as_status_and_substatus(
    client: Client, sandbox: Sandbox, given: str
) -> None:
    docs = await everything(sandbox)
    found, out = await ids_of(client, {"status": given})
    assert found == where(docs, lambda d: (d["status"], d["substatus"]) == ("Closed", "Won")) != set()
    assert all(r["status"] == "Closed/Won" for r in out["rows"])
    # read by the one input reader (read_as) or by search itself (note): either way the answer says so
    said = " ".join([*out.get("read_as", []), out.get("note", "")])
    assert "status ['Closed'] and substatus ['Won']" in said or "as status Closed + substatus Won" in said


async def test_paired_and_plain_statuses_together(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    found, _ = await ids_of(client, {"status": ["Closed/Won", "Active"]})
    assert found == where(docs, lambda d: d["status"] == "Active" or d["substatus"] == "Won")


async def test_impossible_status_pair_is_refused_with_the_allowed_values(client: Client) -> None:
    result = await client.call_tool("search_referrals", {"filters": {"status": "Active/Won"}})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "status" in text


async def test_registration_status_sales_stage_and_currency(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    found, _ = await ids_of(client, {"registration_status": ["actionrequired", "ReviewPending"]})
    assert found == where(docs, lambda d: d.get("registrationStatus") in ("ActionRequired", "ReviewPending"))
    assert found
    found, _ = await ids_of(client, {"sales_stage": "propose"})
    assert found == where(docs, lambda d: d.get("salesStage") == "Propose") != set()
    found, _ = await ids_of(client, {"currency": "eur"})
    assert found == where(docs, lambda d: (d.get("details") or {}).get("currency") == "EUR") != set()


async def test_expiring_within_days(
    client: Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(when, "now", lambda: START)
    docs = await everything(sandbox)

    def expiring(d: dict[str, Any], days: int) -> bool:
        expires = wire_time(d.get("expirationDateTime")) or (
            wire_time(d["createdDateTime"]) + timedelta(days=14)  # type: ignore[operator]
        )
        return (
            d["direction"] == "Incoming"
            and d["status"] == "New"
            and START <= expires <= START + timedelta(days)
        )

    for days in (3, 14):
        found, out = await ids_of(client, {"expiring_within_days": days})
        assert found == where(docs, lambda d, n=days: expiring(d, n)), days  # type: ignore[misc]
        assert f"expiring within {days} days" in out["note"]  # always checked here
    assert found  # the seed has some within 14 days
    msg = await call_error(client, "search_referrals", {"filters": {"expiring_within_days": 30}})
    assert "expiring_within_days" in msg


async def test_empty_result_names_the_filters_and_what_to_relax(client: Client) -> None:
    out = await call(
        client, "search_referrals", {"filters": {"text": "no such words anywhere", "status": "New"}}
    )
    assert out["rows"] == [] and out.get("total") == 0
    note = out["note"]
    assert "No referral matches all of" in note
    assert "text 'no such words anywhere'" in note and "status New" in note
    assert "To widen:" in note and "drop it" in note


async def test_bad_ranges_are_refused_before_anything_is_sent(client: Client) -> None:
    msg = await call_error(
        client, "search_referrals", {"filters": {"created_from": "2026-05-01", "created_to": "2026-04-01"}}
    )
    assert "created_to 2026-04-01 is before created_from 2026-05-01" in msg
    msg = await call_error(client, "search_referrals", {"filters": {"min_value": 10, "max_value": 5}})
    assert "min_value 10 is above max_value 5" in msg


# --- done here when the service cannot ---------------------------------------------------------


async def test_what_the_service_cannot_do_is_done_here_and_said(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    found, out = await ids_of(client, {"currency": "EUR", "min_value": 50000}, sort="value_desc")
    assert found == where(
        docs,
        lambda d: (
            (d.get("details") or {}).get("currency") == "EUR"
            and ((d.get("details") or {}).get("dealValue") or 0) >= 50000
        ),
    )
    values = [r["value"] for r in out["rows"]]
    assert values == sorted(values, reverse=True)
    if sandbox.strict:
        assert "Done here, not by the service" in out["note"]
        assert "currency EUR" in out["note"] and "sort value_desc" in out["note"]
        assert "scanned" in out["note"]
    else:
        assert "note" not in out


async def test_documented_filters_go_to_the_service_in_both_profiles(
    client: Client, sandbox: Sandbox
) -> None:
    out = await call(client, "search_referrals", {"filters": {"direction": "Incoming", "status": "New"}})
    assert "note" not in out  # nothing needed doing here


@pytest.fixture
def bounded_scan(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> None:
    """Only the documents' features and pages of 10, so a call scans at most 2 pages (20 referrals)."""
    runtime._capabilities = Capabilities.documented(runtime.client.base_url)
    sandbox.app.state.sandbox.config.page_cap = 10
    monkeypatch.setattr(paging, "MAX_SCAN_PAGES", 2)


@pytest.mark.usefixtures("bounded_scan")
async def test_a_bounded_scan_continues_with_the_cursor(client: Client, sandbox: Sandbox) -> None:
    # 'currency' is filtered here, 2 pages per call
    docs = await everything(sandbox)
    expected = where(docs, lambda d: (d.get("details") or {}).get("currency") == "JPY")
    seen: list[str] = []
    args: dict[str, Any] = {"filters": {"currency": "JPY"}, "limit": 100}
    calls = 0
    while True:
        out = await call(client, "search_referrals", args)
        calls += 1
        seen += [r["id"] for r in out["rows"]]
        assert "scanned 20 referrals in 2 pages" in out["note"] or not out.get("next_cursor")
        if not out.get("next_cursor"):
            break
        args = {"cursor": out["next_cursor"]}
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert calls >= 3


@pytest.mark.usefixtures("bounded_scan")
async def test_a_client_sort_over_a_bounded_scan_says_it_is_partial(client: Client) -> None:
    out = await call(client, "search_referrals", {"sort": "value_desc", "limit": 5})
    assert "Sorted only the first 20 referrals" in out["note"]
    assert "total" not in out
    values = [r["value"] for r in out["rows"]]
    assert values == sorted(values, reverse=True)


# --- the cursor never skips ---------------------------------------------------------------------


class IgnoresTop(httpx.AsyncBaseTransport):
    """A service that ignores $top and pages by its own size (and records what was asked)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        params = [(k, v) for k, v in request.url.params.multi_items() if k != "$top"]
        request.url = request.url.copy_with(params=params)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def ignoring_top(settings: Settings, sandbox: Sandbox) -> AsyncIterator[tuple[Client, IgnoresTop]]:
    sandbox.app.state.sandbox.config.page_cap = 25
    transport = IgnoresTop(sandbox.app)
    rt = Runtime(settings, transport=transport)
    async with Client(build_server(settings, runtime=rt), raise_exceptions=True) as c:
        yield c, transport
    await rt.aclose()


@pytest.mark.parametrize("filters", [{}, {"currency": "EUR"}, {"text": "a"}], ids=["service", "scan", "text"])
async def test_cursor_resumes_inside_a_page_when_top_is_ignored(
    ignoring_top: tuple[Client, IgnoresTop], sandbox: Sandbox, filters: dict[str, Any]
) -> None:
    client, _ = ignoring_top
    seen: list[str] = []
    args: dict[str, Any] = {"filters": filters, "limit": 10, "sort": "created_asc"}
    for _ in range(40):
        out = await call(client, "search_referrals", args)
        assert len(out["rows"]) <= 10
        seen += [r["id"] for r in out["rows"]]
        if not out.get("next_cursor"):
            break
        args = {"cursor": out["next_cursor"]}
    docs = await everything(sandbox)
    expected = [
        d
        for d in docs
        if searching.plan(
            searching.Filters.model_validate(filters), "created_asc", Capabilities.documented("x")
        ).matches(d)
    ]
    assert len(seen) == len(set(seen)) == len(expected)
    created = {d["id"]: d["createdDateTime"] for d in docs}
    assert [created[i] for i in seen] == sorted(created[i] for i in seen)


async def test_requests_encode_spaces_as_percent_20(ignoring_top: tuple[Client, IgnoresTop]) -> None:
    client, transport = ignoring_top
    await call(client, "search_referrals", {"filters": {"direction": "Incoming", "text": "blue yonder"}})
    listing = [u for u in transport.urls if "/referrals?" in u]
    assert listing and all("+" not in u for u in listing)
    assert any("%20eq%20" in u for u in listing)


async def test_search_falls_back_to_documented_features_when_probing_fails(
    client: Client, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    from pcref_mcp.errors import ServiceUnavailable

    async def broken(*_: Any, **__: Any) -> Capabilities:
        raise ServiceUnavailable("probe failed", status=503)

    monkeypatch.setattr(runtime, "query_capabilities", broken)
    out = await call(client, "search_referrals", {"filters": {"text": "a"}, "limit": 5})
    assert "Done here, not by the service" in out["note"]


# --- the connector pair -------------------------------------------------------------------------


async def test_connector_titles_are_quoted_and_fetch_takes_the_url(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    target = docs[0]
    word = target["customerProfile"]["name"].split()[0].lower()
    hits = (await call(client, "search", {"query": word}))["results"]
    hit = next(h for h in hits if h["id"] == target["id"])
    assert hit["url"] == f"referral://{target['id']}"
    assert f"«{target['name']}»" in hit["title"] and f"«{target['customerProfile']['name']}»" in hit["title"]
    for given in (hit["url"], target["id"], f"  {hit['url']}  "):
        doc = await call(client, "fetch", {"id": given})
        assert doc["id"] == target["id"] and doc["url"] == hit["url"]
        assert doc["title"] == hit["title"]
        assert json.loads(doc["text"])["name"] == f"«{target['name']}»"


@pytest.mark.parametrize(
    "given", ["referral://", "https://evil.example/referrals/x", "referral://a/b", "a?b"]
)
async def test_fetch_refuses_what_is_not_an_id_or_our_url(client: Client, given: str) -> None:
    msg = await call_error(client, "fetch", {"id": given})
    assert "referral://<id>" in msg
    assert "/v1.0/" not in msg  # never the service path


async def test_fetch_of_an_unknown_id_names_it(client: Client) -> None:
    msg = await call_error(client, "fetch", {"id": "referral://00000000-0000-0000-0000-000000000000"})
    assert "not found" in msg.lower() or "00000000" in msg


async def test_connector_search_warns_about_others_text(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("search", "fetch", "search_referrals"):
        assert UNTRUSTED in (tools[name].description or ""), name


async def test_connector_search_with_blank_query_lists_newest(client: Client) -> None:
    hits = (await call(client, "search", {"query": "  "}))["results"]
    assert 0 < len(hits) <= 20


def test_status_words_table() -> None:
    assert searching.read_states("Closed/Won", None) == (
        ["Closed"],
        ["Won"],
        ["status 'Closed/Won' as status Closed + substatus Won"],
    )
    assert searching.read_states(["New", "lost"], None)[:2] == (
        ["New", "Closed"],
        ["Lost", "Pending", "Received"],
    )
    assert searching.read_states("Open", None)[0] == ["New", "Active"]
    assert searching.read_states("Opn", None)[0] == ["Opn"]  # left for validation to refuse
    assert searching.read_states("Active", "Accepted") == (["Active"], "Accepted", [])


def test_cursor_state_is_signed(tmp_path: Path) -> None:
    signer = CursorSigner(b"k" * 32)
    sealed = signer.seal({"f": {}, "s": "updated_desc", "l": 5, "src": {"link": "https://x/"}, "at": 3})
    assert signer.open(sealed)["at"] == 3
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(Exception, match="cursor"):
        signer.open(tampered)
    with pytest.raises(Exception, match="cursor"):
        CursorSigner(b"o" * 32).open(sealed)


def test_plan_splits_by_capability() -> None:
    filters = searching.Filters.model_validate({"status": ["New", "Active"], "currency": "EUR", "text": "x"})
    everything_ = searching.plan(filters, "value_desc", Capabilities.everything("x"), at=datetime(2026, 1, 1))
    assert everything_.pure and everything_.orderby == "details/dealValue desc"
    documented = searching.plan(filters, "value_desc", Capabilities.documented("x"), at=datetime(2026, 1, 1))
    assert [c.label for c in documented.server] == []  # two statuses need 'or'
    assert {c.label for c in documented.local} == {"status New or Active", "currency EUR", "text 'x'"}
    assert documented.sort_key is not None and documented.orderby is None
    assert documented.missing == ["or", "contains", "tolower", "other_fields", "orderby_other"]


async def test_open_reads_as_new_or_active(client: Client, sandbox: Sandbox) -> None:
    docs = await everything(sandbox)
    found, out = await ids_of(client, {"status": "open"})
    assert found == where(docs, lambda d: d["status"] in ("New", "Active")) != set()
    assert "status 'open' as New or Active" in out["note"]


async def test_a_feature_the_service_stopped_answering_is_learnt_again(
    settings: Settings, tmp_path: Path
) -> None:
    """Cached capabilities say 'contains' works; the (strict) service now refuses it: probe again."""
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.sandbox.clock import ManualClock

    app = create_app(
        SandboxConfig(
            db_path=tmp_path / "strict.db", clock=ManualClock(START), rate_limit=0, profile="strict"
        )
    )
    rt = Runtime(settings, sandbox_app=app)
    rt._capabilities = Capabilities.everything(rt.client.base_url)  # learnt earlier, no longer true
    async with Client(build_server(settings, runtime=rt), raise_exceptions=True) as c:
        out = await call(c, "search_referrals", {"filters": {"text": "a"}, "limit": 5})
        assert "Done here, not by the service" in out["note"] and out["rows"]
        assert rt._capabilities is not None and not rt._capabilities.supports("contains")
    await rt.aclose()


def test_only_queries_that_lean_on_learnt_features_are_retried() -> None:
    everything_ = Capabilities.everything("x")
    documented = Capabilities.documented("x")
    plain = searching.Filters.model_validate({"status": "New", "direction": "Incoming"})
    text = searching.Filters.model_validate({"text": "a"})
    assert not _leans_on_probed(searching.plan(plain, "created_desc", documented), documented)
    assert _leans_on_probed(searching.plan(text, "created_desc", everything_), everything_)
    assert _leans_on_probed(searching.plan(plain, "value_desc", everything_), everything_)
    assert _leans_on_probed(searching.plan(plain, "created_desc", everything_), everything_)  # $skip


async def test_a_cursor_keeps_its_search_and_takes_a_new_page_size(client: Client) -> None:
    first = await call(client, "search_referrals", {"filters": {"status": "Active"}, "limit": 5})
    cursor = first["next_cursor"]
    more = await call(client, "search_referrals", {"cursor": cursor, "limit": 7})
    assert len(more["rows"]) == 7 and all(r["status"].startswith("Active/") for r in more["rows"])
    assert not {r["id"] for r in more["rows"]} & {r["id"] for r in first["rows"]}
    same = await call(client, "search_referrals", {"cursor": cursor, "filters": {"status": ["active"]}})
    assert [r["id"] for r in same["rows"]][:5] == [r["id"] for r in more["rows"]][:5]
    for other in ({"filters": {"status": "New"}}, {"sort": "value_desc"}):
        msg = await call_error(client, "search_referrals", {"cursor": cursor, **other})
        assert "cannot change the filters or the sort" in msg


@pytest.mark.parametrize(
    ("filters", "says"),
    [
        ({"text": "   "}, "text is empty"),
        ({"customer_contains": "x" * 201}, "customer_contains is longer than 200 characters"),
        ({"currency": ["EUR", " "]}, "currency ' ' is not a currency"),
        ({"currency": "dollars of narnia"}, "is not an ISO 4217 currency code"),
        ({"status": "Active/Won"}, "status"),
        ({"expiring_within_days": 0}, "expiring_within_days"),
    ],
)
async def test_bad_filter_values_are_refused_with_what_to_do(
    client: Client, filters: dict[str, Any], says: str
) -> None:
    msg = await call_error(client, "search_referrals", {"filters": filters})
    assert says in msg
