"""The one place team mode says who a call is for: the person whose validated token came with it.

The SDK's bearer middleware puts the validated token in its access-token context variable for the
HTTP request, and the SDK carries that context into the handler, whether the request belongs to a
legacy (2025) session or is a sessionless 2026-07-28 request. :class:`PrincipalMiddleware` is an SDK
server middleware: it wraps every inbound request (tools, resources, prompts, resolver rounds) and
runs it as :func:`pcref_mcp.identity.acting_as` that person, so the journal, approvals and rate
limits below see ``identity.current()`` without knowing how the person signed in.
"""

from __future__ import annotations

from typing import Any

from mcp import MCPError
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.types import INVALID_REQUEST

from pcref_mcp.identity import Principal, acting_as

__all__ = ["PrincipalMiddleware", "principal_of"]


def principal_of(token: AccessToken) -> Principal:
    """Object id (stable), user principal name and tenant from a token :class:`EntraTokenVerifier` passed."""
    claims = token.claims or {}
    name = claims.get("upn") or claims.get("preferred_username") or claims.get("name")
    return Principal(
        id=str(claims.get("oid") or token.subject),
        name=str(name) if name else None,
        tenant=str(claims["tid"]) if claims.get("tid") else None,
    )


class PrincipalMiddleware:
    """SDK ``ServerMiddleware``: run each request as the person who sent it; refuse if nobody did."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        token = get_access_token()
        if token is None:
            if ctx.request_id is None:  # a notification: nothing runs as anyone
                return await call_next(ctx)
            # The bearer middleware admits only signed-in requests, so this is a wiring fault: fail closed.
            raise MCPError(code=INVALID_REQUEST, message="This server needs each request signed in.")
        with acting_as(principal_of(token)):
            return await call_next(ctx)
