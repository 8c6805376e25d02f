"""Shared helpers for the benchmarks: stats, progress, machine facts, in-process sandbox servers."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, like the server tests


def progress(message: str) -> None:
    """Progress goes to stderr; stdout stays clean."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(samples: list[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of samples."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {"p50": statistics.median(ordered), "p95": p95, "n": len(ordered)}


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def wire_bytes(obj: Any) -> int:
    """Bytes of ``obj`` as compact UTF-8 JSON (how MCP messages travel)."""
    import json

    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        os_name = ""
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{os_name} ({platform.system()} {platform.release()})".strip(),
    }


@asynccontextmanager
async def mcp_session(
    tmp: Path, *, size: int = 60, rate_limit: int = 0, client_calls: int = 1_000_000, start: datetime = START
) -> AsyncIterator[tuple[Any, Any, Any]]:
    """An in-process sandbox (file DB, manual clock), a Runtime on it, the server and an MCP client.

    Yields ``(client, runtime, sandbox_app)``. The Runtime's own limiter is opened wide by default
    so timing loops do not wait for real seconds.
    """
    from mcp import Client

    from pcref_mcp.config import Settings
    from pcref_mcp.sandbox import SandboxConfig, create_app
    from pcref_mcp.sandbox.clock import ManualClock
    from pcref_mcp.server.app import build_server
    from pcref_mcp.server.runtime import Runtime

    tmp.mkdir(parents=True, exist_ok=True)
    app = create_app(
        SandboxConfig(
            db_path=tmp / "sandbox.db", seed_size=size, clock=ManualClock(start), rate_limit=rate_limit
        )
    )
    settings = Settings(
        journal_path=tmp / "journal.sqlite3", sandbox_db=tmp / "sandbox.db", rate_limit_calls=client_calls
    )
    runtime = Runtime(settings, sandbox_app=app)
    server = build_server(settings, runtime=runtime)
    try:
        async with Client(server, raise_exceptions=True) as client:
            yield client, runtime, app
    finally:
        await runtime.aclose()
        app.state.sandbox.store.close()


def requests_made(app: Any) -> int:
    return int(sum(app.state.sandbox.requests.values()))


def reset_counters(app: Any) -> None:
    state = app.state.sandbox
    with state._lock:
        state.requests.clear()
        state.injected.clear()
        state.throttled = 0
