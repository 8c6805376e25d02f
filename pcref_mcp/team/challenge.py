"""Conditional Access in team mode: a claims challenge goes back to the client as HTTP 401.

When Entra will not issue a person's Partner Center token until they satisfy a policy (MFA, a
compliant device), the on-behalf-of grant answers with a ``claims`` request. Inside a tool call the
only way to say so is an error the model reads; the client, which is the one that can sign the person
in again, never sees it. So before a request that may call Partner Center (``tools/call``,
``resources/read``) reaches the MCP layer, :class:`ClaimsGate` makes sure that person's Partner Center
token can be had (normally from their msal cache, no network). If not, the request is answered the way
RFC 6750 and Microsoft's claims-challenge protocol describe, which an MCP client treats like any 401:

    401  WWW-Authenticate: Bearer error="insufficient_claims", error_description="…",
         claims="<base64 of the claims request>", resource_metadata="…/.well-known/oauth-protected-resource/mcp"

The client signs the person in again. In proxy mode the server remembers the claims for that client
and passes them to Entra with the new authorization request; a client that talks to Entra directly
passes the ``claims`` itself (MSAL-based clients do).

The gate sits behind :class:`~pcref_mcp.team.authn.AuthenticateFirst`: it reads a body only of a
request whose token has been verified (and takes the person from that verified token), and gives the
client :data:`BODY_SECONDS` to send it — a signed-in client that stalls gets 408, not a held request.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

import anyio

from pcref_mcp.errors import ClaimsChallenge, PcrefError, SignInExpired
from pcref_mcp.server.asgi import replaying, send_json
from pcref_mcp.team.authn import TOKEN_KEY

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken

    from pcref_mcp.team.obo import OnBehalfOf
    from pcref_mcp.team.proxy import EntraProxy

__all__ = ["PARTNER_CENTER_METHODS", "ClaimsGate"]

log = logging.getLogger("pcref_mcp.team")

PARTNER_CENTER_METHODS = frozenset({"tools/call", "resources/read"})
MAX_INSPECTED_BODY = 1_000_000  # larger bodies pass through untouched (the SDK bounds them anyway)
BODY_SECONDS = 30.0  # the whole body of a signed-in request must arrive within this (total, not per read)


@dataclass(eq=False, repr=False)  # stores what it is given; compared and shown as itself
class ClaimsGate:
    """Pure ASGI middleware in front of the team app's ``/mcp`` endpoint (behind ``AuthenticateFirst``)."""

    app: Any
    _: KW_ONLY
    obo: OnBehalfOf
    resource_metadata_url: str
    proxy: EntraProxy | None = None
    path: str = "/mcp"
    body_seconds: float = BODY_SECONDS

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        access: AccessToken | None = scope.get(TOKEN_KEY)
        if access is None:
            # only AuthenticateFirst puts a verified token here; without one, read nothing
            await self.app(scope, receive, send)
            return
        body, replay = b"", receive
        with anyio.move_on_after(self.body_seconds) as deadline:
            body, replay = await _buffer(receive)
        if deadline.cancelled_caught:
            log.info(
                "a signed-in client took over %ss to send its request body; answered 408", self.body_seconds
            )
            await _too_slow(send)
            return
        if _calls_partner_center(body):
            challenge = await self._challenge_for(access)
            if challenge is not None:
                if self.proxy is not None:
                    await self.proxy.remember_claims(access.token, challenge.claims)
                await self._refuse(send, challenge)
                return
        await self.app(scope, replay, send)

    async def _challenge_for(self, access: AccessToken) -> ClaimsChallenge | None:
        from pcref_mcp.identity import Principal

        claims = access.claims or {}
        name = claims.get("upn") or claims.get("preferred_username")
        person = Principal(id=str(claims.get("oid") or access.subject), name=str(name) if name else None)
        try:
            await self.obo.for_person(person).exchange(access.token)
        except ClaimsChallenge as exc:
            log.info("Conditional Access asks more of a person; answering 401 insufficient_claims")
            return exc
        except PcrefError:
            return None  # other sign-in trouble: the tool call reports it in words
        return None

    async def _refuse(self, send: Any, challenge: ClaimsChallenge) -> None:
        encoded = base64.b64encode(challenge.claims.encode()).decode()
        description = (
            "Your sign-in has expired or was revoked; sign in again"
            if isinstance(challenge, SignInExpired)
            else "Partner Center needs you to sign in again (multi-factor authentication or a compliant device)"
        )
        header = (
            f'Bearer error="insufficient_claims", error_description="{description}", '
            f'claims="{encoded}", resource_metadata="{self.resource_metadata_url}"'
        )
        answer = {"error": "insufficient_claims", "error_description": description}
        await send_json(send, 401, answer, [(b"www-authenticate", header.encode())])


def _calls_partner_center(body: bytes) -> bool:
    if not body or len(body) > MAX_INSPECTED_BODY:
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    messages = message if isinstance(message, list) else [message]
    return any(isinstance(m, dict) and m.get("method") in PARTNER_CENTER_METHODS for m in messages)


async def _too_slow(send: Any) -> None:
    answer = {
        "error": "request_timeout",
        "error_description": "The request body did not arrive in time; send it again.",
    }
    await send_json(send, 408, answer, [(b"connection", b"close")])


async def _buffer(receive: Any) -> tuple[bytes, Any]:
    """Read the whole request body and give back a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > MAX_INSPECTED_BODY:
            break
    body = b"".join(chunks)
    return body, replaying(body, receive, more_body=more)
