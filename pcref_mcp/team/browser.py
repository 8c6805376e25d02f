"""Which person a browser is: a random cookie, mapped in the store to whom it last signed in as.

Our own pages (consent, connected apps, write approval) must know the person in front of them, and
must not take a client's or a link's word for it. So a browser gets a random cookie
(:data:`BROWSER_COOKIE`: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` on https, path ``/``), and once it
completes a sign-in at the identity provider the store maps that cookie (digested, like every broker
key) to the person's Entra object id for :data:`BROWSER_TTL`. The mapping is in the shared store, so
every replica knows the browser.

A page that needs a person and finds none calls :func:`start_page_sign_in`: the same authorization-code
flow the OAuth proxy uses (:class:`~pcref_mcp.team.signin.EntraSignIn`, through the same
``/oauth/callback``; its state under its own store kind), in proxy and direct mode alike. Entra
answers the callback with a cross-site ``form_post``, which does not carry a ``SameSite=Lax`` cookie,
so the callback keeps the result under a one-time key and sends the browser to a same-site ``GET``
(:data:`SIGNED_IN_PATH`) where the cookie arrives; only the browser that *started* the sign-in (its
cookie's digest is kept with the state) is mapped to the person, so a sign-in finished in someone
else's browser (a forwarded link, a forged callback post) signs nobody in there. Then the browser goes
to ``return_to``, which must be a path on this server (never another site: no open redirect).

CSRF tokens for our forms are derived from the cookie and what the form is about
(:func:`csrf_token`), not drawn per page load: loading a page twice gives the same token, so the
first tab's form still works, and no server state is needed to check one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio
from pydantic import BaseModel

from pcref_mcp.server.pages import notice
from pcref_mcp.team.seen import seen_signing_in, signed_in

if TYPE_CHECKING:
    from pcref_mcp.store import Store
    from pcref_mcp.team.signin import EntraSignIn
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = [
    "BROWSER_COOKIE",
    "BROWSER_TTL",
    "SIGNED_IN_PATH",
    "PageSignIn",
    "Person",
    "browser_id",
    "busy_page",
    "cookie_of",
    "csrf_ok",
    "csrf_token",
    "new_cookie",
    "page_callback",
    "person_of",
    "read_answer",
    "remember_person",
    "safe_return_to",
    "see_other",
    "set_browser_cookie",
    "signed_in_route",
    "start_page_sign_in",
    "who_is",
]

log = logging.getLogger("pcref_mcp.team")

BROWSER_COOKIE = "pcref_browser"
BROWSER_TTL = 12 * 3600.0  # a browser is known as its person this long after a sign-in
PAGE_TTL = 600.0  # a page sign-in must finish within this
SIGNED_IN_PATH = "/oauth/signed-in"

# store kinds (see EntraProxy's list for the client sign-in's)
BROWSER = "browser"  # cookie → Person (BROWSER_TTL)
PAGE_PENDING = "page-pending"  # our state → _PagePending (PAGE_TTL; taken by the callback)
PAGE_SIGNED = "page-signed"  # one-time key → _PageSigned (PAGE_TTL; taken at SIGNED_IN_PATH)

_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class Person(BaseModel):
    """Who a browser signed in as: the Entra object id (the identity everything is bound to) and a
    display name (shown, never trusted)."""

    oid: str
    name: str = ""


class _PagePending(BaseModel):
    flow: dict[str, Any]
    return_to: str
    browser: str


class _PageSigned(BaseModel):
    person: Person
    return_to: str
    browser: str


def new_cookie() -> str:
    return secrets.token_urlsafe(32)


def cookie_of(request: Any) -> str | None:
    """The browser's cookie, if it sent one of the right shape."""
    value = request.cookies.get(BROWSER_COOKIE)
    return value if isinstance(value, str) and _COOKIE_SHAPE.match(value) else None


def browser_id(cookie: str) -> str:
    """What is kept about a browser where it must be recognised later (a digest, not the cookie)."""
    return hashlib.sha256(b"pcref-browser/" + cookie.encode()).hexdigest()


def set_browser_cookie(response: Any, cookie: str, *, secure: bool) -> Any:
    response.set_cookie(
        BROWSER_COOKIE,
        cookie,
        max_age=int(BROWSER_TTL * 2),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return response


def see_other(url: str) -> Any:
    """303 to ``url``, never cached: these redirects carry one-time keys and codes."""
    from starlette.responses import RedirectResponse

    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})


