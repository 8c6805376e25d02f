"""Streamable HTTP: loopback by default with DNS-rebinding protection; a bearer token is required
before the server may listen anywhere else, where it answers to the names it is reached by
(:mod:`pcref_mcp.server.hosts`). Sessions are bounded per client and in total."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from pcref_mcp.config import Settings
from pcref_mcp.errors import ConfigError
from pcref_mcp.server.approval_page import PATH
from pcref_mcp.server.asgi import send_json
from pcref_mcp.server.hosts import is_loopback, served_hosts
from pcref_mcp.server.sdk_adapter import close_session, open_sessions

__all__ = ["BearerGate", "SessionBounds", "http_app", "is_loopback", "serve_http"]

log = logging.getLogger("pcref_mcp.server")

APPROVALS_PREFIX = PATH.split("{", 1)[0]


def http_app(settings: Settings, server: Any, *, host: str, port: int) -> Any:
    """The ASGI app: the SDK's streamable HTTP app behind host/origin checks and the bearer gate."""
    token = settings.http_bearer_token.get_secret_value() if settings.http_bearer_token else None
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"Refusing to listen on {host}: anyone who can reach it could read and change referrals. "
            "Set PCREF_HTTP_BEARER_TOKEN to a long random value (clients send it as "
            "'Authorization: Bearer <token>'), or bind to 127.0.0.1."
        )
    hosts = served_hosts(settings.http_allowed_hosts, host, port)
    log.info("serving the Host names %s (PCREF_HTTP_ALLOWED_HOSTS to change them)", ", ".join(hosts))
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for scheme in ("http", "https") for h in hosts],
    )
    server.approval_pages.mount(server)  # the approval page, beside /mcp (before the app is built)
    app = server.streamable_http_app(
        transport_security=security,
        host=host,
        # replicas behind a proxy: no session lives in one process (README, "Team server at scale")
        stateless_http=settings.http_stateless,
        session_idle_timeout=float(settings.http_session_idle_seconds),
        # our own bound (SessionBounds) evicts before the SDK's refusal is ever reached
        max_sessions=settings.http_max_sessions + 1,
    )
    _quiet_disconnects()
    bounded = SessionBounds(
        app,
        server.session_manager,
        total=settings.http_max_sessions,
        per_client=settings.http_max_sessions_per_client,
    )
    return BearerGate(bounded, token) if token else bounded


@dataclass
class _Session:
    client: str
    last_used: float
    in_flight: int = 0


class SessionBounds:
    """Pure ASGI middleware: at most ``per_client`` MCP sessions per client and ``total`` in all.

    A client that opens one session more than its bound does not get a 503 (the SDK's answer at its
    own limit, which locks legacy clients out until idle sessions expire, 30 minutes by default):
    its least recently used session that has no request in flight is closed instead, so a client
    that leaks sessions only ever loses its own oldest ones. The total bound evicts the least
    recently used idle session of anyone. 2026-07-28 requests open no session and are not counted.
    A client that disconnects mid-response is logged in one line.
    """

    def __init__(self, app: Any, manager: Any, *, total: int, per_client: int) -> None:
        self.app = app
        self.manager = manager
        self.total = total
        self.per_client = per_client
        self.sessions: dict[str, _Session] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        session_id = headers.get(b"mcp-session-id", b"").decode("latin-1")
        client = _client_of(scope)
        opening = not session_id and scope.get("method") == "POST"
        if opening:
            await self._make_room(client)
        tracked = self.sessions.get(session_id)
        if tracked is not None and scope.get("method") != "GET":  # an open GET stream does not pin it
            tracked.in_flight += 1
            tracked.last_used = time.monotonic()

        async def watch(message: Any) -> None:
            if opening and message["type"] == "http.response.start" and message.get("status", 500) < 400:
                new_id = dict(message.get("headers") or []).get(b"mcp-session-id")
                if new_id:
                    self.sessions[new_id.decode("latin-1")] = _Session(client, time.monotonic())
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ConnectionError as exc:  # the peer went away mid-response: one line, no traceback
            log.info("HTTP client %s disconnected: %s", client, type(exc).__name__)
        finally:
            if tracked is not None and scope.get("method") != "GET":
                tracked.in_flight -= 1

    async def _make_room(self, client: str) -> None:
        live = self._live()
        mine = [sid for sid, s in live.items() if s.client == client]
        if len(mine) >= self.per_client:
            await self._evict(mine, len(mine) - self.per_client + 1, f"client {client} is at its bound")
        live = self._live()
        if len(live) >= self.total:
            await self._evict(list(live), len(live) - self.total + 1, "the server is at its session bound")

    def _live(self) -> dict[str, _Session]:
        """Our sessions the SDK still has (idle expiry and client DELETEs end them there)."""
        known = open_sessions(self.manager)
        for sid in [sid for sid in self.sessions if sid not in known]:
            del self.sessions[sid]
        return dict(self.sessions)

    async def _evict(self, candidates: list[str], count: int, why: str) -> None:
        idle = sorted((sid for sid in candidates if self.sessions[sid].in_flight == 0), key=self._last_used)
        for sid in idle[:count]:
            self.sessions.pop(sid, None)
            await close_session(self.manager, sid)  # the SDK has no public "close this session"
            log.info("closed the least recently used HTTP session (%s)", why)

    def _last_used(self, sid: str) -> float:
        return self.sessions[sid].last_used


class _DisconnectFilter(logging.Filter):
    """The SDK logs a client that hangs up mid-request as an ERROR with a traceback ("Error handling
    POST request"); it is the client's doing and worth one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_disconnect(exc):
            record.msg, record.args = "HTTP client disconnected mid-request (%s)", (type(exc).__name__,)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def _is_disconnect(exc: BaseException) -> bool:
    import anyio
    from starlette.requests import ClientDisconnect

    return isinstance(
        exc, ClientDisconnect | anyio.BrokenResourceError | anyio.ClosedResourceError | ConnectionError
    )


def _quiet_disconnects() -> None:
    target = logging.getLogger("mcp.server.streamable_http")
    if not any(isinstance(f, _DisconnectFilter) for f in target.filters):
        target.addFilter(_DisconnectFilter())


def _client_of(scope: Any) -> str:
    """Who a session belongs to: the authenticated user where there is one, else the peer address."""
    user = scope.get("user")
    identity = getattr(user, "identity", None) or getattr(user, "username", None)
    if identity:
        return str(identity)
    peer = scope.get("client") or ("unknown", 0)
    return str(peer[0])


class BearerGate:
    """Pure ASGI middleware: every HTTP request must carry the configured bearer token, except the
    approval page's, which a person's browser opens (it cannot send the token; the page's own one-time
    link and cookie guard it, see server.approval_page)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(APPROVALS_PREFIX):
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                # RFC 6750 §3.1: an error code only when a bearer token was presented and is wrong
                presented = given[:7].lower() == b"bearer " and given[7:].strip()
                challenge = b'Bearer realm="pcref-mcp"' + (b', error="invalid_token"' if presented else b"")
                answer = {"error": "unauthorized", "message": "Missing or wrong bearer token."}
                await send_json(send, 401, answer, [(b"www-authenticate", challenge)])
                return
        await self.app(scope, receive, send)


def serve_http(settings: Settings, server: Any, *, host: str, port: int) -> None:
    import uvicorn

    app = http_app(settings, server, host=host, port=port)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
