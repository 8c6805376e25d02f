"""Run ``pcref_mcp`` over stdio as a desktop client spawns it, recording who imports each of its modules.

``python tests/startup_probe.py OUT`` behaves exactly like ``python -m pcref_mcp`` (same argv, same
stdio), with one finder in front of the import system that notes, for every ``pcref_mcp`` module, the
innermost ``pcref_mcp`` module whose code imported it. On SIGUSR1 it writes ``{module: importer}`` for
the modules loaded so far to ``OUT`` (JSON), so a test can ask right after the ``tools/list`` answer:
what start-up loaded, and why. Used by tests/test_startup_imports.py; it prints nothing to stdout.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import FrameType
from typing import Any

_IMPORTER: dict[str, str] = {}


class _Witness:
    """A meta path finder that finds nothing: it writes down who asked, then lets the others find."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name.startswith("pcref_mcp") and name not in _IMPORTER:
            _IMPORTER[name] = _importer(sys._getframe(1))
        return None


def _importer(frame: FrameType | None) -> str:
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("pcref_mcp") or module == "__main__":
            return str(module) + f":{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def _dump(out: Path) -> None:
    loaded = {m: _IMPORTER.get(m, "?") for m in sorted(sys.modules) if m.startswith("pcref_mcp")}
    partial = out.with_suffix(".part")
    partial.write_text(json.dumps(loaded))
    os.replace(partial, out)


def main() -> None:
    out = Path(sys.argv[1])
    sys.meta_path.insert(0, _Witness())
    signal.signal(signal.SIGUSR1, lambda *_: _dump(out))
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    runpy.run_module("pcref_mcp", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
