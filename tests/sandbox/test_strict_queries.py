"""The strict profile's query path: only the documented filters and orderbys, @odata.count per page."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.sandbox import create_app
from pcref_mcp.sandbox.odata import ODataError, compile_filter, compile_orderby
from tests.sandbox.conftest import TOKEN, client_for, make_config

pytestmark = pytest.mark.anyio

DOCUMENTED = [
    "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
    "status eq 'New' and qualification eq 'SalesQualified'",
    "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
    "(direction eq 'Incoming' and substatus eq 'Pending')",
    "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'x@y.com')",
]

REFUSED = {
    "status eq 'New' or status eq 'Active'": "'or' is not supported",
    "not status eq 'New'": "'not' is not supported",
    "createdDateTime ge 2024-01-01T00:00:00Z": "filtering on 'createdDateTime'",
    "status ne 'New'": "operator 'ne'",
    "contains(name,'x')": "function 'contains'",
    "contains(tolower(name),'x')": "function 'contains'",
    "externalReferenceId eq 'x'": "filtering on 'externalReferenceId'",
    "customerProfile/name eq 'Contoso'": "filtering on 'customerProfile/name'",
    "details/dealValue eq 5": "filtering on 'details/dealValue'",
    "team/any(t:t/firstName eq 'Sue')": "filtering on 't/firstName'",
    "team/all(t:t/email eq 'x@y.com')": "team/all",
    "customerProfile/team/any(t:t/email eq 'x@y.com')": "customerProfile/team/any",
}


@pytest.mark.parametrize("text", DOCUMENTED)
def test_documented_filters_are_accepted_in_both_profiles(text: str) -> None:
    assert compile_filter(text, strict=True) == compile_filter(text)


@pytest.mark.parametrize(("text", "why"), REFUSED.items(), ids=list(REFUSED))
def test_everything_else_is_refused_in_strict_and_accepted_in_lenient(text: str, why: str) -> None:
    compile_filter(text)  # lenient reads it
    with pytest.raises(ODataError) as err:
        compile_filter(text, strict=True)
    assert why in err.value.message
    assert "documents only eq/and" in err.value.message


def test_orderby_only_on_the_two_timestamps_in_strict() -> None:
    assert compile_orderby("createdDateTime desc", strict=True)
    assert compile_orderby("updatedDateTime asc, createdDateTime desc", strict=True)
    for text in ("details/dealValue desc", "name", "details/closingDateTime asc"):
        compile_orderby(text)
        with pytest.raises(ODataError, match="is not supported; supported: createdDateTime, updatedDateTime"):
            compile_orderby(text, strict=True)


async def _get(profile: str, params: dict[str, str]) -> Any:
    app = create_app(make_config(profile=profile, seed_size=30))
    async with client_for(app) as http:
        return await http.get("referrals", params=params, headers={"Authorization": f"Bearer {TOKEN}"})


async def test_strict_refuses_in_the_documented_error_shape() -> None:
    r = await _get("strict", {"$filter": "contains(name,'a')"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalidRequest"
    assert error["target"] == "referral"
    assert "contains" in error["message"]
    assert error["innerError"]["code"] == "invalidQueryOption"
    r = await _get("strict", {"$orderby": "details/dealValue desc"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalidRequest"


async def test_strict_count_is_the_page_count_as_documented_lenient_counts_matches() -> None:
    strict = (await _get("strict", {"$top": "5", "$count": "true"})).json()
    assert strict["@odata.count"] == len(strict["value"]) == 5
    unasked = (await _get("strict", {"$top": "3"})).json()
    assert unasked["@odata.count"] == 3  # present without $count, like the documented example
    lenient = (await _get("lenient", {"$top": "5", "$count": "true"})).json()
    assert lenient["@odata.count"] == 30 and len(lenient["value"]) == 5
    assert "@odata.count" not in (await _get("lenient", {"$top": "3"})).json()


async def test_strict_pages_follow_next_link_with_per_page_counts() -> None:
    app = create_app(make_config(profile="strict", seed_size=30, page_cap=10))
    seen: list[str] = []
    async with client_for(app) as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = (
            await http.get("referrals", params={"$filter": "direction eq 'Incoming'"}, headers=headers)
        ).json()
        while True:
            assert body["@odata.count"] == len(body["value"])
            seen += [r["id"] for r in body["value"]]
            if "@odata.nextLink" not in body:
                break
            body = (await http.get(body["@odata.nextLink"], headers=headers)).json()
    assert len(seen) == len(set(seen)) > 0
