"""The import rules, as one table: which parts of pcref_mcp each part may import. The test enforces it
on every module, and docs/architecture.md shows exactly this table (generated from it: `make snapshots`
rewrites the section between the import-rules markers), so the documented layers cannot drift from the
enforced ones. The stricter checks of single modules stay in tests/ops, tests/store and tests/team."""

from __future__ import annotations

import ast
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pcref_mcp"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
BEGIN, END = "<!-- import-rules:begin -->", "<!-- import-rules:end -->"

# A part is a top-level module (``config.py``) or package (``server/``); a module inside a package may
# have a row of its own, which then replaces the package's. Each part may import itself, the package's
# root (``__version__``) and what its row lists; "*" is anything.
_BASE = ("errors",)
_DOMAIN = (*_BASE, "referrals")
_CLIENT = (*_DOMAIN, "config", "identity", "metrics")
_WRITES = (*_DOMAIN, "calls", "identity", "metrics", "partner_center", "store")
_SERVER = (*_WRITES, "config", "sandbox", "writes")
IMPORT_RULES: dict[str, tuple[str, ...]] = {
    "errors.py": (),
    "identity.py": (),
    "calls.py": (),
    "metrics.py": _BASE,
    "private_files.py": _BASE,
    "config.py": _BASE,
    "referrals/": _BASE,
    "store/": (*_BASE, "private_files"),
    "sandbox/": (*_DOMAIN, "private_files"),
    "partner_center/": _CLIENT,
    "doctor.py": (*_DOMAIN, "partner_center"),  # a service check: the client over the domain
    "writes/": _WRITES,
    "server/": _SERVER,
    "team/": (*_SERVER, "server"),
    "team/serve.py": (*_SERVER, "server", "team", "ops"),
    "ops/": (*_SERVER, "server", "team"),
    "cli.py": ("*",),
    "__main__.py": ("cli",),
    "__init__.py": (),
}


def part_of(path: Path) -> str:
    """The row that governs ``path``: its own, else its package's."""
    rel = path.relative_to(PACKAGE).as_posix()
    if rel in IMPORT_RULES:
        return rel
    return rel.split("/")[0] + "/" if "/" in rel else rel


def imported_parts(path: Path) -> set[str]:
    """The parts of pcref_mcp that ``path`` imports (at module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = (
                [f"{node.module}.{a.name}" for a in node.names]
                if node.module == "pcref_mcp"
                else [node.module]
            )
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("pcref_mcp."):
                part = name.split(".")[1]
                found.add(part if (PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").exists() else "")
    return found - {""}  # "": the package root itself (`from pcref_mcp import __version__`)


def rules_section() -> str:
    """The import rules as docs/architecture.md shows them."""
    lines = [
        BEGIN,
        "| part of `pcref_mcp/` | may import (besides itself) |",
        "|---|---|",
    ]
    for part, allowed in IMPORT_RULES.items():
        shown = (
            "anything"
            if allowed == ("*",)
            else ", ".join(f"`{a}`" for a in sorted(set(allowed))) or "nothing"
        )
        lines.append(f"| `{part}` | {shown} |")
    return "\n".join([*lines, END])


def test_every_module_imports_only_what_its_row_allows() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        part = part_of(path)
        assert part in IMPORT_RULES, f"{path}: no row in IMPORT_RULES for {part!r}"
        allowed = set(IMPORT_RULES[part])
        if "*" in allowed:
            continue
        own = part.rstrip("/").removesuffix(".py").split("/")[0]
        extra = imported_parts(path) - allowed - {own}
        if extra:
            offenders[str(path.relative_to(PACKAGE))] = sorted(extra)
    assert offenders == {}


def test_every_row_names_a_real_part() -> None:
    for part, allowed in IMPORT_RULES.items():
        assert (PACKAGE / part).exists(), part
        for name in set(allowed) - {"*"}:
            assert (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists(), (part, name)


def test_a_forbidden_import_is_found(tmp_path: Path) -> None:
    """The check sees imports inside functions and `from pcref_mcp import x` too."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pcref_mcp import server\n    import pcref_mcp.team.app\n")
    assert imported_parts(module) == {"server", "team"}


def test_architecture_md_shows_exactly_these_rules() -> None:
    fresh = rules_section()
    text = ARCHITECTURE.read_text(encoding="utf-8")
    if os.environ.get("PCREF_UPDATE_SNAPSHOTS") == "1":
        start, end = text.index(BEGIN), text.index(END) + len(END)
        ARCHITECTURE.write_text(text[:start] + fresh + text[end:], encoding="utf-8")
        text = ARCHITECTURE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "docs/architecture.md needs the import-rules markers"
    shown = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert shown == fresh, (
        "docs/architecture.md's import rules differ from tests/test_layers.py's IMPORT_RULES: "
        "run `make snapshots` and review the diff."
    )
