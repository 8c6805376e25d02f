"""What the README and docs/ name is what the program has: every resource (`catalog://…`,
`referral://…`, `pcref://…`) is one the server lists, every `PCREF_*` variable is a setting or one the
code reads, every setting is in the README's table, every file name the docs say the program keeps is
one its code names, and no prose states a test count or a tool's byte size (those drift: the tool
reference is generated, figures live in docs/benchmarks.md, written by `make bench`)."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from pcref_mcp.config import ENV_PREFIX, Settings
from pcref_mcp.server.app import build_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "prompts").glob("*.md"))]
# The program's code (what it makes and reads), and the tests' (which read PCREF_E2E_REQUIRED and the like).
PROGRAM = [
    *(ROOT / "pcref_mcp").rglob("*.py"),
    *(ROOT / "deploy").rglob("*.py"),
    *(ROOT / "bench").rglob("*.py"),
    ROOT / "Makefile",
]
TESTS = [p for p in (ROOT / "tests").rglob("*.py") if p.resolve() != Path(__file__).resolve()]
RESOURCE = re.compile(r"\b(catalog|referral|pcref)://((?:[\w./-]|\{[^}`]*\}|<[^>`]*>)*)")
VARIABLE = re.compile(r"\bPCREF_[A-Z0-9_]*[A-Z0-9]\b")
FILE_NAME = re.compile(r"\b[\w-]+\.(?:sqlite3|db|json|toml|csv|log|pem)\b")
# Files the docs name that are not the program's: a client's own settings, this repository's files.
NOT_OURS = {"claude_desktop_config.json", "mcp.json", "server.json", "tools.json"}
COUNTS = re.compile(r"\b\d[\d,]* tests\b|`tests/[\w/]+\.py` \(\d+|\b\d[\d,]* bytes in tools/list")


def docs_text() -> dict[str, str]:
    return {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in DOCS}


def code_text(paths: list[Path]) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def served_resources(tmp_path: Path) -> tuple[set[str], set[str]]:
    server = build_server(Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=":memory:"))

    async def listed() -> tuple[set[str], set[str]]:
        fixed = {str(r.uri) for r in await server.list_resources()}
        templates = {t.uri_template for t in await server.list_resource_templates()}
        return fixed, templates

    return anyio.run(listed)


def named_resources(text: str) -> set[str]:
    """Each resource the text names, `catalog://{a,b,…}` spelled out, "…" left out."""
    found = set()
    for match in RESOURCE.finditer(text):
        scheme, rest = match.groups()
        listed = re.fullmatch(r"\{([^?}][^}]*,[^}]*)\}", rest)  # a list: {a,b,…}
        for item in listed.group(1).split(",") if listed else [rest]:
            if item.strip() not in ("…", "..."):
                found.add(f"{scheme}://{item.strip()}")
    return found


def _shape(uri: str) -> str:
    """A URI with each `{placeholder}` / `<placeholder>` as `{}` (an RFC 6570 query part kept)."""
    return re.sub(r"\{[^?}][^}]*\}|<[^>]*>?", "{}", uri)


def test_every_resource_the_docs_name_is_served(tmp_path: Path) -> None:
    fixed, templates = served_resources(tmp_path)
    shapes = {_shape(t) for t in templates} | fixed
    schemes = {uri.split("://")[0] + "://" for uri in fixed | templates}
    missing = {
        (doc, uri)
        for doc, text in docs_text().items()
        for uri in named_resources(text)
        # a bare scheme or one placeholder (`referral://`, `catalog://<name>`): any of that scheme
        if not (uri in fixed or _shape(uri) in shapes or _shape(uri).removesuffix("{}") in schemes)
    }
    assert missing == set(), "named in the docs, not served (the server's list is the truth)"


def test_the_resource_check_sees_a_wrong_name(tmp_path: Path) -> None:
    fixed, _ = served_resources(tmp_path)
    assert named_resources("`catalog://{products,customer-sizes,…}`") == {
        "catalog://products",
        "catalog://customer-sizes",
    }
    assert "catalog://customer-sizes" not in fixed and "catalog://customer_sizes" in fixed
    assert _shape("referral://{id}") == _shape("referral://{referral_id}") == "referral://{}"


def test_every_variable_the_docs_name_exists() -> None:
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    code = code_text([*PROGRAM, *TESTS])
    unknown = {
        (doc, var)
        for doc, text in docs_text().items()
        for var in VARIABLE.findall(text)
        if var not in settings and var not in code
    }
    assert unknown == set(), "named in the docs, neither a setting nor read by the code"


def test_every_setting_is_in_the_readme_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("\n## Configuration\n") :]
    table = table[: table.index("\n## ", 1)]
    rows = {
        var for line in table.splitlines() if line.startswith("| `PCREF_") for var in VARIABLE.findall(line)
    }
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert settings - rows == set(), "settings missing from the README's Configuration table"
    assert rows - settings == set(), "rows in the README's Configuration table that are not settings"


def test_every_file_the_docs_name_is_one_the_code_names() -> None:
    code = code_text(PROGRAM)
    unknown = {
        (doc, name)
        for doc, text in docs_text().items()
        for name in FILE_NAME.findall(text)
        if name not in NOT_OURS and name not in code
    }
    assert unknown == set(), "file names in the docs that no code makes or reads"


def test_no_prose_states_a_test_count_or_a_tool_size() -> None:
    stated = {(doc, m.group(0)) for doc, text in docs_text().items() for m in COUNTS.finditer(text)}
    assert stated == set(), "counts drift: name the test file, leave the number out"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("stay in `approvals.sqlite3` next to the journal", True),
        ("## Write engine contract — 60 tests", True),
        ("`tests/server/test_approvals.py` (9),", True),
        ("`recent_changes` (527 bytes in tools/list)", True),
        ("`tests/server/test_approvals.py`, and the journal", False),
    ],
)
def test_the_checks_see_drifting_prose(text: str, found: bool) -> None:
    code = code_text(PROGRAM)
    drift = bool(COUNTS.search(text)) or any(n not in code for n in FILE_NAME.findall(text))
    assert drift is found
