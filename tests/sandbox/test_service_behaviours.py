"""The sandbox's service behaviours (issue 20): a real service may accept a query option and ignore
it, count a page, end pages without next links, apply a write and still answer 503, or serve a read
from a replica that has not seen the last write. Each switch does exactly that, and clears."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.sandbox.faults import Faults
from pcref_mcp.sandbox.state import SandboxState
from tests.sandbox.conftest import Service

pytestmark = pytest.mark.anyio


async def _ids(sandbox: Service, **params: str) -> list[str]:
    r = await sandbox.get("referrals", params=params)
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["value"]]


async def test_ignore_orderby(sandbox: Service, state: SandboxState) -> None:
    asc = await _ids(sandbox, **{"$orderby": "createdDateTime asc", "$top": "5"})
    state.faults.update(ignore_orderby=True)
    assert await _ids(sandbox, **{"$orderby": "createdDateTime asc", "$top": "5"}) == await _ids(
        sandbox, **{"$top": "5"}
    )
    assert await _ids(sandbox, **{"$top": "5"}) != asc
    state.faults.clear()
    assert await _ids(sandbox, **{"$orderby": "createdDateTime asc", "$top": "5"}) == asc


async def test_ignore_skip(sandbox: Service, state: SandboxState) -> None:
    first = await _ids(sandbox, **{"$top": "3"})
    assert await _ids(sandbox, **{"$top": "3", "$skip": "3"}) != first
    state.faults.update(ignore_skip=True)
    assert await _ids(sandbox, **{"$top": "3", "$skip": "3"}) == first


@pytest.mark.parametrize("sandbox_profile", ["lenient"])
async def test_ignore_filter(sandbox: Service, state: SandboxState) -> None:
    assert await _ids(sandbox, **{"$filter": "status eq 'NoSuchStatus'"}) == []
    state.faults.update(ignore_filter=True)
    assert len(await _ids(sandbox, **{"$filter": "status eq 'NoSuchStatus'", "$top": "3"})) == 3


@pytest.mark.parametrize("sandbox_profile", ["lenient"])
async def test_page_count_and_no_next_link(sandbox: Service, state: SandboxState) -> None:
    state.config.page_cap = 10
    whole = (await sandbox.get("referrals", params={"$count": "true"})).json()
    assert whole["@odata.count"] == 60 and "@odata.nextLink" in whole
    state.faults.update(page_count=True, no_next_link=True)
    page = (await sandbox.get("referrals", params={"$count": "true"})).json()
    assert page["@odata.count"] == 10 and "@odata.nextLink" not in page


async def test_fail_after_write_applies_then_answers_an_html_503(
    sandbox: Service, state: SandboxState
) -> None:
    [rid] = await _ids(sandbox, **{"$top": "1"})
    state.faults.update(fail_after_write=1)
    r = await sandbox.patch(
        f"referrals/{rid}", json=[{"op": "replace", "path": "/details/dealValue", "value": 31337}]
    )
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert (await sandbox.get(f"referrals/{rid}")).json()["details"]["dealValue"] == 31337
    assert state.faults.fail_after_write == 0  # one write only


async def test_lagging_reads_serve_the_state_before_the_write(sandbox: Service, state: SandboxState) -> None:
    [rid] = await _ids(sandbox, **{"$top": "1"})
    before = (await sandbox.get(f"referrals/{rid}")).json()
    state.faults.update(lagging_reads=2)
    r = await sandbox.patch(
        f"referrals/{rid}", json=[{"op": "replace", "path": "/details/dealValue", "value": 4242}]
    )
    assert r.status_code in (200, 204)
    reads: list[dict[str, Any]] = [(await sandbox.get(f"referrals/{rid}")).json() for _ in range(3)]
    assert [x["eTag"] for x in reads[:2]] == [before["eTag"]] * 2
    assert reads[0]["details"]["dealValue"] == before["details"]["dealValue"]
    assert reads[2]["details"]["dealValue"] == 4242 and reads[2]["eTag"] != before["eTag"]


def test_switches_are_validated_and_cleared() -> None:
    faults = Faults()
    with pytest.raises(ValueError):
        faults.update(ignore_orderby="yes")
    with pytest.raises(ValueError):
        faults.update(lagging_reads=-1)
    with pytest.raises(ValueError):
        faults.update(fail_after_write=True)
    faults.update(ignore_orderby=True, ignore_skip=True, page_count=True, lagging_reads=3, fail_after_write=1)
    faults.wrote("r1", "{}")
    faults.clear()
    assert faults.as_dict()["ignore_orderby"] is False and faults.lagging("r1") is None
    assert faults.as_dict()["lagging_reads"] == 0 and faults.as_dict()["fail_after_write"] == 0


async def test_switches_over_http(sandbox: Service) -> None:
    base = "https://sandbox.local/_sandbox/faults"
    r = await sandbox.client.post(base, json={"ignore_orderby": True, "lagging_reads": 1})
    assert r.status_code == 200 and r.json()["ignore_orderby"] is True
    assert (await sandbox.client.post(base, json={"ignore_skip": "maybe"})).status_code == 400
