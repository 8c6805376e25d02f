"""Everything the model sees of the tools (name, title, description, schemas, annotations) is pinned
in tests/snapshots/tools.json, so every change to it shows up in review as a snapshot diff.

Accept an intended change with ``PCREF_UPDATE_SNAPSHOTS=1 pytest tests/test_tool_snapshot.py``.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"
KEYS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


async def wire_tools(tmp_path: Path, **settings: Any) -> list[dict[str, Any]]:
    """``tools/list`` as a client receives it (in memory, full server, throwaway journal)."""
    server = build_server(Settings(journal_path=tmp_path / "journal.sqlite3", **settings))
    async with Client(server, raise_exceptions=True) as client:
        tools = (await client.list_tools()).tools
    dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    return [{k: d[k] for k in KEYS if k in d} for d in dumped]


def render(tools: list[dict[str, Any]]) -> str:
    return json.dumps(tools, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.anyio
async def test_tool_list_matches_the_snapshot(tmp_path: Path) -> None:
    actual = render(await wire_tools(tmp_path))
    if os.environ.get("PCREF_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(actual, encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile="tests/snapshots/tools.json (snapshot)",
                tofile="tools/list (now)",
            )
        )
        pytest.fail(
            "What the model sees of the tools changed. Review the diff below; if it is intended, "
            "set PCREF_UPDATE_SNAPSHOTS=1 to accept (PCREF_UPDATE_SNAPSHOTS=1 pytest "
            f"tests/test_tool_snapshot.py) and commit the snapshot.\n\n{diff}",
            pytrace=False,
        )


@pytest.mark.anyio
async def test_read_only_mode_lists_exactly_the_read_tools(tmp_path: Path) -> None:
    """Read-only mode drops the write tools and changes nothing about the others."""
    full = await wire_tools(tmp_path)
    read_tools = [t for t in full if t["annotations"]["readOnlyHint"]]
    assert 0 < len(read_tools) < len(full)
    assert await wire_tools(tmp_path, read_only=True) == read_tools


@pytest.mark.anyio
async def test_tool_list_fits_its_budget(tmp_path: Path) -> None:
    """The whole ``tools/list`` answer stays under 20 KB (issue 21): every byte is context a model pays
    for on every turn. Measured as bench/footprint measures it (the compact JSON-RPC answer)."""
    from bench.common import wire_bytes
    from bench.footprint import envelope

    server = build_server(Settings(journal_path=tmp_path / "journal.sqlite3"))
    async with Client(server, raise_exceptions=True) as client:
        tools = (await client.list_tools()).tools
    answer = envelope([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])
    assert wire_bytes(answer) < 20_000
