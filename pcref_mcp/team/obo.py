"""Partner Center as the person: the on-behalf-of flow (msal ``ConfidentialClientApplication``).

The token a person's client sends is for *this* server (audience = the API app); Partner Center needs
one for itself. The OBO grant trades the first for the second, so every Partner Center call runs with
that person's own rights, MFA state and Conditional Access, and the client never holds (or sees) a
Partner Center token.

Each person gets their own msal application object and token cache (:class:`OnBehalfOf` keeps them,
the least recently used dropped beyond ``max_people``): msal serves the Partner Center token from that
cache until it nears expiry and then refreshes it with the refresh token the OBO grant returned, so a
busy person costs one sign-in round trip an hour, and nobody's tokens ever sit in another's cache.
When Conditional Access wants more (MFA, a compliant device), Entra answers ``interaction_required``
with a ``claims`` request; that becomes :class:`~pcref_mcp.errors.ClaimsChallenge`, which the team
server hands back to the client as an ``insufficient_claims`` challenge.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token

from pcref_mcp.errors import ClaimsChallenge, ConfigError, ServerMisconfigured, SignInError, SignInExpired
from pcref_mcp.identity import Principal
from pcref_mcp.partner_center.auth import client_credential, confidential_app
from pcref_mcp.referrals.untrusted import quote

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.store import Store

__all__ = ["OnBehalfOf", "PersonTokens", "msal_http_client", "refusal", "tls_verify"]

log = logging.getLogger("pcref_mcp.team")

# A Partner Center token is reused in process until this many seconds before it expires (msal's own
# cache refreshes at 5 minutes too), so a busy person's calls skip the store and msal entirely.
FRESH_MARGIN = 300.0


class OnBehalfOf:
    """One per server: the API app's credentials and each person's msal cache."""

    def __init__(self, settings: Settings, *, max_people: int = 1000) -> None:
        if not (settings.tenant_id and settings.client_id):
            raise ConfigError(
                "Team mode needs PCREF_TENANT_ID and PCREF_CLIENT_ID (the API app registration)."
            )
        if settings.client_secret is None and settings.client_certificate_path is None:
            raise ConfigError(
                "Team mode calls Partner Center on behalf of each person, which needs the API app's "
                "credential: set PCREF_CLIENT_SECRET, or PCREF_CLIENT_CERTIFICATE_PATH and "
                "PCREF_CLIENT_CERTIFICATE_THUMBPRINT."
            )
        self.settings = settings
        self.scopes = list(settings.scopes)
        self.http_cache: dict[Any, Any] = {}  # msal's discovery cache, shared: one look-up, not one a person
        self._people: OrderedDict[str, PersonTokens] = OrderedDict()
        self._max = max_people
        self._lock = threading.Lock()
        # Where each person's msal cache (their OBO refresh token) is kept between calls, sealed
        # (``pcref_mcp.store``): every replica reads and updates the same one. None: in memory only.
        self.store: Store | None = None
        self._credential: Any = None
        self._http: Any = None

    def for_person(self, principal: Principal) -> PersonTokens:
        with self._lock:
            tokens = self._people.pop(principal.id, None) or PersonTokens(self, principal)
            self._people[principal.id] = tokens
            while len(self._people) > self._max:
                self._people.popitem(last=False)
            return tokens

    def close(self) -> None:
        """Close the http session shared by the people's msal apps: its idle keep-alive connections
        to the identity provider would otherwise stay open until the process ends."""
        if self._http is not None:
            self._http.close()

    def new_app(self, token_cache: Any = None) -> Any:
        """A person's msal app; the credential and the http session are made once and shared."""
        if self._credential is None:
            self._credential = client_credential(self.settings)
            self._http = msal_http_client(self.settings)
        return confidential_app(
            self.settings,
            self._credential,
            http_client=self._http,
            http_cache=self.http_cache,
            token_cache=token_cache,
        )


class PersonTokens:
    """The Partner Center token provider for one person (the client's ``TokenProvider``)."""

    app_only = False

    def __init__(self, owner: OnBehalfOf, principal: Principal) -> None:
        self._owner = owner
        self.principal = principal
        self._app: Any = None
        self._cache: Any = None
        self._lock = threading.Lock()  # one msal call at a time per person: a refresh must not race
        self._fresh: tuple[str, float] | None = None  # the last Partner Center token and its expiry

    def account_label(self) -> str | None:
        return self.principal.name or self.principal.id

    async def get_token(self) -> str:
        incoming = get_access_token()
        # The assertion is the token of the request being served; it must be this person's.
        if incoming is None or (incoming.claims or {}).get("oid", incoming.subject) != self.principal.id:
            raise SignInError("This call is not signed in as the person it is for; nothing was sent.")
        return await self.exchange(incoming.token)

    async def exchange(self, assertion: str) -> str:
        """This person's Partner Center token for ``assertion`` (their validated incoming token).

        With a store, the person's cache is read from it first and written back when msal changed it
        (a new or refreshed token), so a refresh token one replica obtained serves them all."""
        fresh = self._fresh
        if fresh is not None and fresh[1] - FRESH_MARGIN > time.time():
            return fresh[0]  # what msal's cache would answer, without the store read and the thread hop
        store = self._owner.store
        kept = await store.token_get(self.principal.id) if store is not None else None
        token, expires, changed = await anyio.to_thread.run_sync(self._exchange, assertion, kept)
        if store is not None and changed is not None:
            await store.token_put(self.principal.id, changed)
        self._fresh = (token, expires)
        return token

    def _exchange(self, assertion: str, kept: bytes | None = None) -> tuple[str, float, bytes | None]:
        with self._lock:
            try:
                if self._app is None:
                    import msal

                    self._cache = msal.SerializableTokenCache()
                    self._app = self._owner.new_app(token_cache=self._cache)
                if kept is not None:
                    self._cache.deserialize(kept.decode())
                result = None
                accounts = self._app.get_accounts()  # this person's own cache: at most them
                if accounts:  # a cached Partner Center token, or a refresh with the OBO refresh token
                    result = self._app.acquire_token_silent_with_error(
                        self._owner.scopes, account=accounts[0]
                    )
                if not result or "access_token" not in result:
                    result = self._app.acquire_token_on_behalf_of(assertion, self._owner.scopes)
            except SignInError:
                raise
            except Exception as exc:  # requests/msal failures: keep the kind, drop the details
                raise SignInError(
                    f"Could not reach the sign-in service ({type(exc).__name__}).",
                    hint="Try again in a minute; if it persists, the server's administrator should check it.",
                ) from None
        if result and "access_token" in result:
            changed = self._cache.serialize().encode() if self._cache.has_state_changed else None
            self._cache.has_state_changed = False
            expires = time.time() + float(result.get("expires_in") or 0)
            return str(result["access_token"]), expires, changed
        raise refusal(result or {})


