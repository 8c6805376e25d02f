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
in-process so the network and the MCP layer do not blur it. The scale model projected from these
figures is checked against one replica on a core of its own vs two (``bench.pinned``).

``python -m bench.scale`` runs only this and rewrites its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bench import pinned
from bench.common import progress, summary

if TYPE_CHECKING:
    from deploy.workload import Bearer

ROOT = Path(__file__).resolve().parents[1]
TITLE = "8. Team server at scale (replicas + PostgreSQL + nginx vs one replica + SQLite)"


def run(
    *,
    people: int = 50,
    calls: int = 600,
    store_ops: int = 300,
    sandbox_size: int = 300,
    check_calls: int = 400,
) -> dict[str, Any]:
    """Both deployments, the store's own cost, and the scale model's check (``bench.pinned``; none
    when ``check_calls`` is 0)."""
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
            anyio.run(_warm, stack.url, stack.token, people, min(WARM_WRITES, calls))
            before, sent = _cpu(stack), _sandbox_requests(stack)
            results[label] = anyio.run(_measure, stack.url, stack.token, people, calls)
            after = _cpu(stack)
            results[label]["pc_per_call"] = (_sandbox_requests(stack) - sent) / calls
            # CPU seconds per tool call, by process group (user + sys, /proc/<pid>/stat)
            results[label]["cpu_per_call"] = {k: (after[k] - before[k]) / calls for k in after}
        progress(f"scale: {label}: {results[label]['throughput']:.1f} calls/s")
    results["store"] = anyio.run(_store_cost, store_ops)
    if check_calls:
        results["check"] = pinned.run(people=people, calls=check_calls, sandbox_size=sandbox_size)
    return results


# --- CPU per call, and the scale model ------------------------------------------------------------------

_TICK = 100.0  # os.sysconf("SC_CLK_TCK") on Linux; read at use


def _cpu(stack: Any) -> dict[str, float]:
    """CPU seconds (user + sys) used so far by the replicas, nginx (master and workers) and PostgreSQL
    (the postmaster and every backend), each a process and its descendants."""
    import os

    tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else _TICK
    table = _proc_table()

    def tree(pid: int | None) -> float:
        if pid is None:
            return 0.0
        total, todo = 0.0, [pid]
        while todo:
            at = todo.pop()
            if at in table:
                total += table[at][1]
                todo += [child for child, (parent, _) in table.items() if parent == at]
        return total / tick

    postmaster = None
    if stack.postgres is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((stack.postgres.data / "postmaster.pid").read_text().split()[0])
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)  # the load generator (this process, all threads)
    return {
        "replicas": sum(tree(pid) for pid in stack.replica_pids().values()),
        "nginx": tree(stack.nginx_pid()),
        "postgres": tree(postmaster),
        "sandbox": tree(stack.sandbox_pid()),
        "load generator": me.ru_utime + me.ru_stime,
    }


