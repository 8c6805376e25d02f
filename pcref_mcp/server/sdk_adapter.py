"""The two things we need from the ``mcp`` SDK that it has no public name for, in one place.

Everything else this package asks of the SDK goes through its public API: tools are built with
``Tool.from_function`` and handed to ``MCPServer(tools=...)``, prompt requests are checked by a
``ServerMiddleware``, errors are the documented ``ToolError``/``MCPError``. What is left:

1. **Open HTTP sessions, and closing one.** ``StreamableHTTPSessionManager`` (mcp 2.3) keeps its
   sessions in ``_server_instances`` and ends one with ``_discard_session`` (what its own idle expiry
   and DELETE handling call). ``server.http.SessionBounds`` needs both to close a client's least
   recently used session instead of answering 503.
2. **What a tool raised.** ``Tool.run`` raises every failure as a ``ToolError`` (``UnexpectedToolError``
   for a crash) whose ``__cause__`` is what the tool body, a resolver or the argument validation
   raised. That is documented in ``Tool.run``'s and ``MCPServer.call_tool``'s docstrings rather than
   in a type, so ``server.inputs.GuardedTool`` reads it here only.

``tests/server/test_sdk_adapter.py`` checks each of these against the installed SDK and fails
naming what changed. Widening the ``mcp`` pin (docs/architecture.md, "The SDK boundary"): install
the new release, run that test first, then the server, transport and Inspector tests.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

__all__ = ["close_session", "open_sessions", "raised_in_tool"]


def open_sessions(manager: Any) -> Collection[str]:
    """The ids of the sessions ``manager`` (a ``StreamableHTTPSessionManager``) still serves: idle
    expiry and client DELETEs remove them there. Empty before the first session and when
    stateless."""
    sessions: Collection[str] = getattr(manager, "_server_instances", None) or {}
    return sessions


async def close_session(manager: Any, session_id: str) -> bool:
    """End one session as the SDK's own idle expiry does: forgotten first (its id answers 404 from
    now on), its transport terminated. False when the SDK no longer had it."""
    transport = manager._server_instances.get(session_id)
    if transport is None:
        return False
    await manager._discard_session(session_id, transport)
    return True


def raised_in_tool(exc: ToolError) -> BaseException | None:
    """What the tool body, a resolver or the argument validation raised, under the SDK's wrapper."""
    return exc.__cause__
