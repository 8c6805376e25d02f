"""Find every JSON document in the reference folder (``../shared/reference``).

Markdown files: fenced ```json blocks. Text files (the seeds): each JSON value that starts a line
(``{`` or ``[``), plus top-level ``"key": value`` fragments such as the ``"target": [...]`` samples.
A value that does not parse is skipped and the scan goes on at the next line, which is how the
2018 example's ``{ {`` doc typo yields its (inner, complete) request body. No-break spaces used as
indentation by the web pages are read as spaces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (REPO.parent / "shared" / "reference", Path("/work/shared/reference"))

_FENCE = re.compile(r"```\s*json\s*\n(.*?)```", re.DOTALL)
_FRAGMENT = re.compile(r'\s*"(\w+)"\s*:\s*(?=[\[{])')


def reference_dir() -> Path | None:
    return next((path for path in CANDIDATES if path.is_dir()), None)


def documents(folder: Path) -> Iterator[tuple[str, Any]]:
    """(``file:line``, parsed JSON) for every document found."""
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            for match in _FENCE.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                yield f"{path.name}:{line}", json.loads(match.group(1))
        elif path.suffix == ".txt":
            # The web pages indent some samples with no-break spaces (U+00A0), which JSON does not allow.
            yield from _scan(path.name, path.read_text(encoding="utf-8").replace("\u00a0", " "))


def _scan(name: str, text: str) -> Iterator[tuple[str, Any]]:
    decoder = json.JSONDecoder()
    position = 0
    while position < len(text):
        end_of_line = text.find("\n", position)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        line = text[position:end_of_line]
        stripped = line.lstrip()
        start = position + len(line) - len(stripped)
        found: tuple[Any, int] | None = None
        fragment = _FRAGMENT.match(line)
        try:
            if stripped[:1] in ("{", "["):
                value, end = decoder.raw_decode(text, start)
                found = (value, end)
            elif fragment:
                value, end = decoder.raw_decode(text, position + fragment.end())
                found = ({fragment.group(1): value}, end)
        except json.JSONDecodeError:
            found = None
        if found is not None and isinstance(found[0], dict | list) and found[0]:
            yield f"{name}:{text.count(chr(10), 0, position) + 1}", found[0]
            position = found[1]
            continue
        position = end_of_line + 1
