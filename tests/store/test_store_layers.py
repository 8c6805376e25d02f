"""The store is a bottom layer: it imports nothing above it, and a stdio start does not load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.team.test_team_layers import imported_modules

STORE = Path(__file__).resolve().parents[2] / "pcref_mcp" / "store"


def test_the_store_imports_only_errors_private_files_and_itself() -> None:
    ours = {
        module
        for path in STORE.glob("*.py")
        for module in imported_modules(path)
        if module.startswith("pcref_mcp")
    }
    assert ours <= {
        "pcref_mcp.errors",
        "pcref_mcp.private_files",
        "pcref_mcp.store",
        "pcref_mcp.store.base",
        "pcref_mcp.store.migrations",
        "pcref_mcp.store.sealing",
        "pcref_mcp.store.sqlite",
        "pcref_mcp.store.postgres",
    }


def test_building_the_server_does_not_open_the_store_or_load_the_driver() -> None:
    code = (
        "import sys\n"
        "from pcref_mcp.config import load_settings\n"
        "from pcref_mcp.server.app import build_server\n"
        "build_server(load_settings({'HOME': '/nonexistent'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pcref_mcp.store', 'asyncpg', 'sqlite3'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
