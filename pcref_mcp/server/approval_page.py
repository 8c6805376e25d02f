"""The approval page: a person approves a write in their own browser, where the model cannot click.

``PCREF_APPROVAL_POLICY`` chooses how writes are approved (the README's safety model):

=============  ==============================================================================
``token``      the client asks the person (elicitation) where it can; otherwise the model sends
               back a confirm token after showing the preview (single-user default)
``page``       always on this page: clients that declare URL-mode elicitation open it for the
               person; others get the link in the answer for the model to show. A confirm token
               alone never writes
``strictest``  per client, the strictest it supports: URL-mode elicitation, else the client's own
               question (form elicitation), else the page link; never a token alone (team default)
=============  ==============================================================================

Who may see and decide a page: in team mode the person it belongs to, signed in as themselves
(:class:`PageSignIn`, the team server's browser sign-in); in single-user mode the browser that first
opens the one-time secret link. A decision is recorded once
(:class:`~pcref_mcp.writes.page_approvals.PageApprovals`); the MCP call then writes, once.

The page is served by the HTTP app that serves MCP (``serve --http``, ``team``); over stdio a small
server on a loopback port starts the first time a page is needed, and stops with the MCP server.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlparse

from pcref_mcp.server import pages

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.server.runtime import Runtime
    from pcref_mcp.writes.approvals import Claims
    from pcref_mcp.writes.page_approvals import PageApprovals, Ticket
    from pcref_mcp.writes.preview import WritePlan

__all__ = ["PATH", "ApprovalPages", "PageSignIn", "Policy"]

log = logging.getLogger("pcref_mcp.server")

Policy = Literal["token", "page", "strictest"]
PATH = "/approvals/{page_id}"
COOKIE = "pcref_page"  # a browser's own secret: binds a one-time link and the CSRF token to it


class PageSignIn(Protocol):
    """Team mode: who the browser is signed in as, and how to sign it in (the person's own account)."""

    async def person(self, request: Any) -> str | None: ...

    async def sign_in(self, request: Any, return_to: str) -> Any: ...


class ApprovalPages:
    """The policy, the page's address and its handler, for one server."""

    def __init__(self, settings: Settings, *, default_policy: Policy = "token") -> None:
        self.settings = settings
        self.policy: Policy = settings.approval_policy or default_policy
        self.base_url: str | None = None  # fixed where a public URL is known (team mode)
        self.mounted = False
        self.sign_in: PageSignIn | None = None
        self.runtime: Runtime | None = None
        self._tickets: PageApprovals | None = None
        self._tasks: Any = None
        self._loopback: str | None = None
        self._secrets: dict[str, str] = {}

    # -- wiring -------------------------------------------------------------------------------------

    def mount(self, server: Any, *, base_url: str | None = None, sign_in: PageSignIn | None = None) -> None:
        """Serve the page from ``server``'s HTTP app (call before the app is built; again: no-op route)."""
        if not self.mounted:
            server.custom_route(PATH, methods=["GET", "POST"])(self.endpoint)
        self.mounted = True
        self.base_url = base_url.rstrip("/") if base_url else None
        self.sign_in = sign_in

    def bind(self, runtime: Runtime, tasks: Any) -> None:
        """The server's lifespan: its runtime (store) and a task group for the loopback server."""
        self.runtime = runtime
        self._tasks = tasks
        self._tickets = None
        self._loopback = None

    def unbind(self, tasks: Any) -> None:
        """The lifespan ends: its loopback server (if it ran one) stops with its task group."""
        if self._tasks is tasks:
            self._tasks = None
            self._loopback = None

    @property
    def tickets(self) -> PageApprovals:
        if self._tickets is None:
            assert self.runtime is not None, "the approval page is bound in the server's lifespan"
            from pcref_mcp.writes.page_approvals import PageApprovals  # with the first page, not at start

            self._tickets = PageApprovals(self.runtime.store)
        return self._tickets

    # -- used by the approval flow ------------------------------------------------------------------

    async def publish(
        self, claims: Claims, plan: WritePlan, *, handle: str, owner: str, owner_name: str | None, ttl: float
    ) -> Ticket:
        """A new page for this plan; ``handle`` is the approval it unlocks (same claims)."""
        secret = None if self.sign_in is not None else secrets.token_urlsafe(24)
        ticket = await self.tickets.open(
            claims,
            handle=handle,
            owner=owner,
            owner_name=owner_name,
            summary=plan.summary,
            preview=plan.preview_text(),
            requests=_requests(plan),
            ttl=ttl,
            link_secret=secret,
        )
        if secret is not None:
            # the one-time link's secret lives only in this process (the store keeps its digest)
            self._secrets[ticket.page_id] = secret
        return ticket

    async def url_for(self, ticket: Ticket, request_base: str | None) -> str:
        """The page's address: on this server's HTTP app, or on the loopback server (started now)."""
        base = self.base_url or (request_base if self.mounted else None) or await self._loopback_base()
        url = f"{base}{PATH.format(page_id=ticket.page_id)}"
        secret = self._secrets.get(ticket.page_id)
        return f"{url}?k={secret}" if secret else url

    # -- the page -----------------------------------------------------------------------------------

    async def endpoint(self, request: Any) -> Any:
        page_id = request.path_params["page_id"]
        ticket = await self.tickets.get(page_id) if len(page_id) <= 64 else None
        if ticket is None:
            return _gone()
        browser = request.cookies.get(COOKIE) or ""
        fresh = not browser
        if fresh:
            browser = secrets.token_urlsafe(24)
        who = await self._allowed(request, ticket, browser)
        if not isinstance(who, str):
            return who  # a sign-in redirect or a refusal
        if request.method == "POST":
            response = await self._decide(request, ticket, browser, who)
        else:
            response = await self._show(ticket, browser)
        if fresh:
            response.set_cookie(
                COOKIE,
                browser,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/approvals",
            )
        return response

    async def _allowed(self, request: Any, ticket: Ticket, browser: str) -> str | Any:
        """The person deciding (their id), or the response that stops here."""
        if self.sign_in is not None:
            person = await self.sign_in.person(request)
            if person is None:
                return await self.sign_in.sign_in(request, request.url.path)
            if person != ticket.owner:
                log.info("an approval page was opened by someone other than its person; nothing shown")
                return _not_yours()
            return person
        if await self.tickets.is_claimed_by(ticket, browser):
            return ticket.owner
        secret = request.query_params.get("k")
        if (
            request.method == "GET"
            and secret
            and ticket.link_secret_ok(secret)
            and await self.tickets.claim_link(ticket, browser)
        ):
            return ticket.owner
        return _not_yours(
            "This approval link was already opened in another browser, or it is not valid here. "
            "Nothing is shown and nothing can be approved from it."
        )

    async def _show(self, ticket: Ticket, browser: str) -> Any:
        decided = await self.tickets.decision(ticket)
        if decided is not None:
            return _decided_page(decided.decision)
        token = pages.csrf_token(ticket.page_id, browser)
        person = f"<p class='muted'>For {pages.esc(ticket.owner_name)}</p>" if ticket.owner_name else ""
        body = (
            "<h1>Approve a change to Partner Center?</h1>"
            f"{person}"
            f"<p>{pages.esc(ticket.summary)}</p>"
            "<p class='muted'>Your assistant prepared this write; it is sent only if you approve it here. "
            "Text in «…» was written by others.</p>"
            f"<section class='box' aria-label='What will change'><pre>{pages.esc(ticket.preview)}</pre></section>"
            "<details class='box' open><summary>Every request, exactly as it will be sent</summary>"
            f"<pre>{pages.esc(ticket.requests)}</pre></details>"
            f"<form method='post' action='{pages.esc(PATH.format(page_id=ticket.page_id))}'>"
            f"<input type='hidden' name='csrf' value='{token}'>"
            "<div class='actions'>"
            "<button class='approve' type='submit' name='decision' value='approve' autofocus>Approve</button>"
            "<button class='deny' type='submit' name='decision' value='decline'>Decline</button>"
            "</div></form>"
            f"<p class='muted'>{pages.esc(_expiry(ticket))}</p>"
        )
        return pages.page("Approve a change", body)

    async def _decide(self, request: Any, ticket: Ticket, browser: str, person: str) -> Any:
        form = await request.form()
        if not _same_origin(request) or not secrets.compare_digest(
            str(form.get("csrf") or ""), pages.csrf_token(ticket.page_id, browser)
        ):
            return pages.page(
                "Not approved",
                "<h1>Nothing was approved</h1><p>This form did not come from this page. Open the approval "
                "link again and use its buttons.</p>",
                status=403,
            )
        choice = form.get("decision")
        if choice not in ("approve", "decline"):
            return pages.page("Not approved", "<h1>Choose Approve or Decline.</h1>", status=400)
        decision: Literal["approved", "declined"] = "approved" if choice == "approve" else "declined"
        if not await self.tickets.decide(ticket, decision, by=person):
            decided = await self.tickets.decision(ticket)
            return _decided_page(decided.decision if decided else None, again=True)
        log.info("a write was %s on the approval page", decision)
        return _decided_page(decision)

    # -- the loopback server (stdio) ------------------------------------------------------------------

    async def _loopback_base(self) -> str:
        if self._loopback is None:
            if self._tasks is None:
                raise RuntimeError("the approval page needs the server's lifespan")
            self._loopback = await self._tasks.start(self._serve_loopback)
        return self._loopback

    async def _serve_loopback(self, *, task_status: Any) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route(PATH, self.endpoint, methods=["GET", "POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = _quiet_server(config)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        log.info("approval pages on %s", base)
        task_status.started(base)
        try:
            await server.serve(sockets=[sock])
        finally:
            sock.close()


def _quiet_server(config: Any) -> Any:
    """A uvicorn server that leaves the process's signal handlers alone: the MCP server (stdio)
    owns SIGINT/SIGTERM, and this page server simply stops with the server's lifespan."""
    from contextlib import contextmanager

    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Any:
            yield

    return QuietServer(config)


def request_base(request: Any) -> str | None:
    """The scheme and host an MCP request reached us by (already checked by the Host allow-list)."""
    if request is None:
        return None
    host = request.headers.get("host")
    return f"{request.url.scheme}://{host}" if host else None


def _requests(plan: WritePlan) -> str:
    material: dict[str, Any] = {}
    if plan.operations:
        material["patch"] = plan.wire_operations
    if plan.bodies:
        material["bodies"] = plan.bodies
    if plan.referral_id:
        material["referral"] = plan.referral_id
    if plan.etag:
        material["if_match"] = plan.etag
    return json.dumps(material, indent=2, ensure_ascii=False, default=str)


def _same_origin(request: Any) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host")


def _expiry(ticket: Ticket) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(ticket.expires, dt.UTC).strftime("%H:%M UTC")
    return f"This approval can be given until {when}; after that the assistant must prepare it again."


def _gone() -> Any:
    return pages.page(
        "Approval not open",
        "<h1>This approval is not open</h1><p>It expired, or the address is wrong. Nothing will be written "
        "from it; ask your assistant to prepare the change again.</p>",
        status=404,
    )


def _not_yours(message: str | None = None) -> Any:
    return pages.page(
        "Not yours to approve",
        "<h1>Not yours to approve</h1><p>"
        + pages.esc(message or "This approval belongs to someone else. Nothing is shown here.")
        + "</p>",
        status=403,
    )


def _decided_page(decision: str | None, *, again: bool = False) -> Any:
    lead = "<p class='muted'>This approval was already decided.</p>" if again else ""
    if decision == "approved":
        body = (
            "<h1>Approved</h1><p>Your assistant will send the change now (once). You can close this page.</p>"
        )
    elif decision == "declined":
        body = "<h1>Declined</h1><p>Nothing will be written. You can close this page.</p>"
    else:
        body = "<h1>This approval is closed</h1><p>Nothing more can be done from this page.</p>"
    return pages.page("Approval", lead + body, status=409 if again else 200)
