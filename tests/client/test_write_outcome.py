"""A write's outcome after a lost answer is decided from evidence, never from one read (issue 20,
item 2): applied, not applied (with proof), or in doubt."""

from __future__ import annotations

import httpx
import pytest
from pc_fakes import FakeService, Sleeps

from pcref_mcp.errors import WriteOutcomeUnknown
from pcref_mcp.partner_center import PartnerCenterClient
from pcref_mcp.partner_center.client import SETTLE_READS
from pcref_mcp.referrals.models import PatchOperation

pytestmark = pytest.mark.anyio

HTML_503 = "<html><body><h1>503 Service Unavailable</h1>The gateway timed out.</body></html>"
OPS = [PatchOperation(op="replace", path="/details/dealValue", value=5000)]


async def test_applied_write_behind_a_lagging_replica_is_found_applied(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    """The issue's case: PATCH applied, 503 with an HTML page, the first read-back stale."""
    [doc] = service.add()
    service.lagging_reads = 1
    service.fail("PATCH", status=503, body=HTML_503, apply_first=True)
    after = await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert after.details and after.details.deal_value == 5000
    assert service.counts["PATCH"] == 1 and service.counts["GET"] == 2
    assert len(sleeps.delays) == 1  # the second read waited (a fake clock: no real wait)


async def test_a_replica_lagging_past_every_read_is_never_called_not_applied(
    client: PartnerCenterClient, service: FakeService
) -> None:
    """Every read stale and the change an added list entry (which a read cannot tell from one that
    was there before): the write landed, and the answer must not invite a duplicate."""
    [doc] = service.add(team=[])
    service.lagging_reads = SETTLE_READS
    service.fail("PATCH", status=503, body=HTML_503, apply_first=True)
    op = PatchOperation(op="add", path="/team/-", value={"firstName": "Jane", "email": "j@x.test"})
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], [op], etag=doc["eTag"])
    assert "safe to try again" not in str(info.value)
    assert service.counts["PATCH"] == 1


async def test_unchanged_reads_are_in_doubt_never_safe_to_retry(
    client: PartnerCenterClient, service: FakeService, sleeps: Sleeps
) -> None:
    """Refused before applying, read back unchanged: still no proof (a replica may be behind)."""
    [doc] = service.add()
    service.fail("PATCH", status=503, body=HTML_503)
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    text = str(info.value)
    assert f"{SETTLE_READS} reads" in text and "does not prove" in text and cid in text
    assert "safe to try again" not in text and "NOT applied" not in text
    assert service.counts["GET"] == SETTLE_READS and len(sleeps.delays) == SETTLE_READS - 1
    assert service.counts["PATCH"] == 1


async def test_a_replica_lagging_past_every_read_on_a_replace_is_in_doubt(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.lagging_reads = SETTLE_READS + 1
    service.fail("PATCH", status=503, body=HTML_503, apply_first=True)
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert "safe to try again" not in str(info.value)
    assert service.store[doc["id"]]["details"]["dealValue"] == 5000  # it had landed


async def test_a_weak_or_requoted_etag_is_the_same_etag(
    client: PartnerCenterClient, service: FakeService
) -> None:
    """W/"x" and "x" name the same version: an unmoved ETag is not read as someone else's change."""
    [doc] = service.add()
    service.fail("PATCH", status=500)
    bare = doc["eTag"].strip('"')
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=f'W/"{bare}"')
    assert "does not prove" in str(info.value) and "changed since" not in str(info.value)


async def test_changed_by_someone_else_is_in_doubt(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add()
    original = service.handle

    def someone_else(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            service.store[doc["id"]]["eTag"] = '"moved-by-someone"'
            return httpx.Response(503, text="busy")
        return original(request)

    client._http._transport = httpx.MockTransport(someone_else)  # type: ignore[attr-defined]
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert "cannot be told" in str(info.value) and "safe to try again" not in str(info.value)


async def test_read_back_failing_on_a_later_read_is_in_doubt(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.fail("PATCH", status=503)
    original = service.handle
    gets = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal gets
        if request.method == "GET":
            gets += 1
            if gets >= 2:
                return httpx.Response(404, json={"error": {"code": "itemNotFound", "message": "gone"}})
        return original(request)

    client._http._transport = httpx.MockTransport(flaky)  # type: ignore[attr-defined]
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert "not known" in str(info.value) and "safe to try again" not in str(info.value)


async def test_the_services_words_travel_with_an_in_doubt_outcome(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.fail("PATCH", status=502, body="upstream connect error", headers={"request-id": "rid-5"})
    with client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    text = str(info.value)
    assert "«upstream connect error»" in text and "rid-5" in text and cid in text


async def test_an_html_503_is_named_not_shown(client: PartnerCenterClient, service: FakeService) -> None:
    [doc] = service.add()
    service.fail("PATCH", status=503, body=HTML_503, headers={"content-type": "text/html"})
    with pytest.raises(WriteOutcomeUnknown) as info:
        await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert "HTML page (not shown)" in str(info.value) and "gateway" not in str(info.value)


async def test_a_204_read_back_from_a_lagging_replica_is_read_again(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    before = doc["eTag"]
    service.patch_returns_204 = True
    service.lagging_reads = 1
    after = await client.patch(doc["id"], OPS, etag=before)
    assert after.details and after.details.deal_value == 5000
    assert after.e_tag == service.store[doc["id"]]["eTag"] != before
    assert service.counts["GET"] == 2


async def test_a_204_whose_read_back_never_catches_up_keeps_no_stale_etag(
    client: PartnerCenterClient, service: FakeService
) -> None:
    [doc] = service.add()
    service.patch_returns_204 = True
    service.lagging_reads = SETTLE_READS + 1
    after = await client.patch(doc["id"], OPS, etag=doc["eTag"])
    assert after.e_tag is None  # never the ETag from before the write
    assert service.counts["PATCH"] == 1 and service.counts["GET"] == SETTLE_READS
