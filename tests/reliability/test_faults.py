"""A mixed workload of 500 tool calls through the MCP client while the sandbox fails on purpose:
20% 500/503, 429 bursts with Retry-After, dropped connections (before and after applying a write)
and latency. Afterwards the journal is reconciled with the sandbox's stored state: every confirmed
write landed exactly once or was reported failed / in doubt with its correlation id, no create was
duplicated, no update was lost, and no tool call ended in an unhandled error.

Retries, backoff and Retry-After pauses run on a virtual clock (see helpers.VirtualTime)."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.sandbox import Faults, SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server.app import build_server
from tests.reliability.helpers import fast_runtime, integrity, text_of, unhandled
from tests.server.conftest import START

pytestmark = pytest.mark.anyio

CALLS = 500
WORKERS = 2
FIGURES: dict[str, Any] = {}
CID = re.compile(r"correlation id ([0-9a-f-]{36})")


async def test_mixed_workload_under_faults_loses_nothing(tmp_path: Path) -> None:
    faults = Faults(seed=20261102, error_rate=0.2, latency_ms=0.5, drop_rate=0.05, drop_mode="before")
    app = create_app(
        SandboxConfig(
            db_path=tmp_path / "sandbox.db",
            seed_size=60,
            clock=ManualClock(START),
            rate_limit=0,
            faults=faults,
        )
    )
    state = app.state.sandbox
    store = state.store
    settings = Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db")
    backend = fast_runtime(settings, app)
    runtime = backend.runtime
    server = build_server(settings, runtime=runtime)

    seed_etags = {d["id"]: d["eTag"] for d in store.iter_docs()}
    active = store.ids_where("status = ? AND substatus = ?", ("Active", "Accepted"))
    closed = store.ids_where("status = ?", ("Closed",))
    everyone = list(seed_etags)
    assert len(active) >= 5

    rng = random.Random(8)
    calls: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    confirmed: list[dict[str, Any]] = []
    unhandled_calls: list[tuple[str, str]] = []
    error_texts: list[str] = []
    applied_changes: list[int] = []
    budget = {"left": CALLS}
    creates = {"n": 0}

    async def call(c: Client, name: str, args: dict[str, Any]) -> Any:
        budget["left"] -= 1
        calls[name] += 1
        if calls.total() % 40 == 0:
            faults.update(burst_429=3)
        if calls.total() % 10 == 0:
            faults.update(drop_mode="before" if (calls.total() // 10) % 3 == 0 else "after_write")
        result = await c.call_tool(name, args)
        if unhandled(name, result):
            unhandled_calls.append((name, text_of(result)))
        if result.is_error:
            error_texts.append(text_of(result))
            outcomes[f"{name}: error"] += 1
        else:
            outcomes[f"{name}: {(result.structured_content or {}).get('status', 'ok')}"] += 1
        return result

    async def write(c: Client, name: str, args: dict[str, Any]) -> None:
        first = await call(c, name, args)
        if first.is_error or first.structured_content["status"] != "confirmation_required":
            return
        token = first.structured_content["confirm_token"]
        done = await call(c, name, {**args, "confirm_token": token})
        record = {"tool": name, "args": args, "is_error": done.is_error, "text": text_of(done)}
        if not done.is_error:
            record.update(done.structured_content)
            if done.structured_content["status"] == "applied" and name == "update_field":
                applied_changes.append(done.structured_content["change_id"])
        confirmed.append(record)

    async def step(c: Client) -> None:
        roll = rng.random()
        if roll < 0.28:
            filters = rng.choice(
                [
                    {},
                    {"status": ["Active"]},
                    {"text": "Contoso"},
                    {"direction": "Incoming"},
                    {"status": ["Closed"], "substatus": ["Won", "Lost"]},
                    {"min_value": 1000},
                ]
            )
            await call(c, "search_referrals", {"filters": filters, "limit": rng.choice([5, 20, 50])})
        elif roll < 0.42:
            await call(c, "get_referral", {"referral_id": rng.choice(everyone)})
        elif roll < 0.47:
            if rng.random() < 0.5:
                await call(c, "fetch", {"id": rng.choice(everyone)})
            else:
                await call(c, "search", {"query": rng.choice(["Contoso", "Ltd", "zz-no-match"])})
        elif roll < 0.78:
            rid = rng.choice(active if rng.random() < 0.93 else closed)
            field, value = rng.choice(
                [
                    ("deal value", rng.randint(1000, 900000)),
                    ("notes", f"call #{rng.randint(1, 10**9)}"),
                    ("closing date", f"2027-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"),
                ]
            )
            await write(
                c, "update_field", {"referral_id": rid, "changes": [{"field": field, "value": value}]}
            )
        elif roll < 0.92:
            creates["n"] += 1
            kind = rng.choice(["private", "partner_led", "co_sell"])
            referral = {
                "name": f"Reliability deal {creates['n']}-{rng.randint(1, 10**9)}",
                "customer_name": "Fabrikam Retail GmbH",
                "customer_country": "DE",
                "customer_city": "Berlin",
                "deal_kind": kind,
                "customer_consent_to_contact": True,
                "deal_value": 1000 * creates["n"],
                "currency": "EUR",
            }
            if kind == "co_sell":
                referral |= {"assistance_request_code": "ProofOfConceptOrDemo", "help_notes": "PoC sponsor"}
            await write(c, "create_referral", {"referral": referral})
        elif roll < 0.97 and applied_changes:
            await write(c, "undo_change", {"change_id": rng.choice(applied_changes)})
        else:
            await call(
                c, "register_deal", {"referral_id": rng.choice(active), "registration": {"solution_id": "x"}}
            )

    async def worker() -> None:
        async with Client(server) as c:
            while budget["left"] >= 2:
                await step(c)

    started = anyio.current_time()
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(WORKERS):
                tg.start_soon(worker)
        faults.clear()
        wall = anyio.current_time() - started

        # --- no tool call ended in an unhandled error --------------------------------------------------
        assert not unhandled_calls, unhandled_calls[:5]
        assert all(t.strip() for t in error_texts)

        journal = runtime.journal
        entries = await journal.recent(1000)
        by_id = {e.id: e for e in entries}
        assert not [e for e in entries if e.status == "pending"], "a write was left pending"

        # --- every confirmed write was reported as applied / stale / in doubt / failed with its id --------
        for rec in confirmed:
            if rec["is_error"]:
                # refused before sending (token, lifecycle, a read that failed) or failed after: both name
                # what happened; if it reached the engine, the journal says failed under the same id
                for cid in CID.findall(rec["text"]):
                    for e in entries:
                        if e.correlation_id == cid:
                            assert e.status == "failed", (e, rec["text"])
                continue
            status = rec["status"]
            assert status in ("applied", "in_doubt", "stale", "partial"), rec
            if rec.get("change_id") is None:
                assert status == "stale"  # refused at redemption: token bound to an older ETag
                continue
            entry = by_id[rec["change_id"]]
            assert entry.correlation_id == rec["correlation_id"]
            assert entry.status == {"stale": "failed"}.get(status, status), (entry, rec)
        failed_cids = {
            e.correlation_id for e in entries if e.status == "failed" and "stale ETag" not in (e.error or "")
        }
        reported = {cid for rec in confirmed if rec["is_error"] for cid in CID.findall(rec["text"])}
        assert failed_cids <= reported, "a failed write was not reported with its correlation id"

        # --- patches: each applied exactly once, no lost update (linear ETag chain per referral) -----------
        patches: dict[str, list[Any]] = defaultdict(list)
        for e in sorted(entries, key=lambda e: e.id):
            if e.kind != "create":
                patches[str(e.referral_id)].append(e)
        checked_chains = 0
        for rid, es in patches.items():
            landed = store.writes_for(rid).count("patch")
            applied = [e for e in es if e.status == "applied"]
            doubt = [e for e in es if e.status == "in_doubt"]
            assert len(applied) <= landed <= len(applied) + len(doubt), (rid, landed, es)
            bases = Counter(e.etag_before for e in applied)
            assert max(bases.values(), default=1) == 1, f"two writes applied from the same ETag on {rid}"
            if not doubt:
                chain = {e.etag_before: e.etag_after for e in applied}
                etag, steps = seed_etags[rid], 0
                while etag in chain:
                    etag, steps = chain[etag], steps + 1
                assert steps == landed == len(applied), (rid, steps, landed)
                assert etag == store.get(rid)["eTag"]
                checked_chains += 1

        # --- creates: never duplicated; applied ones exist, failed ones do not -------------------------------
        docs = list(store.iter_docs())
        per_ref = Counter(d.get("externalReferenceId") for d in docs if d.get("externalReferenceId"))
        assert max(per_ref.values()) == 1, [r for r, n in per_ref.items() if n > 1]
        new_docs = [d for d in docs if d["id"] not in seed_etags]
        create_entries = [e for e in entries if e.kind == "create"]
        for e in create_entries:
            found = per_ref.get(e.external_ref, 0)
            if e.status in ("applied", "partial"):
                assert found == 1 and any(d["id"] == e.referral_id for d in docs), e
            elif e.status == "failed":
                assert found == 0, e
            else:
                assert found <= 1, e
        assert state.stats()["writesByKind"].get("create", 0) == len(new_docs)

        assert journal.integrity_ok() and integrity(tmp_path / "sandbox.db") == "ok"

        stats = state.stats()
        statuses = Counter(e.status for e in entries)
        FIGURES.update(
            calls=calls.total(),
            by_tool=dict(calls),
            outcomes=dict(sorted(outcomes.items())),
            confirmed_writes=len(confirmed),
            journal=dict(statuses),
            journal_entries=len(entries),
            sandbox_requests=stats["requests"],
            faults=stats["faultsInjected"],
            throttled=stats["throttled"],
            sandbox_writes=stats["writesByKind"],
            creates_journaled=len(create_entries),
            referrals_with_patches=len(patches),
            etag_chains_checked=checked_chains,
            virtual_seconds_slept=round(backend.vtime.slept, 1),
            wall_seconds=round(wall, 1),
        )
        print("\nFAULT FIGURES", FIGURES)
        assert calls.total() >= CALLS - 1
        assert sum(stats["faultsInjected"].values()) > 50
        assert statuses["applied"] > 20
    finally:
        await runtime.aclose()
