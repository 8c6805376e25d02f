"""The ops package is the top layer: only the entry points import it; what the layers below report
into (metrics, calls) imports nothing above; and a single-user stdio start loads neither the ops
package nor prometheus_client (metrics are off unless a token is set)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.team.test_team_layers import PACKAGE, imported_modules

ENTRY_POINTS = {"cli.py", "team/serve.py"}


def test_only_the_entry_points_import_the_ops_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "ops" not in path.relative_to(PACKAGE).parts
        and str(path.relative_to(PACKAGE)) not in ENTRY_POINTS
        and any(m == "pcref_mcp.ops" or m.startswith("pcref_mcp.ops.") for m in imported_modules(path))
    }
    assert offenders == set()


def test_the_bottom_modules_import_nothing_above_them() -> None:
    for name in ("metrics.py", "calls.py"):
        above = {m for m in imported_modules(PACKAGE / name) if m.startswith("pcref_mcp.")}
        assert above <= {"pcref_mcp.errors"}, (name, above)


def test_a_stdio_start_loads_neither_ops_nor_prometheus() -> None:
    code = (
        "import sys\n"
        "from pcref_mcp.config import load_settings\n"
        "from pcref_mcp.server.app import build_server\n"
        "import pcref_mcp.cli\n"
        "build_server(load_settings({'HOME': '/nonexistent'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pcref_mcp.ops', 'prometheus_client'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_ops_package_has_no_module_without_a_docstring() -> None:
    import ast

    for path in (PACKAGE / "ops").glob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), path


def test_paths_are_real() -> None:
    assert Path(PACKAGE / "team" / "serve.py").exists()
