"""Two people change the same referral at once: exactly one change lands, the other gets a clear stale
answer that says what changed, and nothing is lost. Two MCP sessions on one runtime, and two
runtimes (two processes' worth of state: own journal; approvals in the shared data dir) on one sandbox."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.errors import PreconditionFailed, ServiceUnavailable
from pcref_mcp.referrals.models import PatchOperation, Referral
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server.app import build_server
from pcref_mcp.writes.engine import WriteEngine
from pcref_mcp.writes.journal import Journal
from pcref_mcp.writes.preview import WritePlan
from tests.reliability.helpers import Backend, fast_runtime
from tests.server.conftest import START, call

pytestmark = pytest.mark.anyio

ROUNDS = 12
FIGURES: dict[str, Any] = {}


def _sandbox(tmp_path: Path) -> Any:
    return create_app(
        SandboxConfig(db_path=tmp_path / "sandbox.db", seed_size=60, clock=ManualClock(START), rate_limit=0)
    )


def _active(app: Any) -> list[str]:
    return app.state.sandbox.store.ids_where("status = ? AND substatus = ?", ("Active", "Accepted"))


def _deal(rid: str, value: int) -> dict[str, Any]:
    return {"referral_id": rid, "changes": [{"field": "deal value", "value": value}]}


async def _preview(c: Client, args: dict[str, Any]) -> str:
    out = await call(c, "update_field", args)
    assert out["status"] == "confirmation_required", out
    return str(out["confirm_token"])


def _check_stale(out: dict[str, Any], winner: int, loser: int) -> str:
    """The loser's answer: stale, nothing written, and it names the field and both values."""
    assert out["status"] == "stale", out
    message = out["message"]
    assert "Nothing was written" in message
    assert re.search(r"(deal value|/details/dealValue)", message), message
    assert str(winner) in message, message
    # either refused at redemption (a fresh token) or by the service (412, journaled as failed)
    return "token" if out.get("confirm_token") else "etag"


async def test_sequential_conflict_across_sessions_names_what_changed(tmp_path: Path) -> None:
    app = _sandbox(tmp_path)
    backend = fast_runtime(Settings(journal_path=tmp_path / "j.sqlite3"), app)
    server = build_server(backend.runtime.settings, runtime=backend.runtime)
    rid = _active(app)[0]
    try:
        async with Client(server) as alice, Client(server) as bob:
            a = await _preview(alice, _deal(rid, 111111))
            b = await _preview(bob, _deal(rid, 222222))
            done = await call(alice, "update_field", {**_deal(rid, 111111), "confirm_token": a})
            assert done["status"] == "applied"
            late = await call(bob, "update_field", {**_deal(rid, 222222), "confirm_token": b})
            assert _check_stale(late, 111111, 222222) == "token"
            assert "111111" in late["message"]
            # the fresh preview shows the current value as "before"
            assert late["preview"]["changes"][0]["before"] == 111111
        stored = app.state.sandbox.store.get(rid)
        assert stored["details"]["dealValue"] == 111111
        assert app.state.sandbox.store.writes_for(rid).count("patch") == 1
        assert [e.status for e in await backend.runtime.journal.recent(10)] == ["applied"]
    finally:
        await backend.runtime.aclose()


