"""The README works as printed: its first screen is the two set-up commands, every client config
snippet under "Connect a client" starts the server with exactly that command line, and the tool
reference is what `pcref-mcp tools --markdown` prints for the live tools."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server
from pcref_mcp.server.reference import extract_section, replace_section, tool_reference
from tests.e2e.servers import BIN, server_env

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
CLIENTS = ("Claude Desktop", "VS Code", "Cursor")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    text = readme()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def client_snippets() -> list[tuple[str, dict[str, Any]]]:
    """(client, server entry) for each JSON snippet under "Connect a client", named by the bold
    label above it."""
    text = section("Connect a client")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != "json":
            continue
        label = re.findall(r"\*\*([^*]+)\*\*", text[: match.start()])[-1]
        config = json.loads(match.group(2))
        servers = config.get("mcpServers") or config.get("servers")
        assert isinstance(servers, dict) and list(servers) == ["pcref"], f"{label}: {config}"
        found.append((label, servers["pcref"]))
    return found


def test_first_screen_is_exactly_the_two_commands() -> None:
    first_screen = readme().split("\n---\n", 1)[0]
    assert "\n## " not in first_screen
    blocks = [(lang, body.strip()) for lang, body in FENCE.findall(first_screen)]
    assert blocks == [("sh", "make run"), ("sh", "make test")]


def test_every_client_in_the_issue_has_a_snippet() -> None:
    assert [label.split(" (")[0] for label, _ in client_snippets()] == list(CLIENTS)


@pytest.mark.anyio
@pytest.mark.parametrize("client", CLIENTS)
async def test_client_snippet_starts_the_server_as_printed(client: str, tmp_path: Path) -> None:
    entry = dict(client_snippets())[client]
    assert entry.get("type", "stdio") == "stdio"
    command = BIN / entry["command"]  # what `pipx install` / `make run` put on PATH
    assert command.exists(), f"{command} is not installed (pip install -e .)"
    params = StdioServerParameters(command=str(command), args=list(entry["args"]), env=server_env(tmp_path))
    async with Client(params, read_timeout_seconds=60) as session:
        tools = (await session.list_tools()).tools
        found = await session.call_tool("search_referrals", {"limit": 1})
    assert not found.is_error and found.structured_content is not None
    read_only = {t.name for t in tools if t.annotations and t.annotations.read_only_hint}
    if "--read-only" in entry["args"]:
        assert {t.name for t in tools} == read_only, "read-only args must offer read tools only"
    else:
        assert len(read_only) < len(tools), "write tools are missing"
    assert {"search_referrals", "get_referral"} <= read_only


def test_tool_reference_is_generated_from_the_live_tools(tmp_path: Path) -> None:
    tools = anyio.run(build_server(Settings(journal_path=tmp_path / "journal.sqlite3")).list_tools)
    fresh = tool_reference(tools)
    if os.environ.get("PCREF_UPDATE_SNAPSHOTS") == "1":
        README.write_text(replace_section(readme(), fresh), encoding="utf-8")
    assert extract_section(readme()) == fresh, (
        "README.md's tool reference is stale: run `pcref-mcp tools --markdown` and paste its output "
        "over the section between the tool-reference markers (or PCREF_UPDATE_SNAPSHOTS=1 pytest "
        "tests/test_readme.py rewrites it)."
    )
