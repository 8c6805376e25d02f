"""The scale model's check (issue 24, item 3): one replica with a core of its own against two
replicas each with a core of its own, behind nginx over PostgreSQL, in team mode.

The model (bench.scale) says a replica host serves 1 / (a replica's CPU per call) calls/s and that
replicas add up until something shared saturates. Here that is measured on one stack (two replicas,
nginx, PostgreSQL, the sandbox, the stand-in identity provider, this process as load generator):

1. two replicas, replica 0 pinned to the first core and replica 1 to the second; the rest cannot be
   kept off those cores on a two-core machine, so it runs on both (it shares the replicas' cores);
2. replica 1 stopped (nginx sends everything to replica 0), replica 0 still on the first core, and
   the rest pinned to the second: the replica has a core to itself.

Pinning is ``sched_setaffinity`` on every thread of every process of a part (``taskset -a -p``), so
threads and PostgreSQL backends started later inherit it. The model's projection for this machine
is the same arithmetic as the scale model's, from the CPU per call it was given: one core for the
replica and one for the rest in step 2; two cores shared by everything in step 1.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bench.common import progress

# the parts that are not a replica, as bench.scale._cpu names them
REST = ("nginx", "postgres", "sandbox", "load generator")


def run(*, people: int = 50, calls: int = 400, sandbox_size: int = 300) -> dict[str, Any]:
    """Throughput and CPU per call of the two steps; ``skipped`` says why when there are not two cores."""
    from bench import scale
    from deploy.stack import Stack

    allowed = os.sched_getaffinity(0)
    cores = sorted(allowed)
    if len(cores) < 2:
        return {"skipped": f"{len(cores)} core available to this process: the check needs two"}
    first, second = cores[0], cores[1]
    out: dict[str, Any] = {"cores": len(cores), "calls": calls, "people": people}
    root = Path(tempfile.mkdtemp(prefix="pcref-bench-pinned-"))
    progress("scale check: 2 replicas (team mode, PostgreSQL, nginx), each pinned to a core of its own")
    with Stack(
        root,
        replicas=2,
        store="postgresql",
        sandbox_size=sandbox_size,
        rate_limit_calls=1_000_000,
        team=True,
        people=people,
    ) as stack:
        try:
            anyio.run(scale._warm, stack.url, stack.token, people, min(scale.WARM_WRITES, calls))
            replicas = stack.replica_pids()
            pin(replicas[0], {first})
            pin(replicas[1], {second})
            out["replica_cpus"] = [sorted(os.sched_getaffinity(replicas[i])) for i in (0, 1)]
            out["two"] = _step(stack, people, calls)
            progress(f"scale check: two replicas: {out['two']['throughput']:.1f} calls/s")
            stack.stop_replica(1)
            for pid in (stack.nginx_pid(), _postmaster(stack), stack.sandbox_pid()):
                pin(pid, {second})
            pin(os.getpid(), {second}, tree=False)  # the load generator and the identity provider's thread
            anyio.run(_settle, stack.url, stack.token, people, min(scale.WARM_WRITES, calls))
            out["one"] = _step(stack, people, calls)
            progress(f"scale check: one replica: {out['one']['throughput']:.1f} calls/s")
        finally:
            pin(os.getpid(), allowed, tree=False)
    return out


def projection(cpu: dict[str, float]) -> dict[str, float]:
    """What the scale model's figures (CPU seconds per call by part, ``bench.scale._cpu``'s names)
    predict for the two steps on this machine, and for two replicas on hosts of their own."""
    replica = cpu["replicas"]
    rest = sum(cpu.get(k, 0.0) for k in REST)
    one = min(1 / replica, 1 / rest if rest > 0 else float("inf"))  # step 2: a core each
    two = min(2 / replica, 2 / (replica + rest))  # step 1: two cores, everything shares them
    return {
        "replica_ms": replica * 1000,
        "rest_ms": rest * 1000,
        "one": one,
        "two": two,
        "ratio_here": two / one,
        # the model's rows: n replicas on hosts of their own, the shared parts far from saturated
        "ratio_hosts": 2.0,
    }


def pin(pid: int | None, cpus: set[int], *, tree: bool = True) -> None:
    """Every thread of ``pid`` and, with ``tree``, of its descendants on ``cpus`` (gone processes
    are skipped). This process is pinned without its tree: the stack's processes are its children."""
    if pid is None:
        return
    from bench.scale import _proc_table

    table = _proc_table() if tree else {}
    todo, seen = [pid], set()
    while todo:
        at = todo.pop()
        if at in seen:
            continue
        seen.add(at)
        todo += [child for child, (parent, _) in table.items() if parent == at]
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{at}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def _postmaster(stack: Any) -> int | None:
    if stack.postgres is None:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((stack.postgres.data / "postmaster.pid").read_text().split()[0])
    return None


def _step(stack: Any, people: int, calls: int) -> dict[str, Any]:
    from bench import scale

    before = scale._cpu(stack)
    result: dict[str, Any] = anyio.run(scale._measure, stack.url, stack.token, people, calls)
    after = scale._cpu(stack)
    result["cpu_per_call"] = {k: (after[k] - before[k]) / calls for k in after}
    return result


async def _settle(url: str, bearer: Any, people: int, calls: int) -> None:
    """A few calls after replica 1 stopped: nginx has marked it down before the clock starts."""
    from deploy.workload import Workload

    await Workload(url, bearer, people=min(5, people), calls=calls).run()


