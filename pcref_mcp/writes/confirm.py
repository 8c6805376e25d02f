"""Single-use confirm tokens for clients that cannot ask the person through elicitation.

A token is bound to the tool, the exact arguments and the referral's ETag at preview time, and
expires after a few minutes. The model cannot mint one (HMAC with a per-process key) and cannot
reuse one (nonces are spent on redemption), so only a second call that the person approved after
seeing the preview can write, and only what they saw.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pcref_mcp.errors import ConfirmationError, StaleConfirmation

DEFAULT_TTL_SECONDS = 300.0


class ConfirmationTokens:
    """Issues and redeems confirm tokens; thread-safe, in memory, per process."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self._key = key or secrets.token_bytes(32)
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        *,
        tool: str,
        arguments: Mapping[str, Any],
        etag: str | None,
        snapshot: Mapping[str, Any] | None = None,
    ) -> str:
        """A token for this exact call; ``snapshot`` (signed) lets a stale redemption say what changed."""
        claims = {
            "n": secrets.token_urlsafe(12),
            "t": tool,
            "a": arguments_digest(arguments),
            "e": etag or "",
            "x": round(self._clock() + self.ttl, 3),
            "s": dict(snapshot or {}),
        }
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def redeem(self, token: str, *, tool: str, arguments: Mapping[str, Any], etag: str | None) -> None:
        """Spend ``token`` for this exact call, or raise ConfirmationError saying why not.

        Checked in the order a person would want to hear about it: forged, other tool, already
        used, expired, other arguments; last, a referral that changed since the preview
        (StaleConfirmation, which the caller answers with a fresh preview).
        """
        claims = self._verify(token)
        if claims["t"] != tool:
            raise ConfirmationError(
                f"This confirm token was issued for {claims['t']}, not {tool}.",
                hint="Call the tool without confirm_token to get a fresh preview.",
            )
        now = self._clock()
        with self._lock:
            self._forget_expired(now)
            if claims["n"] in self._spent:
                raise ConfirmationError(
                    "This confirm token was already used; each token writes once.",
                    hint="Call again without confirm_token if another change is wanted.",
                )
        if now > claims["x"]:
            raise ConfirmationError(
                "This confirm token has expired; nothing was written.",
                hint="Call again without confirm_token to get a fresh preview.",
            )
        if claims["a"] != arguments_digest(arguments):
            raise ConfirmationError(
                "The arguments differ from the ones the person approved; nothing was written.",
                hint="Call again without confirm_token to preview the new change and ask the person again.",
            )
        if claims["e"] != (etag or ""):
            raise StaleConfirmation(
                "The referral changed after the preview was approved; nothing was written.",
                hint="Show the person the new preview and ask again.",
            )
        with self._lock:
            if claims["n"] in self._spent:
                raise ConfirmationError("This confirm token was already used; each token writes once.")
            self._spent[claims["n"]] = max(claims["x"], now) + self.ttl

    def peek_snapshot(self, token: str) -> dict[str, Any]:
        """The field values the person saw when the token was issued."""
        snapshot: dict[str, Any] = self._verify(token).get("s") or {}
        return snapshot

    # -- private -----------------------------------------------------------------------------------

    def _verify(self, token: str) -> dict[str, Any]:
        body, _, signature = token.partition(".")
        if not body or not signature or not hmac.compare_digest(signature, self._sign(body)):
            raise ConfirmationError(
                "This confirm token is not valid here (it was not issued by this server session).",
                hint="Call the tool without confirm_token to get a preview and a token.",
            )
        try:
            claims: dict[str, Any] = json.loads(_unb64(body))
        except ValueError as exc:  # pragma: no cover - a valid signature implies a valid body
            raise ConfirmationError("This confirm token is malformed.") from exc
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:24])

    def _forget_expired(self, now: float) -> None:
        for nonce in [n for n, exp in self._spent.items() if exp < now]:
            del self._spent[nonce]


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """A stable digest of a tool's arguments, ignoring the confirm token itself and unset values."""
    relevant = {k: v for k, v in arguments.items() if k != "confirm_token" and v is not None}
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
