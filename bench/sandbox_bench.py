"""Sandbox benchmark: a seeded database of ``size`` referrals; page, get, create and patch timings.

Not a test (speed is machine-dependent): ``python -m bench.sandbox_bench [size]`` prints a markdown
table; ``run(size)`` returns the figures for docs/benchmarks.md (``python -m bench``).

Seeding 100,000 referrals takes about half a minute, so ``run(..., cache_dir=...)`` keeps the freshly
seeded database under ``cache_dir`` (keyed by size, seed and a hash of the generator and store code)
and later runs start from a copy of it; the timed operations always run on a private copy.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pcref_mcp.sandbox import ManualClock, SandboxConfig, create_app
from pcref_mcp.sandbox.clock import format_wire
from pcref_mcp.sandbox.odata import compile_filter, compile_orderby
from pcref_mcp.sandbox.rules import apply_patch, build_referral, new_etag

PAGE_FILTER = "status eq 'Active' and direction eq 'Incoming'"
PAGE_ORDER = "createdDateTime desc"
REPEAT = 200
NEW = {
    "type": "Shared",
    "customerProfile": {"name": "Bench Corp", "address": {"country": "US"}},
    "consent": {"consentToToShareInfoWithOthers": True, "consentToShareReferralWithMicrosoftSellers": True},
    "details": {"dealValue": 50000, "currency": "USD", "notes": "benchmark"},
}


SEED = 42
CLOCK_START = datetime(2025, 6, 2, 12, tzinfo=UTC)


def run(size: int = 100_000, repeat: int = REPEAT, cache_dir: Path | None = None) -> dict[str, Any]:
    """Seed ``size`` referrals in a temporary file database and time the four operations."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        seed_seconds, cached = _prepare(db, size, cache_dir)
        config = SandboxConfig(
            db_path=db, seed_size=size, seed=SEED, rate_limit=0, clock=ManualClock(CLOCK_START)
        )
        app = create_app(config)
        state = app.state.sandbox
        assert state.store.count() == size, "the benchmark database does not hold the expected referrals"
        results: dict[str, Any] = {
            "size": size,
            "seed_seconds": round(seed_seconds, 2),
            "seed_cached": cached,
            "repeat": repeat,
        }
        results["store"] = _store_figures(state, repeat)
        results["asgi"] = asyncio.run(_asgi_figures(app, repeat))
        state.store.close()
        return results


def _prepare(db: Path, size: int, cache_dir: Path | None) -> tuple[float, bool]:
    """Put a seeded database at ``db``: a copy from the cache, or freshly seeded (then cached).

    Returns the seconds seeding took (when it was done, possibly in an earlier run) and whether
    the cache supplied it.
    """
    cached = cache_dir / f"sandbox-{size}-{SEED}-{_code_fingerprint()}.db" if cache_dir else None
    if cached is not None and cached.exists() and cached.with_suffix(".json").exists():
        shutil.copyfile(cached, db)
        return float(json.loads(cached.with_suffix(".json").read_text())["seed_seconds"]), True
    started = time.perf_counter()
    app = create_app(
        SandboxConfig(db_path=db, seed_size=size, seed=SEED, rate_limit=0, clock=ManualClock(CLOCK_START))
    )
    seed_seconds = time.perf_counter() - started
    app.state.sandbox.store.close()  # the last connection closing checkpoints the WAL into the file
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        for stale in cached.parent.glob(f"sandbox-{size}-{SEED}-*"):
            stale.unlink()
        partial = cached.with_suffix(".partial")
        shutil.copyfile(db, partial)
        partial.replace(cached)
        cached.with_suffix(".json").write_text(json.dumps({"seed_seconds": seed_seconds}))
    return seed_seconds, False


def _code_fingerprint() -> str:
    """Changes to the generator, the rules or the store schema invalidate cached databases."""
    import pcref_mcp.sandbox as sandbox

    digest = hashlib.sha256()
    for name in ("seed.py", "store.py", "rules.py", "state.py"):
        digest.update((Path(sandbox.__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def _store_figures(state: Any, repeat: int) -> dict[str, dict[str, float]]:
    store = state.store
    where, params = compile_filter(PAGE_FILTER)
    order = compile_orderby(PAGE_ORDER)
    ids = store.ids_where("1", ())[:: max(1, store.count() // repeat)][:repeat]
    now = state.clock.now()

    def page() -> None:
        store.query(where, params, order, 101, 0)

    it = itertools.cycle(ids)

    def get() -> None:
        store.get_raw(next(it))

    def create() -> None:
        doc = build_referral(
            copy.deepcopy(NEW), partner=state.partner, now=now, engagement_exists=lambda e: True
        )
        store.insert(doc, at=format_wire(now))

    targets = itertools.cycle(ids)

    def patch() -> None:
        current = store.get(next(targets))
        ops = [{"op": "replace", "path": "/details/notes", "value": "bench"}]
        updated = apply_patch(current, ops, now=now)
        updated["eTag"] = new_etag(now)
        store.replace(updated, expected_etag=current["eTag"], at=format_wire(now))

    return {
        name: _timed(fn, repeat)
        for name, fn in (("page", page), ("get", get), ("create", create), ("patch", patch))
    }


async def _asgi_figures(app: Any, repeat: int) -> dict[str, dict[str, float]]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer bench"}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://sandbox.local/v1.0/engagements/", headers=headers
    ) as client:
        ids = app.state.sandbox.store.ids_where("1", ())[
            :: max(1, app.state.sandbox.store.count() // repeat)
        ][:repeat]
        it, targets = itertools.cycle(ids), itertools.cycle(ids)
        where, params = compile_filter(PAGE_FILTER)
        rows = min(100, app.state.sandbox.store.count(where, params))  # 100 unless the database is tiny

        async def page() -> None:
            r = await client.get(
                "referrals", params={"$filter": PAGE_FILTER, "$orderby": PAGE_ORDER, "$top": "100"}
            )
            assert r.status_code == 200 and len(r.json()["value"]) == rows

        async def get() -> None:
            assert (await client.get(f"referrals/{next(it)}")).status_code == 200

        async def create() -> None:
            assert (await client.post("referrals", json=NEW)).status_code in (200, 201)  # strict: 200

        async def patch() -> None:
            ops = [{"op": "replace", "path": "/details/notes", "value": "bench"}]
            assert (await client.patch(f"referrals/{next(targets)}", json=ops)).status_code == 204

        out = {}
        for name, fn in (("page", page), ("get", get), ("create", create), ("patch", patch)):
            out[name] = await _timed_async(fn, repeat)
        return out


def _summary(samples: list[float]) -> dict[str, float]:
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return {"p50_ms": round(statistics.median(samples), 3), "p95_ms": round(p95, 3)}


def _timed(fn: Callable[[], None], repeat: int) -> dict[str, float]:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return _summary(samples)


async def _timed_async(fn: Callable[[], Awaitable[None]], repeat: int) -> dict[str, float]:
    for _ in range(5):
        await fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return _summary(samples)


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Sandbox, {results['size']:,} referrals (seeded in {results['seed_seconds']} s"
        f"{', cached' if results.get('seed_cached') else ''}), {results['repeat']} runs each",
        "",
        "| operation | ASGI p50 ms | ASGI p95 ms | store p50 ms | store p95 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "page": "filtered+sorted 100-row page",
        "get": "get by id",
        "create": "create",
        "patch": "patch",
    }
    for key, label in labels.items():
        a, s = results["asgi"][key], results["store"][key]
        lines.append(f"| {label} | {a['p50_ms']} | {a['p95_ms']} | {s['p50_ms']} | {s['p95_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
