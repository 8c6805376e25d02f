"""API calls per task, counted where they land: at the sandbox (``app.state.sandbox`` counters).

(a) a pipeline summary over N referrals: page through everything with ``search_referrals`` (limit
100, following ``next_cursor``) — calls vs ceil(N/100);
(b) "all active incoming referrals updated this week" — calls vs ceil(matches/100);
(c) a 500-call burst through ``PartnerCenterClient`` against a sandbox throttling at 100 per 60 s;
(d) the store round trips of a confirmed write (``update_field`` confirm token), counted at the
store's interface, with the runtime's own store and with it marked shared (team mode's rate window);
(e) two hot paths of a call, each next to the way it was done before, in the same run.
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


def run(size: int = 1000, burst: int = 500, repeat: int = 200) -> dict[str, Any]:
    """(a)–(e) of section 4; ``repeat``: samples of each hot path in (e) (the smoke test takes few)."""
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
        writes = {
            "own": asyncio.run(_store_round_trips(Path(tmp) / "d1", shared=False)),
            "shared": asyncio.run(_store_round_trips(Path(tmp) / "d2", shared=True)),
        }
        progress(f"store round trips of a confirmed write: {writes}")
    return {
        **pipeline,
        "burst": limited,
        "burst_baseline": unlimited,
        "store_round_trips": writes,
        "hot_paths": _hot_paths(repeat),
    }


async def _store_round_trips(tmp: Path, *, shared: bool) -> dict[str, Any]:
    """The store methods (one round trip each) a second confirmed write calls: the first warms the
    process (keys, lease, orphan check), as a long-running server is warm."""
    import inspect

    from pcref_mcp.store.base import Store

    async with mcp_session(tmp, size=20) as (client, runtime, app):
        runtime.store.shared = shared  # before the client and its limiter are built
        ids = app.state.sandbox.store.ids_where("status = 'Active'", ())[:2]
        seen: list[str] = []
        for rid in ids:
            seen.clear()
            if rid == ids[1]:
                for name, _ in inspect.getmembers(Store, inspect.iscoroutinefunction):
                    real = getattr(runtime.store, name)

                    async def counted(*a: Any, _n: str = name, _r: Any = real, **k: Any) -> Any:
                        seen.append(_n)
                        return await _r(*a, **k)

                    setattr(runtime.store, name, counted)
            args = {"referral_id": rid, "changes": [{"field": "notes", "value": "bench"}]}
            preview = await client.call_tool("update_field", args)
            token = (preview.structured_content or {})["confirm_token"]
            seen.clear()
            done = await client.call_tool("update_field", {**args, "confirm_token": token})
            assert not done.is_error and (done.structured_content or {}).get("status") == "applied"
        return {"round_trips": len(seen), "calls": list(seen)}


async def _page(app: Any) -> bytes:
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://sandbox.local/v1.0/engagements/",
        headers={"Authorization": "Bearer bench"},
    ) as http:
        return (await http.get("referrals?$top=100")).content


def _hot_paths(repeat: int = 200) -> dict[str, Any]:
    """(e): the input reader of one ``update_field`` call with its per-model index cached vs rebuilt
    (the cache cleared before every call: what every call paid before), and one 100-row page read by
    the client as shipped (``answers._parse``: one parse, then the tolerant read models) vs the old
    two steps (``json.loads``, then ``model_validate``), and vs ``model_validate_json`` (the one
    parse shipped before, in the raw figures only); the parse samples interleaved, so a busy machine
    weighs on all alike."""
    import time

    import httpx
    from mcp.server.mcpserver.tools.base import Tool

    from bench.common import summary
    from pcref_mcp.partner_center.answers import _parse
    from pcref_mcp.referrals.models import ReferralPage
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.server import inputs
    from pcref_mcp.server.reading.fields import forget_indexes
    from pcref_mcp.server.tools import update_field

    model = Tool.from_function(update_field).fn_metadata.arg_model

    args = {
        "referralId": "9ea6ed4a-04ca-430a-a207-db202f7f2cd7",
        "changes": [
            {"name": "Deal Value", "to": 1200},
            {"path": "closing date", "new_value": "2026-12-04"},
            {"field": "notes", "value": "called back"},
        ],
    }

    def timed(fn: Any) -> dict[str, float]:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - started) * 1000)
        return summary(samples)

    def cold() -> None:
        forget_indexes()
        inputs.normalise("update_field", dict(args), model)

    cached = timed(lambda: inputs.normalise("update_field", dict(args), model))
    rebuilt = timed(cold)
    with tempfile.TemporaryDirectory(prefix="pcref-bench-parse-") as tmp:
        app = create_app(SandboxConfig(db_path=Path(tmp) / "s.db", seed_size=100, rate_limit=0))
        body = asyncio.run(_page(app))
        app.state.sandbox.store.close()
    response = httpx.Response(200, content=body)
    ways: dict[str, Any] = {
        "parse": lambda: _parse(ReferralPage, response, "bench"),
        "parse_twice": lambda: ReferralPage.model_validate(json.loads(body)),
        "parse_validate_json": lambda: ReferralPage.model_validate_json(body),
    }
    parsed: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, way in ways.items():
            started = time.perf_counter()
            way()
            parsed[name].append((time.perf_counter() - started) * 1000)
    return {"reader": cached, "reader_rebuilt": rebuilt, **{k: summary(v) for k, v in parsed.items()}}


async def _pipeline(tmp: Path, size: int) -> dict[str, Any]:
    async with mcp_session(tmp, size=size, start=THURSDAY) as (client, _runtime, app):
        state = app.state.sandbox
        n = state.store.count()

        reset_counters(app)
        seen, tool_calls = await _every_page(client, {})
        summary = {
            "referrals": n,
            "seen": len(seen),
            "tool_calls": tool_calls,
            "calls": requests_made(app),
            "minimum": math.ceil(n / 100),
        }

        # "This week": Monday 00:00 of the sandbox clock's week, like a person would mean it. Run
        # twice: the first time learns the query feature it needs (date ranges), the second does not.
        today = state.clock.now().date()
        monday = today - timedelta(days=today.weekday())
        where = "status = ? AND direction = ? AND updated_date_time >= ?"
        matches = state.store.count(where, ("Active", "Incoming", f"{monday.isoformat()}T00:00:00"))
        filters = {"status": ["Active"], "direction": "Incoming", "updated_from": monday.isoformat()}
        runs = []
        for _ in range(2):
            reset_counters(app)
            got, tool_calls = await _every_page(client, {"filters": filters})
            runs.append((len(got), tool_calls, requests_made(app)))
        week = {
            "matches": matches,
            "seen": runs[1][0],
            "tool_calls": runs[1][1],
            "calls": runs[1][2],
            "first_calls": runs[0][2],
            "minimum": max(1, math.ceil(matches / 100)),
            "since": monday.isoformat(),
        }
        return {"summary": summary, "this_week": week}


async def _every_page(client: Any, args: dict[str, Any]) -> tuple[set[str], int]:
    """``search_referrals`` with ``args``, 100 rows a page, following ``next_cursor`` to the end, as a
    model summarising a pipeline would: the ids seen and the tool calls it took."""
    seen: set[str] = set()
    tool_calls, cursor = 0, None
    while True:
        result = await client.call_tool(
            "search_referrals", {**args, "limit": 100, **({"cursor": cursor} if cursor else {})}
        )
        assert not result.is_error, result.content
        tool_calls += 1
        data = result.structured_content or {}
        seen.update(r["id"] for r in data["rows"])
        cursor = data.get("next_cursor")
        if not cursor:
            return seen, tool_calls


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
