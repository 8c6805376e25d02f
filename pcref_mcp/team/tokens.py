"""Checking the access token every team-mode request carries, as the MCP authorization spec asks.

:class:`EntraTokenVerifier` is the SDK's ``TokenVerifier``: the SDK's bearer middleware calls it and
answers 401 (with ``WWW-Authenticate … resource_metadata=…``) when it returns None, and 403 naming the
scope when the token lacks the required one. A token is accepted only if all of these hold:

- it is an RS256 JWS (``alg: none``, HMAC and anything else are refused before any key is looked at)
  signed by a key in the issuer's JWKS — fetched through OIDC discovery and re-fetched at once when a
  token names a key id it has not seen (a genuine rollover is accepted immediately), at most
  ``max_fetches`` times per minute, so a stream of forged key ids cannot turn the server into a JWKS
  hammer;
- ``iss`` is the issuer for the token's own tenant and that tenant is on the allow-list;
- ``aud`` is this server (the API app's client id, its ``api://`` URI or the resource URL);
- ``exp``/``nbf`` hold (with a minute of leeway for clock skew); ``oid`` and ``tid`` are present.

PyJWT does the cryptography and the registered-claim checks; it is already installed with msal.

One request, one verification: team mode checks the token from the headers before it reads a body
(:mod:`pcref_mcp.team.authn`), and the SDK's bearer middleware asks :meth:`verify_token` again for the
same request. :func:`verified_for_this_request` remembers the first answer for the rest of that
request only (a context variable, so nothing outlives the request or crosses to another one).
"""

from __future__ import annotations

import hmac
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.server.auth.provider import AccessToken

__all__ = ["ALGORITHMS", "EntraTokenVerifier", "JwksCache", "verified_for_this_request"]

log = logging.getLogger("pcref_mcp.team")

ALGORITHMS = ("RS256",)  # what Entra signs access tokens with; the list is never taken from the token

# (token, its verified AccessToken) for the request being served; see verified_for_this_request
_VERIFIED: ContextVar[tuple[bytes, AccessToken] | None] = ContextVar("pcref_verified_token", default=None)


@contextmanager
def verified_for_this_request(token: str, access: AccessToken) -> Iterator[None]:
    """While the block runs (one request), :meth:`EntraTokenVerifier.verify_token` answers ``token``
    with ``access`` instead of checking it again."""
    mark = _VERIFIED.set((token.encode("utf-8", "surrogateescape"), access))
    try:
        yield
    finally:
        _VERIFIED.reset(mark)


def _already_verified(token: str) -> AccessToken | None:
    held = _VERIFIED.get()
    if held is None or not hmac.compare_digest(held[0], token.encode("utf-8", "surrogateescape")):
        return None
    return held[1]


