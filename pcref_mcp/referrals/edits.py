"""What a write asks for: one field, its value and how the value meets what is there.

Its own module (re-exported by :mod:`pcref_mcp.referrals.patch_paths`, which reads edits into
operations) so the tools' argument models can name ``Mode`` and build an ``Edit`` without loading
the field table and the PATCH rules when the server starts: those load with the first write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["append", "replace"]


@dataclass(frozen=True)
class Edit:
    """One requested change: a field (name, alias or pointer), its value and how a value meets what is there.

    ``mode`` None sets the field; ``"append"`` adds to notes (after a blank line) or to a list;
    ``"replace"`` replaces a whole list even where that removes entries (which is refused otherwise).
    """

    field: str
    value: Any
    mode: Mode | None = None
