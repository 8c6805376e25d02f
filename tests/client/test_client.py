"""PartnerCenterClient against an in-memory fake (httpx.MockTransport): headers, retries, settling."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from pc_fakes import BASE, TOKEN, FakeService, Sleeps, referral_doc

from pcref_mcp import __version__
from pcref_mcp.errors import (
    AuthenticationRequired,
    BadRequest,
    Conflict,
    InvalidInput,
    NetworkError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ServiceError,
    ServiceUnavailable,
    Throttled,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center import PartnerCenterClient, Query, RateLimiter, StaticTokenProvider
from pcref_mcp.partner_center.odata import eq
from pcref_mcp.referrals.models import PatchOperation

pytestmark = pytest.mark.anyio

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_body() -> dict:
    return {
        "name": "New deal",
        "type": "Independent",
        "customerProfile": {"name": "Contoso"},
        "consent": {"consentToContact": True},
        "details": {"dealValue": 5000, "currency": "USD"},
    }


# --- headers and correlation ----------------------------------------------------------------------


async def test_headers_on_every_request(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add()
    etag = doc["eTag"]
    with client.correlation() as cid:
        await client.get(doc["id"])
        await client.patch(
            doc["id"], [PatchOperation(op="replace", path="/details/notes", value="x")], etag=etag
        )
    get, patch = service.requests
    for req in (get, patch):
        assert req.headers["Authorization"] == f"Bearer {TOKEN}"
        assert req.headers["Accept"] == "application/json"
        assert req.headers["Content-Type"] == "application/json"
        assert req.headers["MS-CorrelationId"] == cid
        assert UUID_RE.match(req.headers["client-request-id"])
        assert req.headers["User-Agent"] == f"pcref-mcp/{__version__}"
    assert get.headers["client-request-id"] != patch.headers["client-request-id"]
    assert "Prefer" not in get.headers
    assert patch.headers["Prefer"] == "return=representation"
    assert patch.headers["If-Match"] == etag


async def test_one_correlation_id_per_block_and_fresh_outside(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    with client.correlation() as first:
        await client.get(doc["id"])
        await client.get(doc["id"])
    with client.correlation("given-cid") as second:
        await client.get(doc["id"])
    await client.get(doc["id"])
    await client.get(doc["id"])
    cids = [r.headers["MS-CorrelationId"] for r in service.requests]
    assert cids[0] == cids[1] == first
    assert cids[2] == second == "given-cid"
    assert cids[3] != cids[4] and first not in cids[3:]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (400, BadRequest, None),
        (401, AuthenticationRequired, "pcref-mcp login"),
        (403, PermissionDenied, "Referrals Admin"),
        (404, NotFound, None),
        (409, Conflict, None),
        (412, PreconditionFailed, "Read the referral again"),
        (500, ServiceUnavailable, None),
    ],
)
@pytest.mark.parametrize("shape", ["partner", "classic"])
async def test_error_statuses_and_shapes(
    client: PartnerCenterClient, service: FakeService, status: int, cls: type, words: str | None, shape: str
) -> None:
    body = (
        {"error": {"code": "svcCode", "message": "The service says no", "target": "referral"}}
        if shape == "partner"
        else {"code": 2001, "description": "The service says no", "data": [], "source": "PartnerFD"}
    )
    service.fail("GET", times=10, status=status, body=body, headers={"request-id": "req-123"})
    with client.correlation() as cid, pytest.raises(cls) as info:
        await client.get("some-id")
    err = info.value
    assert err.status == status
    assert "The service says no" in str(err)
    assert err.code == ("svcCode" if shape == "partner" else "2001")
    assert err.correlation_id == cid and cid in str(err)
    assert err.request_id == "req-123"
    if words:
        assert words in str(err)


async def test_app_only_token_refused_gets_clear_message(service: FakeService, sleeps: Sleeps) -> None:
    class AppTokens(StaticTokenProvider):
        app_only = True

    service.fail("GET", status=403, body={"error": {"code": "accessDenied", "message": "Forbidden"}})
    async with PartnerCenterClient(BASE, AppTokens("t"), transport=service.transport, sleep=sleeps) as c:
        with pytest.raises(PermissionDenied, match="only delegated"):
            await c.get("x")


async def test_bad_json_is_a_service_error_naming_correlation(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail("GET", status=200, body=["not", "a", "referral"])
    with client.correlation() as cid, pytest.raises(ServiceError, match=cid):
        await client.get("x")


# --- 429 ------------------------------------------------------------------------------------------


async def test_429_honoured_for_get(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    [doc] = service.add()
    service.fail(
        "GET",
        status=429,
        body={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."},
        headers={"Retry-After": "7"},
    )
    got = await client.get(doc["id"])
    assert got.id == doc["id"]
    assert service.counts["GET"] == 2
    assert 7 in sleeps.delays


async def test_429_retry_after_from_message_when_header_missing(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    [doc] = service.add()
    service.fail(
        "GET",
        status=429,
        body={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 3 seconds."},
    )
    await client.get(doc["id"])
    assert 3 in sleeps.delays


async def test_429_honoured_for_post_and_sent_once_processed(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    service.fail(
        "POST",
        times=2,
        status=429,
        body={"statusCode": 429, "message": "slow down"},
        headers={"Retry-After": "2"},
    )
    created = await client.create(new_body())
    assert service.counts["POST"] == 3
    assert len(service.store) == 1
    assert created.external_reference_id and created.external_reference_id.startswith("pcref-")
    assert sleeps.delays.count(2) >= 2


async def test_429_honoured_for_patch(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    [doc] = service.add()
    service.fail("PATCH", status=429, body={"statusCode": 429, "message": "x"}, headers={"Retry-After": "1"})
    after = await client.patch(
        doc["id"], [{"op": "replace", "path": "/status", "value": "Active"}], etag=doc["eTag"]
    )
    assert after.status == "Active"
    assert service.counts["PATCH"] == 2


async def test_429_retry_after_beyond_cap_is_raised_not_waited(service: FakeService, sleeps: Sleeps) -> None:
    service.fail("GET", status=429, body={"statusCode": 429, "message": "x"}, headers={"Retry-After": "600"})
    limiter = RateLimiter(100, 60.0, clock=sleeps.clock, sleep=sleeps)
    async with PartnerCenterClient(
        BASE,
        StaticTokenProvider("t"),
        transport=service.transport,
        limiter=limiter,
        sleep=sleeps,
        max_retry_after=30,
    ) as c:
        with c.correlation() as cid, pytest.raises(Throttled) as info:
            await c.get("x")
    assert info.value.retry_after == 600
    assert cid in str(info.value) and "600 s" in str(info.value)
    assert service.counts["GET"] == 1
    assert all(d <= 30 for d in sleeps.delays)
    assert 0 < limiter.paused_for <= 30  # other callers hold back too, for the capped time


async def test_429_pauses_the_shared_limiter(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    [doc] = service.add()
    service.fail("GET", status=429, body={"statusCode": 429, "message": "x"}, headers={"Retry-After": "5"})
    before = sleeps.now
    await client.get(doc["id"])
    assert sleeps.now - before >= 5  # the wait happened in the shared limiter
    assert client.limiter.paused_for == 0


async def test_persistent_429_gives_up_after_max_retries(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail(
        "GET", times=50, status=429, body={"statusCode": 429, "message": "x"}, headers={"Retry-After": "1"}
    )
    with pytest.raises(Throttled):
        await client.get("x")
    assert service.counts["GET"] == 5  # 1 + max_retries


# --- GET retries ----------------------------------------------------------------------------------


async def test_get_retried_on_503_and_network_errors(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    [doc] = service.add()
    service.fail("GET", status=503)
    service.fail("GET", exc=httpx.ReadError)
    service.fail("GET", exc=httpx.ReadTimeout)
    got = await client.get(doc["id"])
    assert got.id == doc["id"]
    assert service.counts["GET"] == 4
    assert len(sleeps.delays) == 3
    assert sleeps.delays[0] < sleeps.delays[2] or sleeps.delays[2] <= 8  # grows, bounded


async def test_get_gives_up_and_names_correlation(client: PartnerCenterClient, service: FakeService) -> None:
    service.fail("GET", times=20, exc=httpx.RemoteProtocolError)
    with client.correlation() as cid, pytest.raises(NetworkError) as info:
        await client.get("x")
    assert cid in str(info.value)
    assert service.counts["GET"] == 5


# --- writes are never blindly re-sent --------------------------------------------------------------


async def test_post_not_retried_on_503_and_reports_not_found_yet(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail("POST", status=503)
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await client.create(new_body())
    assert service.counts["POST"] == 1
    text = str(info.value)
    # It cannot know the create did not land (it may still appear): it says what it knows.
    assert "not found yet" in text and "check" in text.lower() and cid in text
    assert "safe to try again" not in text and "NOT created" not in text
    assert service.store == {}


async def test_create_after_drop_finds_landed_referral_without_duplicate(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail("POST", exc=httpx.RemoteProtocolError, apply_first=True)
    created = await client.create(new_body())
    assert service.counts["POST"] == 1
    assert len(service.store) == 1
    [stored] = service.store.values()
    assert created.id == stored["id"]
    # the look-up was by the stamped externalReferenceId
    lookup = service.requests[-1]
    assert lookup.method == "GET"
    assert lookup.url.params["$filter"] == f"externalReferenceId eq '{stored['externalReferenceId']}'"


async def test_create_after_500_that_landed(client: PartnerCenterClient, service: FakeService) -> None:
    service.fail("POST", status=500, apply_first=True)
    created = await client.create({**new_body(), "externalReferenceId": "CRM-O'Brien-1"})
    assert created.external_reference_id == "CRM-O'Brien-1"
    assert service.counts["POST"] == 1 and len(service.store) == 1


async def test_create_with_reused_external_id_does_not_mistake_old_referral(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.add(externalReferenceId="CRM-1")
    service.fail("POST", exc=httpx.ReadError)  # not applied
    with pytest.raises(WriteOutcomeUnknown, match="not found yet"):
        await client.create({**new_body(), "externalReferenceId": "CRM-1"})
    assert service.counts["POST"] == 1


async def test_create_when_lookup_also_fails_is_outcome_unknown(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail("POST", exc=httpx.ReadError, apply_first=True)
    service.fail("GET", times=20, status=503)
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await client.create(new_body())
    assert cid in str(info.value) and "externalReferenceId" in str(info.value)
    assert service.counts["POST"] == 1


async def test_connect_error_is_retried_even_for_writes(
    client: PartnerCenterClient, service: FakeService
) -> None:
    service.fail("POST", exc=httpx.ConnectError)  # nothing was sent
    await client.create(new_body())
    assert service.counts["POST"] == 2 and len(service.store) == 1


async def test_patch_not_retried_on_503_and_unchanged_reads_are_no_proof(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.fail("PATCH", status=503)
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(
            doc["id"], [PatchOperation(op="replace", path="/status", value="Active")], etag=doc["eTag"]
        )
    assert service.counts["PATCH"] == 1
    text = str(info.value)
    assert "does not prove it did not land" in text and cid in text
    assert "safe to try again" not in text and "NOT applied" not in text


async def test_patch_dropped_after_apply_returns_new_state(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.fail("PATCH", exc=httpx.RemoteProtocolError, apply_first=True)
    after = await client.patch(
        doc["id"], [PatchOperation(op="replace", path="/status", value="Active")], etag=doc["eTag"]
    )
    assert after.status == "Active"
    assert service.counts["PATCH"] == 1


async def test_patch_ambiguous_append_is_outcome_unknown(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add(team=[])
    service.fail("PATCH", exc=httpx.ReadError, apply_first=True)
    op = PatchOperation(op="add", path="/team/-", value={"firstName": "Jane"})
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown, match=cid):
        await client.patch(doc["id"], [op], etag=doc["eTag"])
    assert service.counts["PATCH"] == 1


async def test_patch_stale_etag(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add()
    with client.correlation() as cid, pytest.raises(PreconditionFailed) as info:
        await client.patch(
            doc["id"], [PatchOperation(op="replace", path="/status", value="Active")], etag='"old"'
        )
    assert info.value.code == "preconditionFailed" and cid in str(info.value)
    assert service.requests[-1].headers["If-Match"] == '"old"'


async def test_patch_204_reads_back(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add()
    service.patch_returns_204 = True
    after = await client.patch(
        doc["id"], [{"op": "replace", "path": "/details/notes", "value": "hi"}], etag=doc["eTag"]
    )
    assert after.details and after.details.notes == "hi"
    assert after.e_tag == service.store[doc["id"]]["eTag"]


async def test_deal_registration_ops(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add(registrations=[])
    reg = {"type": "AzureIPCoSell", "contract": {"value": 150000, "currency": "USD", "term": "Finite"}}
    after = await client.create_deal_registration(doc["id"], reg, etag=doc["eTag"])
    assert json.loads(service.requests[-1].content) == [
        {"op": "add", "path": "/registrations/-", "value": reg}
    ]
    assert after.registrations and after.registrations[0].contract
    after = await client.update_deal_registration(
        doc["id"],
        [{"op": "replace", "path": "/registrations/0/contract/value", "value": 160000}],
        etag=after.e_tag,
    )
    assert after.registrations[0].contract.value == 160000  # type: ignore[index,union-attr]
    with pytest.raises(InvalidInput):
        await client.update_deal_registration(
            doc["id"], [{"op": "replace", "path": "/status", "value": "x"}], etag=None
        )


async def test_create_stamps_external_id_only_when_missing(
    client: PartnerCenterClient, service: FakeService
) -> None:
    a = await client.create(new_body())
    b = await client.create({**new_body(), "externalReferenceId": "mine"})
    assert a.external_reference_id and UUID_RE.match(a.external_reference_id.removeprefix("pcref-"))
    assert b.external_reference_id == "mine"


async def test_bad_patch_ops_rejected_before_sending(
    client: PartnerCenterClient, service: FakeService
) -> None:
    with pytest.raises(InvalidInput):
        await client.patch("x", [{"op": "remove", "path": "/status"}], etag=None)
    assert service.requests == []


# --- paging ---------------------------------------------------------------------------------------


async def test_paging_follows_next_link_verbatim(service: FakeService, sleeps: Sleeps) -> None:
    service.page_size = 10
    service.add(35)
    async with PartnerCenterClient(
        BASE, StaticTokenProvider("t"), transport=service.transport, sleep=sleeps
    ) as c:
        result = await c.list_all(Query(top=10))
    assert len(result.referrals) == 35 and result.total == 35 and result.truncated is None
    urls = [str(r.url) for r in service.requests]
    assert urls[0] == BASE + "referrals?$top=10"  # OData punctuation readable, spaces %20
    assert urls[1:] == [f"https://pc.test/v1.0/referrals?$skiptoken={n}" for n in (10, 20, 30)]


async def test_paging_caps_are_reported(service: FakeService, sleeps: Sleeps) -> None:
    service.page_size = 10
    service.add(35)
    async with PartnerCenterClient(
        BASE, StaticTokenProvider("t"), transport=service.transport, sleep=sleeps
    ) as c:
        by_pages = await c.list_all(max_pages=2)
        by_items = await c.list_all(max_items=15)
        exact = await c.list_all(max_items=35)
        streamed = [r async for r in c.iter_referrals(max_items=12)]
    assert len(by_pages.referrals) == 20 and by_pages.truncated == "max_pages" and by_pages.next_link
    assert len(by_items.referrals) == 15 and by_items.truncated == "max_items"
    assert len(exact.referrals) == 35 and exact.truncated is None
    assert len(streamed) == 12


async def test_next_link_to_another_host_is_refused(service: FakeService, sleeps: Sleeps) -> None:
    async with PartnerCenterClient(
        BASE, StaticTokenProvider("t"), transport=service.transport, sleep=sleeps
    ) as c:
        with pytest.raises(ServiceError, match="another host"):
            await c.list_page(next_link="https://evil.example/v1.0/referrals?$skiptoken=1")
    assert service.requests == []


async def test_filter_is_escaped_on_the_wire(client: PartnerCenterClient, service: FakeService) -> None:
    service.add(externalReferenceId="a' or 1 eq 1 or 'b")
    service.add(externalReferenceId="other")
    page = await client.list_page(Query(filter=eq("externalReferenceId", "a' or 1 eq 1 or 'b")))
    assert len(page.value) == 1


async def test_referral_id_is_path_quoted(client: PartnerCenterClient, service: FakeService) -> None:
    with pytest.raises(NotFound):
        await client.get("../../x?y")
    assert service.requests[0].url.raw_path == b"/v1.0/engagements/referrals/..%2F..%2Fx%3Fy"


async def test_etag_from_header_when_body_has_none(service: FakeService, sleeps: Sleeps) -> None:
    doc = referral_doc()
    del doc["eTag"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=doc, headers={"ETag": '"hdr"'})

    async with PartnerCenterClient(
        BASE, StaticTokenProvider("t"), transport=httpx.MockTransport(handler)
    ) as c:
        assert (await c.get(doc["id"])).e_tag == '"hdr"'


async def test_token_fetched_per_request(service: FakeService, sleeps: Sleeps) -> None:
    class Rotating:
        app_only = False

        def __init__(self) -> None:
            self.n = 0

        async def get_token(self) -> str:
            self.n += 1
            return f"tok-{self.n}"

        def account_label(self) -> str | None:
            return None

    [doc] = service.add()
    async with PartnerCenterClient(BASE, Rotating(), transport=service.transport, sleep=sleeps) as c:
        await c.get(doc["id"])
        await c.get(doc["id"])
    assert [r.headers["Authorization"] for r in service.requests] == ["Bearer tok-1", "Bearer tok-2"]


async def test_requests_go_through_the_limiter(service: FakeService, sleeps: Sleeps) -> None:
    now = [0.0]

    async def sleep(s: float) -> None:
        sleeps.delays.append(s)
        now[0] += s

    limiter = RateLimiter(3, 60.0, clock=lambda: now[0], sleep=sleep)
    [doc] = service.add()
    async with PartnerCenterClient(
        BASE, StaticTokenProvider("t"), transport=service.transport, limiter=limiter
    ) as c:
        for _ in range(7):
            await c.get(doc["id"])
    assert now[0] == pytest.approx(120.0)  # calls 4-6 wait for window 2, call 7 for window 3
