"""Contract tests, client layer: every oddity of issue 12 replayed through PartnerCenterClient.

The fixtures are hand-written in the format ``pcref-mcp doctor --record`` saves, so a recording from a
real tenant drops in next to them (see tests/fixtures/oddities/README.md).
"""

from __future__ import annotations

import json

import httpx
import pytest

from pcref_mcp.errors import (
    InvalidInput,
    PreconditionFailed,
    ResourceModified,
    ServiceError,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center.recording import Exchange, Replay
from pcref_mcp.referrals.models import PatchOperation, ReferralStatus, ReferralSubstatus
from tests.contract.replay import BASE, FIXTURES, TOKEN, client_for, replay

pytestmark = pytest.mark.anyio


def test_every_scenario_has_fixtures() -> None:
    scenarios = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert scenarios >= {
        "odd-page",
        "pascal-case",
        "no-etag",
        "resource-modified",
        "create-504",
        "next-links",
    }
    for path in FIXTURES.glob("*/*.json"):
        Exchange.from_json(json.loads(path.read_text()))  # each one is a valid recording


# --- point 1: reading never fails on one odd referral ---------------------------------------------


async def test_a_page_survives_every_odd_item() -> None:
    async with client_for(replay("odd-page")) as client:
        page = await client.list_page()
    by_id = {r.id: r for r in page.value}
    assert set(by_id) == {"R-ODD", "R-PASCAL", "R-PLAIN"}
    assert page.odata_count == 5  # "5" as text, read as a number
    # the two items that are no referral at all are skipped and said so, never the whole page
    assert len(page.skipped) == 2 and page.note is not None and "2 referral(s) could not be read" in page.note

    odd = by_id["R-ODD"]
    assert odd.mpn_id == "6193175" and odd.invite_context and odd.invite_context.invited_mpn_id == "6193175"
    assert odd.details is not None and odd.details.deal_value == 25000.0
    assert odd.details.closing_date_time == "2022-06-29T23:00:00Z"  # epoch seconds
    assert odd.created_date_time == "2022-02-25T13:49:42.887Z"  # epoch milliseconds
    assert odd.team is not None and len(odd.team) == 1  # one object, read as a list of one
    assert odd.tags == ["hot", "strategic"]
    assert odd.sales_stage == "100"
    solution = odd.details.requirements.solutions[0]  # type: ignore[union-attr,index]
    assert solution.price is None and solution.id == "SOL-6115380-IPC"  # "N/A" left out, the rest kept
    noted = {p.path: p for p in odd.read_problems}
    assert noted["/details/requirements/solutions/0/price"].left_out
    assert not noted["/mpnId"].left_out and "/tags" in noted and "/team" in noted

    assert not by_id["R-PLAIN"].read_problems  # a documented referral carries no notes


async def test_pascal_case_reads_exactly_like_camel_case() -> None:
    async with client_for(replay("pascal-case")) as client:
        referral = await client.get("R-PASCAL")
    assert referral.id == "R-PASCAL" and referral.name == "Northwind PascalCase"
    assert referral.status is ReferralStatus.ACTIVE and referral.substatus is ReferralSubstatus.ACCEPTED
    assert referral.e_tag == '"aa00f96c-0000-1000-0000-6218f27c0000"'
    assert referral.customer_profile and referral.customer_profile.name == "Northwind Traders"
    assert referral.details and referral.details.deal_value == 5000
    assert referral.consent and referral.consent.consent_to_contact is True
    wire = referral.to_wire()
    assert "Status" not in wire and wire["status"] == "Active" and not referral.model_extra
    assert not referral.read_problems  # key case is normalised silently: nothing was guessed


async def test_a_response_that_is_not_an_object_says_what_it_is() -> None:
    transport = Replay(
        [Exchange("GET", "/v1.0/engagements/referrals/X", "", 200, {}, ["not", "an", "object"])]
    )
    async with client_for(transport) as client:
        with pytest.raises(ServiceError, match="cannot be read as a referral: it is a list"):
            await client.get("X")


# --- point 5: stale is stale, and no write without If-Match ---------------------------------------


async def test_409_resource_modified_is_stale_like_412() -> None:
    async with client_for(replay("resource-modified")) as client:
        current = await client.get("R-STALE")
        with pytest.raises(PreconditionFailed) as info:
            await client.patch(
                "R-STALE",
                [PatchOperation(op="replace", path="/details/notes", value="x")],
                etag=current.e_tag,
            )
    assert isinstance(info.value, ResourceModified) and info.value.status == 409
    assert info.value.code == "resourceModified"


async def test_no_etag_anywhere_refuses_the_write_and_sends_nothing() -> None:
    transport = replay("no-etag")
    async with client_for(transport) as client:
        referral = await client.get("R-NOETAG")
        assert referral.e_tag is None
        with pytest.raises(InvalidInput, match="without an ETag") as info:
            await client.patch(
                "R-NOETAG", [{"op": "replace", "path": "/details/notes", "value": "x"}], etag=None
            )
    assert info.value.field == "etag"
    assert [r.method for r in transport.requests] == ["GET"]  # nothing sent


# --- point 2: after an ambiguous failure, say what is known ---------------------------------------


async def test_create_after_504_not_found_yet_is_outcome_unknown() -> None:
    transport = replay("create-504")
    async with client_for(transport) as client:
        with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
            await client.create({"type": "Independent", "externalReferenceId": "CRM-504"})
    text = str(info.value)
    assert "not found yet" in text and "CRM-504" in text and cid in text
    assert "safe to try again" not in text and "NOT created" not in text
    methods = [
        (r.method, r.url.params.get("$filter"), r.url.params.get("$orderby")) for r in transport.requests
    ]
    assert methods.count(("POST", None, None)) == 1  # never re-sent
    # the refused filter was asked once; after that the newest referrals were read the documented way
    assert methods.count(("GET", "externalReferenceId eq 'CRM-504'", None)) == 1
    assert ("GET", None, "createdDateTime desc") in methods


# --- point 4: next links --------------------------------------------------------------------------


async def test_relative_next_links_resolve_and_http_is_refused() -> None:
    from pcref_mcp.partner_center.odata import Query

    transport = replay("next-links")
    async with client_for(transport) as client:
        first = await client.list_page(Query(top=1))
        second = await client.list_page(next_link=first.odata_next_link)
        third = await client.list_page(next_link=second.odata_next_link)
        with pytest.raises(ServiceError, match="over http") as info:
            await client.list_page(next_link=third.odata_next_link)
    assert [r.id for p in (first, second, third) for r in p.value] == ["R-1", "R-2", "R-3"]
    urls = [str(r.url) for r in transport.requests]
    assert urls[1] == "https://pc.test/v1.0/engagements/referrals?$skiptoken=page2"
    assert urls[2] == "https://pc.test/v1.0/engagements/referrals?$skiptoken=page3"
    assert len(urls) == 3  # the http link was never requested: the token never went over plain http
    assert "pc.test" in str(info.value)


@pytest.mark.parametrize(
    "link",
    [
        "http://pc.test/v1.0/engagements/referrals?$skiptoken=1",  # downgrade
        "https://evil.example/v1.0/engagements/referrals?$skiptoken=1",  # another host
        "//evil.example/v1.0/referrals",  # scheme-relative to another host
        "https://pc.test:8443/v1.0/engagements/referrals",  # another port
    ],
)
async def test_next_links_that_would_leak_the_token_are_refused(link: str) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={"value": []}))
    async with client_for(transport) as client:
        with pytest.raises(ServiceError, match="not followed"):
            await client.list_page(next_link=link)
    assert seen == []


