"""Contract tests: what any Partner Center Referrals service must do, run against the sandbox and,
with ``-m live`` and credentials, against the real service (so the sandbox can be checked)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from pcref_mcp.referrals.models import Referral, ReferralPage
from tests.sandbox.conftest import Service
from tests.sandbox.helpers import new_referral

pytestmark = pytest.mark.anyio


# --- GET /referrals -------------------------------------------------------------------------------


async def test_list_returns_the_odata_envelope(service: Service) -> None:
    r = await service.get("referrals", params={"$top": "5"})
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#Referrals")
    assert 0 < len(body["value"]) <= 5
    page = ReferralPage.model_validate(body)
    assert all(ref.id and ref.status for ref in page.value)
    assert r.headers.get("request-id")


async def test_list_pages_follow_next_link_verbatim(service: Service) -> None:
    seen: list[str] = []
    r = await service.get("referrals", params={"$top": "7", "$orderby": "createdDateTime desc"})
    body = r.json()
    seen += [v["id"] for v in body["value"]]
    assert len(seen) == 7
    assert "@odata.nextLink" not in body  # $top reached
    r = await service.get("referrals")
    body = r.json()
    pages = 1
    first = [v["id"] for v in body["value"]]
    while "@odata.nextLink" in body:
        link = body["@odata.nextLink"]
        assert link.startswith("http") and "$skiptoken=" in link
        body = (await service.get(link)).json()
        pages += 1
        if pages > 3:
            break
    assert first


async def test_page_size_is_capped_at_100(service: Service) -> None:
    r = await service.get("referrals", params={"$top": "250"})
    assert r.status_code == 200
    assert len(r.json()["value"]) <= 100


async def test_count_is_the_whole_filtered_set(service: Service) -> None:
    r = await service.get(
        "referrals", params={"$filter": "direction eq 'Incoming'", "$count": "true", "$top": "2"}
    )
    body = r.json()
    assert body["@odata.count"] >= len(body["value"])
    assert all(v["direction"] == "Incoming" for v in body["value"])


@pytest.mark.parametrize(
    "flt",
    [
        "status eq 'New' and qualification eq 'SalesQualified'",
        "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
        "(direction eq 'Incoming' and substatus eq 'Pending')",
        "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared'",
        "team/any(t:t/email eq 'nobody@nowhere.example')",
    ],
)
async def test_documented_filters_are_accepted(service: Service, flt: str) -> None:
    r = await service.get("referrals", params={"$filter": flt})
    assert r.status_code == 200, r.text
    ReferralPage.model_validate(r.json())


async def test_filter_results_match_the_filter(service: Service) -> None:
    r = await service.get("referrals", params={"$filter": "status eq 'Active' and direction eq 'Outgoing'"})
    values = r.json()["value"]
    assert values
    assert all(v["status"] == "Active" and v["direction"] == "Outgoing" for v in values)


async def test_orderby_created_desc_is_sorted(service: Service) -> None:
    r = await service.get("referrals", params={"$orderby": "createdDateTime desc", "$top": "50"})
    stamps = [v["createdDateTime"] for v in r.json()["value"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_select_returns_only_those_fields(service: Service) -> None:
    r = await service.get("referrals", params={"$select": "id,status,customerProfile", "$top": "3"})
    for value in r.json()["value"]:
        assert set(value) - {"@odata.etag"} == {"id", "status", "customerProfile"}


async def test_related_referrals_link_works(service: Service) -> None:
    r = await service.get("referrals", params={"$top": "1"})
    ref = r.json()["value"][0]
    link = ref["links"]["relatedReferrals"]["uri"]
    assert f"engagementId eq {ref['engagementId']}" in link or ref["engagementId"] in link
    related = await service.get(link)
    assert related.status_code == 200
    assert ref["id"] in [v["id"] for v in related.json()["value"]]


async def test_unparseable_filter_is_400(service: Service) -> None:
    r = await service.get("referrals", params={"$filter": "status eqq 'New'"})
    assert r.status_code == 400


# --- GET /referrals/{id} --------------------------------------------------------------------------


async def test_get_by_id(service: Service) -> None:
    first = (await service.get("referrals", params={"$top": "1"})).json()["value"][0]
    r = await service.get(f"referrals/{first['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#Referrals/$entity")
    assert body["id"] == first["id"]
    assert r.headers.get("etag")
    Referral.model_validate(body)


async def test_get_unknown_id_is_404(service: Service) -> None:
    r = await service.get(f"referrals/{uuid.uuid4()}")
    assert r.status_code == 404


# --- POST /referrals ------------------------------------------------------------------------------


async def test_create_returns_the_referral(service: Service) -> None:
    r = await service.post("referrals", json=new_referral())
    assert r.status_code in (200, 201), r.text
    body = r.json()
    ref = Referral.model_validate(body)
    assert ref.id and ref.engagement_id and ref.e_tag
    assert ref.direction == "Outgoing"
    assert (ref.status, ref.substatus) == ("Active", "Accepted")
    assert ref.created_date_time and ref.accepted_date_time
    assert body["customerProfile"]["name"] == "Contoso Customer Inc"
    again = await service.get(f"referrals/{ref.id}")
    assert again.json()["eTag"] == ref.e_tag


@pytest.mark.parametrize("missing", ["type", "customerProfile", "consent", "details"])
async def test_create_requires_fields(service: Service, missing: str) -> None:
    body = new_referral()
    del body[missing]
    r = await service.post("referrals", json=body)
    assert r.status_code == 400


async def test_create_rejects_bad_values(service: Service) -> None:
    body = new_referral(type="Sideways")
    body["details"]["dealValue"] = -5
    body["details"]["currency"] = "XYZ"
    body["customerProfile"]["address"]["country"] = "USA"
    body["team"][0]["email"] = "not-an-email"
    r = await service.post("referrals", json=body)
    assert r.status_code == 400


# --- PATCH /referrals/{id} ------------------------------------------------------------------------


async def _created(service: Service) -> dict:
    r = await service.post("referrals", json=new_referral())
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_patch_returns_204_and_a_fresh_etag(service: Service) -> None:
    ref = await _created(service)
    r = await service.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": "/details/notes", "value": "updated by test"}],
    )
    assert r.status_code == 204
    after = (await service.get(f"referrals/{ref['id']}")).json()
    assert after["details"]["notes"] == "updated by test"
    assert after["eTag"] != ref["eTag"]


async def test_patch_prefer_representation_returns_200(service: Service) -> None:
    ref = await _created(service)
    r = await service.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": "/details/dealValue", "value": 75000}],
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200
    assert r.json()["details"]["dealValue"] == 75000


async def test_patch_with_stale_etag_is_412(service: Service) -> None:
    ref = await _created(service)
    ops = [{"op": "replace", "path": "/details/notes", "value": "first"}]
    assert (
        await service.patch(f"referrals/{ref['id']}", json=ops, headers={"If-Match": ref["eTag"]})
    ).status_code == 204
    r = await service.patch(f"referrals/{ref['id']}", json=ops, headers={"If-Match": ref["eTag"]})
    assert r.status_code == 412


async def test_patch_close_as_won(service: Service) -> None:
    ref = await _created(service)
    r = await service.patch(
        f"referrals/{ref['id']}",
        json=[
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Won"},
        ],
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["substatus"]) == ("Closed", "Won")
    assert r.json()["closedDateTime"]


async def test_patch_cannot_reopen_a_closed_referral(service: Service) -> None:
    ref = await _created(service)
    close = [
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Lost"},
    ]
    assert (await service.patch(f"referrals/{ref['id']}", json=close)).status_code == 204
    reopen = [
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
    ]
    r = await service.patch(f"referrals/{ref['id']}", json=reopen)
    assert r.status_code == 400


async def test_patch_outside_the_allow_list_is_400(service: Service) -> None:
    ref = await _created(service)
    r = await service.patch(
        f"referrals/{ref['id']}", json=[{"op": "replace", "path": "/direction", "value": "Incoming"}]
    )
    assert r.status_code == 400


async def test_patch_unknown_id_is_404(service: Service) -> None:
    r = await service.patch(
        f"referrals/{uuid.uuid4()}", json=[{"op": "replace", "path": "/details/notes", "value": "x"}]
    )
    assert r.status_code == 404


# --- auth -----------------------------------------------------------------------------------------


async def test_no_token_is_401(service: Service) -> None:
    r = await service.client.get("referrals")
    assert r.status_code == 401


async def test_next_link_keeps_the_filter(service: Service) -> None:
    r = await service.get("referrals", params={"$filter": "direction eq 'Outgoing'", "$top": "3"})
    body = r.json()
    if "@odata.nextLink" in body:  # a $top smaller than the page: no nextLink on the sandbox
        query = parse_qs(urlsplit(body["@odata.nextLink"]).query)
        assert "$skiptoken" in query
