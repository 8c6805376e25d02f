"""The consent step of proxy mode: a person approves a client on our own page before it gets a code.

Why: registration is open, so anyone can register a client with their own redirect URI and send a
person an ``/authorize`` link; a browser already signed in at Entra would come back without a
question and the code would land at the attacker's address (the confused deputy of an OAuth proxy).
So ``/authorize`` only keeps the request and sends the browser here (``GET /oauth/consent?request=…``):

1. If this browser is known (:mod:`.browser`) as a person who approved this client for this redirect
   host before, it goes on to Entra at once. Otherwise the page shows the client's self-chosen name
   (quoted, escaped, marked as chosen by the client), the redirect URI's host prominently, what the
   client will be able to do, and Approve / Deny (a form with a CSRF token derived from the browser's
   cookie and the request: a second load gives the same token). Deny sends the browser back to the
   client with ``access_denied``; Approve records that *this browser* approved *this request*, then
   goes to Entra.
2. Entra's ``form_post`` reaches ``/oauth/callback`` without the cookie (``SameSite=Lax``); the proxy
   keeps the redeemed result under a one-time key and sends the browser to
   ``GET /oauth/consent?signed=…``, where the cookie arrives and the person is known. The first browser
   to open that link claims it (no other may use it). The code is issued only if the store holds this
   person's consent for this client and host, or this very browser approved this very request (the
   consent is then stored). Otherwise the page is shown to the person, by name, and the code is issued
   only on their Approve. An attacker who approves in their own browser and forwards Entra's URL to a
   victim gets the victim a consent page, not a code.

Consent is kept per person and client in the store (every replica honours it) and listed on
``/oauth/connected-apps``, where the person revokes it (which also ends that client's refresh handles
for them).
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from mcp.server.auth.provider import construct_redirect_uri
from pydantic import BaseModel

from pcref_mcp.server.pages import esc, new_nonce, notice, origin_of, page_response, render_page
from pcref_mcp.team.browser import (
    Person,
    browser_id,
    busy_page,
    cookie_of,
    csrf_ok,
    csrf_token,
    new_cookie,
    remember_person,
    see_other,
    set_browser_cookie,
    start_page_sign_in,
    who_is,
)
from pcref_mcp.team.proxy import (
    CONSENT,
    CONSENT_PATH,
    CONSENT_REQUEST,
    PENDING_TTL,
    REFRESH,
    SIGNED,
    BrokerUnavailable,
    SignInUnavailable,
    _Consent,
    _Request,
    _Signed,
    consent_key,
)

if TYPE_CHECKING:
    from pcref_mcp.team.proxy import EntraProxy

__all__ = ["CONNECTED_PATH", "CONSENT_PATH", "ConsentPages", "consent_key"]

log = logging.getLogger("pcref_mcp.team")

CONNECTED_PATH = "/oauth/connected-apps"
WHAT_IT_CAN_DO = "work your Partner Center referrals as you"

_Held = TypeVar("_Held", bound=BaseModel)


class _Gone(Exception):
    """What a step needs is no longer kept (expired, or answered already): the page says so."""


def redirect_host(params_redirect: Any) -> str:
    """The host (and port) a grant goes to: what the person must look at."""
    parsed = urlparse(str(params_redirect))
    return parsed.netloc.rpartition("@")[2] or str(params_redirect)


class ConsentPages:
    """The routes of the consent step and the connected-apps page, over an :class:`EntraProxy`."""

    def __init__(self, proxy: EntraProxy) -> None:
        self.proxy = proxy

    @property
    def store(self) -> Any:
        return self.proxy.store

    def _now(self) -> float:
        return float(self.proxy._clock())

    # --- routes ---------------------------------------------------------------------------------------

    async def consent(self, request: Any) -> Any:
        """``GET``/``POST /oauth/consent``."""
        try:
            if request.method == "POST":
                return await self._decide(request)
            if "signed" in request.query_params:
                return await self._signed(request)
            return await self._ask(request)
        except _Gone:
            return _expired()
        except BrokerUnavailable:
            return busy_page()

    async def connected(self, request: Any) -> Any:
        """``GET``/``POST /oauth/connected-apps``: the person's approved clients, each revocable."""
        try:
            person = await self.proxy._held(who_is(self.store, request, self._now()))
            cookie = cookie_of(request)
            if person is None or cookie is None:
                if request.method == "POST":
                    return notice(
                        "Signed out", "Your sign-in here has expired; open the page again.", status=403
                    )
                return await start_page_sign_in(self.proxy, request, CONNECTED_PATH)
            if request.method == "POST":
                form = await request.form()
                client_id = str(form.get("client_id", ""))
                if not csrf_ok(cookie, f"revoke:{client_id}", form.get("csrf")):
                    return _stale_form()
                await self.revoke(person.oid, client_id)
                return see_other(CONNECTED_PATH)
            held = await self.proxy._held(self.store.broker_list(CONSENT, self._now(), subject=person.oid))
        except BrokerUnavailable:
            return busy_page()
        consents = sorted((_Consent.model_validate_json(h) for h in held), key=lambda c: -c.approved_at)
        return self._connected_page(person, cookie, consents)

    async def revoke(self, oid: str, client_id: str) -> None:
        """``oid`` no longer approves ``client_id``: the consent goes, and the client's refresh handles
        for them (its access tokens live out their short lifetime)."""
        await self.proxy._take(CONSENT, consent_key(oid, client_id))
        gone = await self.proxy._held(self.store.broker_drop(REFRESH, client_id=client_id, subject=oid))
        log.info("a person revoked a client's consent (%d refresh handle(s) ended)", gone)

    # --- the steps ------------------------------------------------------------------------------------

    async def _ask(self, request: Any) -> Any:
        """``GET ?request=…``: on to Entra for a known person who approved the client before; else
        the consent page."""
        request_id = request.query_params.get("request", "")
        waiting = await self._kept(CONSENT_REQUEST, request_id, _Request)
        cookie = cookie_of(request) or new_cookie()
        person = await self.proxy._held(who_is(self.store, request, self._now()))
        host = redirect_host(waiting.params.redirect_uri)
        if person is not None and await self._approved(person.oid, waiting.client_id, host):
            await self._kept(CONSENT_REQUEST, request_id, _Request, take=True)
            return await self._on_to_entra(waiting, cookie, approved=False)
        client = await self.proxy.get_client(waiting.client_id)
        if client is None:
            return notice(
                "Unknown client", "This client is no longer registered; start again from the app.", status=400
            )
        page = self._consent_page(
            client_name=client.client_name,
            client_id=waiting.client_id,
            redirect=str(waiting.params.redirect_uri),
            field=("request", request_id),
            csrf=csrf_token(cookie, f"consent:request:{request_id}"),
            person=None,
        )
        return set_browser_cookie(page, cookie, secure=self.proxy.secure)

    async def _signed(self, request: Any) -> Any:
        """``GET ?signed=…``: back from Entra; the person is known."""
        key = request.query_params.get("signed", "")
        signed = await self._kept(SIGNED, key, _Signed)
        cookie = cookie_of(request) or new_cookie()
        this = browser_id(cookie)
        if signed.claimed_by is None:  # the first browser to open it: only it may go on
            signed.claimed_by = this
            await self.proxy._put(
                SIGNED,
                key,
                signed,
                expires=self._now() + PENDING_TTL,
                client_id=signed.client_id,
                subject=signed.oid,
            )
        elif not hmac.compare_digest(signed.claimed_by, this):
            return _opened_elsewhere()
        host = redirect_host(signed.params.redirect_uri)
        same_browser = hmac.compare_digest(signed.browser, this)
        known = await self._approved(signed.oid, signed.client_id, host)
        if known or (signed.approved and same_browser):
            await self._kept(SIGNED, key, _Signed, take=True)
            if not known:
                await self._remember_consent(signed)
            if same_browser:
                await self.proxy._held(remember_person(self.store, cookie, _person(signed), self._now()))
            url = await self.proxy.issue_code(signed)
            return set_browser_cookie(see_other(url), cookie, secure=self.proxy.secure)
        client = await self.proxy.get_client(signed.client_id)
        page = self._consent_page(
            client_name=client.client_name if client is not None else None,
            client_id=signed.client_id,
            redirect=str(signed.params.redirect_uri),
            field=("signed", key),
            csrf=csrf_token(cookie, f"consent:signed:{key}"),
            person=_person(signed),
        )
        return set_browser_cookie(page, cookie, secure=self.proxy.secure)

    async def _decide(self, request: Any) -> Any:
        """``POST``: Approve or Deny, from this browser's own page (CSRF)."""
        form = await request.form()
        cookie = cookie_of(request)
        decision = str(form.get("decision", ""))
        if decision not in ("approve", "deny"):
            return notice("Choose", "Choose Approve or Deny on the page.", status=400)
        if "signed" in form:
            key = str(form["signed"])
            if not csrf_ok(cookie, f"consent:signed:{key}", form.get("csrf")):
                return _stale_form()
            assert cookie is not None
            peek = await self._kept(SIGNED, key, _Signed)
            if peek.claimed_by is None or not hmac.compare_digest(peek.claimed_by, browser_id(cookie)):
                return _opened_elsewhere()
            signed = await self._kept(SIGNED, key, _Signed, take=True)
            if decision == "deny":
                return _denied(signed.params)
            await self._remember_consent(signed)
            if hmac.compare_digest(signed.browser, browser_id(cookie)):
                await self.proxy._held(remember_person(self.store, cookie, _person(signed), self._now()))
            return see_other(await self.proxy.issue_code(signed))
        request_id = str(form.get("request", ""))
        if not csrf_ok(cookie, f"consent:request:{request_id}", form.get("csrf")):
            return _stale_form()
        assert cookie is not None
        waiting = await self._kept(CONSENT_REQUEST, request_id, _Request, take=True)
        if decision == "deny":
            return _denied(waiting.params)
        return await self._on_to_entra(waiting, cookie, approved=True)

    async def _kept(self, kind: str, key: str, model: type[_Held], *, take: bool = False) -> _Held:
        """The request or sign-in kept under ``key``; ``take`` also ends it (one answer only: a second
        one, in any browser, finds it gone). Gone (expired, or answered already) raises :class:`_Gone`:
        the step ends on the "expired" page."""
        held = await (self.proxy._take if take else self.proxy._get)(kind, key)
        if held is None:
            raise _Gone
        return model.model_validate_json(held)

    async def _on_to_entra(self, waiting: _Request, cookie: str, *, approved: bool) -> Any:
        """On to Entra for ``waiting``, from this browser (``approved``: it approved this very request)."""
        try:
            url = await self.proxy.to_entra(waiting, browser=browser_id(cookie), approved=approved)
        except SignInUnavailable as exc:
            return notice("Sign-in unavailable", str(exc), status=503)
        return see_other(url)

    # --- consent records ------------------------------------------------------------------------------

    async def _approved(self, oid: str, client_id: str, host: str) -> bool:
        held = await self.proxy._get(CONSENT, consent_key(oid, client_id))
        return held is not None and host in _Consent.model_validate_json(held).hosts

    async def _remember_consent(self, signed: _Signed) -> None:
        key = consent_key(signed.oid, signed.client_id)
        held = await self.proxy._get(CONSENT, key)
        hosts = _Consent.model_validate_json(held).hosts if held is not None else []
        client = await self.proxy.get_client(signed.client_id)
        host = redirect_host(signed.params.redirect_uri)
        consent = _Consent(
            client_id=signed.client_id,
            client_name=(client.client_name if client is not None else None) or "",
            hosts=sorted({*hosts, host})[:10],
            approved_at=self._now(),
        )
        await self.proxy._put(
            CONSENT, key, consent, expires=None, client_id=signed.client_id, subject=signed.oid
        )
        log.info("a person approved a client (consent stored)")

    # --- pages ----------------------------------------------------------------------------------------

    def _consent_page(
        self,
        *,
        client_name: str | None,
        client_id: str,
        redirect: str,
        field: tuple[str, str],
        csrf: str,
        person: Person | None,
    ) -> Any:
        nonce = new_nonce()
        host = redirect_host(redirect)
        who = (
            f'<p>Signed in as <strong class="untrusted">{esc(person.name or person.oid)}</strong>.</p>'
            if person is not None
            else '<p class="muted">You will sign in with your work account next.</p>'
        )
        shown = (
            f'An app that calls itself <q class="untrusted" id="client-name">{esc(client_name)}</q>'
            if client_name
            else '<span id="client-name">An app that gave no name</span>'
        )
        body = (
            "<h1>Allow this app to use pcref-mcp as you?</h1>"
            f"{who}"
            f'<p>{shown} <span class="muted">(the app chose this name itself; it proves nothing)</span> '
            "asks to sign in as you. Its access will be sent to:</p>"
            f'<span class="host" id="redirect-host">{esc(host)}</span>'
            '<div class="box"><p>If you approve, this app will be able to '
            f"<strong>{esc(WHAT_IT_CAN_DO)}</strong>: search and read your referrals, and propose changes "
            "that are made in your name.</p>"
            '<p class="muted">Only approve if you started this from an app you use and you recognise the '
            "address above. You can revoke it later under "
            f'<a href="{CONNECTED_PATH}">Connected apps</a>.</p></div>'
            f'<form method="post" action="{CONSENT_PATH}">'
            f'<input type="hidden" name="{esc(field[0])}" value="{esc(field[1])}">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            '<div class="actions">'
            '<button type="submit" class="approve" name="decision" value="approve" autofocus>Approve</button>'
            '<button type="submit" class="deny" name="decision" value="deny">Deny</button>'
            "</div></form>"
            f'<p class="muted">App id: <code>{esc(client_id)}</code></p>'
        )
        return page_response(
            render_page("Allow this app?", body, nonce=nonce),
            nonce,
            form_action=[origin_of(redirect), origin_of(self.proxy.settings.authority_host)],
        )

    def _connected_page(self, person: Person, cookie: str, consents: list[_Consent]) -> Any:
        nonce = new_nonce()
        rows = "".join(
            "<tr>"
            f'<td><q class="untrusted">{esc(c.client_name or "(no name)")}</q><br>'
            f'<span class="muted">sends access to {esc(", ".join(c.hosts))} · approved '
            f"{esc(datetime.fromtimestamp(c.approved_at, UTC).strftime('%Y-%m-%d %H:%M UTC'))}</span></td>"
            f'<td><form method="post" action="{CONNECTED_PATH}">'
            f'<input type="hidden" name="client_id" value="{esc(c.client_id)}">'
            f'<input type="hidden" name="csrf" value="{esc(csrf_token(cookie, "revoke:" + c.client_id))}">'
            f'<button type="submit" class="revoke">Revoke</button></form></td>'
            "</tr>"
            for c in consents
        )
        table = f"<table>{rows}</table>" if consents else "<p>You have not approved any app.</p>"
        body = (
            "<h1>Connected apps</h1>"
            f'<p>Signed in as <strong class="untrusted">{esc(person.name or person.oid)}</strong>. '
            f"These apps may {esc(WHAT_IT_CAN_DO)}. Revoking one ends its access; it must ask you again.</p>"
            f"{table}"
        )
        return page_response(render_page("Connected apps", body, nonce=nonce), nonce)


def _person(signed: _Signed) -> Person:
    return Person(oid=signed.oid, name=signed.name)


def _denied(params: Any) -> Any:
    url = construct_redirect_uri(
        str(params.redirect_uri),
        state=params.state,
        error="access_denied",
        error_description="The person declined to let this app sign in.",
    )
    return see_other(url)


def _expired() -> Any:
    return notice(
        "Link expired",
        "This sign-in request has expired or was already answered. Start again from the app.",
        status=400,
    )


def _opened_elsewhere() -> Any:
    return notice("Opened elsewhere", "This sign-in is being finished in another browser.", status=400)


def _stale_form() -> Any:
    return notice(
        "Form expired",
        "This form did not come from this page in this browser, or has expired. Reload the page and choose again.",
        status=403,
    )
