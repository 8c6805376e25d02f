"""How a person approves a write: elicitation when the client can ask, a confirm token otherwise.

Each write tool declares two resolvers: its planner (validate + preview, reads only) and the
approval made here from it. Whichever way the approval comes, it is bound to the same claims
(``writes.approvals.Claims``): the owner (:func:`approval_owner`), the tool, a digest of every byte
the write may send (:func:`plan_fingerprint`) and the previewed ETag.

- 2025-era clients with elicitation are asked live, within :data:`approval_timeout_seconds`; no
  answer in time ends the call "cancelled, nothing written", and a late answer is dropped. A
  client that declares elicitation but answers the request with a JSON-RPC error gets the
  confirm-token path instead (and only such a session may then redeem a token).
- 2026-07-28 clients are asked in an input-required round. The question names a single-use
  approval reference kept in the approval store, so replaying an accepted round (even after the
  referral was set back to its earlier content) cannot write again: the reference is spent, a new
  one is issued, the question differs and the person is asked again.
- Clients without elicitation get a confirm token: a short handle the store redeems once. Never
  accepted in a session that can ask the person (there the approval comes by elicitation only).
- With ``require_elicitation`` set, clients that cannot ask are refused instead (fail closed); a
  2026 client gets the specification's missing-capability error (-32021).
- Under the ``page`` and ``strictest`` policies (:mod:`pcref_mcp.server.approval_page`) the person
  approves on pcref-mcp's own page, where neither the client nor the model can click: clients that
  declare URL-mode elicitation are sent there (a live session waits for the click; a stateless
  request gets -32042 and retries), others get the page's link in the answer. A confirm token alone
  never approves there; the model's next call with the page's handle writes only after the click.
"""

# No ``from __future__ import annotations`` here: the resolver's Annotated[..., Resolve(planner)]
# must be evaluated in the closure that knows ``planner``.

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

import anyio
from mcp import MCPError, UrlElicitationRequiredError
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import AcceptedElicitation, ElicitationResult
from mcp.types import MISSING_REQUIRED_CLIENT_CAPABILITY, ElicitRequestURLParams
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, Field, ValidationError

from pcref_mcp import calls, identity, metrics
from pcref_mcp.errors import ConfirmationError, PcrefError, StaleConfirmation
from pcref_mcp.server.approval_page import ApprovalPages, request_base
from pcref_mcp.writes.preview import WritePlan, changed_since, snapshot

if TYPE_CHECKING:  # the approval store and the page's tickets load with the first write
    from pcref_mcp.config import Settings
    from pcref_mcp.server.runtime import Runtime
    from pcref_mcp.writes.approvals import Claims
    from pcref_mcp.writes.page_approvals import Ticket

log = logging.getLogger("pcref_mcp.server")

MODERN = "2026-07-28"
PAGE_POLL_SECONDS = 0.5  # a live URL-mode approval looks for the person's click this often

# How each policy reaches the person, by what the client can do: "url" (URL-mode elicitation to our
# page), "form" (the client asks), "link" (our page's link in the answer), "token" (the model sends a
# confirm token back after showing the preview).
Channel = Literal["url", "form", "link", "token"]


class Approval(BaseModel):
    """The question shown to the person (flat, as elicitation requires)."""

    approve: bool = Field(description="Send this change to Partner Center?")


class Decision(BaseModel):
    """What the approval resolver hands the tool body (server.tools._finish)."""

    outcome: Literal["approved", "declined", "cancelled", "timeout", "token", "page"]
    token: str | None = None
    url: str | None = None  # "page": where the person approves
    stale: bool = False
    changed: list[str] = Field(default_factory=list)
    note: str | None = None
    previewed: bool = False  # approved with a confirm token: the model was given the preview with it


def not_approved(decision: Decision, what: str) -> tuple[Literal["declined", "cancelled"], str] | None:
    """The status and message of a write the person did not approve (``what``: "the change"), or None."""
    if decision.outcome not in ("declined", "cancelled", "timeout"):
        return None
    why = {
        "declined": f"the person declined {what}",
        "cancelled": f"the person cancelled {what}",
        "timeout": "no answer to the approval question came in time, so it was cancelled",
    }[decision.outcome]
    return ("declined" if decision.outcome == "declined" else "cancelled"), f"Nothing was written: {why}."


