"""Each MCP call counted and timed by tool, and run under its HTTP request's id (for logs, the
journal and the error text a person reads), as an SDK server middleware (both protocol eras)."""

from __future__ import annotations

import logging
import time
from typing import Any

from pcref_mcp import calls, metrics

__all__ = ["CallObserver"]

log = logging.getLogger("pcref_mcp.calls")


class CallObserver:
    """SDK ``ServerMiddleware``. The request id comes from the ``X-Request-Id`` header the ops gate
    puts on every HTTP request (the SDK hands the request's headers to the middleware on every
    transport and era), so it is right even where the SDK runs the call in another task."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        request_id = _request_id_of(ctx)
        token = calls.set_request_id(request_id) if request_id else None
        try:
            if ctx.method != "tools/call":
                return await call_next(ctx)
            return await self._tool_call(ctx, call_next, request_id)
        finally:
            if token is not None:
                calls.reset_request_id(token)

    async def _tool_call(self, ctx: Any, call_next: Any, request_id: str | None) -> Any:
        params = ctx.params or {}
        name = params.get("name")
        tool = name if isinstance(name, str) else ""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await call_next(ctx)
            failed = _is_error(result)
            outcome = "error" if failed else "ok"
            if failed and request_id:
                result = _with_request_id(result, request_id)
            return result
        finally:
            elapsed = time.perf_counter() - started
            metrics.count("pcref_tool_calls", tool=tool, outcome=outcome)
            metrics.observe("pcref_tool_call_seconds", elapsed, tool=tool)
            log.info(
                "tool %s %s in %.0f ms",
                tool,
                outcome,
                elapsed * 1000,
                extra={"event": "call", "tool": tool, "outcome": outcome, "ms": round(elapsed * 1000)},
            )


def _request_id_of(ctx: Any) -> str | None:
    """The X-Request-Id the ops gate set: on the message's transport headers (2026-07-28) or on the
    HTTP request a 2025-era message came with; None elsewhere (stdio)."""
    for holder in (ctx, getattr(ctx, "request", None)):
        headers = getattr(holder, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            found = headers.get("x-request-id")
            if found:
                return str(found)
    return None


def _is_error(result: Any) -> bool:
    if isinstance(result, dict):
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


def _with_request_id(result: Any, request_id: str) -> Any:
    """The error text ends with the request id, so a person can quote it and the operator find the
    request in the logs and the audit."""
    note = f" (request id {request_id})"
    if isinstance(result, dict):
        content = [dict(c) for c in result.get("content") or []]
        for block in content[:1]:
            if block.get("type") == "text":
                block["text"] = str(block.get("text", "")) + note
        return {**result, "content": content}
    blocks: list[Any] = list(getattr(result, "content", None) or [])
    if blocks and getattr(blocks[0], "type", None) == "text":
        blocks[0] = blocks[0].model_copy(update={"text": blocks[0].text + note})
        return result.model_copy(update={"content": blocks})
    return result
