"""Proxy mode: pcref-mcp is the authorization server clients see, and brokers sign-in to Entra.

Claude.ai and ChatGPT register themselves (dynamic client registration) with the authorization server
the resource metadata names; Microsoft Entra has no registration endpoint. So in proxy mode the
resource metadata names pcref-mcp itself, and this module is the SDK's
``OAuthAuthorizationServerProvider`` behind the SDK's ``/register``, ``/authorize``, ``/token`` and
``/revoke`` routes:

1. ``/register`` stores the client; a client may instead use a client ID metadata document (an https
   URL as ``client_id``), fetched and checked on first use (and again after an hour).
2. ``/authorize`` checks the client's redirect URI and PKCE challenge (the SDK does), keeps the request
   and sends the browser to our consent step (:mod:`.consent`): a person approves this client on our
   own page (or approved it before) before the browser goes to Entra with pcref-mcp's *own* PKCE
   pair, state and nonce (msal's auth-code flow, :mod:`.signin`). A link alone never yields a code.
3. Entra posts to ``/oauth/callback``; msal redeems the code (client secret + PKCE verifier); the
   result waits under a one-time key while the browser comes back to the consent step (same-site, its
   cookie arrives), which issues pcref-mcp's own one-time code to the client, bound to the client's
   PKCE challenge, only for a person who approved this client.
4. ``/token`` (the SDK verifies the client's PKCE verifier) returns the Entra access token for
   pcref-mcp's API (audience = this server, the token every request is then checked with) and an
   opaque refresh handle. The Entra refresh token never leaves the server, and the Partner Center
   token is only ever obtained server-side (on-behalf-of): no token passthrough.
5. ``/token`` with the refresh handle refreshes at Entra and rotates the handle; a rotated handle
   presented again revokes that person's grant to that client (one of the two holders is a thief).

Registrations are bounded (:mod:`.limits`): a registration never used expires in hours, and the
unused ones' share of the store is capped by evicting the oldest, never by refusing the next client.

All of this state lives in the shared store (:meth:`~pcref_mcp.store.base.Store.broker_put`), so any
replica serves any step: register on one, authorize on another, the Entra callback on a third. Keys
are stored as digests and values sealed under the store key (the Entra refresh token is encrypted at
rest); a code, a sign-in's state and a refresh handle are *taken* (one winner across replicas);
expiry is part of every query. A restart loses nothing. Only msal's client object and its HTTP cache
are per process. When the store does not answer, the OAuth endpoints say ``temporarily_unavailable``
(503) rather than fail with a 500.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

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
from pydantic import BaseModel

from pcref_mcp.server.pages import notice
from pcref_mcp.team.broker_state import (
    CLAIMS,
    CLIENT,
    CODE,
    CONSENT,
    CONSENT_REQUEST,
    ISSUED_TO,
    PENDING,
    REFRESH,
    SIGNED,
    SPENT,
    UNUSED,
    BrokerUnavailable,
    SignInUnavailable,
    _Issued,
    _Pending,
    _Refresh,
    _Request,
    _Signed,
    _Spent,
    consent_key,
)
from pcref_mcp.team.broker_state import _Consent as _Consent  # consent.py reads the records from here
from pcref_mcp.team.browser import PageSignIn, busy_page, read_answer, see_other
from pcref_mcp.team.limits import check_registration
from pcref_mcp.team.oauth_wrappers import (
    _REVOKING,
    advertise_metadata_documents,
    broker_unavailable,
    revocation_knows_clients,
    store_failures,
)
from pcref_mcp.team.obo import tls_verify
from pcref_mcp.team.seen import seen_signing_in, signed_in
from pcref_mcp.team.signin import CALLBACK_PATH, EntraSignIn

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.store import Store
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = [
    "CALLBACK_PATH",
    "CONSENT_PATH",
    "SIGN_IN_SCOPES",
    "BrokerUnavailable",
    "EntraProxy",
    "SignInUnavailable",
    "advertise_metadata_documents",
    "broker_unavailable",
    "revocation_knows_clients",
    "store_failures",
]

log = logging.getLogger("pcref_mcp.team")

T = TypeVar("T")

CONSENT_PATH = "/oauth/consent"
CODE_TTL = 300.0
PENDING_TTL = 600.0
REFRESH_TTL = 14 * 24 * 3600  # Entra's own refresh tokens live up to 90 days; ours stop sooner
CLAIMS_TTL = 3600.0  # Conditional Access claims waiting for the client's next sign-in
DOCUMENT_TTL = 3600.0  # a client ID metadata document is fetched again after this
# A registered client unused this long is forgotten (each token issued renews it), so the bound on
# registrations is not filled for good by clients that registered once and left; one that returns
# gets invalid_client and registers again.
CLIENT_TTL = 90 * 24 * 3600.0
# A registration no token was ever issued to lives only this long, and at most MAX_UNUSED_CLIENTS of
# them are kept (the oldest evicted): a flood of junk registrations evicts junk, and the next real
# client (which signs in within minutes of registering) is not refused.
UNUSED_CLIENT_TTL = 6 * 3600.0
MAX_UNUSED_CLIENTS = 5_000
SPENT_TTL = 24 * 3600.0  # a rotated refresh handle is remembered this long (reuse detection)
DOCUMENT_DEADLINE = 10.0  # a client ID metadata document must arrive whole within this
PURGE_EVERY = 60.0
MAX_ENTRIES = 10_000
MAX_DOCUMENT_BYTES = 5_000
# Scopes a client may add to this server's one scope: they are about the sign-in itself, and the
# broker asks Entra for them anyway.
SIGN_IN_SCOPES = ("offline_access", "openid", "profile", "email")


class EntraProxy:
    """The SDK ``OAuthAuthorizationServerProvider`` that brokers to Microsoft Entra, its state in
    ``store`` (shared by every replica)."""

    def __init__(
        self,
        settings: Settings,
        verifier: EntraTokenVerifier,
        *,
        store: Store,
        base_url: str,
        scope: str,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.scope = scope
        self._clock = clock
        self._verify = tls_verify(settings)  # for client metadata documents: one TLS context
        self.signin = EntraSignIn(settings, base_url=self.base_url, scope=scope)
        self.page_sign_in = PageSignIn(self.signin, verifier, store, clock=lambda: self._clock())
        self._purged = 0.0

    @property
    def callback_url(self) -> str:
        return self.base_url + CALLBACK_PATH

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")

    # --- clients ----------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        # A registration moves from UNUSED to CLIENT at its first token (put CLIENT, then take UNUSED):
        # a replica reading between our two reads would find neither, so a miss reads CLIENT once more.
        held = (
            await self._get(CLIENT, client_id)
            or await self._get(UNUSED, client_id)
            or await self._get(CLIENT, client_id)
        )
        if held is not None:
            return OAuthClientInformationFull.model_validate_json(held)
        if client_id.startswith("https://"):
            return await self._metadata_document_client(client_id)
        return None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        check_registration(client_info)
        for uri in client_info.redirect_uris or []:
            if not _acceptable_redirect(str(uri)):
                raise RegistrationError(
                    "invalid_redirect_uri", "Redirect URIs must be https or loopback http."
                )
        assert client_info.client_id is not None
        now = self._clock()
        # room for this one among the unused: the oldest unused registrations go, nobody is refused
        await self._held(self.store.broker_evict(UNUSED, MAX_UNUSED_CLIENTS - 1, now))
        await self._put(
            UNUSED,
            client_info.client_id,
            client_info,
            expires=now + UNUSED_CLIENT_TTL,
            client_id=client_info.client_id,
        )
        log.info("registered OAuth client %r", (client_info.client_name or "")[:80])

    # --- authorization ----------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Keep the request and send the browser to the consent step (never straight to Entra)."""
        if params.scopes and any(s != self.scope and s not in SIGN_IN_SCOPES for s in params.scopes):
            raise AuthorizeError("invalid_scope", f"This server offers one scope: {self.scope}.")
        assert client.client_id is not None
        request_id = secrets.token_urlsafe(32)
        try:
            await self._purge()
            # room for this request: the oldest waiting ones go (a flood of /authorize evicts the flood,
            # it does not refuse the next person)
            await self._held(self.store.broker_evict(CONSENT_REQUEST, MAX_ENTRIES - 1, self._clock()))
            held = await self._take(CLAIMS, client.client_id)
            waiting = _Request(
                client_id=client.client_id, params=params, claims=held.decode() if held is not None else None
            )
            await self._put(
                CONSENT_REQUEST,
                request_id,
                waiting,
                expires=self._clock() + PENDING_TTL,
                client_id=client.client_id,
            )
        except BrokerUnavailable:
            raise AuthorizeError(
                "temporarily_unavailable", "The sign-in service is busy; try again."
            ) from None
        return f"{self.base_url}{CONSENT_PATH}?request={request_id}"

    async def to_entra(self, waiting: _Request, *, browser: str, approved: bool) -> str:
        """Start the Entra sign-in for a request the consent step let through: Entra's URL.
        Raises :class:`BrokerUnavailable` (the store) or :class:`SignInUnavailable` (Entra)."""
        if await self._held(self.store.broker_count(PENDING, self._clock())) >= MAX_ENTRIES:
            raise SignInUnavailable("Too many sign-ins in progress; try again later.")
        state = secrets.token_urlsafe(32)
        try:
            flow = await anyio.to_thread.run_sync(self._initiate, state, waiting.claims)
        except Exception as exc:
            log.warning("could not start the Entra sign-in (%s)", type(exc).__name__)
            raise SignInUnavailable("The sign-in service is not reachable; try again shortly.") from None
        pending = _Pending(
            client_id=waiting.client_id, params=waiting.params, flow=flow, browser=browser, approved=approved
        )
        await self._put(
            PENDING, state, pending, expires=self._clock() + PENDING_TTL, client_id=waiting.client_id
        )
        return str(flow["auth_uri"])

    async def callback(self, request: Any) -> Any:
        """``POST /oauth/callback`` (form_post, so the code is not in a URL): Entra's answer. A
        client's sign-in goes on to the consent step (a same-site GET: the browser's cookie arrives
        there, not here); a page sign-in (:mod:`.browser`) to its page."""
        from starlette.responses import RedirectResponse

        answer = await read_answer(request)
        state = answer.get("state", "")
        try:
            held = await self._take(PENDING, state)
            if held is None:
                page = await self._held(self.page_sign_in.finish(state, answer))
                if page is not None:
                    return page
        except BrokerUnavailable:
            return busy_page(". Reload this page in a few seconds to finish signing in.")
        if held is None:  # unknown, expired (the query says so) or already used
            return notice(
                "Link expired", "This sign-in link has expired or was already used. Start again.", status=400
            )
        pending = _Pending.model_validate_json(held)
        params = pending.params

        def back(error: str, description: str) -> Any:
            return RedirectResponse(
                construct_redirect_uri(
                    str(params.redirect_uri), state=params.state, error=error, error_description=description
                ),
                303,
            )

        try:
            result = await anyio.to_thread.run_sync(self._redeem, pending.flow, answer)
        except Exception as exc:
            log.warning("could not redeem the Entra code (%s)", type(exc).__name__)
            result = {"error": "temporarily_unavailable"}
        if "access_token" not in result:
            log.info("Entra sign-in refused: %s", result.get("error"))
            if result.get("error") == "temporarily_unavailable":
                signed_in("proxy", "failed")
                return back("temporarily_unavailable", "The sign-in service did not answer; try again.")
            signed_in("proxy", "refused")
            return back("access_denied", "The identity provider did not sign the person in.")
        claims = await self.verifier.claims_of(str(result["access_token"]))
        if claims is None:  # e.g. a tenant that is not on the allow-list
            signed_in("proxy", "refused")
            return back(
                "access_denied",
                "This account is not allowed on this server (its organisation is not on the allow-list).",
            )
        from pcref_mcp.team.browser import person_from

        person = person_from(claims, result)
        key = secrets.token_urlsafe(32)
        signed = _Signed(
            client_id=pending.client_id,
            params=params,
            browser=pending.browser,
            approved=pending.approved,
            oid=person.oid,
            name=person.name,
            access_token=str(result["access_token"]),
            expires_in=int(result.get("expires_in") or 3600),
            refresh_token=result.get("refresh_token"),
        )
        try:
            await self._put(
                SIGNED, key, signed, expires=self._clock() + PENDING_TTL, client_id=pending.client_id
            )
        except BrokerUnavailable:
            signed_in("proxy", "failed")
            return back("temporarily_unavailable", "The sign-in service is busy; try again.")
        signed_in("proxy", "completed")
        await self._seen_signing_in(person, pending.client_id)
        return see_other(f"{CONSENT_PATH}?signed={key}")

    async def _seen_signing_in(self, person: Any, client_id: str) -> None:
        """The person signed in with this client: seen now (``pcref-mcp admin people``)."""
        try:
            client = await self.get_client(client_id)
        except BrokerUnavailable:
            client = None
        name = client.client_name if client is not None else None
        await seen_signing_in(self.store, person.oid, person.name or None, client_id, name)

    async def issue_code(self, signed: _Signed) -> str:
        """The client's redirect URL with our one-time code for a sign-in the person approved."""
        params = signed.params
        code = secrets.token_urlsafe(32)
        issued = _Issued(
            code=AuthorizationCode(
                code=code,
                scopes=[self.scope],
                expires_at=self._clock() + CODE_TTL,
                client_id=signed.client_id,
                code_challenge=params.code_challenge,
                redirect_uri=params.redirect_uri,
                redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
                resource=params.resource,
                subject=signed.oid,
            ),
            access_token=signed.access_token,
            expires_in=signed.expires_in,
            refresh_token=signed.refresh_token,
        )
        await self._put(
            CODE, code, issued, expires=issued.code.expires_at, client_id=signed.client_id, subject=signed.oid
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        held = await self._get(CODE, authorization_code)
        if held is None:
            return None
        issued = _Issued.model_validate_json(held)
        if issued.code.client_id != client.client_id or issued.code.expires_at < self._clock():
            return None
        return issued.code

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        held = await self._take(CODE, authorization_code.code)  # one use, whichever replica asks
        if held is None:
            raise TokenError("invalid_grant", "The authorization code was already used.")
        issued = _Issued.model_validate_json(held)
        return await self._answer(
            client, issued.access_token, issued.expires_in, issued.refresh_token, issued.code.subject
        )

    # --- refresh and revocation -------------------------------------------------------------------

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        held = await self._get(REFRESH, refresh_token)  # expired handles are not found
        if held is None:
            await self._replayed(refresh_token)
            return None
        handle = _Refresh.model_validate_json(held).handle
        return handle if handle.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        assert client.client_id is not None
        if await self._get(CLAIMS, client.client_id) is not None:
            # a refresh cannot satisfy Conditional Access: sign in again
            await self._take(REFRESH, refresh_token.token)
            raise TokenError("invalid_grant", "Your organisation requires you to sign in again.")
        if not await self.consented(refresh_token.subject, client.client_id):
            # the person revoked this app (a handle a concurrent refresh re-created after the revocation
            # dropped the others), or the grant predates consent: no new token without their approval
            await self._take(REFRESH, refresh_token.token)
            raise TokenError(
                "invalid_grant", "This app is not approved by the person (any more); sign in again."
            )
        taken = await self._take(REFRESH, refresh_token.token)  # rotated: the old handle is spent
        if taken is None:
            await self._replayed(refresh_token.token)
            raise TokenError("invalid_grant", "The refresh token was already used.")
        held = _Refresh.model_validate_json(taken)
        try:
            result = await anyio.to_thread.run_sync(self._refresh_upstream, held.upstream)
        except Exception as exc:
            log.warning("could not refresh at Entra (%s)", type(exc).__name__)
            # Entra did not answer: the handle is still good, put it back for the client's retry
            await self._put(
                REFRESH,
                refresh_token.token,
                held,
                expires=float(held.handle.expires_at or self._clock() + REFRESH_TTL),
                client_id=held.handle.client_id,
                subject=held.handle.subject,
            )
            raise BrokerUnavailable from None
        if "access_token" not in result:
            raise TokenError("invalid_grant", "The sign-in has expired or was revoked; sign in again.")
        await self._put(
            SPENT,
            refresh_token.token,
            _Spent(client_id=held.handle.client_id, subject=held.handle.subject),
            expires=self._clock() + SPENT_TTL,
            client_id=held.handle.client_id,
            subject=held.handle.subject,
        )
        return await self._answer(
            client,
            str(result["access_token"]),
            int(result.get("expires_in") or 3600),
            result.get("refresh_token") or held.upstream,
            refresh_token.subject,
        )

    async def consented(self, subject: str | None, client_id: str) -> bool:
        """Whether the person approved the client (:mod:`.consent` keeps the approvals)."""
        return subject is not None and await self._get(CONSENT, consent_key(subject, client_id)) is not None

    async def _replayed(self, handle: str) -> None:
        """A handle that is not (any more) valid: if it is one we rotated, it was used twice (the
        client and a thief): end that person's grant to that client (RFC 9700 4.14.2)."""
        held = await self._get(SPENT, handle)
        if held is None:
            return
        spent = _Spent.model_validate_json(held)
        gone = await self._held(
            self.store.broker_drop(REFRESH, client_id=spent.client_id, subject=spent.subject)
        )
        log.warning(
            "a rotated refresh handle was presented again: %d refresh handle(s) of that grant revoked", gone
        )

    async def remember_claims(self, access_token: str, claims: str) -> None:
        """Conditional Access refused this token's person: ask Entra for ``claims`` at the next
        sign-in of the client that holds it (best effort: without the store the 401 still goes out)."""
        try:
            held = await self._get(ISSUED_TO, access_token)
            if held is not None:
                client_id = held.decode()
                await self._put(
                    CLAIMS,
                    client_id,
                    claims.encode(),
                    expires=self._clock() + CLAIMS_TTL,
                    client_id=client_id,
                )
        except BrokerUnavailable:
            pass

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = await self.verifier.verify_token(token)
        if found is not None and _REVOKING.get():
            # Entra names the API app as the token's client; revoking it is for the client we issued
            # it to (the SDK revokes only a token of the client asking)
            held = await self._get(ISSUED_TO, token)
            if held is not None:
                found = found.model_copy(update={"client_id": held.decode()})
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            await self._take(REFRESH, token.token)
        else:  # an access token: drop every refresh handle of that person and client
            await self._held(
                self.store.broker_drop(REFRESH, client_id=token.client_id, subject=token.subject)
            )

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: Any
    ) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "Identity assertion grants are not supported.")

    # --- private ----------------------------------------------------------------------------------

    async def _answer(
        self,
        client: OAuthClientInformationFull,
        access_token: str,
        expires_in: int,
        upstream_refresh: str | None,
        subject: str | None,
    ) -> OAuthToken:
        assert client.client_id is not None
        now = self._clock()
        handle = None
        if upstream_refresh:
            handle = secrets.token_urlsafe(32)
            held = _Refresh(
                handle=RefreshToken(
                    token=handle,
                    client_id=client.client_id,
                    scopes=[self.scope],
                    expires_at=int(now) + REFRESH_TTL,
                    subject=subject,
                ),
                upstream=upstream_refresh,
            )
            await self._put(
                REFRESH, handle, held, expires=now + REFRESH_TTL, client_id=client.client_id, subject=subject
            )
        if not client.client_id.startswith("https://"):  # a registered client in use: keep it
            await self._put(
                CLIENT, client.client_id, client, expires=now + CLIENT_TTL, client_id=client.client_id
            )
            await self._take(UNUSED, client.client_id)  # no longer among the unused (nor evicted with them)
        # which client holds this access token, while it lives (a Conditional Access refusal of it
        # is remembered for that client's next sign-in)
        await self._put(
            ISSUED_TO,
            access_token,
            client.client_id.encode(),
            expires=now + expires_in,
            client_id=client.client_id,
        )
        return OAuthToken(
            access_token=access_token,
            token_type="Bearer",
            expires_in=expires_in,
            scope=self.scope,
            refresh_token=handle,
        )

    async def _get(self, kind: str, key: str) -> bytes | None:
        return await self._held(self.store.broker_get(kind, key, self._clock()))

    async def _take(self, kind: str, key: str) -> bytes | None:
        return await self._held(self.store.broker_take(kind, key, self._clock()))

    async def _put(
        self,
        kind: str,
        key: str,
        value: BaseModel | bytes,
        *,
        expires: float | None,
        client_id: str | None = None,
        subject: str | None = None,
    ) -> None:
        data = value if isinstance(value, bytes) else value.model_dump_json().encode()
        await self._held(
            self.store.broker_put(kind, key, data, expires=expires, client_id=client_id, subject=subject)
        )

    async def _held(self, step: Awaitable[T]) -> T:
        """Run one store operation; a store that does not answer becomes :class:`BrokerUnavailable`."""
        try:
            return await step
        except store_failures() as exc:
            log.warning("the shared store did not answer the OAuth broker (%s)", type(exc).__name__)
            raise BrokerUnavailable from None

    async def _purge(self) -> None:
        """Expired sign-ins, codes and handles go, at most once a minute per replica."""
        now = self._clock()
        if now - self._purged >= PURGE_EVERY:
            self._purged = now
            await self._held(self.store.broker_purge(now))

    # msal's pieces, through EntraSignIn (kept as methods: tests stand in for Entra here)
    def _initiate(self, state: str, claims: str | None) -> dict[str, Any]:
        return self.signin.initiate(state, claims)

    def _redeem(self, flow: dict[str, Any], answer: dict[str, str]) -> dict[str, Any]:
        return self.signin.redeem(flow, answer)

    def _refresh_upstream(self, upstream: str) -> dict[str, Any]:
        return self.signin.refresh(upstream)

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

    async def _metadata_document_client(self, url: str) -> OAuthClientInformationFull | None:
        """A client ID metadata document: the client_id is an https URL serving the client's metadata."""
        import json

        import httpx

        if not await self._may_fetch(url):
            log.info("client ID metadata document %s refused: not a public https address", url[:200])
            return None
        try:
            # one deadline for the whole fetch: a server dripping a byte every few seconds (each read
            # within the per-read timeout) must not hold /authorize open
            with anyio.fail_after(DOCUMENT_DEADLINE):
                async with (
                    httpx.AsyncClient(
                        timeout=5.0, follow_redirects=False, trust_env=False, verify=self._verify
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
        except TimeoutError:
            log.info("client ID metadata document %s did not arrive within %ss", url[:200], DOCUMENT_DEADLINE)
            return None
        except (httpx.HTTPError, ValueError):
            log.info("client ID metadata document %s is unusable", url[:200])
            return None
        if info.client_id != url or not all(_acceptable_redirect(str(u)) for u in info.redirect_uris or []):
            return None
        if await self._held(self.store.broker_count(CLIENT, self._clock())) < MAX_ENTRIES:
            await self._put(CLIENT, url, info, expires=self._clock() + DOCUMENT_TTL, client_id=url)
        return info


def _acceptable_redirect(uri: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")
