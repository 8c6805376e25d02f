"""ASGI wrappers around the SDK's OAuth routes in proxy mode, and what the routes answer when the
shared store does not: the metadata says what the SDK leaves out (client ID metadata documents,
public clients), ``/revoke`` learns which client a token was issued to and takes public clients,
and a store that does not answer is ``temporarily_unavailable`` (503), not a 500.
"""

from contextvars import ContextVar
from typing import Any

from pcref_mcp.errors import PcrefError
from pcref_mcp.server.asgi import TOO_LARGE, read_body, replaying, send_json

__all__ = ["advertise_metadata_documents", "broker_unavailable", "revocation_knows_clients", "store_failures"]

# Set while /revoke runs (revocation_knows_clients): EntraProxy.load_access_token then names the client.
_REVOKING: ContextVar[bool] = ContextVar("pcref_revoking", default=False)


AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")


def advertise_metadata_documents(app: Any) -> Any:
    """ASGI wrapper: add ``client_id_metadata_document_supported: true`` to the SDK's authorization
    server metadata (SDK 2.3 does not set it), so clients know they may use a metadata URL as id, and
    list ``none`` among the token and revocation endpoints' authentication methods (SDK 2.3 lists
    only the secret methods, though its registration hands out public clients)."""
    import json

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/.well-known/oauth-authorization-server":
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start.get("status") == 200:
                try:
                    doc = json.loads(body)
                    doc["client_id_metadata_document_supported"] = True
                    # what the SDK's registration handler hands out and its client authentication
                    # accepts: public clients ("none") as well as the two secret methods
                    doc["token_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
                    if "revocation_endpoint" in doc:
                        doc["revocation_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
                    body = json.dumps(doc).encode()
                except ValueError:
                    pass
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


MAX_REVOCATION_BYTES = 8 * 1024


def revocation_knows_clients(app: Any) -> Any:
    """ASGI wrapper for ``/revoke``:

    - :meth:`EntraProxy.load_access_token` answers with the client the access token was issued to
      (RFC 7009: revoking it ends that client's refresh handles for the person). Everywhere else the
      token is checked as is, without a store lookup per request.
    - Public clients may revoke: SDK 2.3's ``RevocationRequest`` declares ``client_secret: str | None``
      without a default, so pydantic makes the *key* required and a public client (which has no
      secret and sends none, as RFC 7009 allows) got "client_secret: Field required" while its handle
      kept working. The SDK has already authenticated the client by then (a confidential one without
      its secret is refused there), so an absent key is added as empty here. The body is read here,
      bounded (413 beyond :data:`MAX_REVOCATION_BYTES`)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/revoke":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "POST" and headers.get(b"content-type", b"").startswith(
            b"application/x-www-form-urlencoded"
        ):
            body = await read_body(receive, MAX_REVOCATION_BYTES)
            if body is TOO_LARGE:
                await _json_error(send, 413, "invalid_request", "The revocation request is too large.")
                return
            if not isinstance(body, bytes):  # the client went away
                return
            from urllib.parse import parse_qsl

            if "client_secret" not in {
                k for k, _ in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            }:
                body += b"&client_secret=" if body else b"client_secret="
            scope = {
                **scope,
                "headers": [
                    *((k, v) for k, v in scope["headers"] if k.lower() != b"content-length"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            receive = replaying(body, receive)
        mark = _REVOKING.set(True)
        try:
            await app(scope, receive, send)
        finally:
            _REVOKING.reset(mark)

    return wrapped


async def _json_error(send: Any, status: int, error: str, description: str) -> None:
    await send_json(send, status, {"error": error, "error_description": description})


def broker_unavailable(request: Any, exc: Exception) -> Any:
    """The Starlette exception handler for :class:`BrokerUnavailable` on the OAuth endpoints: the
    OAuth error ``temporarily_unavailable`` (503, try again shortly) instead of a 500."""
    from starlette.responses import JSONResponse

    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "The sign-in service is briefly unavailable; try again in a few seconds.",
        },
        503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


def store_failures() -> tuple[type[BaseException], ...]:
    """What a store that does not answer raises: the network, SQLite, asyncpg, or our own
    "cannot reach" error."""
    import sqlite3

    failures: list[type[BaseException]] = [OSError, sqlite3.Error, PcrefError]
    try:
        import asyncpg
    except ImportError:
        return tuple(failures)
    return (*failures, asyncpg.PostgresError, asyncpg.InterfaceError)
