"""The team deployment end to end, as `deploy/` starts it: PostgreSQL, one shared sandbox, three
stateless replicas and nginx on loopback (issue 14).

- any replica serves any request: a 2025-era SDK client through the proxy; a token previewed on one
  replica is redeemed on another, once;
- faults: a 500-call mixed workload from 50 simulated people with one replica killed (SIGKILL) mid
  run and PostgreSQL restarted once; nothing acknowledged is lost, nothing is written twice, every
  in-doubt write is settled through the journal, and the journal matches the service.

Run by `make e2e` (PCREF_E2E_REQUIRED=1: a missing nginx or PostgreSQL fails; the project's set-up
installs them as root). Bounded: a few hundred calls, well under two minutes on two cores.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from deploy.postgres import find_binary
from deploy.stack import BEARER, Stack, nginx_binary
from deploy.workload import Workload

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

_REQUIRED = bool(os.environ.get("CI") or os.environ.get("PCREF_E2E_REQUIRED"))


def _need_tools() -> None:
    missing = [
        n for n, found in (("nginx", nginx_binary()), ("PostgreSQL", find_binary("initdb"))) if not found
    ]
    if missing:
        message = f"{' and '.join(missing)} not installed (make e2e installs them as root)"
        if _REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    _need_tools()
    root = Path(tempfile.mkdtemp(prefix="pcref-e2e-stack-"))
    with Stack(root, replicas=3, sandbox_size=300, rate_limit_calls=1_000_000) as running:
        yield running


async def test_a_2025_client_works_through_the_proxy_and_any_replica_redeems_a_token(stack: Stack) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {BEARER}"}, timeout=60) as http_client,
        Client(streamable_http_client(stack.url, http_client=http_client), read_timeout_seconds=60) as client,
    ):
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"search_referrals", "update_field", "recent_changes"} <= tools
        found = await client.call_tool("search_referrals", {"filters": {"status": ["Active"]}, "limit": 3})
        assert not found.is_error and found.structured_content
        referral = found.structured_content["rows"][0]["id"]

    # preview on replica 0, confirm on replica 2, replay on replica 1: one write
    replicas = [f"http://127.0.0.1:{p}/mcp" for p in stack.replica_ports]
    direct = [Workload(url, BEARER) for url in replicas]
    args = {"referral_id": referral, "changes": [{"field": "deal value", "value": 424242}]}
    patches_before = _service_patches(stack.root / "sandbox.db").get(referral, 0)
    async with httpx.AsyncClient(timeout=60) as http:
        preview = await direct[0]._call(http, "update_field", args)
        assert preview["status"] == "confirmation_required", preview
        confirmed = {**args, "confirm_token": preview["confirm_token"]}
        done = await direct[2]._call(http, "update_field", confirmed)
        assert done["status"] == "applied", done
        again = await direct[1]._call(http, "update_field", confirmed)
        assert "already used" in again.get("error", "") or "nothing to change" in again.get("error", ""), (
            again
        )
        assert _service_patches(stack.root / "sandbox.db").get(referral, 0) == patches_before + 1
        # the journal is one: replica 1 lists the change replica 2 made
        recent = await direct[1]._call(http, "recent_changes", {})
        assert any(line.startswith(f"change_id {done['change_id']} ") for line in recent["changes"]), recent
        # a search cursor signed by one replica pages on another (keys from PCREF_STORE_KEY)
        page = await direct[0]._call(
            http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 2}
        )
        assert page.get("next_cursor"), page
        more = await direct[1]._call(
            http,
            "search_referrals",
            {"filters": {"status": ["Active"]}, "limit": 2, "cursor": page["next_cursor"]},
        )
        assert (
            "error" not in more
            and more["rows"]
            and more["rows"][0]["id"] not in {r["id"] for r in page["rows"]}
        )


async def test_a_killed_replica_and_a_database_restart_lose_and_duplicate_nothing(stack: Stack) -> None:
    from pcref_mcp.partner_center.auth import StaticTokenProvider
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.writes.journal import Journal
    from pcref_mcp.writes.settle import settle_in_doubt

    assert stack.database_url is not None
    store = PostgresStore(stack.database_url, secret=stack.key.encode())
    journal = Journal(store)
    before = {e.id for e in await journal.recent(1000, any_actor=True)}
    baseline = _service_patches(stack.root / "sandbox.db")
    faults: list[str] = []

    async def chaos(done: int) -> None:
        if (
            done >= 120 and "slow" not in faults
        ):  # writes linger at the service: the kill catches some mid-send
            faults.append("slow")
            await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(latency_ms=400))
        elif done >= 160 and "kill" not in faults:
            faults.append("kill")
            victim = str(stack.replica_pids()[1])
            with anyio.move_on_after(10):  # kill it while it has a write in flight (journaled, unanswered)
                while not [r for r in await store.journal_pending() if r["owner"].split("|")[1] == victim]:
                    await anyio.sleep(0.02)
            await anyio.to_thread.run_sync(stack.kill_replica, 1)
            await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(clear=True))
        elif done >= 300 and "restart" not in faults:
            faults.append("restart")
            await anyio.to_thread.run_sync(stack.restart_postgres)

    outcome = await Workload(stack.url, BEARER, people=50, calls=500, on_progress=chaos).run()
    assert faults == ["slow", "kill", "restart"]
    assert outcome.calls == 500
    assert not [r for r in outcome.refused if "confirm" in r and "already used" not in r], outcome.refused[:5]

    # the journal settles what the killed replica left in doubt (a fresh look: its process is gone)
    journal = Journal(store)
    pending = [e for e in await journal.recent(1000, any_actor=True) if e.id not in before]
    assert [e for e in pending if e.status == "in_doubt"], "the kill caught no write in flight"
    client = PartnerCenterClient(f"{stack.sandbox_url}/v1.0/engagements/", StaticTokenProvider("settle"))
    try:
        settled = await settle_in_doubt(journal, client)
    finally:
        await client.aclose()
    entries = [e for e in await journal.recent(1000, any_actor=True) if e.id not in before]
    assert not [e for e in entries if e.status in ("pending", "in_doubt")], [
        (s.entry_id, s.how) for s in settled
    ]

    # nothing lost: every acknowledged write is applied in the journal, with its value
    by_id = {e.id: e for e in entries}
    for change_id, (referral, value) in outcome.acknowledged.items():
        entry = by_id[change_id]
        assert entry.status == "applied" and entry.referral_id == referral
        assert entry.operations[0]["value"] == value
    # nothing duplicated: each value written once, and the service took exactly the journal's writes
    applied = sorted((e for e in entries if e.status == "applied" and e.kind == "update"), key=lambda e: e.id)
    values = Counter(e.operations[0]["value"] for e in applied)
    assert values and max(values.values()) == 1
    patches = _service_patches(stack.root / "sandbox.db")
    per_referral = Counter(e.referral_id for e in applied)
    touched = {e.referral_id for e in entries}
    for referral in touched:
        assert patches.get(referral, 0) - baseline.get(referral, 0) == per_referral.get(referral, 0), referral
    # the journal matches the service: each referral holds its last applied journal value
    current = _service_values(stack.root / "sandbox.db")
    for referral in touched:
        mine = [e for e in applied if e.referral_id == referral]
        if mine:
            assert current[referral] == mine[-1].operations[0]["value"], referral
    await store.close()
    stack.start_replica(1)  # back to three for whatever runs next
    print(
        f"\nFAULT RUN calls={outcome.calls} acknowledged={len(outcome.acknowledged)} unknown={len(outcome.unknown)}"
        f" retries={outcome.retries} settled={[(s.status, s.how) for s in settled]}"
    )


def _service_patches(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT referral_id, COUNT(*) FROM writes WHERE kind='patch' GROUP BY referral_id"
        )
        return {r[0]: int(r[1]) for r in rows}


def _service_values(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {r[0]: r[1] for r in conn.execute("SELECT id, deal_value FROM referrals")}


def test_the_scale_benchmark_runs_and_renders(tmp_path: Path) -> None:
    """bench/scale.py at toy sizes: both deployments measured, every figure present (nothing compared)."""
    _need_tools()
    from bench import scale

    results = scale.run(people=4, calls=24, store_ops=5, sandbox_size=60)
    for label in ("sqlite", "postgres"):
        assert results[label]["throughput"] > 0 and results[label]["latency"]["update"]["n"] > 0
    assert set(results["store"]["postgres"]) == {"journal", "approval", "rate", "read"}
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## 6. Sandbox at scale\n\nkept\n")
    scale.write_section(doc, scale.render(results))
    text = doc.read_text()
    assert "kept" in text and f"## {scale.TITLE}" in text and "throughput (tool calls/s)" in text
    scale.write_section(doc, ["again"])  # replaced, not appended twice
    assert doc.read_text().count(f"## {scale.TITLE}") == 1 and "again" in doc.read_text()