async def test_the_service_path_may_differ_on_the_same_https_host() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(200, json={"value": []})

    async with client_for(httpx.MockTransport(answer)) as client:
        await client.list_page(next_link="https://pc.test/v1.0/referrals?$skiptoken=k181")
    assert seen == ["https://pc.test/v1.0/referrals?$skiptoken=k181"]


async def test_the_loopback_sandbox_over_http_is_trusted_by_its_own_base_url() -> None:
    seen: list[str] = []
    transport = httpx.MockTransport(
        lambda r: seen.append(str(r.url)) or httpx.Response(200, json={"value": []})
    )
    async with client_for(transport, base="http://127.0.0.1:8780/v1.0/engagements/") as client:
        await client.list_page(next_link="http://127.0.0.1:8780/v1.0/engagements/referrals?$skiptoken=x")
        with pytest.raises(ServiceError, match="another host"):
            await client.list_page(next_link="http://127.0.0.2:8780/v1.0/engagements/referrals?$skiptoken=x")
    assert seen == ["http://127.0.0.1:8780/v1.0/engagements/referrals?$skiptoken=x"]
    assert BASE.startswith("https://")


# --- every recording, present and future ------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
async def test_every_recorded_answer_reads_through_the_client(scenario: str) -> None:
    """A recording dropped into tests/fixtures/oddities/ (e.g. from `pcref-mcp doctor --record`) is
    replayed here at once: each successful GET must read, odd values noted, never a failed page."""
    from pcref_mcp.partner_center.recording import load_exchanges

    exchanges = load_exchanges(FIXTURES / scenario)
    reads = [e for e in exchanges if e.method == "GET" and 200 <= e.status < 300]
    for exchange in reads:
        async with client_for(Replay([exchange])) as client:
            if exchange.path.rstrip("/").endswith("/referrals"):
                url = f"https://pc.test{exchange.path}" + (f"?{exchange.query}" if exchange.query else "")
                page = await client.list_page(next_link=url)
                assert all(r.id for r in page.value)
            else:
                referral = await client.get(exchange.path.rsplit("/", 1)[-1])
                assert referral.id