def render(check: dict[str, Any], cpu: dict[str, float]) -> list[str]:
    """The check's paragraph and table; ``cpu``: the scale model's CPU per call (PostgreSQL run)."""
    if "skipped" in check:
        return [f"**The model's check** was not run: {check['skipped']}."]
    p = projection(cpu)
    one, two = check["one"]["throughput"], check["two"]["throughput"]
    rows = [
        (
            "one replica on a core of its own (the rest on the other core)",
            f"{one:,.1f} calls/s measured",
            f"{p['one']:,.1f} calls/s projected",
            f"{one / p['one']:.2f}×",
            "report",
            "—",
        ),
        (
            "two replicas, each on a core of its own (the rest shares both)",
            f"{two:,.1f} calls/s measured",
            f"{p['two']:,.1f} calls/s projected",
            f"{two / p['two']:.2f}×",
            "report",
            "—",
        ),
        (
            "two replicas / one replica, this machine",
            f"{two / one:.2f}× measured",
            f"{p['ratio_here']:.2f}× projected",
            f"{(two / one) / p['ratio_here']:.2f}×",
            "report",
            "—",
        ),
        (
            "two replicas / one replica, hosts of their own (the model's rows)",
            "—",
            f"{p['ratio_hosts']:.2f}× projected",
            "—",
            "report",
            "—",
        ),
    ]
    for step, label in (("two", "step 1 (two replicas)"), ("one", "step 2 (one replica)")):
        mine = projection(check[step]["cpu_per_call"])  # the step's own CPU per call, against the model's
        rows.append(
            (
                f"CPU per call, {label}: replica / the rest",
                f"{mine['replica_ms']:.2f} ms / {mine['rest_ms']:.2f} ms",
                f"{p['replica_ms']:.2f} ms / {p['rest_ms']:.2f} ms in the model",
                f"{mine['replica_ms'] / p['replica_ms']:.2f}×" if p["replica_ms"] else "—",
                "report",
                "—",
            )
        )
    own = {step: projection(check[step]["cpu_per_call"]) for step in ("one", "two")}
    for step, label, measured in (
        ("one", "step 2 (one replica)", one),
        ("two", "step 1 (two replicas)", two),
    ):
        rows.append(
            (
                f"{label}, projected from its own CPU per call",
                f"{measured:,.1f} calls/s measured",
                f"{own[step][step]:,.1f} calls/s projected",
                f"{measured / own[step][step]:.2f}×",
                "report",
                "—",
            )
        )
    return [
        *_intro(check, p),
        "",
        "| figure | measured | projected | measured / projected | target | met? |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
        *_reading(one, two, own, p),
    ]


def _reading(one: float, two: float, own: dict[str, dict[str, float]], p: dict[str, float]) -> list[str]:
    """What the check says of the model, from its figures: the arithmetic (each step projected from
    the CPU per call measured in that step) and its input (a replica's CPU per call with the other
    core busy or not)."""
    fits = [measured / own[step][step] for step, measured in (("one", one), ("two", two))]
    holds = all(0.85 <= fit <= 1.15 for fit in fits)
    alone, shared = own["one"]["replica_ms"], own["two"]["replica_ms"]
    return [
        "What it shows: fed the CPU per call measured in each step, the model's arithmetic gives "
        f"{own['one']['one']:,.1f} and {own['two']['two']:,.1f} calls/s against {one:,.1f} and {two:,.1f} measured "
        f"({fits[0]:.2f}×, {fits[1]:.2f}×): the arithmetic "
        + ("holds (within 15 %)." if holds else "does not hold (off by more than 15 %).")
        + f" Its input moves with the machine: a replica cost {alone:.2f} ms of CPU per call on a core"
        f" of its own with the rest on the other core, {shared:.2f} ms with both cores busy"
        f" ({shared / alone:.2f}×), and the model's {p['replica_ms']:.2f} ms was measured with everything"
        " sharing both cores. "
        + (
            "On hosts of their own the replicas would cost nearer the first figure, so the separate-host"
            " rows above are a floor, not a ceiling, by up to that factor."
            if shared / alone > 1.1
            else "The separate-host rows above may be optimistic by up to that factor."
            if shared / alone < 1 / 1.1
            else "The separate-host rows above rest on a figure that held either way."
        ),
    ]


def _intro(check: dict[str, Any], p: dict[str, float]) -> list[str]:
    return [
        f"**The model's check** (`bench/pinned.py`): one stack in team mode (nginx, PostgreSQL, {check['people']}",
        f"people, {check['calls']} calls per step). Step 1: two replicas, each pinned to a core of its own",
        "(`sched_setaffinity` on every thread, as `taskset -a -p`); this machine has "
        f"{check['cores']} cores, so PostgreSQL,",
        "nginx, the sandbox, the identity provider and the load generator cannot be kept off them and",
        "share both. Step 2: one replica stopped, the other on its core, the rest pinned to the other core.",
        "Replica 0 ran on CPU {}, replica 1 on CPU {}.".format(
            *(", ".join(map(str, cpus)) for cpus in check["replica_cpus"])
        ),
        "Projected: the scale model's arithmetic from its CPU per call above (replica "
        f"{p['replica_ms']:.2f} ms, the rest {p['rest_ms']:.2f} ms):",
        "step 2 is the smaller of one core / replica and one core / the rest; step 1 is two cores / all of",
        "it (at most two cores / replica). On hosts of their own the model projects twice the throughput",
        "for two replicas (the shared parts are far from their ceilings); here the rest takes a share of",
        "both cores in step 1 and none of the replica's in step 2, so the ratio measured here is the one",
        "to hold against the projection for this machine. Pinning does not stop other work on the",
        "machine (the load average) from using the same cores.",
    ]
