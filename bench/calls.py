"""API calls per task, counted where they land: at the sandbox (``app.state.sandbox`` counters).

(a) a pipeline summary over N referrals: page through everything with ``search_referrals`` (limit
100, following ``next_cursor``) — calls vs ceil(N/100);
(b) "all active incoming referrals updated this week" — calls vs ceil(matches/100);
(c) a 500-call burst through ``PartnerCenterClient`` against a sandbox throttling at 100 per 60 s.
The client's ``RateLimiter`` reads the sandbox's ``ManualClock`` and its sleep moves that clock, so
simulated minutes pass instantly. Baseline: the same burst with the limiter opened wide (no
client-side limit): every 429 the service sends is counted.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import START, mcp_session, progress, requests_made, reset_counters

# A Thursday afternoon, so "this week" (since Monday) spans three and a half days of activity.
THURSDAY = START.replace(day=5, hour=15)


def run(size: int = 1000, burst: int = 500) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pcref-bench-calls-") as tmp:
        pipeline = asyncio.run(_pipeline(Path(tmp) / "a", size))
        progress(
            f"api calls: pipeline summary {pipeline['summary']['calls']} calls, this week {pipeline['this_week']['calls']}"
        )
        limited = asyncio.run(_burst(Path(tmp) / "c1", burst, limited=True))
        unlimited = asyncio.run(_burst(Path(tmp) / "c2", burst, limited=False))
        progress(
            f"api calls: burst 429s with limiter {limited['throttled']}, without {unlimited['throttled']}"
        )
    return {**pipeline, "burst": limited, "burst_baseline": unlimited}


async def _pipeline(tmp: Path, size: int) -> dict[str, Any]:
    async with mcp_session(tmp, size=size, start=THURSDAY) as (client, _runtime, app):
        state = app.state.sandbox
        n = state.store.count()

        reset_counters(app)
        seen: set[str] = set()
        tool_calls = 0
        cursor = None
        while True:
            args: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            result = await client.call_tool("search_referrals", args)
            assert not result.is_error, result.content
            tool_calls += 1
            data = result.structured_content or {}
            seen.update(r["id"] for r in data["rows"])
            cursor = data.get("next_cursor")
            if not cursor:
                break
        summary = {
            "referrals": n,
            "seen": len(seen),
            "tool_calls": tool_calls,
            "calls": requests_made(app),
            "minimum": math.ceil(n / 100),
        }

        # "This week": Monday 00:00 of the sandbox clock's week, like a person would mean it.
        today = state.clock.now().date()
        monday = today - timedelta(days=today.weekday())
        where = "status = ? AND direction = ? AND updated_date_time >= ?"
        matches = state.store.count(where, ("Active", "Incoming", f"{monday.isoformat()}T00:00:00"))
        reset_counters(app)
        filters = {"status": ["Active"], "direction": "Incoming", "updated_from": monday.isoformat()}
        got: set[str] = set()
        tool_calls, cursor = 0, None
        while True:
            args = {"filters": filters, "limit": 100, **({"cursor": cursor} if cursor else {})}
            result = await client.call_tool("search_referrals", args)
            assert not result.is_error, result.content
            tool_calls += 1
            data = result.structured_content or {}
            got.update(r["id"] for r in data["rows"])
            cursor = data.get("next_cursor")
            if not cursor:
                break
        week = {
            "matches": matches,
            "seen": len(got),
            "tool_calls": tool_calls,
            "calls": requests_made(app),
            "minimum": max(1, math.ceil(matches / 100)),
            "since": monday.isoformat(),
        }
        return {"summary": summary, "this_week": week}


async def _burst(tmp: Path, calls: int, *, limited: bool) -> dict[str, Any]:
    import httpx

    from pcref_mcp.partner_center.auth import StaticTokenProvider
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.partner_center.ratelimit import RateLimiter
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.sandbox.clock import ManualClock

    tmp.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(START)
    app = create_app(
        SandboxConfig(db_path=tmp / "sandbox.db", seed_size=60, clock=clock, rate_limit=100, rate_window=60.0)
    )
    state = app.state.sandbox
    ids = state.store.ids_where("1", ())

    def now() -> float:
        return clock.now().timestamp()

    async def sleep(seconds: float) -> None:
        if seconds > 0:
            clock.advance(seconds)
        await asyncio.sleep(0)

    limiter = RateLimiter(100 if limited else 10**9, 60.0, clock=now, sleep=sleep)
    client = PartnerCenterClient(
        "https://sandbox.local/v1.0/engagements/",
        StaticTokenProvider("bench"),
        transport=httpx.ASGITransport(app=app),
        limiter=limiter,
        sleep=sleep,
    )
    reset_counters(app)
    started = now()
    queue = list(range(calls))
    done = 0

    async def worker() -> None:
        nonlocal done
        while queue:
            i = queue.pop()
            await client.get(ids[i % len(ids)])
            done += 1

    try:
        await asyncio.gather(*(worker() for _ in range(10)))
    finally:
        await client.aclose()
        state.store.close()
    return {
        "completed": done,
        "calls": requests_made(app),
        "throttled": state.throttled,
        "simulated_seconds": now() - started,
        "minimum_seconds": (math.ceil(calls / 100) - 1) * 60.0,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