def tool_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn our errors into ToolErrors so the model reads the message. Anything else is a bug: its
    text stays in the server's log, and the model reads what to do next (a write may have been sent
    before the failure, so it must look before repeating one)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except PcrefError as exc:
            raise ToolError(str(exc)) from exc
        except (MCPError, ToolError):
            raise
        except Exception as exc:
            log.exception("%s failed unexpectedly", fn.__name__)
            raise ToolError(
                f"An internal error stopped this call ({type(exc).__name__}; the details are in the "
                "server's log). Before repeating a write, check recent_changes: it may have been sent."
            ) from exc

    return wrapper


def pending_message(decision: Decision, ttl: int, ask: str, tool: str) -> str:
    """What the model reads while a write waits for the person: ``ask`` says what to show them
    ("Show this preview to the person."), the rest how the write is completed."""
    note = f"{decision.note} " if decision.note else ""
    if decision.outcome == "page":
        return (
            note
            + "Nothing was written yet. The person approves this on its approval page, not in this chat: "
            "give them approval_url (it shows every field of every request). After they approve there, call "
            f"{tool} again with the same arguments and confirm_token; before that, nothing is written."
        )
    return (
        note + ask + f" Only if they approve, call {tool} again with the same arguments and confirm_token "
        f"(valid {max(ttl // 60, 1)} min, once)."
    )


def runtime_of(ctx: Context) -> "Runtime":
    """The server's Runtime (held by the lifespan state, see server.app.State)."""
    state: Any = ctx.request_context.lifespan_context
    runtime: Runtime = state.runtime
    return runtime


def pages_of(ctx: Context) -> ApprovalPages:
    """The approval policy and page of this server (server.app.State)."""
    state: Any = ctx.request_context.lifespan_context
    pages: ApprovalPages = state.pages
    return pages


def settings_of(ctx: Context) -> "Settings":
    """The server's settings (server.app.State)."""
    state: Any = ctx.request_context.lifespan_context
    settings: Settings = state.settings
    return settings


class NotSent(NamedTuple):
    """What the model reads of a write its approval did not send: nothing written (declined,
    cancelled, timed out), or waiting for the person (with the confirm token or approval page)."""

    status: Literal["declined", "cancelled", "stale", "confirmation_required"]
    message: str
    confirm_token: str | None = None
    approval_url: str | None = None


def approved_or_not_sent(
    ctx: Context,
    approval: ElicitationResult[Any],
    what: str,
    *,
    ask: str,
    tool: str,
    stale_lead: Callable[[list[str]], str],
) -> "Decision | NotSent":
    """The person's approval, or why nothing is sent yet, for every write tool alike: ``what`` names
    the write ("the change"), ``ask`` and ``tool`` go to :func:`pending_message`, and ``stale_lead``
    opens the message, from what changed, when the earlier preview no longer holds."""
    decision = approval.data if isinstance(approval, AcceptedElicitation) else None
    if not isinstance(decision, Decision):  # pragma: no cover - approval_for always decides
        return NotSent("cancelled", "Nothing was written.")
    refused = not_approved(decision, what)
    if refused is not None:
        return NotSent(*refused)
    if decision.outcome in ("token", "page"):
        lead = stale_lead(decision.changed) if decision.stale else ""
        ttl = int(settings_of(ctx).confirm_ttl_seconds)
        return NotSent(
            "stale" if decision.stale else "confirmation_required",
            lead + pending_message(decision, ttl, ask, tool),
            decision.token,
            decision.url,
        )
    return decision


def is_modern(ctx: Context) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, MODERN)


