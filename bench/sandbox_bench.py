"""Sandbox benchmark: a seeded database of ``size`` referrals; page, get, create and patch timings.

Not a test (speed is machine-dependent): ``python -m bench.sandbox_bench [size]`` prints a markdown
table; ``run(size)`` returns the figures for the lead's docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import copy
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


def run(size: int = 100_000, repeat: int = REPEAT) -> dict[str, Any]:
    """Seed ``size`` referrals in a temporary file database and time the four operations."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        config = SandboxConfig(
            db_path=Path(tmp) / "bench.db",
            seed_size=size,
            rate_limit=0,
            clock=ManualClock(datetime(2025, 6, 2, 12, tzinfo=UTC)),
        )
        app = create_app(config)
        seed_seconds = time.perf_counter() - started
        state = app.state.sandbox
        results: dict[str, Any] = {"size": size, "seed_seconds": round(seed_seconds, 2), "repeat": repeat}
        results["store"] = _store_figures(state, repeat)
        results["asgi"] = asyncio.run(_asgi_figures(app, repeat))
        state.store.close()
        return results


def _store_figures(state: Any, repeat: int) -> dict[str, dict[str, float]]:
    store = state.store
    where, params = compile_filter(PAGE_FILTER)
    order = compile_orderby(PAGE_ORDER)
    ids = store.ids_where("1", ())[:: max(1, store.count() // repeat)][:repeat]
    now = state.clock.now()

    def page() -> None:
        store.query(where, params, order, 101, 0)

    it = iter(ids * 2)

    def get() -> None:
        store.get_raw(next(it))

    def create() -> None:
        doc = build_referral(
            copy.deepcopy(NEW), partner=state.partner, now=now, engagement_exists=lambda e: True
        )
        store.insert(doc, at=format_wire(now))

    targets = iter(ids * 2)

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
        it, targets = iter(ids * 2), iter(ids * 2)

        async def page() -> None:
            r = await client.get(
                "referrals", params={"$filter": PAGE_FILTER, "$orderby": PAGE_ORDER, "$top": "100"}
            )
            assert r.status_code == 200 and len(r.json()["value"]) == 100

        async def get() -> None:
            assert (await client.get(f"referrals/{next(it)}")).status_code == 200

        async def create() -> None:
            assert (await client.post("referrals", json=NEW)).status_code == 201

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
        f"Sandbox, {results['size']:,} referrals (seeded in {results['seed_seconds']} s), {results['repeat']} runs each",
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
