"""What pcref_mcp relies on from the ``mcp`` SDK beyond its public names, checked against the installed
release. Each failure names what changed; server/sdk_adapter.py is the one place to adapt (and
docs/architecture.md, "The SDK boundary", says how to widen the pin)."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import ValidationError

from pcref_mcp.errors import Answered
from pcref_mcp.server.sdk_adapter import close_session, open_sessions, raised_in_tool
from tests.serving import initialize

pytestmark = pytest.mark.anyio

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_the_session_manager_lists_and_closes_sessions_as_the_adapter_reads_it() -> None:
    server = MCPServer("probe")
    app = server.streamable_http_app(json_response=True)
    fresh = server.session_manager
    assert isinstance(fresh, StreamableHTTPSessionManager)
    assert isinstance(getattr(fresh, "_server_instances", None), dict), (
        "mcp changed StreamableHTTPSessionManager._server_instances (no longer a dict of open sessions): "
        "adapt sdk_adapter.open_sessions"
    )
    discard = getattr(fresh, "_discard_session", None)
    assert discard is not None and inspect.iscoroutinefunction(discard), (
        "mcp removed StreamableHTTPSessionManager._discard_session: adapt sdk_adapter.close_session"
    )
    assert list(inspect.signature(discard).parameters) == ["session_id", "transport"], (
        "mcp changed StreamableHTTPSessionManager._discard_session's parameters: adapt sdk_adapter.close_session"
    )

    async with (
        server.session_manager.run(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http,
    ):
        opened = await http.post("/mcp", json=initialize("2025-11-25"), headers=HEADERS)
        session = opened.headers["mcp-session-id"]
        assert session in open_sessions(server.session_manager), "an open session is not listed"
        assert await close_session(server.session_manager, session)
        assert session not in open_sessions(server.session_manager), "a closed session is still listed"
        assert not await close_session(server.session_manager, session)
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        after = await http.post(
            "/mcp",
            json=ping,
            headers={**HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"},
        )
        assert after.status_code == 404, "a session closed through the adapter still answers"


class _Refused(Exception):
    pass


def _probe_server() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("probe")

    @server.tool()
    def refuse(kind: str) -> str:
        if kind == "tool":
            raise ToolError("no")
        if kind == "answered":
            raise ToolError("answered") from Answered("nothing to do", {"ok": True})
        raise _Refused("crash")

    @server.tool()
    def count(n: int) -> int:
        return n

    return server


@pytest.mark.parametrize(
    ("tool", "arguments", "wrapper", "cause"),
    [
        ("count", {"n": "not a number"}, ToolError, ValidationError),
        ("refuse", {"kind": "tool"}, ToolError, ToolError),
        ("refuse", {"kind": "answered"}, ToolError, ToolError),
        ("refuse", {"kind": "crash"}, UnexpectedToolError, _Refused),
    ],
)
async def test_a_tool_failure_carries_what_was_raised(
    tool: str, arguments: dict[str, Any], wrapper: type[Exception], cause: type[Exception]
) -> None:
    with pytest.raises(ToolError) as raised:
        await _probe_server().call_tool(tool, arguments)
    assert isinstance(raised.value, wrapper), f"mcp now wraps a {cause.__name__} as {type(raised.value)}"
    found = raised_in_tool(raised.value)
    assert isinstance(found, cause), (
        f"mcp's ToolError no longer carries the {cause.__name__} raised as its __cause__ (got {found!r}): "
        "adapt sdk_adapter.raised_in_tool"
    )
    if arguments.get("kind") == "answered":
        assert isinstance(found.__cause__, Answered)


async def test_a_tool_subclass_given_to_the_server_is_what_runs() -> None:
    """server.inputs.GuardedTool overrides ``Tool.run`` and is handed to ``MCPServer(tools=...)``."""
    assert list(inspect.signature(Tool.run).parameters) == [
        "self",
        "arguments",
        "context",
        "convert_result",
    ], "mcp changed Tool.run's parameters: adapt server.inputs.GuardedTool.run"
    seen: list[dict[str, Any]] = []

    class Recording(Tool):
        async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
            seen.append(dict(arguments))
            return await super().run({"n": 7}, context, convert_result=convert_result)

    def count(n: int) -> int:
        return n

    server: MCPServer[Any] = MCPServer("probe", tools=[Recording.from_function(count)])
    async with Client(server) as client:
        result = await client.call_tool("count", {"n": 1, "extra": True})
    assert seen == [{"n": 1, "extra": True}], "mcp no longer calls Tool.run with the raw arguments"
    assert result.structured_content == {"result": 7}, (
        "the arguments Tool.run passes on are not the ones used"
    )
