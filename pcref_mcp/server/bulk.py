"""batch_update's plan and answer: items, a CSV import or a batch undo become one BatchPlan, approved
once through the same approval resolver as every write, then sent item by item with progress.

The tool itself is declared in server/tools.py (one place for every tool); this module holds what
it does, so the tool stays a few lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import ElicitationResult
from pydantic import BaseModel

from pcref_mcp.errors import Answered, InvalidInput, PcrefError
from pcref_mcp.referrals import when
from pcref_mcp.referrals.edits import Edit
from pcref_mcp.server.confirmation import NotSent, approved_or_not_sent, runtime_of
from pcref_mcp.server.inputs import ReadAs

if TYPE_CHECKING:  # the batch planner loads with the first batch, not with the tool list
    from pcref_mcp.writes.batch import BatchPlan
    from pcref_mcp.writes.pipeline_store import PipelineStore


class BatchResult(BaseModel):
    status: Literal[
        "applied", "unchanged", "partial", "confirmation_required", "declined", "cancelled", "stale"
    ]
    message: str
    batch_id: str | None = None
    items: list[str]
    confirm_token: str | None = None
    approval_url: str | None = None
    read_as: ReadAs = None


async def plan(
    ctx: Context,
    items: Sequence[tuple[str, list[Edit]]] | None,
    csv: str | None,
    undo: str | None,
) -> BatchPlan:
    """Exactly one source: items, csv or undo; at most MAX_ITEMS items; each planned by the engine."""
    from pcref_mcp.writes import batch as batching
    from pcref_mcp.writes.batch import MAX_ITEMS, BatchRequest

    given = [name for name, value in (("items", items), ("csv", csv), ("undo", undo)) if value]
    if len(given) != 1:
        raise InvalidInput(
            "Give exactly one of items (changes to referrals), csv (rows to import) or undo (a batch_id)"
            + (f"; got {' and '.join(given)}." if given else "; got none."),
            hint="Nothing was sent. Ask the person which they meant; changes and an import are two calls.",
        )
    runtime = runtime_of(ctx)
    mode: batching.Mode
    if items:
        mode = "update"
        requests = [
            BatchRequest(label=f"referral {rid}", referral_id=rid, changes=list(changes))
            for rid, changes in items
        ]
    elif csv:
        from pcref_mcp.server.exchange import import_requests

        mode = "import"
        requests = await import_requests(runtime.client, csv)
    else:
        mode = "undo"
        requests = await batching.undo_requests(pipeline_store(runtime), str(undo))
    if len(requests) > MAX_ITEMS:
        raise InvalidInput(
            f"A batch holds at most {MAX_ITEMS} items; this one has {len(requests)}. Split it into batches "
            f"of {MAX_ITEMS} or fewer.",
            field="items",
        )
    if not requests:
        raise InvalidInput("The batch is empty: there is nothing to plan.", field=given[0])

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total * 2, message)

    batch = await batching.plan_batch(runtime.engine, requests, mode, progress)
    if mode == "undo":
        batch.undo_batch = str(undo).strip()
        batch.summary += f" (undo of batch {batch.undo_batch})"
    if not batch.to_send and not any(e.refused for e in batch.entries):  # a normal answer: nothing to do
        message = nothing_to_send(batch).replace(
            "Nothing to send, so nothing was asked or written", "Nothing to change"
        )
        lines = [batching.entry_line(e) for e in batch.entries]
        raise Answered(message, BatchResult(status="unchanged", message=message, items=lines))
    if not batch.to_send:  # refused before the approval resolver would ask about an empty batch
        raise InvalidInput(nothing_to_send(batch))
    return batch


async def finish(ctx: Context, batch: BatchPlan, approval: ElicitationResult[Any]) -> BatchResult:
    """Nothing sent unless approved; then every item sent on its own, with progress, and reported."""
    from pcref_mcp.writes import batch as batching

    lines = batch.preview_lines()
    decision = approved_or_not_sent(
        ctx,
        approval,
        "the batch",
        ask=f"{batch.summary}. Show every item to the person.",
        tool="batch_update",
        stale_lead=_stale_lead,
    )
    if isinstance(decision, NotSent):
        return BatchResult(**decision._asdict(), items=lines)
    runtime = runtime_of(ctx)
    planned = len(batch.entries)
    sending = len(batch.to_send)

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(planned + done, planned + sending, message)

    batch_id = await batching.execute_batch(runtime.engine, pipeline_store(runtime), batch, progress)
    tally = batching.counts(batch)
    applied = tally.get("applied", 0)
    told = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(tally.items()))
    return BatchResult(
        status="applied" if applied == sending else "partial",
        message=f"Batch {batch_id}: {told}"
        + (" as previewed" if decision.previewed else "")
        + ". Each applied item has its change_id; undo the whole batch with "
        f'batch_update {{"undo":"{batch_id}"}}.',
        batch_id=batch_id,
        items=[batching.entry_line(e, previewed=decision.previewed) for e in batch.entries],
    )


def _stale_lead(changed: list[str]) -> str:
    return (
        "A referral in the batch changed since the earlier preview"
        + (" (" + "; ".join(changed) + ")" if changed else "")
        + "; nothing was written. This is the new preview. "
    )


def nothing_to_send(batch: BatchPlan) -> str:
    """Why no item of a batch can be sent: each refused item with its reason, the unchanged counted."""
    from pcref_mcp.writes import batch as batching

    refused = [batching.entry_line(e) for e in batch.entries if e.refused or e.notes]
    unchanged = sum(1 for e in batch.entries if e.unchanged)
    return (
        "Nothing to send, so nothing was asked or written: "
        + (f"{unchanged} item(s) already match Partner Center" if unchanged else "")
        + ("; " if unchanged and refused else "")
        + (
            f"{sum(1 for e in batch.entries if e.refused)} refused"
            if any(e.refused for e in batch.entries)
            else ""
        )
        + "."
        + ("\n" + "\n".join(refused) if refused else "")
    )


def pipeline_store(runtime: Any) -> PipelineStore:
    """The runtime's batches and feed snapshots (in its store, shared by every replica)."""
    store: PipelineStore = runtime.pipeline
    return store


async def feed(ctx: Context, since: str) -> tuple[list[Any], list[str]]:
    """recent_changes with since: own journaled writes, and the referrals updated since (the first
    line says from when, how many, and whether the list was cut short)."""
    from pcref_mcp.writes import feed as feeds

    runtime = runtime_of(ctx)
    cutoff = feeds.parse_since(since, when.now())  # the same today as every other date read
    try:  # what the probe saw the service do with $orderby, $skip and @odata.count
        capabilities = await runtime.query_capabilities(feeds.FEATURES_USED)
    except PcrefError:
        capabilities = None  # then neither $skip nor @odata.count is relied on
    got = await feeds.changes_since(
        runtime.client, pipeline_store(runtime), runtime.journal, cutoff, capabilities
    )
    note = (
        f"Since {cutoff.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC: {len(got.referrals)} referral(s) updated, "
        f"{len(got.writes)} of your writes"
    )
    if got.incomplete:
        note += f"; {got.incomplete}"
    return got.writes, [note + ".", *got.referrals]