def busy_page(advice: str = "; reload this page in a few seconds.") -> Any:
    """503 when the shared store did not answer in time: nothing was lost, a reload shortly goes on."""
    return notice(
        "Briefly unavailable",
        f"The sign-in service is briefly unavailable{advice}",
        status=503,
        headers={"Retry-After": "5"},
    )


def csrf_token(cookie: str, purpose: str) -> str:
    """The form token for ``purpose`` (e.g. ``consent:<request id>``) in this browser: the same on
    every load, unknowable without the (HttpOnly) cookie."""
    return hmac.new(cookie.encode(), b"pcref-csrf/" + purpose.encode(), hashlib.sha256).hexdigest()


def csrf_ok(cookie: str | None, purpose: str, given: Any) -> bool:
    return (
        cookie is not None
        and isinstance(given, str)
        and hmac.compare_digest(csrf_token(cookie, purpose).encode(), given.encode())
    )


async def who_is(store: Store, request: Any, now: float) -> Person | None:
    """The person this browser last signed in as (None: no cookie, never signed in, or expired)."""
    cookie = cookie_of(request)
    if cookie is None:
        return None
    held = await store.broker_get(BROWSER, cookie, now)
    return Person.model_validate_json(held) if held is not None else None


async def person_of(store: Store, request: Any, now: float) -> str | None:
    """The Entra object id this browser last signed in as (via its cookie), or None."""
    person = await who_is(store, request, now)
    return person.oid if person is not None else None


async def remember_person(store: Store, cookie: str, person: Person, now: float) -> None:
    """This browser is ``person`` from now on (for :data:`BROWSER_TTL`)."""
    await store.broker_put(
        BROWSER, cookie, person.model_dump_json().encode(), expires=now + BROWSER_TTL, subject=person.oid
    )


def person_from(claims: dict[str, Any], result: dict[str, Any]) -> Person:
    """The person of a redeemed sign-in: the object id from the *validated* access token's claims;
    the display name from wherever it is (shown only)."""
    id_claims = result.get("id_token_claims") or {}
    name = claims.get("name") or id_claims.get("name") or claims.get("preferred_username") or ""
    return Person(oid=str(claims["oid"]), name=str(name)[:200])


def safe_return_to(path: str) -> str:
    """``path`` if it is a path on this server; otherwise ValueError (never another site)."""
    parsed = urlparse(path)
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or parsed.scheme
        or parsed.netloc
        or len(path) > 2000
        or any(not c.isprintable() or c.isspace() for c in path)
    ):
        raise ValueError(f"return_to must be a path on this server, not {path[:100]!r}")
    return path


