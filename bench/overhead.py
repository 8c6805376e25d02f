"""Overhead of the MCP layer: a tool call through the in-memory MCP client vs the same operation
straight on ``PartnerCenterClient``, both against the same in-process sandbox (same client, same
limiter, same transport). Runs alternate (tool, direct, tool, direct, ...) so drift hits both.

The overhead is then split into parts measured on their own: a no-op tool (one string argument,
returns it) through the same kind of in-memory client is the SDK's fixed cost per call; the client
library re-validating every structured answer against the tool's output schema (jsonschema); and
pcref-mcp's view code (rows or the detail view, quoting, the answer's two encodings). What is left is
the SDK's handling that grows with the payload (argument and result models, the in-memory transport).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import mcp_session, progress, summary


def run(repeat: int = 200, warmup: int = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pcref-bench-overhead-") as tmp:
        return asyncio.run(_run(Path(tmp), repeat, warmup))


async def _run(tmp: Path, repeat: int, warmup: int) -> dict[str, Any]:
    from mcp.client.session import ClientSession

    validation: list[float] = []
    original = ClientSession.validate_tool_result

    async def timed_validation(self: Any, name: str, result: Any) -> None:
        t = time.perf_counter()
        await original(self, name, result)
        validation.append((time.perf_counter() - t) * 1000)

    ClientSession.validate_tool_result = timed_validation  # type: ignore[method-assign]
    try:
        return await _measure(tmp, repeat, warmup, validation)
    finally:
        ClientSession.validate_tool_result = original  # type: ignore[method-assign]


async def _measure(tmp: Path, repeat: int, warmup: int, validation: list[float]) -> dict[str, Any]:
    from pcref_mcp.partner_center.odata import Query

    async with mcp_session(tmp, size=500) as (client, runtime, app):
        pc = runtime.client
        ids = app.state.sandbox.store.ids_where("1", ())[: repeat + warmup]

        async def tool_get(i: int) -> None:
            result = await client.call_tool("get_referral", {"referral_id": ids[i % len(ids)]})
            assert not result.is_error

        async def direct_get(i: int) -> None:
            with pc.correlation():
                await pc.get(ids[i % len(ids)])

        async def tool_search(i: int) -> None:
            result = await client.call_tool("search_referrals", {"limit": 20})
            assert not result.is_error and len((result.structured_content or {})["rows"]) == 20

        async def direct_search(i: int) -> None:
            with pc.correlation():
                page = await pc.list_page(Query(orderby=["updatedDateTime desc"], top=20, skip=0, count=True))
            assert len(page.value) == 20

        noop = await _noop_round_trip(repeat, warmup)
        out: dict[str, Any] = {"repeat": repeat, "noop": noop}
        for name, tool, direct in (
            ("get_referral", tool_get, direct_get),
            ("search_referrals", tool_search, direct_search),
        ):
            samples: dict[str, list[float]] = {"tool": [], "direct": []}
            validation.clear()
            for i in range(warmup + repeat):
                for kind, fn in (("tool", tool), ("direct", direct)):
                    t = time.perf_counter()
                    await fn(i)
                    if i >= warmup:
                        samples[kind].append((time.perf_counter() - t) * 1000)
            tool_s, direct_s = summary(samples["tool"]), summary(samples["direct"])
            checked = (
                summary(validation[warmup:]) if len(validation) > warmup else {"p50": 0.0, "p95": 0.0, "n": 0}
            )
            out[name] = {
                "tool": tool_s,
                "direct": direct_s,
                "ratio_p50": tool_s["p50"] / direct_s["p50"],
                "ratio_p95": tool_s["p95"] / direct_s["p95"],
                "client_validation": checked,
            }
            view = await _view_cost(name, pc, ids[0], repeat)
            out[name]["pcref_view"] = view
            out[name]["sdk_payload_ms_p50"] = (
                tool_s["p50"] - direct_s["p50"] - noop["p50"] - checked["p50"] - view["p50"]
            )
            progress(f"overhead: {name} tool p50 {tool_s['p50']:.2f} ms vs direct {direct_s['p50']:.2f} ms")
        return out


async def _view_cost(name: str, pc: Any, referral_id: str, repeat: int) -> dict[str, float]:
    """pcref-mcp's own per-call work after the operation: the view and the answer's encodings."""
    from pcref_mcp.partner_center.odata import Query
    from pcref_mcp.server.tools import ReferralView, SearchResult
    from pcref_mcp.server.views import detail, respond, row

    if name == "get_referral":
        referral = await pc.get(referral_id)

        def work() -> None:
            respond(ReferralView(id=str(referral.id), etag=referral.e_tag, referral=detail(referral)))
    else:
        page = await pc.list_page(Query(orderby=["updatedDateTime desc"], top=20, skip=0, count=True))

        def work() -> None:
            respond(SearchResult(total=page.odata_count, rows=[row(r) for r in page.value], next_cursor="x"))

    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        work()
        samples.append((time.perf_counter() - t) * 1000)
    return summary(samples)


async def _noop_round_trip(repeat: int, warmup: int) -> dict[str, float]:
    from mcp import Client
    from mcp.server import MCPServer

    server = MCPServer("noop")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    samples = []
    async with Client(server, raise_exceptions=True) as client:
        for i in range(warmup + repeat):
            t = time.perf_counter()
            await client.call_tool("echo", {"text": "x"})
            if i >= warmup:
                samples.append((time.perf_counter() - t) * 1000)
    return summary(samples)


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
