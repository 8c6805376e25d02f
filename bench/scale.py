"""Team server at scale: three replicas + PostgreSQL + nginx against one replica with SQLite.

Both deployments are started by ``deploy.stack.Stack`` in team mode (``pcref-mcp team`` replicas, one
stand-in identity provider) in the same run, on the same machine, against the same standalone
sandbox size, and driven by the same mixed workload (``deploy.workload``: 50 simulated people, each
signed in as themselves with their own token, each a search, a get and an update in two calls,
preview then confirm token). Every person signs in before the clock starts, as a team does in the
morning: the measured calls verify each person's token and take their Partner Center token
(on-behalf-of) from the store, they do not wait for the identity provider.
Figures: throughput and p50/p95 per kind of call, as ratios (PostgreSQL stack / SQLite replica),
and the store's own cost per operation (PostgreSQL over loopback vs the SQLite file), measured
in-process so the network and the MCP layer do not blur it.

``python -m bench.scale`` runs only this and rewrites its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bench.common import progress, summary

if TYPE_CHECKING:
    from deploy.workload import Bearer

ROOT = Path(__file__).resolve().parents[1]
TITLE = "8. Team server at scale (replicas + PostgreSQL + nginx vs one replica + SQLite)"


def run(
    *, people: int = 50, calls: int = 600, store_ops: int = 300, sandbox_size: int = 300
) -> dict[str, Any]:
    from deploy.stack import Stack

    results: dict[str, Any] = {"people": people, "calls": calls, "store_ops": store_ops}
    for label, kind, replicas in (("sqlite", "sqlite", 1), ("postgres", "postgresql", 3)):
        root = Path(tempfile.mkdtemp(prefix=f"pcref-bench-{label}-"))
        progress(f"scale: {label} stack ({replicas} replica(s), team mode, {people} people)")
        with Stack(
            root,
            replicas=replicas,
            store=kind,
            sandbox_size=sandbox_size,
            rate_limit_calls=1_000_000,
            team=True,
            people=people,
        ) as stack:
            anyio.run(_warm, stack.url, stack.token, people)
            results[label] = anyio.run(_measure, stack.url, stack.token, people, calls)
        progress(f"scale: {label}: {results[label]['throughput']:.1f} calls/s")
    results["store"] = anyio.run(_store_cost, store_ops)
    return results


def render(r: dict[str, Any]) -> list[str]:
    from bench.report import _ms, _table, _x

    s, p = r["sqlite"], r["postgres"]
    rows = [
        (
            "throughput (tool calls/s)",
            f"{p['throughput']:.1f}",
            f"{s['throughput']:.1f}",
            _x(p["throughput"] / s["throughput"]),
            "report",
            "—",
        )
    ]
    for kind in ("all", "search", "get", "update"):
        for q in ("p50", "p95"):
            a, b = p["latency"][kind][q], s["latency"][kind][q]
            label = (
                "every operation (an update counts once)"
                if kind == "all"
                else f"`{kind}`" + (" (preview + confirm: two calls)" if kind == "update" else "")
            )
            rows.append((f"{label} {q}", _ms(a), _ms(b), _x(a / b), "report", "—"))
    for op, label in (
        ("journal", "journal write (intent + outcome)"),
        ("approval", "approval (issue + redeem)"),
        ("rate", "rate-limit take"),
        ("read", "journal read (one person's latest 20)"),
    ):
        a, b = r["store"]["postgres"][op], r["store"]["sqlite"][op]
        rows.append((f"store: {label}, p50", _ms(a), _ms(b), _x(a / b), "report", "—"))
    return [
        f"{r['people']} simulated people, each signed in as themselves, {r['calls']} tool calls per",
        "deployment (search, get, update as preview + confirm token: 25% / 25% / 50% of calls), raw",
        "JSON-RPC over HTTP (stateless, 2025-06-18), against a standalone sandbox with its throttle off.",
        "Both deployments run team mode (`pcref-mcp team`, resource server): every call's token is checked",
        "(RS256 against the stand-in identity provider's JWKS) and Partner Center is called with that",
        "person's on-behalf-of token, kept in the store; everyone signed in before the clock started.",
        "Value: nginx → 3 stateless replicas → PostgreSQL (the recipe in `deploy/`, `--team`). Baseline:",
        "1 replica with its SQLite store, no proxy. Everything (load generator, identity provider,",
        "sandbox, nginx, replicas, PostgreSQL) shares this machine's cores, so the ratio shows what the",
        "shared store and the proxy cost here, not what more machines would add. Store rows: the store's",
        f"own operations in-process, {r['store_ops']} each, PostgreSQL over loopback vs the SQLite file.",
        "",
        *_table(rows),
    ]


# --- measuring -----------------------------------------------------------------------------------------


async def _warm(url: str, bearer: Bearer, people: int) -> None:
    """Everyone signs in (one search each: their on-behalf-of token lands in the store), then a few
    people warm the write path."""
    from deploy.workload import Workload

    await Workload(url, bearer, people=people, calls=people).run()
    await Workload(url, bearer, people=min(5, people), calls=40).run()


async def _measure(url: str, bearer: Bearer, people: int, calls: int) -> dict[str, Any]:
    from deploy.workload import Workload

    outcome = await Workload(url, bearer, people=people, calls=calls).run()
    every = [x for samples in outcome.latencies.values() for x in samples]
    latency = {"all": _ms_summary(every)}
    latency.update({kind: _ms_summary(samples) for kind, samples in outcome.latencies.items()})
    return {
        "throughput": outcome.throughput,
        "wall_s": outcome.wall,
        "latency": latency,
        "acknowledged": len(outcome.acknowledged),
        "refused": len(outcome.refused),
    }


async def _store_cost(ops: int) -> dict[str, Any]:
    from deploy.postgres import Postgres
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.store.sqlite import SqliteStore
    from pcref_mcp.writes.approvals import ApprovalStore, Claims
    from pcref_mcp.writes.journal import Journal

    cluster = Postgres()
    await anyio.to_thread.run_sync(cluster.start)
    folder = Path(tempfile.mkdtemp(prefix="pcref-bench-store-"))
    try:
        url = await anyio.to_thread.run_sync(cluster.create_database, "bench")
        out: dict[str, Any] = {}
        for label, store in (
            ("sqlite", SqliteStore(folder / "store.sqlite3")),
            ("postgres", PostgresStore(url, secret=b"bench-key" * 4)),
        ):
            await store.start()
            journal, approvals = Journal(store), ApprovalStore(store)
            claims = Claims("local@http", "update_field", "p" * 64, '"e"')
            times: dict[str, list[float]] = {"journal": [], "approval": [], "rate": [], "read": []}
            for i in range(ops):
                t = time.perf_counter()
                entry = await journal.record_intent(
                    tool="update_field",
                    kind="update",
                    referral_id=f"r-{i % 50}",
                    correlation_id="c",
                    operations=[{"op": "replace", "path": "/details/dealValue", "value": i}],
                    before_image={"/details/dealValue": i - 1},
                    etag_before='"e"',
                )
                await journal.record_outcome(entry, "applied", etag_after='"f"')
                times["journal"].append(time.perf_counter() - t)
                t = time.perf_counter()
                handle = await approvals.issue(claims, ttl=300)
                await approvals.redeem(handle, claims)
                times["approval"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await store.rate_take(f"pc:{i % 50}", 1_000_000, 60.0, time.time())
                times["rate"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await journal.recent(20)
                times["read"].append(time.perf_counter() - t)
            out[label] = {k: summary(v)["p50"] * 1000 for k, v in times.items()}
            await store.close()
        return out
    finally:
        await anyio.to_thread.run_sync(cluster.remove)


def _ms_summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "n": 0}
    s = summary(samples)
    return {"p50": s["p50"] * 1000, "p95": s["p95"] * 1000, "n": s["n"]}


# --- run alone -------------------------------------------------------------------------------------------


def write_section(doc: Path, section: list[str]) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md, leaving the others as they are."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    head = f"## {TITLE}"
    start = text.find(head)
    body = "\n".join([head, "", *section]).rstrip() + "\n"
    if start < 0:
        text = text.rstrip() + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(head))
        text = text[:start] + body + (text[end + 1 :] if end >= 0 else "")
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--people", type=int, default=50)
    args = parser.parse_args(argv)
    from bench.__main__ import _load
    from bench.common import machine

    load = _load()
    results = run(people=args.people, calls=args.calls)
    m = machine()
    section = [
        f"Run alone (`python -m bench.scale`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{m['cpu']}, {m['cores']} cores; load average at start / end {load} / {_load()}.",
        "",
        *render(results),
    ]
    write_section(args.out, section)
    progress(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    asyncio.get_event_loop_policy()  # asyncio, as the workload's httpx client expects
    sys.exit(main())
