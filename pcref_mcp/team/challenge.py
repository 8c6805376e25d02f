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
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import ClaimsChallenge, PcrefError

if TYPE_CHECKING:
    from pcref_mcp.team.obo import OnBehalfOf
    from pcref_mcp.team.proxy import EntraProxy
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = ["PARTNER_CENTER_METHODS", "ClaimsGate"]

log = logging.getLogger("pcref_mcp.team")

PARTNER_CENTER_METHODS = frozenset({"tools/call", "resources/read"})
MAX_INSPECTED_BODY = 1_000_000  # larger bodies pass through untouched (the SDK bounds them anyway)


class ClaimsGate:
    """Pure ASGI middleware in front of the team app's ``/mcp`` endpoint."""

    def __init__(
        self,
        app: Any,
        *,
        verifier: EntraTokenVerifier,
        obo: OnBehalfOf,
        resource_metadata_url: str,
        proxy: EntraProxy | None = None,
        path: str = "/mcp",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.obo = obo
        self.resource_metadata_url = resource_metadata_url
        self.proxy = proxy
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        authorization = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        if not authorization.lower().startswith("bearer "):
            await self.app(scope, receive, send)  # the SDK answers 401
            return
        body, replay = await _buffer(receive)
        token = authorization[7:].strip()
        if _calls_partner_center(body):
            challenge = await self._challenge_for(token)
            if challenge is not None:
                if self.proxy is not None:
                    await self.proxy.remember_claims(token, challenge.claims)
                await self._refuse(send, challenge)
                return
        await self.app(scope, replay, send)

    async def _challenge_for(self, token: str) -> ClaimsChallenge | None:
        from pcref_mcp.identity import Principal

        claims = await self.verifier.claims_of(token)
        if claims is None:
            return None  # the SDK's bearer middleware refuses it with the usual 401
        person = Principal(id=str(claims["oid"]), name=claims.get("upn") or claims.get("preferred_username"))
        try:
            await self.obo.for_person(person).exchange(token)
        except ClaimsChallenge as exc:
            log.info("Conditional Access asks more of a person; answering 401 insufficient_claims")
            return exc
        except PcrefError:
            return None  # other sign-in trouble: the tool call reports it in words
        return None

    async def _refuse(self, send: Any, challenge: ClaimsChallenge) -> None:
        encoded = base64.b64encode(challenge.claims.encode()).decode()
        description = (
            "Partner Center needs you to sign in again (multi-factor authentication or a compliant device)"
        )
        header = (
            f'Bearer error="insufficient_claims", error_description="{description}", '
            f'claims="{encoded}", resource_metadata="{self.resource_metadata_url}"'
        )
        body = json.dumps({"error": "insufficient_claims", "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", header.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _calls_partner_center(body: bytes) -> bool:
    if not body or len(body) > MAX_INSPECTED_BODY:
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    messages = message if isinstance(message, list) else [message]
    return any(isinstance(m, dict) and m.get("method") in PARTNER_CENTER_METHODS for m in messages)


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
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return body, replay
