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
"""

# No ``from __future__ import annotations`` here: the resolver's Annotated[..., Resolve(planner)]
# must be evaluated in the closure that knows ``planner``.

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import AcceptedElicitation, ElicitationResult
from mcp.types import MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, Field, ValidationError

from pcref_mcp import identity
from pcref_mcp.errors import ConfirmationError, PcrefError, StaleConfirmation
from pcref_mcp.writes.approvals import Claims
from pcref_mcp.writes.preview import WritePlan, changed_since, snapshot

log = logging.getLogger("pcref_mcp.server")

MODERN = "2026-07-28"


class Approval(BaseModel):
    """The question shown to the person (flat, as elicitation requires)."""

    approve: bool = Field(description="Send this change to Partner Center?")


class Decision(BaseModel):
    """What the approval resolver hands the tool body (server.tools._finish)."""

    outcome: Literal["approved", "declined", "cancelled", "timeout", "token"]
    token: str | None = None
    stale: bool = False
    changed: list[str] = Field(default_factory=list)
    note: str | None = None


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


def runtime_of(ctx: Context) -> Any:
    """The server's Runtime (held by the lifespan state, see server.app.State)."""
    state: Any = ctx.request_context.lifespan_context
    return state.runtime


def settings_of(ctx: Context) -> Any:
    state: Any = ctx.request_context.lifespan_context
    return state.settings


def is_modern(ctx: Context) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, MODERN)


def can_elicit_form(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return is_modern(ctx) or bool(ctx.session.can_send_request)


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


def claims_for(ctx: Context, plan: WritePlan) -> Claims:
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
        if confirm_token or not is_modern(ctx) or not can_elicit_form(ctx):
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
        if ref is not None:
            return await _answered(ctx, plan, ref, asked)
        if confirm_token:
            return await _redeem(ctx, plan, confirm_token)
        if can_elicit_form(ctx):
            return await _ask_live(ctx, plan)
        if settings_of(ctx).require_elicitation:
            _refuse_without_elicitation(ctx)
        return Decision(outcome="token", token=await _issue(ctx, plan))

    for fn, role in ((reference, "reference"), (ask, "ask"), (approve, "approve")):
        fn.__name__ = fn.__qualname__ = f"{role}_{planner.__name__}"
    return approve


# --- private -----------------------------------------------------------------------------------------


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
    return Decision(outcome="approved")


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
        log.info("the client answered the approval question with error %s; using a confirm token", exc.code)
        note = f"The client could not show the approval question (error {exc.code})."
        return Decision(outcome="token", token=await _issue(ctx, plan, fallback=True), note=note)
    except (ValueError, ValidationError) as exc:
        raise ToolError(
            "The client's answer to the approval question was malformed; nothing was written."
        ) from exc
    if isinstance(result, AcceptedElicitation):
        return Decision(outcome="approved" if result.data.approve else "declined")
    return Decision(outcome="declined" if result.action == "decline" else "cancelled")


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
