"""Sandbox-specific behaviour: exact error bodies and headers, paging details, deal registrations,
the co-sell pair, expiry on the manual clock, throttling, faults and the /_sandbox controls."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pcref_mcp.referrals.models import Referral
from pcref_mcp.sandbox import ConnectionDropped, ManualClock, create_app
from pcref_mcp.sandbox.app import DEFAULT_ORDER
from pcref_mcp.sandbox.odata import compile_filter
from pcref_mcp.sandbox.seed import INJECTION_TEXTS
from pcref_mcp.sandbox.state import SandboxState
from tests.profiles import CREATED
from tests.sandbox.conftest import TOKEN, Service, client_for, make_config
from tests.sandbox.helpers import assert_error, new_referral, registration

pytestmark = pytest.mark.anyio


async def _first(sandbox: Service, flt: str) -> dict[str, Any]:
    """A stored referral matching ``flt`` (any OData the sandbox reads: a test's back door, so the
    strict profile's query rules do not decide what a test can set up)."""
    assert sandbox.state is not None
    values = _stored(sandbox.state, flt)
    assert values, f"no seeded referral matches {flt}"
    return values[0]


def _stored(state: SandboxState, flt: str) -> list[dict[str, Any]]:
    state.sweep()
    where, args = compile_filter(flt)
    return [json.loads(doc) for doc in state.store.query(where, args, DEFAULT_ORDER, 1000, 0)]


LENIENT = pytest.mark.parametrize("sandbox_profile", ["lenient"])  # the full OData the lenient profile reads


async def _all(sandbox: Service, **params: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    r = await sandbox.get("referrals", params=params)
    body = r.json()
    out += body["value"]
    while "@odata.nextLink" in body:
        body = (await sandbox.get(body["@odata.nextLink"])).json()
        out += body["value"]
    return out


# --- envelope, headers, errors --------------------------------------------------------------------


async def test_headers_are_echoed(sandbox: Service) -> None:
    r = await sandbox.get("referrals", headers={"client-request-id": "abc", "MS-CorrelationId": "corr-1"})
    assert r.headers["client-request-id"] == "abc"
    assert r.headers["MS-CorrelationId"] == "corr-1"
    uuid.UUID(r.headers["request-id"])


async def test_error_body_names_position_and_token(sandbox: Service) -> None:
    r = await sandbox.get("referrals", params={"$filter": "status eq 'New' andd substatus eq 'Pending'"})
    error = assert_error(r, 400, "invalidRequest", "position 16", "'andd'")
    assert error["innerError"]["code"] == "invalidQueryOption"


async def test_unknown_filter_field_is_400(sandbox: Service) -> None:
    assert_error(
        await sandbox.get("referrals", params={"$filter": "colour eq 'red'"}), 400, "invalidRequest", "colour"
    )


@pytest.mark.parametrize(
    "option,value",
    [
        ("$top", "-1"),
        ("$skip", "x"),
        ("$count", "maybe"),
        ("$select", "nope"),
        ("$orderby", "team"),
        ("$skiptoken", "garbage!"),
    ],
)
async def test_bad_query_options_are_400(sandbox: Service, option: str, value: str) -> None:
    assert_error(await sandbox.get("referrals", params={option: value}), 400)


async def test_get_unknown_is_item_not_found(sandbox: Service) -> None:
    assert_error(await sandbox.get(f"referrals/{uuid.uuid4()}"), 404, "itemNotFound")


@LENIENT  # strict serves PUT as documented: test_strict_profile.py
async def test_put_is_405_pointing_to_patch(sandbox: Service) -> None:
    ref = await _first(sandbox, "status eq 'Active'")
    r = await sandbox.put(f"referrals/{ref['id']}", json=ref)
    assert_error(r, 405, "invalidRequest", "PATCH")


async def test_missing_or_unknown_token_is_401() -> None:
    app = create_app(make_config(tokens=frozenset({"good"})))
    async with client_for(app) as client:
        assert_error(await client.get("referrals"), 401, "unauthenticated")
        assert_error(
            await client.get("referrals", headers={"Authorization": "Bearer bad"}), 401, "unauthenticated"
        )
        assert_error(
            await client.get("referrals", headers={"Authorization": "Basic good"}), 401, "unauthenticated"
        )
        assert (await client.get("referrals", headers={"Authorization": "Bearer good"})).status_code == 200


# --- paging ---------------------------------------------------------------------------------------


@LENIENT
async def test_paging_visits_every_referral_once(sandbox: Service, state: SandboxState) -> None:
    state.reset(size=250)
    seen = await _all(sandbox, **{"$orderby": "details/dealValue desc"})
    ids = [v["id"] for v in seen]
    assert len(ids) == len(set(ids)) == 250
    values = [v["details"]["dealValue"] for v in seen]
    # nulls last (the strict profile seeds leads without a deal value)
    assert values == sorted(values, key=lambda v: (v is not None, v or 0), reverse=True)


@LENIENT
async def test_top_above_cap_pages_until_top(sandbox: Service, state: SandboxState) -> None:
    state.reset(size=250)
    r = await sandbox.get("referrals", params={"$top": "150", "$count": "true"})
    body = r.json()
    assert len(body["value"]) == 100 and body["@odata.count"] == 250
    second = (await sandbox.get(body["@odata.nextLink"])).json()
    assert len(second["value"]) == 50 and "@odata.nextLink" not in second
    assert second["@odata.count"] == 250


async def test_skip_and_select(sandbox: Service) -> None:
    everything = await _all(sandbox, **{"$orderby": "createdDateTime asc"})
    r = await sandbox.get(
        "referrals", params={"$orderby": "createdDateTime asc", "$skip": "10", "$top": "5", "$select": "id"}
    )
    assert [v["id"] for v in r.json()["value"]] == [v["id"] for v in everything[10:15]]
    assert all(set(v) == {"id"} for v in r.json()["value"])


@LENIENT
async def test_filters_against_python(sandbox: Service, state: SandboxState) -> None:
    docs = list(state.store.iter_docs())
    cases = {
        "details/dealValue ge 100000": lambda d: (d["details"]["dealValue"] or 0) >= 100000,
        "contains(tolower(customerProfile/name), 'o''neil')": lambda d: (
            "o'neil" in d["customerProfile"]["name"].lower()
        ),
        "startswith(name, 'Contoso')": lambda d: d["name"].startswith("Contoso"),
        "endswith(customerProfile/address/country, 'E')": lambda d: d["customerProfile"]["address"][
            "country"
        ].endswith("E"),
        "not (status eq 'Closed')": lambda d: d["status"] != "Closed",
        "registrations/any(r: r/status eq 'ActionRequired')": lambda d: any(
            r["status"] == "ActionRequired" for r in d["registrations"]
        ),
        "customerProfile/team/all(m: endswith(m/email, '.example'))": lambda d: all(
            m["email"].endswith(".example") for m in d["customerProfile"]["team"]
        ),
        "consent/consentToShareReferralWithMicrosoftSellers eq true or type eq 'Shared'": lambda d: (
            d["consent"]["consentToShareReferralWithMicrosoftSellers"] is True or d["type"] == "Shared"
        ),
        "closedDateTime eq null and direction eq 'Incoming'": lambda d: (
            d["closedDateTime"] is None and d["direction"] == "Incoming"
        ),
        "createdDateTime lt 2025-05-01T00:00:00Z": lambda d: (
            d["createdDateTime"] < "2025-05-01T00:00:00.0000000Z"
        ),
        "inviteContext/invitedBy/organizationId eq 'msft'": lambda d: (
            ((d.get("inviteContext") or {}).get("invitedBy") or {}).get("organizationId") == "msft"
        ),
    }
    for flt, predicate in cases.items():
        got = sorted(v["id"] for v in await _all(sandbox, **{"$filter": flt}))
        want = sorted(d["id"] for d in docs if predicate(d))
        assert got == want, flt
        assert want, f"the seed should contain a match for {flt}"


@LENIENT
async def test_engagement_guid_unquoted_and_quoted(sandbox: Service) -> None:
    ref = await _first(sandbox, "organizationId eq 'msft'")
    unquoted = await _all(sandbox, **{"$filter": f"engagementId eq {ref['engagementId']}"})
    quoted = await _all(sandbox, **{"$filter": f"engagementId eq '{ref['engagementId']}'"})
    assert {v["id"] for v in unquoted} == {v["id"] for v in quoted}
    assert len(unquoted) == 2  # the co-sell pair


# --- create ---------------------------------------------------------------------------------------


async def test_create_is_201_with_location_and_etag(sandbox: Service, state: SandboxState) -> None:
    r = await sandbox.post("referrals", json=new_referral())
    assert r.status_code == CREATED
    body = r.json()
    assert r.headers["ETag"] == body["eTag"]
    assert r.headers["Location"].endswith(body["id"])
    assert body["organizationId"] == state.config.partner_org_id
    assert body["registrationStatus"] == "None" and body["registrations"] == []
    assert body["acceptedDateTime"] == body["createdDateTime"]
    assert body["links"]["self"]["uri"] == f"https://sandbox.local/v1.0/engagements/referrals/{body['id']}"
    assert body["eTag"].startswith('"') and body["eTag"].endswith('"')


async def test_create_error_lists_every_problem(sandbox: Service) -> None:
    body = new_referral(type="Sideways")
    body["details"]["dealValue"] = -5
    body["details"]["currency"] = "XYZ"
    body["customerProfile"]["address"]["country"] = "USA"
    body["team"][0]["email"] = "not-an-email"
    del body["consent"]
    error = assert_error(await sandbox.post("referrals", json=body), 400, "invalidRequest")
    for fragment in ("consent is required", "Sideways", "negative", "XYZ", "USA", "not-an-email"):
        assert fragment in error["message"], fragment


@pytest.mark.parametrize("payload", ["not json", "[]", "{}", '{"type": "Independent"}'])
async def test_create_rejects_malformed_bodies(sandbox: Service, payload: str) -> None:
    r = await sandbox.post("referrals", content=payload, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


async def test_create_tolerates_pascal_case_and_string_deal_value(sandbox: Service) -> None:
    body = {
        "Type": "Shared",
        "CustomerProfile": {"Name": "Pascal Corp", "Address": {"Country": "DE"}},
        "Consent": {"ConsentToToShareInfoWithOthers": True, "ConsentToContact": True},
        "Details": {"DealValue": "10000", "Currency": "EUR"},
    }
    r = await sandbox.post("referrals", json=body)
    assert r.status_code == CREATED, r.text
    ref = r.json()
    assert ref["consent"]["consentToToShareInfoWithOthers"] is True
    assert ref["details"]["dealValue"] == 10000
    assert ref["customerProfile"]["address"]["country"] == "DE"


async def test_cosell_pair_links_by_engagement(sandbox: Service) -> None:
    mine = (await sandbox.post("referrals", json=new_referral(type="Shared"))).json()
    msft = new_referral(
        type="Shared",
        engagementId=mine["engagementId"],
        organizationId="msft",
        organizationName="Microsoft",
        target=[{"type": "BusinessProfileLocation", "id": "msft"}],
        inviteContext={"notes": "Please help", "assistanceRequestCode": "ProofOfConceptOrDemo"},
    )
    r = await sandbox.post("referrals", json=msft)
    assert r.status_code == CREATED, r.text
    assert r.json()["organizationId"] == "msft"
    related = await _all(sandbox, **{"$filter": f"engagementId eq {mine['engagementId']}"})
    assert {v["id"] for v in related} == {mine["id"], r.json()["id"]}


async def test_unknown_engagement_or_msft_without_engagement_is_400(sandbox: Service) -> None:
    assert_error(
        await sandbox.post("referrals", json=new_referral(engagementId=str(uuid.uuid4()))),
        400,
        "invalidRequest",
        "engagementId",
    )
    assert_error(
        await sandbox.post("referrals", json=new_referral(organizationId="msft")),
        400,
        "invalidRequest",
        "engagementId",
    )


# --- patch ----------------------------------------------------------------------------------------


async def test_patch_errors_name_paths_and_transitions(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()
    url = f"referrals/{ref['id']}"
    error = assert_error(
        await sandbox.patch(url, json=[{"op": "replace", "path": "/name", "value": "x"}]),
        400,
        "invalidRequest",
        "'/name'",
        "/details/notes",
    )
    assert error["innerError"]["code"] == "validationFailed"
    assert_error(
        await sandbox.patch(url, json=[{"op": "remove", "path": "/details/notes"}]),
        400,
        "invalidRequest",
        "remove",
    )
    error = assert_error(
        await sandbox.patch(url, json=[{"op": "replace", "path": "/status", "value": "New"}]),
        400,
        "invalidRequest",
        "Active/Accepted",
    )
    assert error["innerError"]["code"] == "invalidStatusTransition"
    assert_error(
        await sandbox.patch(url, json=[{"op": "replace", "path": "/substatus", "value": "Expired"}]), 400
    )
    assert_error(
        await sandbox.patch(url, json=[{"op": "replace", "path": "/details/currency", "value": "EURO"}]),
        400,
        "invalidRequest",
        "EURO",
    )
    assert_error(
        await sandbox.patch(url, json=[{"op": "add", "path": "/team/-", "value": {"email": "bad"}}]), 400
    )
    assert_error(await sandbox.patch(url, json=[]), 400)


async def test_patch_is_atomic(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()
    url = f"referrals/{ref['id']}"
    ops = [
        {"op": "replace", "path": "/details/notes", "value": "should not stick"},
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Pending"},
    ]
    assert_error(await sandbox.patch(url, json=ops), 400)
    after = (await sandbox.get(url)).json()
    assert after["details"]["notes"] == ref["details"]["notes"] and after["eTag"] == ref["eTag"]


async def test_patch_appends_team_and_normalises_case(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[
            {
                "op": "add",
                "path": "/team/-",
                "value": {"email": "jane.doe@contoso.example", "firstName": "Jane"},
            },
            {"op": "replace", "path": "/Details/DealValue", "value": "10000"},
        ],
        headers={"Prefer": "return=representation", "If-Match": ref["eTag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["team"][-1]["email"] == "jane.doe@contoso.example"
    assert r.json()["details"]["dealValue"] == 10000
    assert r.headers["ETag"] == r.json()["eTag"]


async def test_patch_204_has_etag_and_if_match_star(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": "/statusReason", "value": "x"}],
        headers={"If-Match": "*"},
    )
    assert r.status_code == 204 and r.content == b""
    assert r.headers["ETag"] == (await sandbox.get(f"referrals/{ref['id']}")).json()["eTag"]


async def test_stale_etag_412_body(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": "/statusReason", "value": "x"}],
        headers={"If-Match": '"stale"'},
    )
    assert_error(r, 412, "preconditionFailed", "ETag")


async def test_accepting_an_incoming_referral(sandbox: Service) -> None:
    ref = await _first(sandbox, "direction eq 'Incoming' and status eq 'New'")
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
        ],
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200
    assert r.json()["acceptedDateTime"] and r.json()["closedDateTime"] is None


# --- deal registration ----------------------------------------------------------------------------


def _register(value: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "/registrations/-", "value": value}]


async def test_registration_on_an_eligible_referral(sandbox: Service) -> None:
    ref = await _first(
        sandbox,
        "status eq 'Closed' and substatus eq 'Won' and type eq 'Shared' and registrationStatus eq 'None' and details/closingDateTime lt 2025-05-30T00:00:00Z",
    )
    r = await sandbox.patch(
        f"referrals/{ref['id']}", json=_register(registration()), headers={"Prefer": "return=representation"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    reg = body["registrations"][-1]
    assert reg["status"] == "ReviewPending" and reg["id"] and reg["registrationDateTime"]
    assert reg["statusHistory"]["reviewPendingDateTime"] == reg["registrationDateTime"]
    assert body["registrationStatus"] == "ReviewPending"
    Referral.model_validate(body)


async def test_registration_lists_every_unmet_condition(sandbox: Service) -> None:
    ref = (await sandbox.post("referrals", json=new_referral())).json()  # Active, private, just created
    bad = registration(type="Other")
    # Perpetual with an end date, and 1,000 spread over six years: two contract rules broken at once
    # (a Finite contract without an end date has no annual value to judge: it is refused for the date alone)
    bad["contract"] = {
        "term": "Perpetual",
        "value": 1000,
        "currency": "USD",
        "startDateTime": "2025-01-01T00:00:00Z",
        "endDateTime": "2027-01-01T00:00:00Z",
    }
    bad["solutionDetails"][0]["isDeployedOnAzure"] = False
    error = assert_error(
        await sandbox.patch(f"referrals/{ref['id']}", json=_register(bad)), 400, "invalidRequest"
    )
    assert error["innerError"]["code"] == "dealRegistrationNotEligible"
    for fragment in (
        "Closed/Won",
        "shared with Microsoft",
        "AzureIPCoSell",
        "endDateTime",
        "not deployed on Azure",
        "25,000",
    ):
        assert fragment in error["message"], fragment


async def test_registration_needs_72_hours_between_create_and_win(
    sandbox: Service, state: SandboxState
) -> None:
    ref = (await sandbox.post("referrals", json=new_referral(type="Shared"))).json()
    url = f"referrals/{ref['id']}"
    won = [
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Won"},
    ]
    assert_error(
        await sandbox.patch(url, json=won + _register(registration())), 400, "invalidRequest", "72 hours"
    )
    assert isinstance(state.clock, ManualClock)
    state.clock.advance(timedelta(hours=73).total_seconds())
    r = await sandbox.patch(url, json=won + _register(registration()))
    assert r.status_code == 204, r.text


async def test_registration_marketplace_and_perpetual_rules(sandbox: Service) -> None:
    ref = await _first(
        sandbox,
        "registrationStatus eq 'None' and status eq 'Closed' and substatus eq 'Won' and type eq 'Shared'",
    )
    market = registration()
    market["solutionDetails"][0]["marketplaceTransactionDetails"] = {"isMarketplaceTransacted": True}
    assert_error(
        await sandbox.patch(f"referrals/{ref['id']}", json=_register(market)),
        400,
        "invalidRequest",
        "marketplaceTransactionDateTime",
    )
    perpetual = registration()
    perpetual["contract"]["term"] = "Perpetual"
    assert_error(
        await sandbox.patch(f"referrals/{ref['id']}", json=_register(perpetual)),
        400,
        "invalidRequest",
        "Perpetual",
    )


async def test_registration_update_only_when_action_required(sandbox: Service) -> None:
    needs_action = await _first(sandbox, "registrationStatus eq 'ActionRequired'")
    ops = [{"op": "replace", "path": "/registrations/0/contract/value", "value": 160000}]
    r = await sandbox.patch(
        f"referrals/{needs_action['id']}", json=ops, headers={"Prefer": "return=representation"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["registrations"][0]["contract"]["value"] == 160000
    assert r.json()["registrationStatus"] == "ReviewPending"
    for state_name in ("Approved", "Failed", "ReviewPending"):
        ref = await _first(sandbox, f"registrationStatus eq '{state_name}'")
        assert_error(
            await sandbox.patch(f"referrals/{ref['id']}", json=ops), 400, "invalidRequest", "ActionRequired"
        )


async def test_registration_add_must_use_add(sandbox: Service) -> None:
    ref = await _first(sandbox, "registrationStatus eq 'None' and status eq 'Closed' and substatus eq 'Won'")
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": "/registrations/-", "value": registration()}],
    )
    assert_error(r, 400, "invalidRequest", "add")


# --- clock and expiry -----------------------------------------------------------------------------


async def test_incoming_referrals_expire_after_14_days(sandbox: Service, state: SandboxState) -> None:
    pending = await _all(sandbox, **{"$filter": "direction eq 'Incoming' and status eq 'New'"})
    assert pending
    r = await sandbox.client.post("https://sandbox.local/_sandbox/clock", json={"advance": 14 * 86400 + 1})
    assert r.status_code == 200 and r.json()["expired"] == len(pending)
    for ref in pending:
        after = (await sandbox.get(f"referrals/{ref['id']}")).json()
        assert (after["status"], after["substatus"]) == ("Closed", "Expired")
        assert after["eTag"] != ref["eTag"]
    outgoing_new = await _all(sandbox, **{"$filter": "direction eq 'Outgoing' and status eq 'New'"})
    assert outgoing_new  # outgoing referrals do not expire


async def test_expiry_is_applied_lazily_on_read(sandbox: Service, state: SandboxState) -> None:
    soon = await _first(
        sandbox, "direction eq 'Incoming' and status eq 'New' and createdDateTime lt 2025-05-21T00:00:00Z"
    )
    assert isinstance(state.clock, ManualClock)
    state.clock.advance(86400)  # no sweep call: the next read applies it
    after = (await sandbox.get(f"referrals/{soon['id']}")).json()
    assert after["substatus"] == "Expired"
    r = await sandbox.patch(
        f"referrals/{soon['id']}", json=[{"op": "replace", "path": "/status", "value": "Active"}]
    )
    assert_error(r, 400, "invalidRequest", "Closed")


# --- throttling -----------------------------------------------------------------------------------


async def test_throttling_429_with_retry_after_and_window_reset() -> None:
    app = create_app(make_config(rate_limit=5, rate_window=60))
    state: SandboxState = app.state.sandbox
    async with client_for(app) as client:
        headers = {"Authorization": "Bearer one"}
        for _ in range(5):
            assert (await client.get("referrals", params={"$top": "1"}, headers=headers)).status_code == 200
        r = await client.get("referrals", headers=headers)
        assert r.status_code == 429
        assert r.json() == {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 60 seconds."}
        assert r.headers["Retry-After"] == "60"
        other = await client.get("referrals", params={"$top": "1"}, headers={"Authorization": "Bearer two"})
        assert other.status_code == 200  # per token
        assert isinstance(state.clock, ManualClock)
        state.clock.advance(30)
        r = await client.get("referrals", headers=headers)
        assert r.status_code == 429 and r.headers["Retry-After"] == "30"
        state.clock.advance(31)
        assert (await client.get("referrals", params={"$top": "1"}, headers=headers)).status_code == 200
        assert state.stats()["throttled"] == 2


# --- faults ---------------------------------------------------------------------------------------


async def test_burst_429_and_errors(sandbox: Service, state: SandboxState) -> None:
    r = await sandbox.client.post("https://sandbox.local/_sandbox/faults", json={"burst_429": 2})
    assert r.json()["burst_429"] == 2
    assert (await sandbox.get("referrals")).status_code == 429
    assert (await sandbox.get("referrals")).status_code == 429
    assert (await sandbox.get("referrals", params={"$top": "1"})).status_code == 200
    state.faults.update(error_rate=1.0)
    statuses = {(await sandbox.get("referrals", params={"$top": "1"})).status_code for _ in range(20)}
    assert statuses == {500, 503}
    r = await sandbox.get("referrals")
    assert r.json()["error"]["code"] in ("generalException", "serviceNotAvailable")
    state.faults.clear()
    assert (await sandbox.get("referrals", params={"$top": "1"})).status_code == 200


async def test_bad_fault_settings_are_400(sandbox: Service) -> None:
    r = await sandbox.client.post("https://sandbox.local/_sandbox/faults", json={"error_rate": 2})
    assert r.status_code == 400
    r = await sandbox.client.post("https://sandbox.local/_sandbox/faults", json={"explode": True})
    assert r.status_code == 400


async def test_dropped_connection_before_any_write(sandbox: Service, state: SandboxState) -> None:
    state.faults.update(drop_rate=1.0)
    before = state.stats()["writesApplied"]
    with pytest.raises(ConnectionDropped) as info:
        await sandbox.post("referrals", json=new_referral())
    assert info.value.applied is False
    state.faults.clear()
    assert state.stats()["writesApplied"] == before


async def test_dropped_connection_after_the_write_is_applied(sandbox: Service, state: SandboxState) -> None:
    state.faults.update(drop_rate=1.0, drop_mode="after_write")
    with pytest.raises(ConnectionDropped) as info:
        await sandbox.post("referrals", json=new_referral(externalReferenceId="ambiguous-create-1"))
    assert info.value.applied is True
    state.faults.clear()
    found = _stored(state, "externalReferenceId eq 'ambiguous-create-1'")
    assert len(found) == 1
    assert state.stats()["writesByKind"]["create"] == 1


async def test_latency_is_added(sandbox: Service, state: SandboxState) -> None:
    state.faults.update(latency_ms=1)
    assert (await sandbox.get("referrals", params={"$top": "1"})).status_code == 200


# --- controls and seed ----------------------------------------------------------------------------


async def test_control_endpoints(sandbox: Service) -> None:
    base = "https://sandbox.local/_sandbox"
    r = await sandbox.client.post(f"{base}/reset", json={"size": 12, "seed": 3})
    assert r.json() == {"referrals": 12}
    await sandbox.get("referrals")
    await sandbox.client.get("referrals")
    stats = (await sandbox.client.get(f"{base}/stats")).json()
    assert stats["referrals"] == 12
    assert stats["byMethodStatus"] == {"GET 200": 1, "GET 401": 1}
    assert stats["writesApplied"] == 0
    now = (await sandbox.client.get(f"{base}/clock")).json()["now"]
    assert now.startswith("2025-06-02T12:00:00")
    assert (await sandbox.client.post(f"{base}/clock", json={"advance": "x"})).status_code == 400
    assert (await sandbox.client.post(f"{base}/reset", json={"size": -1})).status_code == 400
    assert (await sandbox.client.post(f"{base}/sweep")).json() == {"expired": 0}


async def test_clock_control_refuses_system_clock() -> None:
    from pcref_mcp.sandbox import SystemClock

    app = create_app(make_config(clock=SystemClock()))
    async with client_for(app) as client:
        assert (
            await client.post("https://sandbox.local/_sandbox/clock", json={"advance": 5})
        ).status_code == 400


async def test_seed_covers_every_state(state: SandboxState) -> None:
    docs = list(state.store.iter_docs())
    assert len(docs) == 60
    combos = {(d["direction"], d["status"], d["substatus"]) for d in docs}
    for status, subs in (
        ("New", ("Pending", "Received")),
        ("Active", ("Accepted",)),
        ("Closed", ("Won", "Lost", "Declined", "Expired")),
    ):
        for sub in subs:
            assert ("Incoming", status, sub) in combos
    assert {"ReviewPending", "ActionRequired", "Approved", "Failed"} <= {
        d["registrationStatus"] for d in docs
    }
    text = " ".join(
        f"{d['details']['notes']} {(d.get('inviteContext') or {}).get('notes')} {d['customerProfile']['name']}"
        for d in docs
    )
    for injection in INJECTION_TEXTS:
        assert injection.rstrip(".") in text
    engagements = [d["engagementId"] for d in docs]
    assert any(engagements.count(e) == 2 for e in engagements)
    assert len({d["customerProfile"]["address"]["country"] for d in docs}) >= 5
    assert len({d["details"]["currency"] for d in docs}) >= 4
    for d in docs:
        Referral.model_validate(d)


async def test_seed_is_deterministic() -> None:
    a = create_app(make_config()).state.sandbox
    b = create_app(make_config()).state.sandbox
    assert list(a.store.iter_docs()) == list(b.store.iter_docs())


async def test_in_process_transport_with_documented_base_url() -> None:
    app = create_app(make_config())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://sandbox.local/v1.0/engagements/"
    ) as client:
        r = await client.get("referrals", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert r.json()["@odata.context"] == "https://sandbox.local/v1.0/$metadata#Referrals"
