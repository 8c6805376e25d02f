"""A 50-item batch: API calls, simulated time under Partner Center's 100 calls / 60 s, and the bytes
the model reads, against the same 50 changes made with 50 separate ``update_field`` calls.

Each run gets a fresh sandbox (file DB, ``ManualClock``, throttling at 100 requests per 60 s like the
service) and a Runtime whose client's ``RateLimiter`` reads that clock and whose sleep advances it,
so simulated minutes pass at once. Requests are counted by the sandbox. Two approval paths:
elicitation (one request: plan, ask, send) and confirm token (preview call, then confirm call that
plans again). The minimum is one read (the ETag and the before-values a preview needs) and one write
per item and per planning round.

``python -m bench.batch`` prints the figures; ``--docs`` also writes them into docs/benchmarks.md
(section 7) without running the other benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.common import START, progress, requests_made, reset_counters

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 50


def run(items: int = ITEMS) -> dict[str, Any]:
    """Figures for a batch of ``items`` (at most 50, the batch limit) and its baseline."""
    with tempfile.TemporaryDirectory(prefix="pcref-bench-batch-") as tmp:
        root = Path(tmp)
        out = {
            "items": items,
            "batch_elicit": asyncio.run(_batch(root / "a", items, elicit=True)),
            "batch_token": asyncio.run(_batch(root / "b", items, elicit=False)),
            "single_elicit": asyncio.run(_singles(root / "c", items, elicit=True)),
            "single_token": asyncio.run(_singles(root / "d", items, elicit=False)),
        }
    progress(
        "batch: {} calls (elicitation), {} (token); model reads {:,} B vs {:,} B".format(
            out["batch_elicit"]["calls"],
            out["batch_token"]["calls"],
            out["batch_token"]["answer_bytes"],
            out["single_token"]["answer_bytes"],
        )
    )
    return out


@asynccontextmanager
async def _session(tmp: Path, *, elicit: bool) -> AsyncIterator[tuple[Any, Any, Any, Any]]:
    """(client, runtime, sandbox app, seconds elapsed on the simulated clock) for one run."""
    import httpx
    from mcp import Client
    from mcp.types import ElicitResult

    from pcref_mcp.config import Settings
    from pcref_mcp.partner_center.auth import StaticTokenProvider
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.partner_center.ratelimit import RateLimiter
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.sandbox.clock import ManualClock
    from pcref_mcp.server.app import build_server
    from pcref_mcp.server.runtime import SANDBOX_TOKEN, Runtime

    tmp.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(START)
    app = create_app(
        SandboxConfig(
            db_path=tmp / "sandbox.db", seed_size=120, clock=clock, rate_limit=100, rate_window=60.0
        )
    )
    settings = Settings(journal_path=tmp / "journal.sqlite3", sandbox_db=tmp / "sandbox.db")
    runtime = Runtime(settings, sandbox_app=app)

    def now() -> float:
        return clock.now().timestamp()

    async def sleep(seconds: float) -> None:
        if seconds > 0:
            clock.advance(seconds)
        await asyncio.sleep(0)

    # The Runtime's client, built as Runtime builds it but on the simulated clock.
    runtime._client = PartnerCenterClient(
        runtime.base_url,
        StaticTokenProvider(SANDBOX_TOKEN),
        transport=httpx.ASGITransport(app=app),
        limiter=RateLimiter(100, 60.0, clock=now, sleep=sleep),
        sleep=sleep,
    )
    server = build_server(settings, runtime=runtime)

    async def yes(ctx: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"approve": True})

    started = now()
    try:
        kwargs: dict[str, Any] = {"mode": "legacy", "elicitation_callback": yes} if elicit else {}
        async with Client(server, raise_exceptions=True, **kwargs) as client:
            yield client, runtime, app, lambda: now() - started
    finally:
        await runtime.aclose()
        app.state.sandbox.store.close()


async def _targets(app: Any, n: int) -> list[str]:
    ids: list[str] = app.state.sandbox.store.ids_where("status IN ('New','Active')", ())
    assert len(ids) >= n, f"the seed has {len(ids)} open referrals, {n} needed"
    return ids[:n]


def _text_bytes(result: Any) -> int:
    """What the model reads of a tool answer: its text content (the structured copy is the same data)."""
    return sum(len(str(getattr(c, "text", "")).encode()) for c in result.content)


async def _batch(tmp: Path, n: int, *, elicit: bool) -> dict[str, Any]:
    async with _session(tmp, elicit=elicit) as (client, _runtime, app, elapsed):
        ids = await _targets(app, n)
        items = [
            {"referral_id": rid, "changes": [{"field": "deal value", "value": 100_000 + i}]}
            for i, rid in enumerate(ids)
        ]
        reset_counters(app)
        answers = []
        sent = [{"items": items}]
        result = await client.call_tool("batch_update", sent[0])
        answers.append(result)
        data = result.structured_content or {}
        if not elicit:
            assert data.get("status") == "confirmation_required", data
            sent.append({"items": items, "confirm_token": data["confirm_token"]})
            result = await client.call_tool("batch_update", sent[1])
            answers.append(result)
            data = result.structured_content or {}
        assert data.get("status") == "applied", data
        applied = sum("→ applied" in line for line in data["items"])
        rounds = 1 if elicit else 2
        calls = requests_made(app)
        return {
            "tool_calls": len(answers),
            "applied": applied,
            "calls": calls,
            "minimum": n * rounds + n,
            "throttled": app.state.sandbox.throttled,
            "simulated_seconds": elapsed(),
            "floor_seconds": (math.ceil((n * rounds + n) / 100) - 1) * 60.0,
            "answer_bytes": sum(_text_bytes(a) for a in answers),
            "argument_bytes": sum(len(json.dumps(a, separators=(",", ":")).encode()) for a in sent),
        }


async def _singles(tmp: Path, n: int, *, elicit: bool) -> dict[str, Any]:
    async with _session(tmp, elicit=elicit) as (client, _runtime, app, elapsed):
        ids = await _targets(app, n)
        reset_counters(app)
        answer_bytes = argument_bytes = tool_calls = applied = 0
        for i, rid in enumerate(ids):
            args: dict[str, Any] = {
                "referral_id": rid,
                "changes": [{"field": "deal value", "value": 100_000 + i}],
            }
            result = await client.call_tool("update_field", args)
            tool_calls += 1
            answer_bytes += _text_bytes(result)
            argument_bytes += len(json.dumps(args, separators=(",", ":")).encode())
            data = result.structured_content or {}
            if not elicit:
                args = {**args, "confirm_token": data["confirm_token"]}
                result = await client.call_tool("update_field", args)
                tool_calls += 1
                answer_bytes += _text_bytes(result)
                argument_bytes += len(json.dumps(args, separators=(",", ":")).encode())
                data = result.structured_content or {}
            applied += data.get("status") == "applied"
        return {
            "tool_calls": tool_calls,
            "applied": applied,
            "calls": requests_made(app),
            "throttled": app.state.sandbox.throttled,
            "simulated_seconds": elapsed(),
            "answer_bytes": answer_bytes,
            "argument_bytes": argument_bytes,
        }


def write_docs(results: dict[str, Any], path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Put section 7 into docs/benchmarks.md (replacing an earlier one), leaving the rest as it is."""
    from bench import report

    section = "\n".join([f"## {report.BATCH_TITLE}", "", *report.batch_section(results)]) + "\n"
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"^## 7\. .*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", action="store_true", help="write section 7 of docs/benchmarks.md")
    args = parser.parse_args(argv)
    results = run()
    if args.docs:
        write_docs(results)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
