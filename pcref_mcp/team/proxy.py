"""Proxy mode: pcref-mcp is the authorization server clients see, and brokers sign-in to Entra.

Claude.ai and ChatGPT register themselves (dynamic client registration) with the authorization server
the resource metadata names; Microsoft Entra has no registration endpoint. So in proxy mode the
resource metadata names pcref-mcp itself, and this module is the SDK's
``OAuthAuthorizationServerProvider`` behind the SDK's ``/register``, ``/authorize``, ``/token`` and
``/revoke`` routes:

1. ``/register`` stores the client (in memory); a client may instead use a client ID metadata
   document (an https URL as ``client_id``), fetched and checked on first use.
2. ``/authorize`` checks the client's redirect URI and PKCE challenge (the SDK does), then sends the
   browser to Entra with pcref-mcp's *own* PKCE pair, state and nonce (msal's auth-code flow).
3. Entra redirects to ``/oauth/callback``; msal redeems the code (client secret + PKCE verifier).
   pcref-mcp issues its own one-time code to the client, bound to the client's PKCE challenge.
4. ``/token`` (the SDK verifies the client's PKCE verifier) returns the Entra access token for
   pcref-mcp's API (audience = this server, the token every request is then checked with) and an
   opaque refresh handle. The Entra refresh token never leaves the server, and the Partner Center
   token is only ever obtained server-side (on-behalf-of): no token passthrough.
5. ``/token`` with the refresh handle refreshes at Entra and rotates the handle.

State lives in memory: after a restart, clients simply sign in again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from pcref_mcp.team.obo import confidential_app

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = ["CALLBACK_PATH", "SIGN_IN_SCOPES", "EntraProxy", "advertise_metadata_documents"]

log = logging.getLogger("pcref_mcp.team")

CALLBACK_PATH = "/oauth/callback"
CODE_TTL = 300.0
PENDING_TTL = 600.0
REFRESH_TTL = 14 * 24 * 3600  # Entra's own refresh tokens live up to 90 days; ours stop sooner
MAX_ENTRIES = 10_000
MAX_DOCUMENT_BYTES = 5_000
# Scopes a client may add to this server's one scope: they are about the sign-in itself, and the
# broker asks Entra for them anyway.
SIGN_IN_SCOPES = ("offline_access", "openid", "profile", "email")


@dataclass
class _Pending:
    client_id: str
    params: AuthorizationParams
    flow: dict[str, Any]
    created: float


@dataclass
class _Issued:
    code: AuthorizationCode
    access_token: str
    expires_in: int
    refresh_token: str | None


@dataclass
class _Refresh:
    handle: RefreshToken
    upstream: str


class EntraProxy:
    """The SDK ``OAuthAuthorizationServerProvider`` that brokers to Microsoft Entra."""

    def __init__(
        self,
        settings: Settings,
        verifier: EntraTokenVerifier,
        *,
        base_url: str,
        scope: str,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.base_url = base_url.rstrip("/")
        self.scope = scope
        self._clock = clock
        self._clients: dict[str, OAuthClientInformationFull] = {}
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Issued] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._http_cache: dict[Any, Any] = {}
        self._client_of: OrderedDict[str, str] = OrderedDict()  # hash of an access token we issued → client
        self._claims: dict[str, str] = {}  # client → claims Entra asked for (Conditional Access)
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def callback_url(self) -> str:
        return self.base_url + CALLBACK_PATH

    # --- clients ----------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id in self._clients:
            return self._clients[client_id]
        if client_id.startswith("https://"):
            return await self._metadata_document_client(client_id)
        return None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if len(self._clients) >= MAX_ENTRIES:
            raise RegistrationError(
                "invalid_client_metadata", "Too many registered clients; try again later."
            )
        for uri in client_info.redirect_uris or []:
            if not _acceptable_redirect(str(uri)):
                raise RegistrationError(
                    "invalid_redirect_uri", "Redirect URIs must be https or loopback http."
                )
        assert client_info.client_id is not None
        self._clients[client_info.client_id] = client_info
        log.info("registered OAuth client %r", (client_info.client_name or "")[:80])

    # --- authorization ----------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        self._expire()
        if params.scopes and any(s != self.scope and s not in SIGN_IN_SCOPES for s in params.scopes):
            raise AuthorizeError("invalid_scope", f"This server offers one scope: {self.scope}.")
        state = secrets.token_urlsafe(32)
        assert client.client_id is not None
        claims = self._claims.pop(client.client_id, None)
        try:
            flow = await anyio.to_thread.run_sync(self._initiate, state, claims)
        except Exception as exc:
            log.warning("could not start the Entra sign-in (%s)", type(exc).__name__)
            raise AuthorizeError("temporarily_unavailable", "The sign-in service is not reachable.") from None
        self._pending[state] = _Pending(client.client_id, params, flow, self._clock())
        return str(flow["auth_uri"])

    async def callback(self, request: Any) -> Any:
        """``POST /oauth/callback`` (form_post, so the code is not in a URL): Entra's answer; send the
        browser back to the client with our own code."""
        from starlette.responses import HTMLResponse, RedirectResponse

        answer = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
        answer = answer or dict(request.query_params)
        pending = self._pending.pop(answer.get("state", ""), None)
        if pending is None or self._clock() - pending.created > PENDING_TTL:
            return HTMLResponse("<p>This sign-in link has expired or was already used. Start again.</p>", 400)
        params = pending.params
        try:
            result = await anyio.to_thread.run_sync(self._redeem, pending.flow, answer)
        except Exception as exc:
            log.warning("could not redeem the Entra code (%s)", type(exc).__name__)
            result = {"error": "temporarily_unavailable"}
        if "access_token" not in result:
            log.info("Entra sign-in refused: %s", result.get("error"))
            error = (
                "access_denied"
                if result.get("error") != "temporarily_unavailable"
                else "temporarily_unavailable"
            )
            return RedirectResponse(
                construct_redirect_uri(str(params.redirect_uri), error=error, state=params.state), 303
            )
        claims = await self.verifier.claims_of(str(result["access_token"]))
        if claims is None:  # e.g. a tenant that is not on the allow-list
            return RedirectResponse(
                construct_redirect_uri(str(params.redirect_uri), error="access_denied", state=params.state),
                303,
            )
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Issued(
            code=AuthorizationCode(
                code=code,
                scopes=[self.scope],
                expires_at=self._clock() + CODE_TTL,
                client_id=pending.client_id,
                code_challenge=params.code_challenge,
                redirect_uri=params.redirect_uri,
                redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
                resource=params.resource,
                subject=str(claims["oid"]),
            ),
            access_token=str(result["access_token"]),
            expires_in=int(result.get("expires_in") or 3600),
            refresh_token=result.get("refresh_token"),
        )
        return RedirectResponse(
            construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state), 303
        )

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        issued = self._codes.get(authorization_code)
        if (
            issued is None
            or issued.code.client_id != client.client_id
            or issued.code.expires_at < self._clock()
        ):
            return None
        return issued.code

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        issued = self._codes.pop(authorization_code.code, None)  # one use
        if issued is None:
            raise TokenError("invalid_grant", "The authorization code was already used.")
        return self._answer(
            client, issued.access_token, issued.expires_in, issued.refresh_token, issued.code.subject
        )

    # --- refresh and revocation -------------------------------------------------------------------

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        held = self._refresh.get(refresh_token)
        if held is None or held.handle.client_id != client.client_id:
            return None
        if held.handle.expires_at is not None and held.handle.expires_at < self._clock():
            self._refresh.pop(refresh_token, None)
            return None
        return held.handle

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if client.client_id in self._claims:  # a refresh cannot satisfy Conditional Access: sign in again
            self._refresh.pop(refresh_token.token, None)
            raise TokenError("invalid_grant", "Your organisation requires you to sign in again.")
        held = self._refresh.pop(refresh_token.token, None)  # rotated: the old handle is spent
        if held is None:
            raise TokenError("invalid_grant", "The refresh token was already used.")
        try:
            result = await anyio.to_thread.run_sync(self._refresh_upstream, held.upstream)
        except Exception as exc:
            log.warning("could not refresh at Entra (%s)", type(exc).__name__)
            raise TokenError(
                "invalid_grant", "The sign-in service is not reachable; sign in again."
            ) from None
        if "access_token" not in result:
            raise TokenError("invalid_grant", "The sign-in has expired or was revoked; sign in again.")
        return self._answer(
            client,
            str(result["access_token"]),
            int(result.get("expires_in") or 3600),
            result.get("refresh_token") or held.upstream,
            refresh_token.subject,
        )

    def remember_claims(self, access_token: str, claims: str) -> None:
        """Conditional Access refused this token's person: ask Entra for ``claims`` at the next
        sign-in of the client that holds it."""
        client_id = self._client_of.get(_digest(access_token))
        if client_id is not None:
            self._claims[client_id] = claims

    async def load_access_token(self, token: str) -> AccessToken | None:
        return await self.verifier.verify_token(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            self._refresh.pop(token.token, None)
        else:  # an access token: drop every refresh handle of that person and client
            for key, held in list(self._refresh.items()):
                if held.handle.client_id == token.client_id and held.handle.subject == token.subject:
                    self._refresh.pop(key, None)

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: Any
    ) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "Identity assertion grants are not supported.")

    # --- private ----------------------------------------------------------------------------------

    def _answer(
        self,
        client: OAuthClientInformationFull,
        access_token: str,
        expires_in: int,
        upstream_refresh: str | None,
        subject: str | None,
    ) -> OAuthToken:
        handle = None
        if upstream_refresh:
            handle = secrets.token_urlsafe(32)
            assert client.client_id is not None
            self._refresh[handle] = _Refresh(
                RefreshToken(
                    token=handle,
                    client_id=client.client_id,
                    scopes=[self.scope],
                    expires_at=int(self._clock()) + REFRESH_TTL,
                    subject=subject,
                ),
                upstream_refresh,
            )
        assert client.client_id is not None
        self._client_of[_digest(access_token)] = client.client_id
        while len(self._client_of) > MAX_ENTRIES:
            self._client_of.popitem(last=False)
        return OAuthToken(
            access_token=access_token,
            token_type="Bearer",
            expires_in=expires_in,
            scope=self.scope,
            refresh_token=handle,
        )

    def _msal(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = confidential_app(self.settings, http_cache=self._http_cache)
            return self._app

    def _initiate(self, state: str, claims: str | None) -> dict[str, Any]:
        flow: dict[str, Any] = self._msal().initiate_auth_code_flow(
            [self.scope],
            redirect_uri=self.callback_url,
            state=state,
            response_mode="form_post",
            claims_challenge=claims,
        )
        return flow

    def _redeem(self, flow: dict[str, Any], answer: dict[str, str]) -> dict[str, Any]:
        app = self._msal()
        result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, answer, scopes=[self.scope])
        self._forget(app, result)
        return result

    def _refresh_upstream(self, upstream: str) -> dict[str, Any]:
        app = self._msal()
        result: dict[str, Any] = app.acquire_token_by_refresh_token(upstream, scopes=[self.scope])
        self._forget(app, result)
        return result

    @staticmethod
    def _forget(app: Any, result: dict[str, Any]) -> None:
        """Tokens are kept by this module, not msal's cache (which would otherwise grow per sign-in)."""
        home = (result.get("id_token_claims") or {}).get("oid")
        for account in app.get_accounts():
            if home is None or str(account.get("home_account_id", "")).startswith(str(home)):
                app.remove_account(account)

    async def _may_fetch(self, url: str) -> bool:
        """Only https URLs on public addresses (no SSRF into the server's network); a server that is
        itself on loopback (the local try-out) may also fetch from loopback."""
        import ipaddress
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme != "https" or not parsed.hostname or parsed.username or parsed.fragment:
            return False
        local_ok = urlparse(self.base_url).hostname in ("127.0.0.1", "localhost", "::1")
        try:
            found = await anyio.getaddrinfo(parsed.hostname, parsed.port or 443)
        except OSError:
            return False
        for *_, address in found:
            ip = ipaddress.ip_address(address[0])
            if not (ip.is_global or (local_ok and ip.is_loopback)):
                return False
        return bool(found)

    def _tls_verify(self) -> Any:
        import ssl
        from pathlib import Path

        if self.settings.team_ca_bundle is None:
            return True
        return ssl.create_default_context(cafile=str(Path(self.settings.team_ca_bundle).expanduser()))

    def _expire(self) -> None:
        now = self._clock()
        for state, pending in list(self._pending.items()):
            if now - pending.created > PENDING_TTL:
                self._pending.pop(state, None)
        for code, issued in list(self._codes.items()):
            if issued.code.expires_at < now:
                self._codes.pop(code, None)
        if len(self._pending) > MAX_ENTRIES:
            raise AuthorizeError("temporarily_unavailable", "Too many sign-ins in progress; try again later.")

    async def _metadata_document_client(self, url: str) -> OAuthClientInformationFull | None:
        """A client ID metadata document: the client_id is an https URL serving the client's metadata."""
        import json

        import httpx

        if not await self._may_fetch(url):
            log.info("client ID metadata document %s refused: not a public https address", url[:200])
            return None
        try:
            async with (
                httpx.AsyncClient(
                    timeout=5.0, follow_redirects=False, trust_env=False, verify=self._tls_verify()
                ) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    return None
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        return None
            doc = json.loads(body)
            # A metadata-document client is public and gets this server's one scope.
            info = OAuthClientInformationFull.model_validate(
                {**doc, "token_endpoint_auth_method": "none", "scope": self.scope}
            )
        except (httpx.HTTPError, ValueError):
            log.info("client ID metadata document %s is unusable", url[:200])
            return None
        if info.client_id != url or not all(_acceptable_redirect(str(u)) for u in info.redirect_uris or []):
            return None
        if len(self._clients) < MAX_ENTRIES:
            self._clients[url] = info
        return info


def advertise_metadata_documents(app: Any) -> Any:
    """ASGI wrapper: add ``client_id_metadata_document_supported: true`` to the SDK's authorization
    server metadata (SDK 2.3 does not set it), so clients know they may use a metadata URL as id."""
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
                    body = json.dumps(doc).encode()
                except ValueError:
                    pass
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _acceptable_redirect(uri: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")