class JwksCache:
    """The issuer's signing keys by key id, found through OIDC discovery and refreshed on rollover.

    An unknown key id is looked up at the issuer at once: Entra publishes a new key before it signs
    with it, so the first token signed with it is accepted (no waiting out a quiet period after the
    last fetch). What bounds the issuer traffic a stream of forged key ids can cause is a budget:
    at most ``max_fetches`` fetches in any ``window`` seconds (a sliding window), whoever asks.
    ``fetches`` counts them all, for tests and logs.
    """

    def __init__(
        self,
        discovery_url: str,
        *,
        jwks_url: str | None = None,
        verify: ssl.SSLContext | bool = True,
        max_fetches: int = 6,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_fetches < 1:
            raise ValueError("the JWKS cache needs at least one fetch per window")
        self.discovery_url = discovery_url
        self._jwks_url = jwks_url
        self._verify = verify
        self._max_fetches = max_fetches
        self._window = window
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._recent: deque[float] = deque()  # when the fetches inside the window started
        self._lock = anyio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> Any | None:
        """The public key for ``kid``, or None when the issuer does not publish it (even after a re-fetch)."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and self._may_refetch():
                await self._fetch()
        return self._keys.get(kid)

    def _may_refetch(self) -> bool:
        now = self._clock()
        while self._recent and now - self._recent[0] >= self._window:
            self._recent.popleft()
        if len(self._recent) >= self._max_fetches:
            log.debug(  # each such token is logged as refused already; this says why no fetch was made
                "unknown signing key id; the issuer was asked %d times this minute already", self._max_fetches
            )
            return False
        return True

    async def _fetch(self) -> None:
        import httpx
        from jwt import PyJWKSet
        from jwt.exceptions import PyJWKSetError

        self._recent.append(self._clock())
        self.fetches += 1
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=10.0, trust_env=False) as http:
                if self._jwks_url is None:
                    found = (await http.get(self.discovery_url)).raise_for_status().json().get("jwks_uri")
                    if not isinstance(found, str):
                        raise ValueError("discovery document has no jwks_uri")
                    self._jwks_url = found
                jwks = (await http.get(self._jwks_url)).raise_for_status().json()
            keys = PyJWKSet.from_dict(jwks).keys
        except (httpx.HTTPError, ValueError, PyJWKSetError) as exc:
            # Keep the keys we had: a blip at the issuer must not lock everyone out.
            log.warning("could not refresh the issuer's signing keys (%s)", type(exc).__name__)
            return
        self._keys = {k.key_id: k.key for k in keys if k.key_id and (k.public_key_use in (None, "sig"))}
        log.info("issuer signing keys: %d", len(self._keys))


class EntraTokenVerifier:
    """The SDK ``TokenVerifier`` for Microsoft Entra v2 access tokens (and the stand-in's)."""

    def __init__(
        self,
        *,
        issuer: str,
        audiences: Sequence[str],
        allowed_tenants: Sequence[str],
        resource: str,
        keys: JwksCache,
        scope_prefix: str = "",
        leeway: float = 60.0,
    ) -> None:
        """``issuer`` may contain ``{tenantid}`` (multi-tenant), replaced by the token's ``tid``.

        Entra puts short scope names in ``scp`` (``access_as_user``); with ``scope_prefix`` (the API's
        application ID URI) they are reported in full, the form clients request and 403s name.
        """
        if not audiences or not allowed_tenants:
            raise ValueError("team mode needs at least one audience and one allowed tenant")
        self.issuer = issuer
        self.audiences = list(audiences)
        self.allowed_tenants = frozenset(allowed_tenants)
        self.resource = resource
        self.keys = keys
        self.scope_prefix = scope_prefix.rstrip("/")
        self.leeway = leeway

    async def verify_token(self, token: str) -> AccessToken | None:
        known = _already_verified(token)
        if known is not None:
            return known
        claims = await self.claims_of(token)
        if claims is None:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("azp") or claims.get("appid") or ""),
            scopes=[
                f"{self.scope_prefix}/{s}" if self.scope_prefix else s
                for s in str(claims.get("scp") or "").split()
            ],
            expires_at=int(claims["exp"]),
            resource=self.resource,
            subject=str(claims["oid"]),  # stable per person across apps; the SDK binds sessions to it
            claims={
                k: claims[k]
                # iat: when it was issued (a revocation refuses only older tokens; team.seen counts
                # a resource server's new tokens as its sign-ins)
                for k in ("iss", "tid", "oid", "preferred_username", "upn", "name", "amr", "iat")
                if k in claims
            },
        )

    async def claims_of(self, token: str) -> dict[str, Any] | None:
        """The validated claims, or None (the reason is logged, never the token)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _refuse("not a JWS")
        if header.get("alg") not in ALGORITHMS:
            return _refuse(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            return _refuse("no key id")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _refuse("unreadable claims")
        tenant = unverified.get("tid")
        if not isinstance(tenant, str) or tenant not in self.allowed_tenants:
            return _refuse("tenant is not allowed")
        key = await self.keys.key(kid)
        if key is None:
            return _refuse("signed with a key the issuer does not publish")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audiences,
                issuer=self.issuer.replace("{tenantid}", tenant),
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "tid", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            return _refuse("expired")
        except jwt.InvalidAudienceError:
            return _refuse("issued for another audience")
        except jwt.InvalidIssuerError:
            return _refuse("issued by another issuer")
        except jwt.PyJWTError as exc:
            return _refuse(type(exc).__name__)
        return claims


def _refuse(reason: str) -> dict[str, Any] | None:
    log.info("refused a bearer token: %s", reason)
    return None
