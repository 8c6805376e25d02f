"""Authenticate before reading: team mode knows who is calling ``/mcp`` before it reads a byte of body.

Everything behind this gate may read the request body (the claims gate buffers it to see whether the
call reaches Partner Center; the SDK parses it). Were a body read first, anyone could make the server
hold it: 200 stalled 1 MB uploads with a forged bearer once raised its memory by about 185 MB. So
:class:`AuthenticateFirst`, outermost in front of ``/mcp``, decides from the headers alone:

- no credentials (no ``Authorization``, or another scheme): 401 with
  ``WWW-Authenticate: Bearer resource_metadata="…"`` and, as RFC 6750 §3.1 asks, *no* error code —
  the answer that starts an MCP client's discovery of the authorization server;
- a bearer token that does not verify (or has expired): 401 ``error="invalid_token"``;
- a good token of a revoked person or client (:mod:`.revocation`): 401 ``error="invalid_token"``;
- a good token: its person is *seen* (:mod:`.seen`: their last call, with which client, at most one
  store write a minute per person per replica), and the request goes on with the verified token remembered for that request
  (:func:`~pcref_mcp.team.tokens.verified_for_this_request`, so the SDK's own bearer middleware,
  which asks the verifier again, costs no second check) and put in the scope under :data:`TOKEN_KEY`
  for the claims gate.

Both 401s close the connection (``Connection: close``): the unread body is never read, not even by
the HTTP server draining it for the next request on that connection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

from pcref_mcp.server.asgi import send_json
from pcref_mcp.team.tokens import verified_for_this_request

if TYPE_CHECKING:
    from pcref_mcp.team.revocation import Revocations
    from pcref_mcp.team.seen import SeenRecorder
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = ["TOKEN_KEY", "AuthenticateFirst"]

log = logging.getLogger("pcref_mcp.team")

TOKEN_KEY = "pcref_mcp.access_token"  # the ASGI scope key holding the request's verified AccessToken


@dataclass(eq=False, repr=False)  # stores what it is given; compared and shown as itself
class AuthenticateFirst:
    """Pure ASGI middleware: every request to ``path`` (but a CORS preflight) is authenticated from
    its headers before anything reads its body."""

    app: Any
    _: KW_ONLY
    verifier: EntraTokenVerifier
    resource_metadata_url: str
    revocations: Revocations | None = None
    seen: SeenRecorder | None = None
    path: str = "/mcp"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        token = _bearer_of(scope)
        if token is None:
            await self._unauthorized(send, None, "Sign in first: this server needs an OAuth access token.")
            return
        access = await self.verifier.verify_token(token)
        if access is None or (access.expires_at is not None and access.expires_at < int(time.time())):
            await self._unauthorized(
                send, "invalid_token", "The access token is not valid for this server (or has expired)."
            )
            return
        if self.revocations is not None and await self.revocations.refuses(access):
            # a 401 the client acts on: it signs the person in again (and asks their consent anew)
            log.warning("refused a request: its sign-in was revoked by an administrator")
            await self._unauthorized(
                send,
                "invalid_token",
                "Your access to this server was revoked by its administrator; sign in again if you "
                "have been given access back.",
            )
            return
        if self.seen is not None:
            await self._saw(access)
        with verified_for_this_request(token, access):
            await self.app({**scope, TOKEN_KEY: access}, receive, send)

    async def _saw(self, access: Any) -> None:
        """Its person's last call (and client's): the proxy's client when it issued the token, else
        the token's own client claim."""
        from pcref_mcp.team.principal import principal_of

        assert self.seen is not None
        person = principal_of(access)
        client = None
        if self.revocations is not None:
            try:
                client = await self.revocations.client_of(access)
            except Exception as exc:  # the store did not answer: seen without its client this time
                log.warning("could not look up a token's client (%s)", type(exc).__name__)
        claims = access.claims or {}
        await self.seen.saw(
            person.id,
            name=person.name,
            client_id=client or str(access.client_id or ""),  # Entra's azp / appid otherwise
            issued=float(claims.get("iat") or 0),
        )

    async def _unauthorized(self, send: Any, error: str | None, description: str) -> None:
        """401 with an RFC 6750 challenge; ``error`` only when a token was presented and is bad."""
        params = [f'error="{error}"', f'error_description="{description}"'] if error else []
        params.append(f'resource_metadata="{self.resource_metadata_url}"')
        answer = {"error": error, "error_description": description} if error else {"message": description}
        challenge = f"Bearer {', '.join(params)}".encode()
        # the unread body is never drained: the connection closes
        await send_json(send, 401, answer, [(b"www-authenticate", challenge), (b"connection", b"close")])


def _bearer_of(scope: Any) -> str | None:
    """The bearer token in the request's headers, or None when it presents no bearer credentials."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
