"""The change feed is complete whatever the service does with ``$orderby``, ``$skip``,
``@odata.count`` and next links, or it says how far it read and why (issue 20, item 1).

Each case runs the real client over a mock transport that behaves like one plausible service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pcref_mcp.partner_center import PartnerCenterClient, RateLimiter, StaticTokenProvider
from pcref_mcp.partner_center.capabilities import Capabilities
from pcref_mcp.writes.feed import changes_since

pytestmark = pytest.mark.anyio

BASE = "https://pc.test/v1.0/engagements/"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=2)


def _wire(at: datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Service:
    """Referrals listed the way one service might: each switch is a behaviour seen in the wild."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 100
    honour_orderby: bool = True
    honour_skip: bool = True
    next_links: bool = True
    count: str = "total"  # "total", "page" or "none"
    nulls: str = "last"  # where rows without the order field go in a desc order: "last" or "first"
    requests: list[httpx.Request] = field(default_factory=list)

    def add(self, updated: datetime | None, created: datetime | None = None) -> dict[str, Any]:
        created = created or ((updated or NOW) - timedelta(days=30))
        doc = {
            "id": str(uuid.uuid4()),
            "name": f"deal {len(self.docs)}",
            "status": "Active",
            "substatus": "Accepted",
            "createdDateTime": _wire(created),
            "updatedDateTime": _wire(updated),
            "eTag": f'"{uuid.uuid4()}"',
        }
        self.docs.append(doc)
        return doc

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        token = params.get("$skiptoken")
        if token:
            order, position = params.get("order", ""), int(token)
        else:
            order = params.get("$orderby", "") if self.honour_orderby else ""
            position = int(params.get("$skip", "0")) if self.honour_skip else 0
        rows = list(self.docs)  # insertion order: the "default order" of this service
        if order:
            name, _, direction = order.partition(" ")
            dated = [d for d in rows if d.get(name)]
            undated = [d for d in rows if not d.get(name)]
            dated.sort(key=lambda d: str(d[name]), reverse=direction == "desc")
            rows = dated + undated if self.nulls == "last" else undated + dated
        top = min(int(params.get("$top", self.page_size)), self.page_size)
        page = rows[position : position + top]
        body: dict[str, Any] = {"value": page}
        if self.count == "total":
            body["@odata.count"] = len(rows)
        elif self.count == "page":
            body["@odata.count"] = len(page)
        if self.next_links and position + top < len(rows):
            link = httpx.URL(BASE + "referrals", params={"$skiptoken": str(position + top), "order": order})
            body["@odata.nextLink"] = str(link)
        return httpx.Response(200, json=body)


class _Store:
    async def snapshots(self, ids: list[str]) -> dict[str, Any]:
        return {}

    async def remember(self, rows: list[Any]) -> None:
        return None


class _Journal:
    async def recent(self, n: int) -> list[Any]:
        return []


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[PartnerCenterClient]:
    async def no_sleep(_: float) -> None:
        return None

    async with PartnerCenterClient(
        BASE,
        StaticTokenProvider("t"),
        transport=httpx.MockTransport(service.handle),
        limiter=RateLimiter(10_000, 60.0, sleep=no_sleep),
        sleep=no_sleep,
    ) as c:
        yield c


