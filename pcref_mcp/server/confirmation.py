"""How a person approves a write: elicitation when the client can ask, a confirm token otherwise.

Each write tool declares two resolvers: its planner (validate + preview, reads only) and the
approval made here from it. The approval asks the person through the client (MCP elicitation, on
both protocol eras) or, for a client without elicitation, hands back a single-use token bound to
the tool, the exact plan and the referral's ETag. With ``require_elicitation`` set, clients that
cannot ask are refused instead (fail closed).
"""

# No ``from __future__ import annotations`` here: the resolver's Annotated[..., Resolve(planner)]
# must be evaluated in the closure that knows ``planner``.

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, Field

from pcref_mcp.errors import ConfirmationError, PcrefError, StaleConfirmation
from pcref_mcp.writes.preview import WritePlan, changed_since, snapshot


class Approval(BaseModel):
    """The question shown to the person (flat, as elicitation requires)."""

    approve: bool = Field(description="Send this change to Partner Center?")


class TokenIssued(BaseModel):
    token: str
    stale: bool = False
    changed: list[str] = Field(default_factory=list)


class TokenRedeemed(BaseModel):
    via: Literal["token"] = "token"


def tool_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn our errors into ToolErrors so the model reads the message (others are withheld)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except PcrefError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


def runtime_of(ctx: Context) -> Any:
    """The server's Runtime (held by the lifespan state, see server.app.State)."""
    state: Any = ctx.request_context.lifespan_context
    return state.runtime


def settings_of(ctx: Context) -> Any:
    state: Any = ctx.request_context.lifespan_context
    return state.settings


def can_elicit_form(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, "2026-07-28"):
        return True
    return bool(ctx.session.can_send_request)


def plan_fingerprint(plan: WritePlan) -> dict[str, str]:
    material = {
        "kind": plan.kind,
        "referral": plan.referral_id,
        "ops": plan.wire_operations,
        "bodies": plan.bodies,
        "undo": plan.undo_of,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return {"plan": digest}


def approval_for(planner: Callable[..., Awaitable[WritePlan]]) -> Callable[..., Awaitable[Any]]:
    """The approval resolver for one write tool, depending on that tool's planner."""

    async def approve(
        ctx: Context,
        confirm_token: str | None,
        plan: Annotated[WritePlan, Resolve(planner)],
    ) -> Any:
        runtime = runtime_of(ctx)
        tokens = runtime.tokens
        fingerprint = plan_fingerprint(plan)
        if confirm_token:
            try:
                tokens.redeem(confirm_token, tool=plan.tool, arguments=fingerprint, etag=plan.etag)
            except StaleConfirmation:
                changed = _changed_fields(tokens.peek_snapshot(confirm_token), plan)
                return TokenIssued(token=_issue(tokens, plan, fingerprint), stale=True, changed=changed)
            except ConfirmationError as exc:
                raise ToolError(str(exc)) from exc
            return TokenRedeemed()
        if can_elicit_form(ctx):
            return Elicit(plan.preview_text() + "\n\nSend this to Partner Center?", Approval)
        if settings_of(ctx).require_elicitation:
            raise ToolError(
                "This server is set to require confirmation through the client (elicitation), and this "
                "client does not offer it; nothing was written. Use a client with elicitation support, "
                "or unset PCREF_REQUIRE_ELICITATION."
            )
        return TokenIssued(token=_issue(tokens, plan, fingerprint))

    approve.__name__ = approve.__qualname__ = f"approve_{planner.__name__}"
    return approve


def _issue(tokens: Any, plan: WritePlan, fingerprint: dict[str, str]) -> str:
    token: str = tokens.issue(
        tool=plan.tool, arguments=fingerprint, etag=plan.etag, snapshot=snapshot(plan.referral)
    )
    return token


def _changed_fields(before: dict[str, Any], plan: WritePlan) -> list[str]:
    if plan.referral is None:
        return []
    return [f"{c.field}: {c.before!r} → {c.after!r}" for c in changed_since(before, plan.referral)]
