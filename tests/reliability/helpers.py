"""Shared pieces of the reliability suite: virtual time, a spying transport, a fast runtime, and the
checks every test applies to a tool answer."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp.types import CallToolResult

from pcref_mcp.config import Settings
from pcref_mcp.partner_center.auth import StaticTokenProvider
from pcref_mcp.partner_center.client import PartnerCenterClient
from pcref_mcp.partner_center.ratelimit import RateLimiter
from pcref_mcp.server.runtime import SANDBOX_TOKEN, Runtime

TOOLS = (
    "search_referrals",
    "get_referral",
    "update_field",
    "create_referral",
    "register_deal",
    "undo_change",
    "search",
    "fetch",
)


class VirtualTime:
    """A monotonic clock that jumps forward when slept on: retries, backoff and Retry-After pauses
    are honoured exactly as the client computes them, but cost no wall time."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.slept = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        self.offset += seconds
        self.slept += seconds
        self.sleeps += 1
        await anyio.sleep(0)


@dataclass
class SeenRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


class SpyTransport(httpx.AsyncBaseTransport):
    """Records every request the client sends (method, path, query, headers, body), then delegates."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[SeenRequest] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content if isinstance(request.stream, httpx.ByteStream) else b""
        self.seen.append(
            SeenRequest(
                request.method, request.url.path, dict(request.url.params), dict(request.headers), body
            )
        )
        return await self.inner.handle_async_request(request)

    def filters(self, start: int = 0) -> list[str]:
        return [r.params["$filter"] for r in self.seen[start:] if "$filter" in r.params]


@dataclass
class Backend:
    runtime: Runtime
    spy: SpyTransport
    vtime: VirtualTime
    extras: dict[str, Any] = field(default_factory=dict)


def fast_runtime(
    settings: Settings,
    app: Any,
    *,
    token: str = SANDBOX_TOKEN,
    vtime: VirtualTime | None = None,
    max_retries: int = 4,
) -> Backend:
    """A Runtime on ``app`` whose client sleeps in virtual time and whose requests are recorded.

    The Runtime builds its client itself from settings (real sleeps, the sandbox's fixed token), so
    the suite hands it one built the same way but with a virtual clock and a chosen bearer token.
    """
    vtime = vtime or VirtualTime()
    spy = SpyTransport(httpx.ASGITransport(app=app))
    runtime = Runtime(settings, sandbox_app=app)
    limiter = RateLimiter(
        settings.rate_limit_calls, settings.rate_limit_window, clock=vtime.clock, sleep=vtime.sleep
    )
    runtime._client = PartnerCenterClient(
        runtime.base_url,
        StaticTokenProvider(token),
        transport=spy,
        limiter=limiter,
        sleep=vtime.sleep,
        max_retries=max_retries,
    )
    return Backend(runtime, spy, vtime)


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def unhandled(name: str, result: CallToolResult) -> bool:
    """True if the model got only the SDK's bare crash message (an exception we did not handle)."""
    if not result.is_error:
        return False
    text = text_of(result).strip()
    bare = f"Error executing tool {name}"
    return (
        text == bare
        or text.startswith(bare + ": Error executing tool")
        or not text.removeprefix(bare).strip(" :")
    )


def integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def rows(path: Path, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, tuple(args)))
    finally:
        db.close()