def _sandbox_requests(stack: Any) -> int:
    """Requests the standalone sandbox (Partner Center's stand-in) has answered so far."""
    import httpx

    response = httpx.get(
        f"{stack.sandbox_url}/_sandbox/stats", headers={"X-Sandbox-Control": stack.control_token}, timeout=10
    )
    response.raise_for_status()
    return int(response.json()["requests"])


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, utime + stime in ticks) for every process we can read."""
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
        out[int(entry.name)] = (int(fields[1]), float(fields[11]) + float(fields[12]))
    return out


# The model's assumptions, stated with its figures: each replica host runs one replica (one Python
# process: one core's worth of CPU at most), PostgreSQL and nginx each on a host of their own with
# this many cores; Partner Center allows 100 calls per 60 s per person.
DB_CORES = 4
PROXY_CORES = 2
PC_PER_PERSON = 100 / 60.0
POOL_PER_REPLICA = 10  # PostgresStore's default pool
PG_MAX_CONNECTIONS = 100  # PostgreSQL's default


def model(r: dict[str, Any]) -> dict[str, Any]:
    """Throughput for 1, 3 and 10 replicas on separate hosts, from the CPU each tool call cost each
    part in the PostgreSQL run, and what saturates first."""
    cpu = r["postgres"]["cpu_per_call"]
    replica, db, proxy = cpu["replicas"], cpu["postgres"], cpu["nginx"]
    pc_per_call = r["postgres"]["pc_per_call"]
    out: dict[str, Any] = {"cpu": cpu, "pc_per_call": pc_per_call, "rows": []}
    if "check" in r:
        out["check"] = r["check"]
    for n in (1, 3, 10):
        limits = {
            "replica CPU": n / replica if replica > 0 else float("inf"),
            f"PostgreSQL CPU ({DB_CORES} cores)": DB_CORES / db if db > 0 else float("inf"),
            f"nginx CPU ({PROXY_CORES} cores)": PROXY_CORES / proxy if proxy > 0 else float("inf"),
        }
        first = min(limits, key=lambda k: limits[k])
        connections = n * POOL_PER_REPLICA
        out["rows"].append(
            {
                "replicas": n,
                "throughput": limits[first],
                "first": first,
                "limits": limits,
                "connections": connections,
                "people": limits[first] * pc_per_call / PC_PER_PERSON,
            }
        )
    # the check: this machine's cores are shared by everything (the sandbox and the load generator
    # too), so the same figures predict cores / (all CPU per call), against the throughput measured
    import os

    cores = os.cpu_count() or 1
    for label in ("sqlite", "postgres"):
        every = sum(r[label]["cpu_per_call"].values())
        out[f"check_{label}"] = {
            "cpu_per_call": every,
            "predicted": cores / every if every > 0 else float("inf"),
            "measured": r[label]["throughput"],
            "cores": cores,
        }
    return out


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
    for label, key in (
        ("replica", "replicas"),
        ("nginx", "nginx"),
        ("PostgreSQL", "postgres"),
        ("sandbox (Partner Center stand-in)", "sandbox"),
        ("load generator", "load generator"),
    ):
        a, b = p["cpu_per_call"][key], s["cpu_per_call"][key]
        rows.append(
            (
                f"CPU per tool call (user + sys): {label}",
                _ms(a * 1000),
                _ms(b * 1000) if b else "—",
                _x(a / b) if b else "—",
                "report",
                "—",
            )
        )
    m = model(r)
    lines_model = _render_model(m)
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
        "CPU per tool call: user + sys seconds from `/proc/<pid>/stat` of the replicas, of nginx (master",
        "and workers) and of PostgreSQL (postmaster and backends) over the measured calls, divided by the",
        "calls (the replica figure is the sum over the replicas).",
        "",
        *_table(rows),
        "",
        *lines_model,
    ]


def _render_model(m: dict[str, Any]) -> list[str]:
    from bench.report import _table

    cpu = m["cpu"]
    rows = []
    for row in m["rows"]:
        limits = "; ".join(f"{k} {v:,.0f}/s" for k, v in row["limits"].items())
        rows.append(
            (
                f"{row['replicas']} replica(s) on separate hosts",
                f"{row['throughput']:,.0f} calls/s",
                limits,
                "—",
                f"first to saturate: {row['first']}; {row['connections']} PostgreSQL connections",
                f"≈ {row['people']:,.0f} people at Partner Center's limit",
            )
        )
    checks = []
    for label in ("sqlite", "postgres"):
        c = m[f"check_{label}"]
        checks.append(
            (
                f"check on this machine ({c['cores']} shared cores), {label} deployment",
                f"{c['predicted']:,.1f} calls/s predicted",
                f"{c['measured']:,.1f} calls/s measured",
                f"{c['predicted'] / c['measured']:.2f}×" if c["measured"] else "—",
                "report",
                "—",
            )
        )
    return [
        "**Scale model.** From the CPU each tool call cost each part above (PostgreSQL run: replica "
        f"{cpu['replicas'] * 1000:.2f} ms, PostgreSQL {cpu['postgres'] * 1000:.2f} ms, nginx "
        f"{cpu['nginx'] * 1000:.2f} ms), with each replica on a host of its own (one Python process: one",
        f"core at most), PostgreSQL on a {DB_CORES}-core host and nginx on a {PROXY_CORES}-core one, the",
        "throughput of each part is its cores / its CPU per call, and the deployment's is the smallest.",
        f"Connections: {POOL_PER_REPLICA} per replica (the store's pool) against PostgreSQL's default "
        f"{PG_MAX_CONNECTIONS}: more than {PG_MAX_CONNECTIONS // POOL_PER_REPLICA} replicas need a smaller pool,",
        "a larger `max_connections` or a pooler. Partner Center allows 100 calls per 60 s per person; at",
        f"{m['pc_per_call']:.2f} Partner Center calls per tool call (this workload's mix), the last column is",
        "the number of people, each at that limit, that the throughput serves. Latency between hosts and",
        "lock waits in PostgreSQL are not in the model; it is a ceiling. The check runs the same",
        "arithmetic for this machine, where everything shares its cores: all the CPU per call counted",
        "(the sandbox and the load generator too; not the identity provider, idle once all signed in)",
        "against the cores; other work on the machine (see the load average) makes the prediction high.",
        "",
        "| figure | value | each part's ceiling | ratio | target | people |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
        *_table(checks),
        *(["", *pinned.render(m["check"], cpu)] if "check" in m else []),
    ]


# --- measuring -----------------------------------------------------------------------------------------


WARM_WRITES = 40  # calls that warm the write path before the clock starts (fewer in a toy run)


async def _warm(url: str, bearer: Bearer, people: int, writes: int = WARM_WRITES) -> None:
    """Everyone signs in (one search each: their on-behalf-of token lands in the store), then a few
    people warm the write path (``writes`` calls: no more than the run measures)."""
    from deploy.workload import Workload

    await Workload(url, bearer, people=people, calls=people).run()
    await Workload(url, bearer, people=min(5, people), calls=writes).run()


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
    parser.add_argument(
        "--check-calls", type=int, default=400, help="calls per step of the model's check (0: not run)"
    )
    args = parser.parse_args(argv)
    from bench.__main__ import _load
    from bench.common import machine

    load = _load()
    results = run(people=args.people, calls=args.calls, check_calls=args.check_calls)
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
