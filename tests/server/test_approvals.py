"""Approvals through MCP: tokens a model can copy (short, single use, bound to owner/tool/plan/ETag,
refused where the person can be asked), the co-sell binding, 2026 rounds that cannot be replayed,
an approval timeout, the fallback when a client answers elicitation with an error, and
`notifications/resources/updated` for a subscribed referral after our own write."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import ElicitRequestFormParams, ElicitResult, ErrorData, InputRequiredResult

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.writes.approvals import TOKEN_MAX_LENGTH
from tests.server.conftest import Sandbox, call, call_error
from tests.server.test_write_tools import _active, _new_referral, _update

pytestmark = pytest.mark.anyio


async def test_tokens_are_short_single_use_and_survive_a_new_runtime(
    settings: Settings, sandbox: Sandbox, client: Client
) -> None:
    """Over stdio (and in memory) the owner is the person: the next process redeems the token, once."""
    target = await _active(sandbox)
    args = _update(target["id"], notes="Token from the previous process")
    first = await call(client, "update_field", args)
    token = first["confirm_token"]
    assert len(token) <= TOKEN_MAX_LENGTH
    assert "valid 5 min, once" in first["message"]

    for attempt in range(2):
        fresh = Runtime(settings, sandbox_app=sandbox.app)  # a new process: own key cache, same data dir
        try:
            async with Client(build_server(settings, runtime=fresh)) as other:
                if attempt == 0:
                    done = await call(other, "update_field", {**args, "confirm_token": token})
                    assert done["status"] == "applied", done
                else:  # the planner now says "nothing to change"; the store says why it could not write twice
                    pending = await fresh.approvals.peek(token)
                    assert pending is not None and pending.spent is not None
        finally:
            await fresh.aclose()
    assert (await sandbox.get(target["id"]))["details"]["notes"] == "Token from the previous process"


async def test_a_token_is_refused_in_a_session_that_can_ask(
    server: Any, client: Client, sandbox: Sandbox
) -> None:
    target = await _active(sandbox)
    args = _update(target["id"], notes="Never via a token here")
    token = (await call(client, "update_field", args))["confirm_token"]
    asked: list[str] = []

    async def answer(ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    for mode in ("legacy", "auto"):
        async with Client(server, mode=mode, elicitation_callback=answer) as c:  # type: ignore[arg-type]
            msg = await call_error(c, "update_field", {**args, "confirm_token": token})
        assert "can ask the person directly" in msg and "nothing was written" in msg
    assert not asked
    assert (await sandbox.get(target["id"]))["eTag"] == target["eTag"]


async def test_cosell_token_with_a_different_help_note_or_code_is_refused(
    client: Client, sandbox: Sandbox
) -> None:
    """Issue 11: the Microsoft-side body (help note, assistance code) is bound like the partner's."""
    before = await sandbox.count()
    args = _new_referral("co_sell")
    token = (await call(client, "create_referral", args))["confirm_token"]
    for swap in (
        {"help_notes": "Send me the customer's CFO contacts"},
        {"assistance_request_code": "GeneralOrOther"},
    ):
        changed = {"referral": {**args["referral"], **swap}}
        msg = await call_error(client, "create_referral", {**changed, "confirm_token": token})
        assert "arguments differ" in msg, msg
    assert await sandbox.count() == before
    done = await call(client, "create_referral", {**args, "confirm_token": token})
    assert done["status"] == "applied" and len(done["created"]) == 2


async def test_cosell_preview_binds_both_bodies(runtime: Runtime, sandbox: Sandbox) -> None:
    """plan.bodies == [partner body, Microsoft body template]: the binding covers both."""
    from pcref_mcp.referrals.write_models import NewReferral
    from pcref_mcp.server.confirmation import plan_fingerprint

    plan = await runtime.engine.plan_create(NewReferral.model_validate(_new_referral("co_sell")["referral"]))
    assert len(plan.bodies) == 2
    digest = plan_fingerprint(plan)
    text = str(plan.bodies[1])
    assert "Need a PoC sponsor" in text and "ProofOfConceptOrDemo" in text
    plan.bodies[1] = {**plan.bodies[1], "x": 1}
    assert plan_fingerprint(plan) != digest


# --- 2026-07-28 input-required rounds --------------------------------------------------------------


async def _ask(c: Client, args: dict[str, Any]) -> InputRequiredResult:
    """Round 1, raw: the update asks its approval question."""
    first = await c.session.call_tool("update_field", args, allow_input_required=True)  # type: ignore[union-attr]
    assert isinstance(first, InputRequiredResult), first
    return first


def _accepting(first: InputRequiredResult, answer: dict[str, Any]) -> dict[str, ElicitResult]:
    (key,) = first.input_requests
    return {key: ElicitResult(action="accept", content=answer)}


async def _answer(c: Client, args: dict[str, Any], first: InputRequiredResult, responses: Any) -> Any:
    """Round 2, raw: the same call again, carrying ``responses`` and round 1's request state."""
    return await c.session.call_tool(  # type: ignore[union-attr]
        "update_field",
        args,
        input_responses=responses,
        request_state=first.request_state,
        allow_input_required=True,
    )


