"""What the OAuth broker (:mod:`.proxy`) keeps in the shared store: one kind each, the records
stored under them (pydantic, sealed by the store), and the two ways a step cannot go on
(``BrokerUnavailable``: the store; ``SignInUnavailable``: Entra).

The lifetimes of each kind are the broker's (:mod:`.proxy`); what an admin revoke drops is named
from here (:mod:`.revocation`).
"""

from typing import Any

from mcp.server.auth.provider import AuthorizationCode, AuthorizationParams, RefreshToken
from pydantic import BaseModel

__all__ = [
    "CLAIMS",
    "CLIENT",
    "CODE",
    "CONSENT",
    "CONSENT_REQUEST",
    "ISSUED_TO",
    "PENDING",
    "REFRESH",
    "SIGNED",
    "SPENT",
    "UNUSED",
    "BrokerUnavailable",
    "SignInUnavailable",
    "consent_key",
]

# What the broker keeps in the store, one kind each: key → value (until when; who takes it).
CLIENT = "client"  # client_id → its registration or fetched metadata document (CLIENT_TTL, DOCUMENT_TTL)
UNUSED = "client-new"  # client_id → a registration never used yet (UNUSED_CLIENT_TTL; evicted oldest first)
CONSENT_REQUEST = "consent-request"  # request id → _Request, waiting at the consent page (PENDING_TTL)
PENDING = "pending"  # our state → _Pending (PENDING_TTL; taken by the callback)
SIGNED = "signed"  # one-time key → _Signed: Entra's answer, waiting for the consent step (PENDING_TTL)
CONSENT = "consent"  # "<oid> <client_id>" → _Consent: the person approved that client (until revoked)
SPENT = "spent"  # a rotated refresh handle → whose it was (SPENT_TTL): presented again, the grant ends
CODE = "code"  # our one-time code → _Issued (CODE_TTL; taken by /token)
REFRESH = "refresh"  # a refresh handle → _Refresh (REFRESH_TTL; taken when rotated or revoked)
ISSUED_TO = "issued-to"  # an access token we handed out → the client holding it (while it lives)
CLAIMS = "claims"  # client_id → Conditional Access claims for its next sign-in (CLAIMS_TTL; taken then)


def consent_key(oid: str, client_id: str) -> str:
    """Where a person's approval of a client is kept (kind :data:`CONSENT`)."""
    return f"{oid} {client_id}"


class BrokerUnavailable(Exception):
    """The shared store did not answer; the OAuth endpoints answer ``temporarily_unavailable``."""


class SignInUnavailable(Exception):
    """Entra (or the bound on sign-ins in progress) did not let a sign-in start; the message says why."""


class _Request(BaseModel):
    """An authorization request waiting for the person's decision."""

    client_id: str
    params: AuthorizationParams
    claims: str | None = None


class _Pending(BaseModel):
    """A sign-in in progress, under its state: the client, its request and msal's flow (our PKCE
    verifier and nonce); ``browser``: the browser that sent it to Entra (:func:`.browser.browser_id`),
    ``approved``: whether that browser approved the client on the consent page."""

    client_id: str
    params: AuthorizationParams
    flow: dict[str, Any]
    browser: str = ""
    approved: bool = False


class _Signed(BaseModel):
    """Entra's redeemed answer for a client's sign-in, until the consent step issues the code;
    ``claimed_by``: the first browser that loaded the consent step with it (no other may use it)."""

    client_id: str
    params: AuthorizationParams
    browser: str
    approved: bool
    oid: str
    name: str
    access_token: str
    expires_in: int
    refresh_token: str | None
    claimed_by: str | None = None


class _Consent(BaseModel):
    """A person's approval of one client: for grants sent to these redirect hosts."""

    client_id: str
    client_name: str
    hosts: list[str]
    approved_at: float


class _Issued(BaseModel):
    """What a one-time code is exchanged for."""

    code: AuthorizationCode
    access_token: str
    expires_in: int
    refresh_token: str | None


class _Refresh(BaseModel):
    """A refresh handle and the Entra refresh token behind it."""

    handle: RefreshToken
    upstream: str


class _Spent(BaseModel):
    """Whose grant a rotated refresh handle belonged to."""

    client_id: str
    subject: str | None
