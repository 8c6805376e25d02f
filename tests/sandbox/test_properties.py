"""Bad input never corrupts the store and never causes a 500: random PATCH bodies, filters, orderbys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, REGISTRATION_POINTERS
from pcref_mcp.sandbox import create_app
from pcref_mcp.sandbox.odata import FIELDS
from tests.sandbox.conftest import TOKEN, make_config
from tests.sandbox.helpers import REGISTRATION

APP = create_app(make_config(seed_size=40))
STATE = APP.state.sandbox
IDS = [d["id"] for d in STATE.store.iter_docs()]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
paths = st.sampled_from([*REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, *REGISTRATION_POINTERS]) | st.text(
    max_size=30
)
plausible = st.sampled_from(
    [
        "Active",
        "Closed",
        "New",
        "Won",
        "Lost",
        "Expired",
        "Accepted",
        "Pending",
        "USD",
        "EUR",
        "ZZZ",
        100,
        -1,
        "1e3",
        {"email": "a@b.example"},
        {"email": "bad"},
        [],
        [{"email": "x@y.example"}],
        REGISTRATION,
        "2025-01-01T00:00:00Z",
        "Finite",
        "Perpetual",
        True,
        False,
        None,
        {"id": "SOL-1", "name": "x"},
    ]
)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "test", "ADD"]) | st.text(max_size=5), "path": paths},
    optional={"value": plausible | json_values},
)
patch_bodies = st.lists(operations, max_size=5) | json_values

field_names = [*sorted(FIELDS), "customerProfile/address/country", "details/dealValue", "team", "nosuch"]
atoms = st.sampled_from(
    [
        "'New'",
        "'O''Neil'",
        "1",
        "-2.5",
        "true",
        "null",
        "2024-01-01T00:00:00Z",
        "37ef26aa-1d15-4533-9f93-a69bd33ab1e5",
        "'",
    ]
)
comparisons = st.builds(
    lambda f, op, v: f"{f} {op} {v}",
    st.sampled_from(field_names),
    st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "eqq", ""]),
    atoms,
)
filters = st.recursive(
    comparisons
    | st.sampled_from(
        ["contains(name, 'a')", "team/any(t: t/email eq 'x')", "registrations/all(r: r/status eq 'Approved')"]
    ),
    lambda inner: (
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or", "and not"]), inner)
        | st.builds(lambda a: f"({a})", inner)
        | st.builds(lambda a: f"not {a}", inner)
    ),
    max_leaves=6,
) | st.text(max_size=40)
orderbys = st.lists(st.sampled_from([*field_names, "createdDateTime desc", "x y z", ""]), max_size=3).map(
    ",".join
)


def _check_store() -> None:
    assert STATE.store.integrity_check() == "ok"
    for doc in STATE.store.iter_docs():
        Referral.model_validate(doc)


@pytest.mark.anyio
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(0, len(IDS) - 1),
    body=patch_bodies,
    if_match=st.sampled_from([None, "*", '"stale"']),
    prefer=st.booleans(),
)
async def test_random_patches_never_500_nor_corrupt(
    index: int, body: Any, if_match: str | None, prefer: bool
) -> None:
    headers = dict(HEADERS)
    if if_match:
        headers["If-Match"] = if_match
    if prefer:
        headers["Prefer"] = "return=representation"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="https://sandbox.local/v1.0/engagements/"
    ) as client:
        r = await client.patch(f"referrals/{IDS[index]}", content=json.dumps(body), headers=headers)
    assert r.status_code in (200, 204, 400, 412), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] == "invalidRequest"
    stored = STATE.store.get(IDS[index])
    assert stored is not None
    Referral.model_validate(stored)


@pytest.mark.anyio
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(flt=filters, order=orderbys, top=st.sampled_from([None, "0", "5", "x", "500"]))
async def test_random_queries_never_500(flt: str, order: str, top: str | None) -> None:
    params = {"$filter": flt, "$orderby": order}
    if top is not None:
        params["$top"] = top
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="https://sandbox.local/v1.0/engagements/"
    ) as client:
        r = await client.get("referrals", params=params, headers=HEADERS)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert "error" in r.json()


def test_store_is_intact_after_fuzzing() -> None:
    _check_store()
