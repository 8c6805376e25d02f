"""The seven ``/registrations/0/solutionDetails/0/*`` update paths the connector allows (issue 12).

The sandbox used to refuse every one ("solutionDetails.0 must be an object"): its pointer writer
turned the list into an object. Each path is sent on its own, on a fresh sandbox, and must change
exactly that value of the first solution and send the registration back for review.
"""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.referrals.patch_paths import REGISTRATION_POINTERS
from pcref_mcp.sandbox import create_app
from tests.sandbox.conftest import TOKEN, Service, client_for, make_config
from tests.sandbox.helpers import assert_error

pytestmark = pytest.mark.anyio

# path -> a valid new value (different from what the seed holds)
SOLUTION_PATHS: dict[str, Any] = {
    "/registrations/0/solutionDetails/0/value": 98765,
    "/registrations/0/solutionDetails/0/currency": "EUR",
    "/registrations/0/solutionDetails/0/isDeployedOnAzure": True,
    "/registrations/0/solutionDetails/0/primaryDeploymentOn": "Partner",
    "/registrations/0/solutionDetails/0/pricingModel": "PayAsYouGo",
    "/registrations/0/solutionDetails/0/marketplaceTransactionDetails/isMarketplaceTransacted": False,
    "/registrations/0/solutionDetails/0/marketplaceTransactionDetails/marketplaceTransactionDateTime": (
        "2025-05-01T00:00:00Z"
    ),
}


def test_these_are_all_the_connectors_solution_paths() -> None:
    assert {p for p in REGISTRATION_POINTERS if "/solutionDetails/" in p} == set(SOLUTION_PATHS)


async def _needs_action(sandbox: Service) -> dict[str, Any]:
    body = (await sandbox.get("referrals")).json()
    docs = list(body["value"])
    while "@odata.nextLink" in body:
        body = (await sandbox.get(body["@odata.nextLink"])).json()
        docs += body["value"]
    found = [
        d for d in docs if d.get("registrations") and d["registrations"][0]["status"] == "ActionRequired"
    ]
    assert found, "the seed has a registration in ActionRequired"
    return found[0]


@pytest.fixture
async def sandbox() -> Any:
    app = create_app(make_config())
    async with client_for(app) as client:
        yield Service("sandbox", client, {"Authorization": f"Bearer {TOKEN}"}, app.state.sandbox)


@pytest.mark.parametrize("path", list(SOLUTION_PATHS), ids=lambda p: p.rsplit("/", 1)[-1])
async def test_each_solution_path_updates_the_first_solution(sandbox: Service, path: str) -> None:
    ref = await _needs_action(sandbox)
    before = ref["registrations"][0]["solutionDetails"]
    value = SOLUTION_PATHS[path]
    r = await sandbox.patch(
        f"referrals/{ref['id']}",
        json=[{"op": "replace", "path": path, "value": value}],
        headers={"Prefer": "return=representation", "If-Match": ref["eTag"]},
    )
    assert r.status_code == 200, r.text
    registration = r.json()["registrations"][0]
    details = registration["solutionDetails"]
    assert isinstance(details, list) and len(details) == len(before)  # still a list, nothing lost
    node: Any = details[0]
    for part in path.split("/solutionDetails/0/", 1)[1].split("/"):
        node = node[part]
    if path.endswith("DateTime"):
        assert node.startswith("2025-05-01T00:00:00")  # stored in the service's 7-digit form
    else:
        assert node == value
    assert registration["status"] == "ReviewPending"  # resubmitted for review
    assert details[1:] == before[1:]
    stored = (await sandbox.get(f"referrals/{ref['id']}")).json()
    assert stored["registrations"][0]["solutionDetails"] == details


async def test_two_solution_paths_in_one_request(sandbox: Service) -> None:
    ref = await _needs_action(sandbox)
    ops = [
        {"op": "replace", "path": "/registrations/0/solutionDetails/0/value", "value": 50000},
        {"op": "replace", "path": "/registrations/0/solutionDetails/0/currency", "value": "GBP"},
    ]
    r = await sandbox.patch(f"referrals/{ref['id']}", json=ops, headers={"Prefer": "return=representation"})
    assert r.status_code == 200, r.text
    first = r.json()["registrations"][0]["solutionDetails"][0]
    assert (first["value"], first["currency"]) == (50000, "GBP")


async def test_bad_value_on_a_solution_path_is_refused_and_changes_nothing(sandbox: Service) -> None:
    ref = await _needs_action(sandbox)
    ops = [{"op": "replace", "path": "/registrations/0/solutionDetails/0/pricingModel", "value": "Barter"}]
    assert_error(
        await sandbox.patch(f"referrals/{ref['id']}", json=ops), 400, "invalidRequest", "pricingModel"
    )
    assert (await sandbox.get(f"referrals/{ref['id']}")).json()["eTag"] == ref["eTag"]
