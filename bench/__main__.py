"""``python -m bench`` (``make bench``): run every benchmark and regenerate docs/benchmarks.md.

Options: ``--quick`` (small sizes, for trying changes; figures are not comparable), ``--out PATH``,
``--no-cache`` (seed the 100,000-referral sandbox afresh instead of copying ``.bench-cache/``).
Progress goes to stderr; the report path is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import batch, calls, economy, footprint, overhead, report, sandbox_bench, scale, startup
from bench.common import machine, progress

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; not for the published figures")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--no-cache", action="store_true", help="do not reuse the seeded sandbox in .bench-cache/"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    args = parser.parse_args(argv)
    logging.getLogger("pcref_mcp").setLevel(logging.WARNING)

    started = time.perf_counter()
    q = args.quick
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": _load(),
        "code": _code(),
        "quick": q,
    }
    progress(f"machine: {results['machine']}")

    progress("1/8 cold start")
    results["startup"] = startup.run(runs=5 if q else 20, warmup=1 if q else 2)
    answer = results["startup"].pop("tools_list_answer")
    cpu = results["startup"]["cpu_ratio"]
    progress(
        f"cold start: {results['startup']['ratio']:.2f}× baseline"
        + (f" (CPU time {cpu:.2f}×)" if cpu is not None else "")
    )

    progress("2/8 context footprint")
    results["footprint"] = footprint.run(answer)
    progress(
        f"footprint: {results['footprint']['total_bytes']:,} B vs naive {results['footprint']['naive_total_bytes']:,} B"
    )

    progress("3/8 answer economy")
    results["economy"] = economy.run(size=200, rows=50)

    progress("4/8 API calls per task")
    results["calls"] = calls.run(size=1000, burst=500)

    progress("5/8 overhead")
    results["overhead"] = overhead.run(repeat=50 if q else 300, warmup=10)

    size = 10_000 if q else 100_000
    progress(f"6/8 sandbox at {size:,} referrals")
    cache = None if args.no_cache else ROOT / ".bench-cache"
    results["sandbox"] = sandbox_bench.run(size, repeat=50 if q else 200, cache_dir=cache)
    progress("sandbox: page p50 {:.1f} ms".format(results["sandbox"]["asgi"]["page"]["p50_ms"]))

    progress("7/8 a 50-item batch")
    results["batch"] = batch.run()

    progress("8/8 team server at scale (team mode: PostgreSQL, replicas, nginx)")
    results["scale"] = scale.run(calls=200 if q else 600, check_calls=150 if q else 400)

    results["load_end"] = _load()
    results["wall_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(results), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    progress(f"wrote {args.out} in {results['wall_seconds']:.0f} s")
    print(args.out)
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _code() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return f"commit {commit.stdout.strip()}" + (" with uncommitted changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    sys.exit(main())
