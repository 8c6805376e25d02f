"""The client against the real sandbox, in-process (ASGITransport) and over a socket on 127.0.0.1,
with its fault modes: 429 bursts, 5xx, dropped connections (before and after a write), stale ETags.

What must hold: no write is sent twice, no create is duplicated, every failure names the
correlation id.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pc_fakes import Sleeps

from pcref_mcp.errors import (
    NetworkError,
    NotFound,
    PcrefError,
    PreconditionFailed,
    ServiceUnavailable,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center import PartnerCenterClient, Query, RateLimiter, StaticTokenProvider
from pcref_mcp.referrals.models import PatchOperation
from pcref_mcp.sandbox import Faults, ManualClock, SandboxConfig, create_app
from pcref_mcp.team.standin_idp import serve_in_thread
from tests.profiles import CREATED
from tests.serving import tls

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 2, 12, 0, 0, tzinfo=UTC)
SEED_SIZE = 30

NEW_REFERRAL: dict[str, Any] = {
    "name": "Contoso supply chain (client integration test)",
    "type": "Independent",
    "qualification": "SalesQualified",
    "customerProfile": {
        "name": "Contoso Customer Inc",
        "address": {
            "addressLine1": "One Microsoft Way",
            "city": "Redmond",
            "state": "WA",
            "postalCode": "98052",
            "country": "US",
        },
        "size": "10to50employees",
        "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue.smith@contoso.example"}],
    },
    "consent": {"consentToToShareInfoWithOthers": True, "consentToContact": True},
    "details": {
        "notes": "Dynamics 365 for the supply chain.",
        "dealValue": 50000,
        "currency": "USD",
        "closingDateTime": "2025-11-14T00:00:00Z",
    },
    "team": [{"firstName": "John", "lastName": "Doe", "email": "john.doe@fabrikam.example"}],
}


def new_referral(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(NEW_REFERRAL)
    body.update(changes)
    return body


class Recording(httpx.AsyncBaseTransport):
    """Counts what actually left the client, and can run a hook after each request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []
        self.after: Callable[[httpx.Request], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            if self.after is not None:
                self.after(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, method: str) -> int:
        return sum(1 for r in self.sent if r.method == method and not r.url.path.startswith("/_sandbox"))


@dataclass
class Rig:
    client: PartnerCenterClient
    control: httpx.AsyncClient
    wire: Recording
    app: Any
    sleeps: Sleeps
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return self.app.state.sandbox

    async def faults(self, **knobs: Any) -> None:
        response = await self.control.post("/_sandbox/faults", json=knobs)
        assert response.status_code == 200, response.text

    async def stats(self) -> dict[str, Any]:
        response = await self.control.get("/_sandbox/stats")
        assert response.status_code == 200
        return response.json()

    def clear_faults_after_first(self, method: str) -> None:
        """Let the next ``method`` request meet the faults, then switch them off (deterministic)."""

        def hook(request: httpx.Request) -> None:
            if request.method == method:
                self.state.faults.clear()
                self.wire.after = None

        self.wire.after = hook


@pytest.fixture(params=["asgi", "socket"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    clock = ManualClock(START)
    app = create_app(
        SandboxConfig(
            seed_size=SEED_SIZE,
            clock=clock,
            faults=Faults(seed=7),
            rate_limit=10,
            rate_window=60.0,
            page_cap=7,
        )
    )
    sleeps = Sleeps()

    async def sleep(seconds: float) -> None:  # fake time for the client *and* the sandbox
        await sleeps(seconds)
        clock.advance(seconds)

    def build(
        origin: str, inner: httpx.AsyncBaseTransport, control_transport: httpx.AsyncBaseTransport
    ) -> Rig:
        wire = Recording(inner)
        client = PartnerCenterClient(
            f"{origin}/v1.0/engagements/",
            StaticTokenProvider("integration-token"),
            transport=wire,
            # A client a little more patient than the service (10 per 61 s vs 10 per 60 s).
            limiter=RateLimiter(10, 61.0, clock=sleeps.clock, sleep=sleep),
            sleep=sleep,
        )
        control = httpx.AsyncClient(
            transport=control_transport,
            base_url=origin,
            headers={"X-Sandbox-Control": app.state.control_token},
        )
        return Rig(client, control, wire, app, sleeps)

    if request.param == "asgi":
        rig = build("http://sandbox.test", httpx.ASGITransport(app=app), httpx.ASGITransport(app=app))
        try:
            yield rig
        finally:
            await rig.client.aclose()
            await rig.control.aclose()
    else:
        with serve_in_thread(app) as origin:
            rig = build(
                origin, httpx.AsyncHTTPTransport(verify=tls()), httpx.AsyncHTTPTransport(verify=tls())
            )
            try:
                yield rig
            finally:
                await rig.client.aclose()
                await rig.control.aclose()


# --- the happy path -------------------------------------------------------------------------------


async def test_list_pages_follow_next_link_verbatim(rig: Rig) -> None:
    first = await rig.client.list_page(Query(orderby=["createdDateTime desc"], count=True))
    assert len(first.value) == 7 and first.odata_next_link
    second = await rig.client.list_page(next_link=first.odata_next_link)
    assert str(rig.wire.sent[-1].url) == first.odata_next_link
    assert not {r.id for r in first.value} & {r.id for r in second.value}

    everything = await rig.client.list_all()
    assert len(everything.referrals) == SEED_SIZE and everything.truncated is None
    assert len({r.id for r in everything.referrals}) == SEED_SIZE
    capped = await rig.client.list_all(max_pages=2)
    assert len(capped.referrals) == 14 and capped.truncated == "max_pages" and capped.next_link
    assert (await rig.stats())["throttled"] == 0  # the client's limiter kept it under the service's


async def test_get_create_patch_and_stale_etag(rig: Rig) -> None:
    with rig.client.correlation() as cid:
        created = await rig.client.create(new_referral())
        assert created.id and created.e_tag
        assert created.external_reference_id and created.external_reference_id.startswith("pcref-")
        fetched = await rig.client.get(created.id)
        assert fetched.e_tag == created.e_tag
        ops = [PatchOperation(op="replace", path="/details/notes", value="Updated by the client test")]
        patched = await rig.client.patch(created.id, ops, etag=fetched.e_tag)
        assert patched.details and patched.details.notes == "Updated by the client test"
        assert patched.e_tag != fetched.e_tag
        with pytest.raises(PreconditionFailed) as info:
            await rig.client.patch(created.id, ops, etag=fetched.e_tag)
        assert cid in str(info.value) and info.value.correlation_id == cid
        with pytest.raises(NotFound) as missing:
            await rig.client.get("00000000-0000-0000-0000-000000000000")
        assert cid in str(missing.value)
    assert all(r.headers["MS-CorrelationId"] == cid for r in rig.wire.sent)
    found = await rig.client.find_by_external_id(created.external_reference_id)
    assert [r.id for r in found] == [created.id]


async def test_client_limiter_keeps_a_busy_session_unthrottled(rig: Rig) -> None:
    for _ in range(25):  # more than the service's 10 per minute
        await rig.client.list_page(Query(top=1))
    stats = await rig.stats()
    assert stats["throttled"] == 0 and stats["byMethodStatus"].get("GET 200") == 25


# --- faults ---------------------------------------------------------------------------------------


async def test_429_burst_is_waited_out_and_the_create_sent_once_processed(rig: Rig) -> None:
    await rig.faults(burst_429=3)
    created = await rig.client.create(new_referral())
    stats = await rig.stats()
    assert stats["byMethodStatus"]["POST 429"] == 3
    assert stats["byMethodStatus"][f"POST {CREATED}"] == 1
    assert stats["writesByKind"].get("create") == 1
    assert rig.wire.count("POST") == 4  # three refused, one processed
    assert 5 in rig.sleeps.delays  # the sandbox's Retry-After
    assert created.id


async def test_503_get_retried_then_reported_with_correlation_id(rig: Rig) -> None:
    await rig.faults(error_rate=1.0)
    with rig.client.correlation() as cid, pytest.raises(ServiceUnavailable) as info:
        await rig.client.list_page()
    assert cid in str(info.value) and info.value.status in (500, 503)
    assert rig.wire.count("GET") == 5


async def test_5xx_create_not_resent_and_reported_not_created(rig: Rig) -> None:
    await rig.faults(error_rate=1.0)
    rig.clear_faults_after_first("POST")
    with rig.client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await rig.client.create(new_referral())
    assert "not found yet" in str(info.value) and cid in str(info.value)
    assert rig.wire.count("POST") == 1
    assert (await rig.stats())["writesByKind"].get("create", 0) == 0


async def test_dropped_after_write_create_found_not_duplicated(rig: Rig) -> None:
    await rig.faults(drop_rate=1.0, drop_mode="after_write")
    rig.clear_faults_after_first("POST")
    with rig.client.correlation():
        created = await rig.client.create(new_referral())
    assert rig.wire.count("POST") == 1
    stats = await rig.stats()
    assert stats["writesByKind"]["create"] == 1 and stats["referrals"] == SEED_SIZE + 1
    found = await rig.client.find_by_external_id(created.external_reference_id)
    assert [r.id for r in found] == [created.id]


async def test_dropped_before_write_create_reported_not_created(rig: Rig) -> None:
    await rig.faults(drop_rate=1.0, drop_mode="before")
    rig.clear_faults_after_first("POST")
    with rig.client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await rig.client.create(new_referral())
    assert "not found yet" in str(info.value) and cid in str(info.value)
    assert rig.wire.count("POST") == 1
    assert (await rig.stats())["referrals"] == SEED_SIZE


async def test_dropped_after_write_patch_settled_by_reading_back(rig: Rig) -> None:
    created = await rig.client.create(new_referral())
    await rig.faults(drop_rate=1.0, drop_mode="after_write")
    rig.clear_faults_after_first("PATCH")
    ops = [PatchOperation(op="replace", path="/details/dealValue", value=75000)]
    after = await rig.client.patch(created.id or "", ops, etag=created.e_tag)
    assert after.details and after.details.deal_value == 75000
    assert rig.wire.count("PATCH") == 1
    assert (await rig.stats())["writesByKind"].get("patch") == 1


async def test_5xx_patch_not_resent_and_never_called_safe_to_retry(rig: Rig) -> None:
    created = await rig.client.create(new_referral())
    await rig.faults(error_rate=1.0)
    rig.clear_faults_after_first("PATCH")
    ops = [PatchOperation(op="replace", path="/details/notes", value="x")]
    with rig.client.correlation() as cid, pytest.raises(WriteOutcomeUnknown) as info:
        await rig.client.patch(created.id or "", ops, etag=created.e_tag)
    assert "safe to try again" not in str(info.value) and cid in str(info.value)
    assert rig.wire.count("PATCH") == 1
    assert (await rig.stats())["writesByKind"].get("patch", 0) == 0


async def test_chaos_no_write_twice_no_duplicate_every_error_names_correlation(rig: Rig) -> None:
    """Many writes under random 5xx, drops after writes and 429 bursts: the invariants hold."""
    await rig.faults(error_rate=0.25, drop_rate=0.25, drop_mode="after_write", seed=11)
    outcomes: Counter[str] = Counter()
    create_calls = patch_calls = 0
    created_ids: list[str] = []
    for i in range(24):
        if i % 8 == 0:
            await rig.faults(burst_429=2)
        with rig.client.correlation() as cid:
            try:
                create_calls += 1
                ref = await rig.client.create(new_referral(name=f"Chaos {i}"))
                created_ids.append(ref.id or "")
                outcomes["created"] += 1
                if ref.id and ref.e_tag:
                    patch_calls += 1
                    await rig.client.patch(
                        ref.id,
                        [PatchOperation(op="replace", path="/details/notes", value=f"n{i}")],
                        etag=ref.e_tag,
                    )
                    outcomes["patched"] += 1
            except PcrefError as err:
                outcomes[type(err).__name__] += 1
                assert cid in str(err), str(err)
                assert isinstance(err, ServiceUnavailable | NetworkError | WriteOutcomeUnknown), repr(err)
    await rig.faults(clear=True)

    # No write is ever sent twice: every POST/PATCH on the wire beyond one per call was refused (429).
    stats = await rig.stats()
    by = stats["byMethodStatus"]
    assert rig.wire.count("POST") == create_calls + by.get("POST 429", 0)
    assert rig.wire.count("PATCH") == patch_calls + by.get("PATCH 429", 0)
    # No create is duplicated: every stamped externalReferenceId is on at most one referral.
    everything = await rig.client.list_all(Query(top=100))
    stamped = Counter(r.external_reference_id for r in everything.referrals if r.external_reference_id)
    assert all(n == 1 for ext, n in stamped.items() if ext.startswith("pcref-"))
    assert stats["writesByKind"].get("create", 0) == len(everything.referrals) - SEED_SIZE
    assert len(set(created_ids)) == len(created_ids)
    assert outcomes["created"] > 0 and sum(stats["faultsInjected"].values()) > 0
