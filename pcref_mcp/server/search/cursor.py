"""The cursor handed to the model: signed, so a model cannot point the client and its bearer token at
another host or forge a query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from pcref_mcp.errors import InvalidInput


def bad_cursor() -> InvalidInput:
    return InvalidInput(
        "This cursor is not one this server handed out (or it belongs to an earlier session).",
        field="cursor",
        hint="Run search_referrals again without cursor to start from the first page.",
    )


class CursorSigner:
    """Seals the search state (filters, the service's page and a position in it) into an opaque
    cursor only this server session can open."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, state: dict[str, Any]) -> str:
        raw = json.dumps(state, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def open(self, cursor: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            blob = b""
        mac, raw = blob[:12], blob[12:]
        if len(blob) <= 12 or not hmac.compare_digest(
            mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        ):
            raise bad_cursor()
        state: dict[str, Any] = json.loads(raw)
        return state
