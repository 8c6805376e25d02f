"""Bounds on dynamic client registration, the one OAuth door anyone may knock on without a token.

Three bounds, each for a different attack:

- **Size**: ``/register`` bodies above :data:`MAX_REGISTRATION_BYTES` are refused with 413 before the
  SDK reads them (:func:`bounded_registration` counts the bytes as they arrive and stops at the limit;
  a declared ``Content-Length`` above it is refused at once). The limit fits the largest registration
  the field limits allow.
- **Fields** (:func:`check_registration`): a handful of redirect URIs, each of bounded length, a short
  client name, every other string and list bounded, so one registration cannot hold megabytes of
  store.
- **Rate**: a token bucket per source address (:class:`RegistrationRate`). It is kept in process, not
  in the shared store, on purpose: it only slows a flood (the store's share of unused registrations is
  bounded separately by evicting the oldest, see ``EntraProxy.register_client``), so per-replica
  buckets (N replicas allow N times the rate) are good enough, and a registration costs no extra store
  round trip. The source is the ASGI client address, which uvicorn sets from ``X-Forwarded-For`` when
  the request comes from a trusted proxy (``--forwarded-allow-ips``; loopback by default), so behind
  nginx each client has its own bucket.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from mcp.server.auth.provider import RegistrationError

from pcref_mcp.server.asgi import TOO_LARGE, read_body, replaying, send_json

if TYPE_CHECKING:
    from mcp.shared.auth import OAuthClientInformationFull

__all__ = [
    "MAX_CLIENT_NAME",
    "MAX_REDIRECT_URIS",
    "MAX_REGISTRATION_BYTES",
    "MAX_URI_LENGTH",
    "RegistrationRate",
    "bounded_registration",
    "check_registration",
]

MAX_REDIRECT_URIS = 5
MAX_URI_LENGTH = 2_000
MAX_CLIENT_NAME = 200
MAX_FIELD = 2_000  # any other string field
MAX_LIST = 10  # any other list (contacts, grant types…)
MAX_REGISTRATION_BYTES = 16 * 1024  # 5 redirect URIs of 2,000 characters and the rest fit
RATE_BURST = 30  # registrations one address may make at once…
RATE_PER_MINUTE = 10.0  # …and then this many a minute
RATE_ADDRESSES = 10_000  # buckets kept (the fullest, i.e. idlest, are forgotten first)

_URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri")


def check_registration(info: OAuthClientInformationFull) -> None:
    """Refuse a registration whose fields exceed the bounds (``invalid_client_metadata`` /
    ``invalid_redirect_uri``, saying which bound and how to fit it)."""
    uris = [str(u) for u in info.redirect_uris or []]
    if len(uris) > MAX_REDIRECT_URIS:
        raise RegistrationError(
            "invalid_redirect_uri",
            f"At most {MAX_REDIRECT_URIS} redirect URIs may be registered (got {len(uris)}); register the ones "
            "this client uses.",
        )
    if any(len(u) > MAX_URI_LENGTH for u in uris):
        raise RegistrationError(
            "invalid_redirect_uri", f"Each redirect URI must be at most {MAX_URI_LENGTH} characters."
        )
    if info.client_name is not None and len(info.client_name) > MAX_CLIENT_NAME:
        raise RegistrationError(
            "invalid_client_metadata", f"client_name must be at most {MAX_CLIENT_NAME} characters."
        )
    dumped = info.model_dump(mode="json", exclude={"redirect_uris", "client_name"})
    for name, value in dumped.items():
        if name == "jwks" and value is not None and len(json.dumps(value)) > MAX_FIELD:
            raise RegistrationError(
                "invalid_client_metadata", f"jwks must be at most {MAX_FIELD} characters."
            )
        if isinstance(value, str) and len(value) > (MAX_URI_LENGTH if name in _URI_FIELDS else MAX_FIELD):
            raise RegistrationError(
                "invalid_client_metadata", f"{name} must be at most {MAX_FIELD} characters."
            )
        if isinstance(value, list) and (
            len(value) > MAX_LIST or any(isinstance(v, str) and len(v) > MAX_FIELD for v in value)
        ):
            raise RegistrationError(
                "invalid_client_metadata",
                f"{name} may hold at most {MAX_LIST} entries of {MAX_FIELD} characters.",
            )


class RegistrationRate:
    """Token buckets per source address: :data:`RATE_BURST` at once, then :data:`RATE_PER_MINUTE`."""

    def __init__(
        self,
        burst: int | None = None,
        per_minute: float | None = None,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        self.burst = float(RATE_BURST if burst is None else burst)
        self.rate = (RATE_PER_MINUTE if per_minute is None else per_minute) / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address → (tokens, when)
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0.0 when ``address`` may register now (one token taken); else seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1.0:
                self._buckets[address] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[address] = (tokens - 1.0, now)
            if len(self._buckets) > RATE_ADDRESSES:
                self._forget(now)
            return 0.0

    def _forget(self, now: float) -> None:
        """Drop the buckets that have refilled (an address idle long enough starts full anyway)."""
        full = [a for a, (t, w) in self._buckets.items() if t + (now - w) * self.rate >= self.burst]
        for address in full:
            del self._buckets[address]
        while len(self._buckets) > RATE_ADDRESSES:  # still too many: the oldest go
            del self._buckets[min(self._buckets, key=lambda a: self._buckets[a][1])]


def bounded_registration(app: Any, *, rate: RegistrationRate | None = None, path: str = "/register") -> Any:
    """ASGI wrapper for ``/register``: the rate per source, then the body read here up to
    :data:`MAX_REGISTRATION_BYTES` (413 beyond, without reading the rest) and handed to the SDK."""
    rate = rate or RegistrationRate()

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != path or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = rate.take(str(address))
        if wait > 0:
            await _refuse(
                send,
                429,
                "Too many registrations from this address; try again in "
                f"{int(wait) + 1} seconds (or reuse the client you registered).",
                {"Retry-After": str(int(wait) + 1)},
            )
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REGISTRATION_BYTES:
            await _refuse(send, 413, _too_large())
            return
        body = await read_body(receive, MAX_REGISTRATION_BYTES)
        if body is TOO_LARGE:
            await _refuse(send, 413, _too_large())
        elif isinstance(body, bytes):  # None: the client went away
            await app(scope, replaying(body, receive), send)

    return wrapped


def _too_large() -> str:
    return (
        f"The registration is larger than {MAX_REGISTRATION_BYTES} bytes; register at most "
        f"{MAX_REDIRECT_URIS} redirect URIs and short metadata."
    )


async def _refuse(send: Any, status: int, description: str, headers: dict[str, str] | None = None) -> None:
    answer = {"error": "invalid_client_metadata", "error_description": description}
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send_json(send, status, answer, [(b"connection", b"close"), *extra])
