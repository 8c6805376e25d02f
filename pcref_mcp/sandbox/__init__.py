"""A local Partner Center Referrals service: the embedded default backend and a contract-test target.

``create_app(SandboxConfig(...))`` gives an ASGI app to use in-process through
``httpx.ASGITransport``; ``serve(...)`` runs the same app on 127.0.0.1 with uvicorn.
"""

from __future__ import annotations

from pcref_mcp.sandbox.app import create_app
from pcref_mcp.sandbox.clock import Clock, ManualClock, SystemClock
from pcref_mcp.sandbox.config import SandboxConfig, default_db_path
from pcref_mcp.sandbox.faults import ConnectionDropped, Faults
from pcref_mcp.sandbox.server import serve

__all__ = [
    "Clock",
    "ConnectionDropped",
    "Faults",
    "ManualClock",
    "SandboxConfig",
    "SystemClock",
    "create_app",
    "default_db_path",
    "serve",
]
