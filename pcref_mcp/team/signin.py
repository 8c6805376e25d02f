"""The identity provider's authorization-code flow, for whoever needs a person signed in.

Two callers share it: the OAuth proxy (:mod:`.proxy`, a client's sign-in) and our own pages
(:mod:`.browser`, a person opening the consent, connected-apps or approval page), in proxy mode and in
direct mode alike. Both go through the one ``/oauth/callback``. msal does the protocol (our own PKCE
pair, state and nonce; the code redeemed with the API app's credential); this class owns msal's
client object, which is per process, and makes sure msal's token cache does not keep what it
redeemed (the callers keep what they need, sealed in the store).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pcref_mcp.partner_center.auth import client_credential, confidential_app
from pcref_mcp.team.obo import msal_http_client

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = ["CALLBACK_PATH", "EntraSignIn"]

CALLBACK_PATH = "/oauth/callback"


class EntraSignIn:
    """msal's auth-code flow for this server's API app, answering at ``base_url`` + ``/oauth/callback``.
    The methods block (msal is synchronous): call them in a worker thread."""

    def __init__(self, settings: Settings, *, base_url: str, scope: str) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.scope = scope
        self._http_cache: dict[Any, Any] = {}
        self._app: Any = None
        self._http: Any = None
        self._lock = threading.Lock()

    @property
    def callback_url(self) -> str:
        return self.base_url + CALLBACK_PATH

    def initiate(self, state: str, claims: str | None = None, *, prompt: str | None = None) -> dict[str, Any]:
        """Start a sign-in: msal's flow (keep it; it holds our PKCE verifier and nonce), its
        ``auth_uri`` the identity provider's page to send the browser to."""
        flow: dict[str, Any] = self._msal().initiate_auth_code_flow(
            [self.scope],
            redirect_uri=self.callback_url,
            state=state,
            response_mode="form_post",
            claims_challenge=claims,
            prompt=prompt,
        )
        return flow

    def redeem(self, flow: dict[str, Any], answer: dict[str, str]) -> dict[str, Any]:
        """The identity provider's answer at the callback, redeemed: msal's result (``access_token``
        and ``id_token_claims``, or ``error``)."""
        app = self._msal()
        result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, answer, scopes=[self.scope])
        self._forget(app, result)
        return result

    def refresh(self, upstream: str) -> dict[str, Any]:
        app = self._msal()
        result: dict[str, Any] = app.acquire_token_by_refresh_token(upstream, scopes=[self.scope])
        self._forget(app, result)
        return result

    def _msal(self) -> Any:
        with self._lock:
            if self._app is None:
                self._http = msal_http_client(self.settings)
                self._app = confidential_app(
                    self.settings,
                    client_credential(self.settings),
                    http_client=self._http,
                    http_cache=self._http_cache,
                )
            return self._app

    def close(self) -> None:
        """Close msal's http session: its idle keep-alive connections to the identity provider would
        otherwise stay open until the process ends."""
        if self._http is not None:
            self._http.close()

    @staticmethod
    def _forget(app: Any, result: dict[str, Any]) -> None:
        """Tokens are kept by the callers, not msal's cache (which would otherwise grow per sign-in)."""
        home = (result.get("id_token_claims") or {}).get("oid")
        for account in app.get_accounts():
            if home is None or str(account.get("home_account_id", "")).startswith(str(home)):
                app.remove_account(account)