def can_elicit_form(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return is_modern(ctx) or bool(ctx.session.can_send_request)


def can_elicit_url(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps else None
    return elicitation is not None and elicitation.url is not None


def channel_for(ctx: Context) -> Channel:
    """How this client's person is asked, under this server's policy."""
    policy = pages_of(ctx).policy
    form = can_elicit_form(ctx)
    if policy == "token":
        return "form" if form else "token"
    if can_elicit_url(ctx):
        return "url"
    return "form" if policy == "strictest" and form else "link"


def approval_owner(ctx: Context) -> str:
    """Who may use an approval: the person the call is served for, and over HTTP the MCP session.

    Over stdio (and in memory) the process is one person's own, so the principal alone is the
    owner and a token outlives the process. Over HTTP a 2025-era session has an id the transport
    checked (``Mcp-Session-Id`` routes only to a session it created), which an approval is bound
    to; 2026-07-28 requests carry no session, so there the principal alone binds it, kept apart
    from stdio's approvals.
    """
    owner = identity.current().id
    if ctx.request_context.request is None:
        return owner
    session = (ctx.headers or {}).get("mcp-session-id")
    return f"{owner}@http:{session}" if session else f"{owner}@http"


def plan_fingerprint(plan: WritePlan) -> str:
    """A digest of every byte the executor may send for ``plan``, and the ETag it was planned on.

    Every request body (for a co-sell create, the partner body and the Microsoft-side body
    template with its engagementId placeholder), the patch operations, the kind, the referral, the
    change being undone and the external reference: change any of them and an approval given for
    the old plan no longer matches.
    """
    material = {
        "tool": plan.tool,
        "kind": plan.kind,
        "referral": plan.referral_id,
        "etag": plan.etag,
        "ops": plan.wire_operations,
        "bodies": plan.bodies,
        "undo": plan.undo_of,
        "external_ref": plan.external_ref,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def claims_for(ctx: Context, plan: WritePlan) -> "Claims":
    from pcref_mcp.writes.approvals import Claims

    return Claims(
        owner=approval_owner(ctx), tool=plan.tool, plan=plan_fingerprint(plan), etag=plan.etag or ""
    )


def question(plan: WritePlan, reference: str | None = None) -> str:
    """The text the person approves; on 2026-07-28 it names the single-use approval reference."""
    text = plan.preview_text() + "\n\nSend this to Partner Center?"
    return f"{text}\n(approval {reference.partition('.')[0][:12]})" if reference else text


def approval_for(planner: Callable[..., Awaitable[WritePlan]]) -> Callable[..., Awaitable[Any]]:
    """The approval resolver for one write tool, depending on that tool's planner."""

    async def reference(
        ctx: Context,
        confirm_token: str | None,
        plan: Annotated[WritePlan, Resolve(planner)],
    ) -> str | None:
        """On 2026-07-28: the open approval for this exact plan (the same on every round), else None."""
        if confirm_token or not is_modern(ctx) or channel_for(ctx) != "form":
            return None
        store = runtime_of(ctx).approvals
        ttl = float(settings_of(ctx).approval_timeout_seconds)
        ref: str = await store.issue(claims_for(ctx, plan), ttl=ttl, channel="elicitation", reuse=True)
        return ref

    async def ask(
        plan: Annotated[WritePlan, Resolve(planner)],
        ref: Annotated[str | None, Resolve(reference)],
    ) -> Elicit[Approval] | None:
        return Elicit(question(plan, ref), Approval) if ref else None

    async def approve(
        ctx: Context,
        confirm_token: str | None,
        plan: Annotated[WritePlan, Resolve(planner)],
        ref: Annotated[str | None, Resolve(reference)],
        asked: Annotated[ElicitationResult[Any], Resolve(ask)],
    ) -> Decision:
        channel = channel_for(ctx)
        if ref is not None or (channel == "form" and not confirm_token):
            path = "elicitation"
        else:
            path = "page" if channel in ("url", "link") else "token"
        try:
            decision = await _decide(ctx, plan, confirm_token, ref, asked, channel)
        except UrlElicitationRequiredError:  # -32042: the person is sent to the page
            metrics.count("pcref_approvals", path=path, decision="asked")
            raise
        except ToolError:
            metrics.count("pcref_approvals", path=path, decision="refused")
            raise
        metrics.count("pcref_approvals", path=path, decision=_DECISIONS[decision.outcome])
        if decision.outcome == "approved":
            calls.set_approval_path(path)  # the journal and the audit record how it was approved
        return decision

    async def _decide(
        ctx: Context,
        plan: WritePlan,
        confirm_token: str | None,
        ref: str | None,
        asked: ElicitationResult[Any],
        channel: Channel,
    ) -> Decision:
        if ref is not None:
            return await _answered(ctx, plan, ref, asked)
        if channel in ("url", "link"):
            return await _on_page(ctx, plan, confirm_token, url_mode=channel == "url")
        if confirm_token:
            return await _redeem(ctx, plan, confirm_token)
        if channel == "form":
            return await _ask_live(ctx, plan)
        if settings_of(ctx).require_elicitation:
            _refuse_without_elicitation(ctx)
        return Decision(outcome="token", token=await _issue(ctx, plan))

    for fn, role in ((reference, "reference"), (ask, "ask"), (approve, "approve")):
        fn.__name__ = fn.__qualname__ = f"{role}_{planner.__name__}"
    return approve


# --- private -----------------------------------------------------------------------------------------

# a decision as /metrics counts it: a token or a page link issued is an approval asked for
_DECISIONS = {
    "approved": "approved",
    "declined": "declined",
    "cancelled": "cancelled",
    "timeout": "expired",
    "token": "asked",
    "page": "asked",
}


async def _answered(ctx: Context, plan: WritePlan, ref: str, asked: ElicitationResult[Any]) -> Decision:
    """A 2026-07-28 answer: spend the approval reference it was given for, then go ahead."""
    if not isinstance(asked, AcceptedElicitation):
        return Decision(outcome="declined" if asked.action == "decline" else "cancelled")
    if not getattr(asked.data, "approve", False):
        return Decision(outcome="declined")
    try:
        await runtime_of(ctx).approvals.redeem(ref, claims_for(ctx, plan))
    except ConfirmationError as exc:
        raise ToolError(f"{exc} Call the tool again to be asked anew.") from exc
    return Decision(outcome="approved")


async def _redeem(ctx: Context, plan: WritePlan, token: str) -> Decision:
    store = runtime_of(ctx).approvals
    if can_elicit_form(ctx):
        pending = await store.peek(token)
        if pending is None or not pending.fallback:
            raise ToolError(
                "This client can ask the person directly, so confirm tokens are not accepted here; "
                "nothing was written. Call the tool again without confirm_token and the person will be asked."
            )
    try:
        await store.redeem(token, claims_for(ctx, plan))
    except StaleConfirmation:
        before = await store.peek(token)
        changed = _changed_fields(before.snapshot if before else {}, plan)
        return Decision(outcome="token", token=await _issue(ctx, plan), stale=True, changed=changed)
    except ConfirmationError as exc:
        raise ToolError(str(exc)) from exc
    return Decision(outcome="approved", previewed=True)


async def _ask_live(ctx: Context, plan: WritePlan) -> Decision:
    """2025-era elicitation, bounded by the approval timeout; a JSON-RPC error falls back to a token."""
    timeout = float(settings_of(ctx).approval_timeout_seconds)
    try:
        with anyio.fail_after(timeout):
            result = await ctx.elicit(question(plan), Approval)
    except TimeoutError:
        log.info("approval for %s timed out after %ss; nothing written", plan.tool, int(timeout))
        return Decision(outcome="timeout")
    except MCPError as exc:
        note = f"The client could not show the approval question (error {exc.code})."
        if pages_of(ctx).policy != "token":  # a model never approves: the person does, on the page
            log.info("the client answered the approval question with error %s; using the page", exc.code)
            decision = await _on_page(ctx, plan, None, url_mode=False)
            return decision.model_copy(update={"note": note})
        log.info("the client answered the approval question with error %s; using a confirm token", exc.code)
        return Decision(outcome="token", token=await _issue(ctx, plan, fallback=True), note=note)
    except (ValueError, ValidationError) as exc:
        raise ToolError(
            "The client's answer to the approval question was malformed; nothing was written."
        ) from exc
    if isinstance(result, AcceptedElicitation):
        return Decision(outcome="approved" if result.data.approve else "declined")
    return Decision(outcome="declined" if result.action == "decline" else "cancelled")


async def _on_page(ctx: Context, plan: WritePlan, token: str | None, *, url_mode: bool) -> Decision:
    """The person approves on our page: find or open this plan's ticket, then go by its decision.

    ``token`` is the handle the model was given with the page's link (a plain confirm token, or one
    for other arguments, is not an approval here). A repeated call for the same plan and ETag finds
    its ticket by those claims, so a stateless retry after URL-mode elicitation completes the write.
    """
    pages, approvals = pages_of(ctx), runtime_of(ctx).approvals
    claims = claims_for(ctx, plan)
    note = None
    ticket = await pages.tickets.for_handle(token) if token else None
    if token and ticket is None:
        note = (
            "A confirm token alone does not approve a write on this server (or this one is unknown or "
            "expired); the person approves on the approval page."
        )
    elif token and ticket is not None:
        pending = await approvals.peek(token)
        if pending is not None and pending.claims.owner != claims.owner:
            raise ToolError(
                "This approval belongs to another person or session; nothing was written. Call the tool "
                "without confirm_token to prepare the change for your own approval."
            )
        if pending is not None and pending.claims != claims:
            if pending.claims.etag != claims.etag:
                changed = _changed_fields(pending.snapshot, plan)
                return await _page_decision(ctx, plan, None, url_mode, stale=True, changed=changed)
            raise ToolError(
                "The arguments differ from the ones on the approval page; nothing was written. Call "
                "again without confirm_token to prepare the new change for the person's approval."
            )
    return await _page_decision(ctx, plan, ticket, url_mode, note=note)


async def _page_decision(
    ctx: Context,
    plan: WritePlan,
    ticket: "Ticket | None",
    url_mode: bool,
    *,
    note: str | None = None,
    stale: bool = False,
    changed: list[str] | None = None,
) -> Decision:
    pages, approvals = pages_of(ctx), runtime_of(ctx).approvals
    claims = claims_for(ctx, plan)
    ticket = ticket or await pages.tickets.for_claims(claims)
    if ticket is not None:
        decided = await _decided(ctx, plan, ticket)
        if decided is not None:
            return decided
    else:
        ttl = float(settings_of(ctx).approval_page_seconds)  # time to sign in and read it
        person = identity.current()
        handle = await approvals.issue(claims, ttl=ttl, channel="page", snapshot=snapshot(plan.referral))
        ticket = await pages.publish(
            claims, plan, handle=handle, owner=person.id, owner_name=person.name, ttl=ttl
        )
    url = await pages.url_for(ticket, request_base(ctx.request_context.request))
    if not url_mode:
        return Decision(
            outcome="page", token=ticket.handle, url=url, note=note, stale=stale, changed=changed or []
        )
    message = f"Approve or decline this change to Partner Center on pcref-mcp's page: {plan.summary}"
    if is_modern(ctx) or not ctx.session.can_send_request:
        # no live channel back to the client: it opens the page, then repeats the call
        raise UrlElicitationRequiredError(
            [ElicitRequestURLParams(message=message, url=url, elicitation_id=ticket.page_id)],
            message="The person approves this write on the approval page; repeat the call afterwards.",
        )
    return await _wait_for_page(ctx, plan, ticket, message, url)


async def _wait_for_page(ctx: Context, plan: WritePlan, ticket: "Ticket", message: str, url: str) -> Decision:
    """A live 2025-era session: the client opens the page for the person; wait for their click."""
    timeout = float(settings_of(ctx).approval_timeout_seconds)
    try:
        with anyio.fail_after(timeout):
            opened = await ctx.elicit_url(message, url, ticket.page_id)
            if opened.action != "accept":
                await pages_of(ctx).tickets.decide(ticket, "declined", by=identity.current().id)
                return Decision(outcome="declined" if opened.action == "decline" else "cancelled")
            while True:
                decided = await _decided(ctx, plan, ticket)
                if decided is not None:
                    break
                await anyio.sleep(PAGE_POLL_SECONDS)
    except TimeoutError:
        log.info("approval on the page for %s timed out after %ss; nothing written", plan.tool, int(timeout))
        # closed, so a click after the call ended writes nothing later either
        await pages_of(ctx).tickets.decide(ticket, "declined", by=identity.current().id)
        return Decision(outcome="timeout")
    except MCPError as exc:
        log.info("the client answered the URL-mode question with error %s; giving the link instead", exc.code)
        note = f"The client could not open the approval page (error {exc.code})."
        return Decision(outcome="page", token=ticket.handle, url=url, note=note)
    try:
        await ctx.session.send_elicit_complete(ticket.page_id)
    except Exception:  # the client has gone: the decision stands either way
        log.info("could not tell the client the approval page was completed")
    return decided


async def _decided(ctx: Context, plan: WritePlan, ticket: "Ticket") -> Decision | None:
    """The ticket's decision as the tool's outcome (spending the approval once), or None while open."""
    pages, approvals = pages_of(ctx), runtime_of(ctx).approvals
    found = await pages.tickets.decision(ticket)
    if found is None:
        return None
    if found.decision == "declined":
        await pages.tickets.forget(ticket, claims_for(ctx, plan))
        return Decision(outcome="declined")
    try:
        await approvals.redeem(ticket.handle, claims_for(ctx, plan))
    except ConfirmationError as exc:
        raise ToolError(f"{exc} The approval given on the page was for this write, once.") from exc
    return Decision(outcome="approved")


def _refuse_without_elicitation(ctx: Context) -> None:
    message = (
        "This server is set to require confirmation through the client (elicitation), and this "
        "client does not offer it; nothing was written. Use a client with elicitation support, "
        "or unset PCREF_REQUIRE_ELICITATION."
    )
    if is_modern(ctx):
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=message,
            data={"requiredCapabilities": {"elicitation": {"form": {}}}},
        )
    raise ToolError(message)


async def _issue(ctx: Context, plan: WritePlan, *, fallback: bool = False) -> str:
    ttl = float(settings_of(ctx).confirm_ttl_seconds)
    token: str = await runtime_of(ctx).approvals.issue(
        claims_for(ctx, plan), ttl=ttl, snapshot=snapshot(plan.referral), fallback=fallback
    )
    return token


def _changed_fields(before: dict[str, Any], plan: WritePlan) -> list[str]:
    if plan.referral is None:
        return []
    return [f"{c.field}: {c.before!r} → {c.after!r}" for c in changed_since(before, plan.referral)]
