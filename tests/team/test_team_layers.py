"""Team mode sits on top: nothing below imports it, and the single-user server does not load it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pcref_mcp"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_lower_layer_imports_the_team_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not {"team", "ops"} & set(path.relative_to(PACKAGE).parts) and path.name != "cli.py"
        if any(m == "pcref_mcp.team" or m.startswith("pcref_mcp.team.") for m in imported_modules(path))
    }
    assert offenders == set()


def test_stdio_and_single_user_http_do_not_load_team_mode_or_jwt() -> None:
    code = (
        "import sys\n"
        "from pcref_mcp.config import load_settings\n"
        "from pcref_mcp.server.app import build_server\n"
        "from pcref_mcp.server.http import http_app\n"
        "s = load_settings({'HOME': '/nonexistent'})\n"
        "http_app(s, build_server(s), host='127.0.0.1', port=8765)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pcref_mcp.team', 'jwt'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
