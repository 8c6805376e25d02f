"""The ASGI layer in front of everything an HTTP server serves (single-user ``serve --http`` and
``pcref-mcp team``): the operator's routes and the per-request bookkeeping.

- ``/healthz`` and ``/readyz`` (:mod:`pcref_mcp.ops.health`), unauthenticated: they are answered
  here, before any bearer gate or sign-in, and reveal nothing;
- ``/metrics`` only when ``PCREF_METRICS_TOKEN`` is set, and only to a request bearing that token
  (its own: never a person's sign-in, never the single-user bearer), else 404 as if absent;
- every request gets a request id (a plain ``X-Request-Id`` from the proxy in front is kept, else a
  fresh one), passed on to the app as that header and sent back on the response;
- every request is counted and timed by route (a closed set: never a path with an id in it) and
  logged in one line (``PCREF_LOG_FORMAT=json``: one JSON object) without its query string;
- while the replica drains (:mod:`pcref_mcp.ops.drain`) every response says ``Connection: close``,
  so a proxy's idle keep-alive connections to it are gone before it stops listening.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from pcref_mcp import calls, metrics

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.ops.health import Readiness

__all__ = ["OpsGate", "route_of"]

log = logging.getLogger("pcref_mcp.http")

_ROUTES = ("/mcp", "/authorize", "/token", "/register", "/revoke", "/oauth/callback")


def route_of(path: str) -> str:
    """The bounded label for a path (``other`` for anything not served here)."""
    if path in ("/healthz", "/readyz", "/metrics"):
        return path
    if path.startswith("/.well-known/"):
        return "/.well-known"
    if path.startswith("/approvals/") or path == "/approvals":
        return "/approvals"
    for route in _ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


class OpsGate:
    def __init__(self, app: Any, settings: Settings, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness
        self.abandoned = 0  # calls cancelled while draining (the drain gave up on them: exit status 1)
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        self._metrics_auth = f"Bearer {token}".encode() if token else None

    @property
    def draining(self) -> bool:
        return self.readiness.draining

    def begin_drain(self) -> None:
        """From now on: unready, and every response closes its connection."""
        self.readiness.draining = True
        metrics.count("pcref_draining", 1)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/healthz":
            await _answer(send, 200, {"status": "alive"})
            return
        if path == "/readyz":
            ready, state = await self.readiness.check()
            await _answer(send, 200 if ready else 503, state)
            return
        if path == "/metrics":
            await self._metrics(scope, send)
            return
        await self._tracked(scope, receive, send, path)

    async def _tracked(self, scope: Any, receive: Any, send: Any, path: str) -> None:
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"x-request-id"]
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = calls.new_request_id(given)
        headers.append((b"x-request-id", request_id.encode()))
        scope = {**scope, "headers": headers}
        route = route_of(path)
        started = time.perf_counter()
        status = 500
        draining = self.draining

        async def tagged(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message.get("status", 500))
                extra = [(b"x-request-id", request_id.encode())]
                if draining or self.draining:
                    extra.append((b"connection", b"close"))
                message = {**message, "headers": [*(message.get("headers") or []), *extra]}
            await send(message)

        token = calls.set_request_id(request_id)
        try:
            await self.app(scope, receive, tagged)
        except BaseException as exc:
            if self.draining and isinstance(exc, anyio.get_cancelled_exc_class()):
                self.abandoned += 1  # uvicorn cancelled it at the drain deadline
            raise
        finally:
            calls.reset_request_id(token)
            elapsed = time.perf_counter() - started
            shown = "429" if status == 429 else f"{status // 100}xx"
            metrics.count("pcref_http_requests", route=route, status=shown)
            metrics.observe("pcref_http_request_seconds", elapsed, route=route)
            log.info(
                "%s %s %s in %.0f ms",
                scope.get("method"),
                route,
                status,
                elapsed * 1000,
                extra={
                    "event": "request",
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000),
                },
            )

    async def _metrics(self, scope: Any, send: Any) -> None:
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if self._metrics_auth is None:
            await _answer(send, 404, {"error": "not_found"})
            return
        if not hmac.compare_digest(given, self._metrics_auth):
            await _answer(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", b"Bearer")])
            return
        body, content_type = metrics.render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _answer(send: Any, status: int, body: dict[str, str], headers: list[Any] | None = None) -> None:
    data = json.dumps(body, sort_keys=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