def _estate(service: Service, *, recent: int = 36, old: int = 228) -> set[str]:
    """``recent`` referrals updated since the cut-off, ``old`` before it, interleaved by creation."""
    wanted = set()
    for i in range(recent + old):
        if i % ((recent + old) // recent) == 0 and len(wanted) < recent:
            wanted.add(service.add(NOW - timedelta(hours=i % 40 + 1), NOW - timedelta(days=400 - i))["id"])
        else:
            service.add(SINCE - timedelta(hours=i + 1), NOW - timedelta(days=400 - i))
    assert len(wanted) == recent
    return wanted


def _ids(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines]


async def _feed(client: PartnerCenterClient, caps: Capabilities | None = None) -> Any:
    return await changes_since(client, _Store(), _Journal(), SINCE, caps)  # type: ignore[arg-type]


def _caps(**supported: bool) -> Capabilities:
    base = {name: False for name in Capabilities.everything(BASE).supported}
    return Capabilities(BASE, {**base, **supported}, {}, NOW)


async def test_an_honoured_order_stops_early_and_is_complete(
    client: PartnerCenterClient, service: Service
) -> None:
    wanted = _estate(service)
    got = await _feed(client)
    assert set(_ids(got.referrals)) == wanted and len(got.referrals) == 36
    assert got.incomplete is None and not got.truncated
    by_update = [r for r in service.requests if "updatedDateTime" in str(r.url)]
    assert len(by_update) == 1  # the first page proved the rest older


async def test_an_ignored_orderby_still_finds_every_update(
    client: PartnerCenterClient, service: Service
) -> None:
    wanted = _estate(service)
    service.honour_orderby = False  # rows come by creation: the first one is older than the cut-off
    got = await _feed(client)
    assert set(_ids(got.referrals)) == wanted
    assert got.incomplete is None
    ids = _ids(got.referrals)
    assert len(ids) == len(set(ids))


async def test_an_ignored_orderby_seen_by_the_probe_reads_everything(
    client: PartnerCenterClient, service: Service
) -> None:
    # the first page happens to be in order and older: only the probe's finding keeps the feed reading
    service.page_size = 5
    for i in range(5):
        service.add(SINCE - timedelta(hours=i + 1))
    late = service.add(NOW - timedelta(hours=1))
    service.honour_orderby = False
    assert _ids((await _feed(client, _caps(order_honoured=True))).referrals) == []  # the trap
    got = await _feed(client, _caps(order_honoured=False))
    assert _ids(got.referrals) == [late["id"]]


async def test_one_row_out_of_order_does_not_cut_the_list(
    client: PartnerCenterClient, service: Service
) -> None:
    wanted = [service.add(NOW - timedelta(hours=i + 1))["id"] for i in range(4)]
    service.add(SINCE - timedelta(days=1))  # 5th: older than the cut-off, out of place
    wanted += [service.add(NOW - timedelta(hours=i + 10))["id"] for i in range(32)]
    for i in range(40):
        service.add(SINCE - timedelta(days=2, hours=i))
    service.honour_orderby = False  # the service keeps this (almost sorted) order
    got = await _feed(client)
    assert set(_ids(got.referrals)) == set(wanted) and len(got.referrals) == 36
    assert got.incomplete is None


async def test_order_broken_only_on_the_last_row_of_a_page_is_still_caught(
    client: PartnerCenterClient, service: Service
) -> None:
    service.page_size = 5
    wanted = [service.add(NOW - timedelta(hours=i + 1))["id"] for i in range(4)]
    service.add(SINCE - timedelta(days=1))  # last row of page one
    wanted += [service.add(NOW - timedelta(hours=i + 10))["id"] for i in range(3)]
    for i in range(10):
        service.add(SINCE - timedelta(days=2, hours=i))
    service.honour_orderby = False
    got = await _feed(client)
    assert set(_ids(got.referrals)) == set(wanted)


@pytest.mark.parametrize("nulls", ["last", "first"])
async def test_referrals_without_update_time_are_judged_by_creation(
    client: PartnerCenterClient, service: Service, nulls: str
) -> None:
    service.nulls = nulls
    wanted = _estate(service, recent=10, old=190)
    new_never_updated = [service.add(None, NOW - timedelta(hours=h))["id"] for h in (3, 5)]
    old_never_updated = [service.add(None, SINCE - timedelta(days=h))["id"] for h in (3, 5)]
    got = await _feed(client)
    ids = _ids(got.referrals)
    assert set(ids) == wanted | set(new_never_updated)
    assert not set(ids) & set(old_never_updated)
    assert got.incomplete is None


async def test_ties_across_a_page_boundary_are_all_listed_once(
    client: PartnerCenterClient, service: Service
) -> None:
    service.page_size = 10
    same = NOW - timedelta(hours=2)
    wanted = {service.add(same)["id"] for _ in range(25)}
    for i in range(30):
        service.add(SINCE - timedelta(hours=i + 1))
    got = await _feed(client)
    ids = _ids(got.referrals)
    assert set(ids) == wanted and len(ids) == 25


async def test_ignored_skip_without_next_links_is_not_read_as_more_rows(
    client: PartnerCenterClient, service: Service
) -> None:
    service.page_size, service.next_links, service.honour_skip = 100, False, False
    wanted = _estate(service, recent=200, old=64)
    service.honour_orderby = False
    got = await _feed(client, _caps(skip=True, count=True))  # the cache says skip works: it no longer does
    ids = _ids(got.referrals)
    assert len(ids) == len(set(ids))  # no duplicates
    assert set(ids) < wanted  # some are missing, and the answer says so
    assert got.truncated and got.incomplete and "$skip seems ignored" in got.incomplete
    assert "read " in got.incomplete


async def test_a_page_sized_count_without_next_links_is_reported_not_trusted(
    client: PartnerCenterClient, service: Service
) -> None:
    service.next_links, service.count = False, "page"
    service.honour_orderby = False
    wanted = _estate(service, recent=100, old=164)
    got = await _feed(client)  # nothing learnt: $skip and @odata.count are not relied on
    assert len(got.referrals) < len(wanted)
    assert (
        got.incomplete and "no next link" in got.incomplete and "$skip is not known to work" in got.incomplete
    )


async def test_verified_skip_without_next_links_reads_to_the_end(
    client: PartnerCenterClient, service: Service
) -> None:
    service.next_links, service.count = False, "page"
    service.honour_orderby = False
    wanted = _estate(service, recent=100, old=164)
    got = await _feed(client, _caps(skip=True))
    assert set(_ids(got.referrals)) == wanted and got.incomplete is None


async def test_a_row_repeated_by_next_links_is_listed_once(
    client: PartnerCenterClient, service: Service
) -> None:
    service.page_size = 10
    wanted = [service.add(NOW - timedelta(hours=i + 1))["id"] for i in range(15)]
    for i in range(10):
        service.add(SINCE - timedelta(hours=i + 1))
    original = service.handle

    def shifting(request: httpx.Request) -> httpx.Response:
        # a referral updated between two pages moves up: page two starts one row earlier
        if request.url.params.get("$skiptoken") == "10":
            request = httpx.Request("GET", str(request.url.copy_set_param("$skiptoken", "9")))
        return original(request)

    service.handle = shifting  # type: ignore[method-assign]
    client._http._transport = httpx.MockTransport(shifting)  # type: ignore[attr-defined]
    got = await _feed(client)
    ids = _ids(got.referrals)
    assert len(ids) == len(set(ids)) == 15 and set(ids) == set(wanted)


async def test_more_than_the_page_budget_says_where_it_stopped(
    client: PartnerCenterClient, service: Service
) -> None:
    service.page_size = 10
    for i in range(150):
        service.add(NOW - timedelta(minutes=i + 1))
    got = await _feed(client)
    assert got.truncated and got.incomplete and "stopped after 10 pages" in got.incomplete
    assert "read 110 referral(s)" in got.incomplete  # 100 by update time, 10 by creation time
    assert len(got.referrals) == 100