# Entra's AADSTS codes for an on-behalf-of refusal, by who can act on it.
CONSENT = frozenset({65001, 65004, 90094, 90095, 90099})  # an administrator grants consent
INTERACTION = frozenset({50074, 50076, 50079, 50158, 53000, 53001, 53002, 53003, 53004, 530003})
EXPIRED = frozenset({50078, 50132, 50133, 50173, 70008, 70043, 700082, 700084, 50089, 50055, 81010})
CONFIGURATION = frozenset(
    {50011, 50012, 50013, 50027, 700016, 700024, 700027, 7000215, 7000222, 700212, 90002, 500011, 65005}
)


def refusal(result: dict[str, Any]) -> SignInError:
    """The error for msal's refusal ``result``, by its AADSTS code: the consent the administrator must
    grant; a claims challenge (more interaction, or a sign-in to renew) the client must answer; the
    server's own configuration, for the operator; anything else with its code and correlation id.
    Entra's own description is quoted (others' text) and cut before its trace details."""
    error = str(result.get("error") or "unknown_error")
    codes = _codes(result)
    code = codes[0] if codes else None
    named = f"{error}, AADSTS{code}" if code else error
    cid = str(result.get("correlation_id") or "") or None
    first = str(result.get("error_description") or "").strip().splitlines()
    said = quote(_aadsts_text(first[0])) if first else None
    ref = f" (correlation id {cid})" if cid else ""
    if (
        result.get("claims")
        or (error == "interaction_required" and not set(codes) & EXPIRED)
        or (set(codes) & INTERACTION)
    ):
        return ClaimsChallenge(
            "Partner Center needs you to sign in again to satisfy your organisation's policy "
            "(multi-factor authentication or a compliant device).",
            claims=str(result.get("claims") or _renew_claims()),
            hint="Reconnect the server in your assistant and sign in; then ask again.",
        )
    if set(codes) & EXPIRED or (error == "invalid_grant" and not codes):
        return SignInExpired(
            f"Your sign-in has expired or was revoked ({named}); sign in again.",
            claims=_renew_claims(),
            hint="Reconnect the server in your assistant and sign in; then ask again.",
        )
    if set(codes) & CONSENT:
        return SignInError(
            f"Microsoft Entra refused to let this server act for you in Partner Center ({named}"
            + (f": {said}" if said else "")
            + f"){ref}.",
            hint="Your administrator must grant the API app the Partner Center permission (admin consent).",
        )
    if set(codes) & CONFIGURATION or error in ("invalid_client", "unauthorized_client"):
        log.warning("on-behalf-of refused for a server configuration fault: %s%s", named, ref)
        return ServerMisconfigured(
            f"This server's sign-in set-up is faulty ({named}){ref}; it is not something you can fix.",
            code=named,
            correlation_id=cid,
            hint="Tell the server's administrator: the code and correlation id are in its log.",
        )
    return SignInError(
        f"Microsoft Entra refused to let this server act for you in Partner Center ({named}"
        + (f": {said}" if said else "")
        + f"){ref}.",
        hint="Give the code and correlation id to your administrator.",
    )


def _codes(result: dict[str, Any]) -> list[int]:
    raw = result.get("error_codes")
    if isinstance(raw, list):
        found = [int(c) for c in raw if isinstance(c, int) or (isinstance(c, str) and c.isdigit())]
        if found:
            return found
    return [int(m) for m in re.findall(r"AADSTS(\d+)", str(result.get("error_description") or ""))]


def _aadsts_text(line: str) -> str:
    return re.sub(r"^AADSTS\d+:\s*", "", line.split(" Trace ID")[0]).strip()


def _renew_claims() -> str:
    """A claims request only a token issued from now on satisfies: a fresh sign-in."""
    return json.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(time.time()))}}})


def msal_http_client(settings: Settings) -> Any:
    """A requests session for msal that trusts ``team_ca_bundle`` (the stand-in's certificate) if set."""
    if settings.team_ca_bundle is None:
        return None
    import requests

    session = requests.Session()
    session.verify = str(Path(settings.team_ca_bundle).expanduser())
    session.trust_env = False
    return session


def tls_verify(settings: Settings) -> Any:
    """httpx's ``verify`` that trusts ``team_ca_bundle`` (the stand-in's certificate) if set."""
    if settings.team_ca_bundle is None:
        return True
    import ssl

    return ssl.create_default_context(cafile=str(Path(settings.team_ca_bundle).expanduser()))
