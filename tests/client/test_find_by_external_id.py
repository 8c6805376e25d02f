"""Finding a referral by externalReferenceId on any service (issue 12, point 2): the filter is not
documented, so where it is refused the client reads the newest referrals the documented way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pcref_mcp.partner_center import PartnerCenterClient, StaticTokenProvider
from pcref_mcp.partner_center.client import RECENT_SCAN_PAGES
from pcref_mcp.partner_center.odata import eq
from pcref_mcp.partner_center.recent import RecentScan

pytestmark = pytest.mark.anyio

BASE = "https://pc.test/v1.0/engagements/"


def _docs(n: int, **mine: str) -> list[dict[str, Any]]:
    docs = [{"id": f"R-{i}", "externalReferenceId": f"CRM-{i}", "eTag": '"e"'} for i in range(n)]
    for index, ref in mine.items():
        docs[int(index.removeprefix("at"))]["externalReferenceId"] = ref
    return docs


class Service:
    """Newest first, pages of ``page`` items; ``filter_mode``: "refuse" (400), "ignore" or "honour"."""

    def __init__(self, docs: list[dict[str, Any]], filter_mode: str, page: int = 10) -> None:
        self.docs, self.filter_mode, self.page = docs, filter_mode, page
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        flt = params.get("$filter")
        docs = self.docs
        if flt is not None:
            if self.filter_mode == "refuse":
                return httpx.Response(
                    400, json={"error": {"code": "invalidRequest", "message": "not supported"}}
                )
            if self.filter_mode == "honour":
                want = flt.split("'")[1]
                docs = [d for d in docs if d["externalReferenceId"] == want]
        start = int(params.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": docs[start : start + self.page]}
        if start + self.page < len(docs):
            body["@odata.nextLink"] = f"{BASE}referrals?$skiptoken={start + self.page}"
        return httpx.Response(200, json=body)


def _client(service: Service) -> PartnerCenterClient:
    return PartnerCenterClient(BASE, StaticTokenProvider("t"), transport=httpx.MockTransport(service))


async def test_refused_filter_falls_back_to_the_newest_and_is_remembered() -> None:
    service = Service(_docs(25, at13="mine"), "refuse")
    async with _client(service) as client:
        assert [r.id for r in await client.find_by_external_id("mine")] == ["R-13"]
        assert [r.id for r in await client.find_by_external_id("mine")] == ["R-13"]
    filters = [r for r in service.requests if "$filter" in r.url.params]
    assert len(filters) == 1  # asked once, then remembered
    newest = [r for r in service.requests if r.url.params.get("$orderby") == "createdDateTime desc"]
    assert len(newest) == 2  # documented order, the same way both times


async def test_a_service_that_ignores_the_filter_cannot_fool_the_client() -> None:
    service = Service(_docs(5, at2="mine"), "ignore")
    async with _client(service) as client:
        assert [r.id for r in await client.find_by_external_id("mine")] == ["R-2"]
        assert await client.find_by_external_id("nobody") == []


async def test_the_fallback_reads_a_bounded_number_of_pages() -> None:
    service = Service(_docs(100, at95="old"), "refuse", page=10)
    async with _client(service) as client:
        assert await client.find_by_external_id("old") == []  # beyond the newest pages: not found yet
    reads = [r for r in service.requests if "$filter" not in r.url.params]
    assert len(reads) == RECENT_SCAN_PAGES


async def test_an_honoured_filter_is_one_request() -> None:
    service = Service(_docs(30, at7="mine"), "honour")
    async with _client(service) as client:
        assert [r.id for r in await client.find_by_external_id("mine")] == ["R-7"]
    assert len(service.requests) == 1


async def test_one_tasks_look_ups_share_one_read_of_the_newest() -> None:
    """Two look-ups of one task with the same :class:`RecentScan` (a create's: itself, a duplicate)
    match the same pages, read once; each match is still its own, and another task reads afresh."""
    service = Service(_docs(40, at3="mine", at35="beyond"), "refuse", page=10)

    def newest() -> int:
        return len([r for r in service.requests if "$filter" not in r.url.params])  # with next links

    async with _client(service) as client:
        recent = RecentScan()
        assert [r.id for r in await client.find_by_external_id("mine", recent=recent)] == ["R-3"]
        assert newest() == RECENT_SCAN_PAGES
        by_name = await client.find(eq("name", "x"), lambda r: r.id in ("R-5", "R-29"), recent=recent)
        assert [r.id for r in by_name] == ["R-5", "R-29"]
        assert await client.find_by_external_id("beyond", recent=recent) == []  # the same three pages
        assert newest() == RECENT_SCAN_PAGES  # read once for the three look-ups
        assert [r.id for r in await client.find_by_external_id("mine", recent=RecentScan())] == ["R-3"]
        assert [r.id for r in await client.find_by_external_id("mine")] == ["R-3"]
        assert newest() == 3 * RECENT_SCAN_PAGES  # a new task, or none, reads afresh