async def _race(app: Any, sessions: list[Client], backends: list[Backend], rounds: int) -> Counter[str]:
    """Each round: both sessions preview different values for one referral, then confirm at once."""
    store = app.state.sandbox.store
    paths: Counter[str] = Counter()
    app.state.sandbox.faults.update(latency_ms=2)  # widen the window so both plans read the same ETag
    ids = _active(app)
    for n in range(rounds):
        rid = ids[n % len(ids)]
        values = [500000 + n * 10 + i for i in range(2)]
        writes_before = store.writes_for(rid).count("patch")
        tokens = [await _preview(s, _deal(rid, v)) for s, v in zip(sessions, values, strict=True)]
        results: list[dict[str, Any]] = [{}, {}]

        async def confirm(
            i: int,
            rid: str = rid,
            tokens: list[str] = tokens,
            values: list[int] = values,
            results: list[dict[str, Any]] = results,
        ) -> None:
            results[i] = await call(
                sessions[i], "update_field", {**_deal(rid, values[i]), "confirm_token": tokens[i]}
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(confirm, 0)
            tg.start_soon(confirm, 1)
        statuses = sorted(r["status"] for r in results)
        assert statuses == ["applied", "stale"], results
        win = 0 if results[0]["status"] == "applied" else 1
        paths[_check_stale(results[1 - win], values[win], values[1 - win])] += 1
        stored = store.get(rid)
        assert stored["details"]["dealValue"] == values[win]  # the winner's value, not overwritten
        assert store.writes_for(rid).count("patch") == writes_before + 1  # exactly one landed
        assert stored["eTag"] == results[win]["referral"].get("etag", stored["eTag"])
    app.state.sandbox.faults.clear()
    for b in backends:
        entries = await b.runtime.journal.recent(1000)
        assert not [e for e in entries if e.status in ("pending", "in_doubt")]
        for e in entries:
            if e.status == "failed":
                assert "stale ETag" in (e.error or "")
    return paths


async def test_concurrent_confirms_two_sessions_one_runtime(tmp_path: Path) -> None:
    app = _sandbox(tmp_path)
    backend = fast_runtime(Settings(journal_path=tmp_path / "j.sqlite3"), app)
    server = build_server(backend.runtime.settings, runtime=backend.runtime)
    try:
        async with Client(server) as alice, Client(server) as bob:
            paths = await _race(app, [alice, bob], [backend], ROUNDS)
    finally:
        await backend.runtime.aclose()
    FIGURES["one_runtime"] = dict(paths)
    print("\nRACE FIGURES one runtime", dict(paths))


async def test_concurrent_confirms_two_runtimes_one_sandbox(tmp_path: Path) -> None:
    app = _sandbox(tmp_path)
    # two processes of one person: one store (the journal file, which keeps the approvals too)
    backends = [fast_runtime(Settings(journal_path=tmp_path / "j.sqlite3"), app) for _ in range(2)]
    servers = [build_server(b.runtime.settings, runtime=b.runtime) for b in backends]
    try:
        async with Client(servers[0]) as alice, Client(servers[1]) as bob:
            # over stdio a token outlives its process (approvals are kept in the store, here shared):
            # the person's next process redeems it, and only once
            rid = _active(app)[0]
            token = await _preview(alice, _deal(rid, 1))
            taken = await bob.call_tool("update_field", {**_deal(rid, 1), "confirm_token": token})
            assert not taken.is_error and taken.structured_content["status"] == "applied"  # type: ignore[index]
            again = await alice.call_tool("update_field", {**_deal(rid, 1), "confirm_token": token})
            assert again.is_error  # spent (or nothing left to change): never a second write
            paths = await _race(app, [alice, bob], backends, ROUNDS)
    finally:
        for b in backends:
            await b.runtime.aclose()
    FIGURES["two_runtimes"] = dict(paths)
    print("\nRACE FIGURES two runtimes", dict(paths))


async def test_stale_write_whose_reread_fails_is_still_journaled(tmp_path: Path) -> None:
    """A 412 followed by a failed read-back: the entry is settled as failed, never left pending."""

    class Client412:
        async def patch(self, *a: Any, **k: Any) -> Referral:
            raise PreconditionFailed("changed", correlation_id="c")

        async def get(self, *a: Any, **k: Any) -> Referral:
            raise ServiceUnavailable("down", correlation_id="c")

        def correlation(self) -> Any:
            from pcref_mcp.partner_center.client import PartnerCenterClient

            return PartnerCenterClient.correlation()

    journal = Journal(tmp_path / "j.sqlite3")
    engine = WriteEngine(Client412(), journal)  # type: ignore[arg-type]
    plan = WritePlan(
        tool="update_field",
        kind="update",
        summary="Update x",
        referral_id="r1",
        etag="e1",
        operations=[PatchOperation(op="replace", path="/details/notes", value="n")],
    )
    outcome = await engine.execute(plan)
    assert (
        outcome.status == "stale" and "Nothing was written" in outcome.message and "down" in outcome.message
    )
    entry = await journal.get(outcome.change_id or 0)
    assert entry is not None and entry.status == "failed"
    journal.close()