async def _rounds(c: Client, args: dict[str, Any], answer: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Round 1 (the question) and round 2 (the accepted answer), raw."""
    first = await _ask(c, args)
    responses = _accepting(first, answer)
    return first, responses, await _answer(c, args, first, responses)


async def test_replayed_2026_round_does_not_write_again(
    server: Any, runtime: Runtime, sandbox: Sandbox
) -> None:
    """Issue 16 point 4: an accepted round replayed after the referral was set back asks again."""

    async def unused(ctx: Any, params: Any) -> ElicitResult:  # declares the capability
        raise AssertionError("raw rounds only")

    target = await _active(sandbox)
    original = target["details"].get("notes")
    args = _update(target["id"], notes="Written once")
    async with Client(server, elicitation_callback=unused) as c:  # type: ignore[arg-type]
        first, responses, second = await _rounds(c, args, {"approve": True})
        assert (
            not isinstance(second, InputRequiredResult) and second.structured_content["status"] == "applied"
        )
        message = first.input_requests[next(iter(first.input_requests))].params.message
        assert "Written once" in message and "(approval " in message

        # someone sets the referral back to its earlier content; the same round is replayed
        await sandbox.patch(target["id"], [{"op": "replace", "path": "/details/notes", "value": original}])
        etag_back = (await sandbox.get(target["id"]))["eTag"]
        replay = await _answer(c, args, first, responses)
        assert isinstance(replay, InputRequiredResult), replay  # asked again, nothing written
        again = replay.input_requests[next(iter(replay.input_requests))].params.message
        assert again != message
        stored = await sandbox.get(target["id"])
        assert stored["eTag"] == etag_back and stored["details"].get("notes") == original

        # replayed again, and answered again with the old answer: still asked, never written
        applied = len(await runtime.journal.recent(100))
        replay2 = await _answer(c, args, first, responses)
        assert isinstance(replay2, InputRequiredResult) or replay2.is_error
        assert len(await runtime.journal.recent(100)) == applied == 1


async def test_2026_answer_for_a_changed_referral_asks_again(server: Any, sandbox: Sandbox) -> None:
    async def unused(ctx: Any, params: Any) -> ElicitResult:
        raise AssertionError("raw rounds only")

    target = await _active(sandbox)
    args = _update(target["id"], deal_value=4242)
    async with Client(server, elicitation_callback=unused) as c:  # type: ignore[arg-type]
        first = await _ask(c, args)
        await sandbox.patch(target["id"], [{"op": "replace", "path": "/details/notes", "value": "colleague"}])
        second = await _answer(c, args, first, _accepting(first, {"approve": True}))
        assert isinstance(second, InputRequiredResult)  # the answer was for the old ETag
    assert (await sandbox.get(target["id"]))["details"].get("dealValue") != 4242


# --- 2025 era: timeout, late answers, clients that answer with an error ----------------------------


async def test_unanswered_approval_times_out_and_a_late_answer_writes_nothing(
    settings: Settings, runtime: Runtime, sandbox: Sandbox
) -> None:
    server = build_server(settings.model_copy(update={"approval_timeout_seconds": 1}), runtime=runtime)
    release = anyio.Event()

    async def slow(ctx: Any, params: Any) -> ElicitResult:
        await release.wait()  # the person answers after the server gave up (if the client still asks)
        return ElicitResult(action="accept", content={"approve": True})

    target = await _active(sandbox)
    async with Client(server, mode="legacy", elicitation_callback=slow) as c:  # type: ignore[arg-type]
        out = await call(c, "update_field", _update(target["id"], notes="Too late"))
        assert out["status"] == "cancelled" and "in time" in out["message"]
        release.set()
        await call(c, "get_referral", {"referral_id": target["id"]})  # the session still works
    stored = await sandbox.get(target["id"])
    assert stored["eTag"] == target["eTag"] and stored["details"].get("notes") != "Too late"
    assert await runtime.journal.recent(10) == []


async def test_elicitation_answered_with_an_error_falls_back_to_a_token(
    server: Any, sandbox: Sandbox
) -> None:
    async def refuses(ctx: Any, params: Any) -> ErrorData:
        assert isinstance(params, ElicitRequestFormParams)
        return ErrorData(code=-32601, message="Method not found")

    target = await _active(sandbox)
    args = _update(target["id"], notes="Via the fallback token")
    async with Client(server, mode="legacy", elicitation_callback=refuses) as c:  # type: ignore[arg-type]
        first = await call(c, "update_field", args)
        assert first["status"] == "confirmation_required" and "-32601" in first["message"]
        done = await call(c, "update_field", {**args, "confirm_token": first["confirm_token"]})
        assert done["status"] == "applied"
    assert (await sandbox.get(target["id"]))["details"]["notes"] == "Via the fallback token"


# --- subscriptions ---------------------------------------------------------------------------------


async def test_our_write_notifies_a_subscribed_referral(
    server: Any, client: Client, sandbox: Sandbox
) -> None:
    """2026-07-28 advertises resource subscriptions: a write of ours announces the referral it changed."""
    target, other = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[:2]
    caps = client.session.server_capabilities  # type: ignore[union-attr]
    assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
    uri = f"referral://{target['id']}"
    async with client.listen(resource_subscriptions=[uri, f"referral://{other['id']}"]) as sub:
        args = _update(target["id"], notes="Announce me")
        token = (await call(client, "update_field", args))["confirm_token"]
        await call(client, "update_field", {**args, "confirm_token": token})
        with anyio.fail_after(10):
            event = await sub.__anext__()
    assert str(event.uri) == uri
