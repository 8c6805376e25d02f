"""The strict sandbox profile: a conservative real service, as the public documents show it.

These tests build their sandboxes with an explicit profile, so they hold in both runs of the suite
(``PCREF_SANDBOX_PROFILE`` only picks the default). Query-option refusals are tested with the search
features; here: create answers 200, PUT is served as documented with If-Match required, the seed
carries what real records carry, and the client reads all of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pcref_mcp.errors import InvalidInput, PreconditionFailed
from pcref_mcp.partner_center import PartnerCenterClient, StaticTokenProvider
from pcref_mcp.referrals.models import PatchOperation
from pcref_mcp.sandbox import create_app
from pcref_mcp.sandbox.config import Profile
from tests.sandbox.conftest import SANDBOX_BASE, TOKEN, Service, client_for, make_config
from tests.sandbox.helpers import assert_error, new_referral

pytestmark = pytest.mark.anyio


async def _service(profile: Profile, size: int = 60) -> tuple[Service, Any]:
    app = create_app(make_config(profile=profile, seed_size=size))
    client = client_for(app)
    return Service("sandbox", client, {"Authorization": f"Bearer {TOKEN}"}, app.state.sandbox), app


@pytest.fixture
async def strict() -> AsyncIterator[Service]:
    service, _ = await _service("strict")
    yield service
    await service.client.aclose()


async def _raw_all(service: Service) -> list[dict[str, Any]]:
    """Every stored document exactly as the wire carries it (json, not the tolerant models)."""
    body = json.loads((await service.get("referrals")).content)
    docs = list(body["value"])
    while "@odata.nextLink" in body:
        body = json.loads((await service.get(body["@odata.nextLink"])).content)
        docs += body["value"]
    return docs


# --- create ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "status"), [("strict", 200), ("lenient", 201)])
async def test_create_answers_as_the_profile_documents(profile: Profile, status: int) -> None:
    service, _ = await _service(profile, size=0)
    async with service.client:
        r = await service.post("referrals", json=new_referral())
    assert r.status_code == status, r.text
    assert r.json()["id"] and r.headers["ETag"] == r.json()["eTag"]


# --- PUT (documented, obsolete): whole document, If-Match required --------------------------------


async def test_put_without_if_match_is_refused_and_changes_nothing(strict: Service) -> None:
    [doc] = (await strict.get("referrals", params={"$top": "1"})).json()["value"]
    r = await strict.put(f"referrals/{doc['id']}", json={**doc, "name": "Renamed"})
    error = assert_error(r, 400, "invalidRequest", "If-Match")
    assert error["innerError"]["code"] == "ifMatchRequired"
    assert (await strict.get(f"referrals/{doc['id']}")).json()["eTag"] == doc["eTag"]


async def test_put_with_a_stale_etag_is_412(strict: Service) -> None:
    [doc] = (await strict.get("referrals", params={"$top": "1"})).json()["value"]
    stale = '"00000000-0000-0100-0000-000000000000"'
    r = await strict.put(f"referrals/{doc['id']}", json=doc, headers={"If-Match": stale})
    assert_error(r, 412, "preconditionFailed")


async def test_put_replaces_writable_fields_and_keeps_the_services_own(strict: Service) -> None:
    [doc] = (await strict.get("referrals", params={"$top": "1"})).json()["value"]
    body = {**doc, "name": "Renamed by PUT", "direction": "Sideways", "quality": "Great"}
    body["details"] = {**doc["details"], "notes": "replaced"}
    r = await strict.put(f"referrals/{doc['id']}", json=body, headers={"If-Match": doc["eTag"]})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["name"] == "Renamed by PUT" and after["details"]["notes"] == "replaced"
    assert (after["direction"], after["quality"]) == (doc["direction"], doc["quality"])  # read-only: kept
    assert after["eTag"] != doc["eTag"] and r.headers["ETag"] == after["eTag"]
    assert (await strict.get(f"referrals/{doc['id']}")).json()["name"] == "Renamed by PUT"


async def test_put_follows_the_lifecycle_and_checks_the_id(strict: Service) -> None:
    docs = await _raw_all(strict)
    closed = next(d for d in docs if d["status"] == "Closed")
    r = await strict.put(
        f"referrals/{closed['id']}",
        json={**closed, "status": "Active", "substatus": "Accepted"},
        headers={"If-Match": closed["eTag"]},
    )
    error = assert_error(r, 400, "invalidRequest")
    assert error["innerError"]["code"] == "invalidStatusTransition"
    other = next(d for d in docs if d["id"] != closed["id"])
    r = await strict.put(
        f"referrals/{closed['id']}", json={**closed, "id": other["id"]}, headers={"If-Match": closed["eTag"]}
    )
    assert_error(r, 400, "invalidRequest", "does not match")


async def test_put_on_the_lenient_profile_stays_405() -> None:
    service, _ = await _service("lenient", size=1)
    async with service.client:
        [doc] = (await service.get("referrals")).json()["value"]
        r = await service.put(f"referrals/{doc['id']}", json=doc, headers={"If-Match": doc["eTag"]})
    assert_error(r, 405, "invalidRequest", "PATCH")


# --- real-world oddities in the seed --------------------------------------------------------------


async def test_strict_seed_carries_what_real_records_carry(strict: Service) -> None:
    docs = await _raw_all(strict)
    stages = {d.get("salesStage") for d in docs}
    assert "100" in stages and None in stages
    assert any(isinstance(d.get("mpnId"), int) for d in docs)
    assert any(isinstance((d.get("inviteContext") or {}).get("invitedMpnId"), int) for d in docs)
    leads = [d for d in docs if d.get("referralSource") and d["qualification"] == "Direct"]
    assert leads and all(d["type"] == "Independent" and d["direction"] == "Incoming" for d in leads)
    assert any(d["details"].get("dealValue") is None for d in leads)


async def test_lenient_seed_is_as_documented() -> None:
    service, _ = await _service("lenient")
    async with service.client:
        docs = await _raw_all(service)
    assert all(d.get("salesStage") in (None, "Qualify", "Develop", "Propose", "Close") for d in docs)
    assert all(isinstance(d["mpnId"], str) for d in docs)


async def test_the_client_reads_every_strict_referral() -> None:
    app = create_app(make_config(profile="strict", seed_size=200))
    async with PartnerCenterClient(
        SANDBOX_BASE, StaticTokenProvider(TOKEN), transport=httpx.ASGITransport(app=app)
    ) as client:
        pages = []
        page = await client.list_page()
        pages.append(page)
        while page.odata_next_link:
            page = await client.list_page(next_link=page.odata_next_link)
            pages.append(page)
    referrals = [r for p in pages for r in p.value]
    assert len(referrals) == 200 and not any(p.skipped for p in pages)
    numeric = [r for r in referrals if any(p.path == "/mpnId" for p in r.read_problems)]
    assert numeric and all(isinstance(r.mpn_id, str) and r.mpn_id.isdigit() for r in numeric)
    assert all(not p.left_out for r in referrals for p in r.read_problems)  # all normalised, none lost


async def test_writes_work_on_a_referral_with_oddities() -> None:
    app = create_app(make_config(profile="strict", seed_size=120))
    async with PartnerCenterClient(
        SANDBOX_BASE, StaticTokenProvider(TOKEN), transport=httpx.ASGITransport(app=app)
    ) as client:
        page = await client.list_page()
        odd = next(r for r in page.value if r.read_problems and r.status != "Closed")
        assert odd.id and odd.e_tag
        after = await client.patch(
            odd.id, [PatchOperation(op="replace", path="/details/notes", value="checked")], etag=odd.e_tag
        )
        assert after.details is not None and after.details.notes == "checked"
        with pytest.raises(PreconditionFailed):
            await client.patch(
                odd.id, [{"op": "replace", "path": "/details/notes", "value": "x"}], etag=odd.e_tag
            )
        with pytest.raises(InvalidInput, match="without an ETag"):
            await client.patch(odd.id, [{"op": "replace", "path": "/details/notes", "value": "x"}], etag=None)


# --- errors in the documented shape ----------------------------------------------------------------


async def test_errors_use_the_documented_shape(strict: Service) -> None:
    assert_error(await strict.get("referrals/nope"), 404, "itemNotFound")
    assert_error(await strict.post("referrals", json={"type": "Independent"}), 400, "invalidRequest")
    assert_error(await strict.client.delete("referrals/x", headers=strict.headers), 405, "invalidRequest")
    r = await strict.get("referrals", headers={"Authorization": "Bearer "})
    assert_error(r, 401, "unauthenticated")