class PageSignIn:
    """Signs a browser in for one of our own pages (see the module's docstring)."""

    def __init__(
        self,
        signin: EntraSignIn,
        verifier: EntraTokenVerifier,
        store: Store,
        *,
        clock: Any = time.time,
    ) -> None:
        self.signin = signin
        self.verifier = verifier
        self.store = store
        self._clock = clock

    @property
    def secure(self) -> bool:
        return self.signin.base_url.startswith("https://")

    async def start(self, request: Any, return_to: str) -> Any:
        """Send the browser to the identity provider; after the sign-in it comes back to
        ``return_to`` known as its person."""
        return_to = safe_return_to(return_to)
        cookie = cookie_of(request) or new_cookie()
        state = secrets.token_urlsafe(32)
        try:
            flow = await anyio.to_thread.run_sync(
                lambda: self.signin.initiate(state, prompt="select_account")
            )
        except Exception as exc:
            log.warning("could not start a page sign-in (%s)", type(exc).__name__)
            return notice(
                "Sign-in unavailable", "The sign-in service is not reachable; try again shortly.", status=503
            )
        pending = _PagePending(flow=flow, return_to=return_to, browser=browser_id(cookie))
        if not await self._kept(
            self.store.broker_put(
                PAGE_PENDING, state, pending.model_dump_json().encode(), expires=self._clock() + PAGE_TTL
            )
        ):
            return busy_page()
        response = see_other(str(flow["auth_uri"]))
        return set_browser_cookie(response, cookie, secure=self.secure)

    # the approval page's PageSignIn protocol (pcref_mcp.server.approval_page)
    async def person(self, request: Any) -> str | None:
        """The Entra object id this browser is signed in as, or None (see :func:`person_of`)."""
        return await person_of(self.store, request, self._clock())

    async def sign_in(self, request: Any, return_to: str) -> Any:
        """:meth:`start`, under the name the approval page's protocol uses."""
        return await self.start(request, return_to)

    async def finish(self, state: str, answer: dict[str, str]) -> Any | None:
        """The callback's part: None when ``state`` is not a page sign-in's (the proxy's then)."""
        held = await self.store.broker_take(PAGE_PENDING, state, self._clock())
        if held is None:
            return None
        pending = _PagePending.model_validate_json(held)
        try:
            result = await anyio.to_thread.run_sync(self.signin.redeem, pending.flow, answer)
        except Exception as exc:
            log.warning("could not redeem a page sign-in (%s)", type(exc).__name__)
            signed_in("page", "failed")
            return notice(
                "Sign-in unavailable", "The sign-in service did not answer; start again.", status=503
            )
        if "access_token" not in result:
            log.info("page sign-in refused: %s", result.get("error"))
            signed_in("page", "refused")
            return notice(
                "Not signed in",
                "The identity provider did not sign you in (declined or failed). Open the page again to retry.",
                status=403,
            )
        claims = await self.verifier.claims_of(str(result["access_token"]))
        if claims is None:
            signed_in("page", "refused")
            return notice(
                "Access denied",
                "This account is not allowed on this server (its organisation is not on the allow-list). "
                "Sign in with your work account.",
                status=403,
            )
        key = secrets.token_urlsafe(32)
        signed = _PageSigned(
            person=person_from(claims, result), return_to=pending.return_to, browser=pending.browser
        )
        try:
            await self.store.broker_put(
                PAGE_SIGNED, key, signed.model_dump_json().encode(), expires=self._clock() + PAGE_TTL
            )
        except Exception:
            signed_in("page", "failed")
            raise
        signed_in("page", "completed")
        await seen_signing_in(self.store, signed.person.oid, signed.person.name or None)
        return see_other(f"{SIGNED_IN_PATH}?key={key}")

    async def signed_in(self, request: Any) -> Any:
        """``GET /oauth/signed-in?key=…`` (same-site: the cookie arrives): map the browser, go on."""
        now = self._clock()
        cookie = cookie_of(request)
        held = await self.store.broker_take(PAGE_SIGNED, request.query_params.get("key", ""), now)
        if held is None:
            return notice(
                "Link expired",
                "This sign-in link has expired or was already used. Open the page again.",
                status=400,
            )
        signed = _PageSigned.model_validate_json(held)
        if cookie is None or not hmac.compare_digest(browser_id(cookie), signed.browser):
            return notice(
                "Wrong browser",
                "This sign-in was started in another browser. Open the page again in the browser you use.",
                status=400,
            )
        await remember_person(self.store, cookie, signed.person, now)
        return see_other(signed.return_to)

    async def _kept(self, step: Any) -> bool:
        from pcref_mcp.team.proxy import store_failures

        try:
            await step
        except store_failures():
            log.warning("the shared store did not answer a page sign-in")
            return False
        return True


async def start_page_sign_in(proxy_or_signin: Any, request: Any, return_to: str) -> Any:
    """Sign this browser in for one of our pages, then come back to ``return_to`` (a path on this
    server; anything else raises ValueError). ``proxy_or_signin``: the :class:`PageSignIn` (or an
    object with a ``page_sign_in`` attribute: the :class:`~pcref_mcp.team.proxy.EntraProxy`, the
    server's ``team`` parts)."""
    pages = proxy_or_signin if isinstance(proxy_or_signin, PageSignIn) else proxy_or_signin.page_sign_in
    return await pages.start(request, return_to)


async def read_answer(request: Any) -> dict[str, str]:
    """The identity provider's answer at the callback: the posted form (form_post), else the query."""
    answer = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
    return answer or dict(request.query_params)


async def page_callback(pages: PageSignIn, request: Any) -> Any:
    """``/oauth/callback`` in direct mode: only our pages sign in through it."""
    from pcref_mcp.team.proxy import store_failures

    answer = await read_answer(request)
    try:
        done = await pages.finish(answer.get("state", ""), answer)
    except store_failures():
        return busy_page()
    return done or notice(
        "Link expired", "This sign-in link has expired or was already used. Start again.", status=400
    )


async def signed_in_route(pages: PageSignIn, request: Any) -> Any:
    from pcref_mcp.team.proxy import store_failures

    try:
        return await pages.signed_in(request)
    except store_failures():
        return busy_page()
