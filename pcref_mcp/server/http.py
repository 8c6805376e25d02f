"""Streamable HTTP: loopback by default with DNS-rebinding protection; a bearer token is required
before the server may listen anywhere else."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from pcref_mcp.config import Settings
from pcref_mcp.errors import ConfigError

log = logging.getLogger("pcref_mcp.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_app(settings: Settings, server: Any, *, host: str, port: int) -> Any:
    """The ASGI app: the SDK's streamable HTTP app behind host/origin checks and the bearer gate."""
    token = settings.http_bearer_token.get_secret_value() if settings.http_bearer_token else None
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"Refusing to listen on {host}: anyone who can reach it could read and change referrals. "
            "Set PCREF_HTTP_BEARER_TOKEN to a long random value (clients send it as "
            "'Authorization: Bearer <token>'), or bind to 127.0.0.1."
        )
    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else [host]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{n}:{port}" for n in names] + names,
        allowed_origins=[f"http://{n}:{port}" for n in names] + [f"https://{n}:{port}" for n in names],
    )
    app = server.streamable_http_app(transport_security=security, host=host)
    return BearerGate(app, token) if token else app


class BearerGate:
    """Pure ASGI middleware: every HTTP request must carry the configured bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="pcref-mcp"'),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error":"unauthorized","message":"Missing or wrong bearer token."}',
                    }
                )
                return
        await self.app(scope, receive, send)


def serve_http(settings: Settings, server: Any, *, host: str, port: int) -> None:
    import uvicorn

    app = http_app(settings, server, host=host, port=port)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
