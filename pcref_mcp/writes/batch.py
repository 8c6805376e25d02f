"""Many writes, one approval: plan each item with the engine's own planners, show one preview,
then send each item on its own (its own ETag, its own journal entry), linked by a batch id.

A batch never has a validator of its own: an update item is ``WriteEngine.plan_update``, a create
``plan_create``, an undo ``plan_undo``; what they refuse is listed as refused, with their reason, and
the rest is approved together. The approval binds every request's exact bytes and every item's
previewed ETag (``BatchPlan.bodies`` and ``etag``), so the confirm-token and elicitation paths need
nothing batch-specific. Items are sent one after another through the client, whose rate limiter
keeps the batch within Partner Center's 100 calls per 60 s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio

from pcref_mcp.errors import PcrefError, UndoNotPossible
from pcref_mcp.referrals.patch_paths import Edit
from pcref_mcp.referrals.untrusted import quote_at
from pcref_mcp.referrals.write_models import NewReferral
from pcref_mcp.writes.preview import WritePlan, show_value

if TYPE_CHECKING:
    from pcref_mcp.referrals.models import Referral
    from pcref_mcp.writes.engine import WriteEngine, WriteOutcome
    from pcref_mcp.writes.pipeline_store import PipelineStore

MAX_ITEMS = 50
Mode = Literal["update", "import", "undo"]
ItemOutcome = Literal["applied", "stale", "refused", "in_doubt", "failed", "partial", "unchanged", "not_sent"]
Progress = Callable[[float, float, str], Awaitable[None]]


@dataclass
class BatchRequest:
    """One item as asked: an update, a create or an undo; or a row already known to be refused."""

    label: str
    referral_id: str | None = None
    changes: list[Edit | tuple[str, Any]] = field(default_factory=list)
    create: NewReferral | None = None
    undo: int | None = None
    refused: str | None = None
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    #: the referral as the caller has just read it (a CSV import does, to compare): not read again
    current: Referral | None = None


@dataclass
class BatchEntry:
    """One item as planned (``plan``), refused (``refused``) or left alone (``unchanged``), then sent."""

    position: int
    label: str
    plan: WritePlan | None = None
    refused: str | None = None
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    outcome: ItemOutcome | None = None
    message: str | None = None
    change_id: int | None = None
    result: WriteOutcome | None = None  # the engine's answer, for what follows a write (announcements)


@dataclass
class BatchPlan(WritePlan):
    """A WritePlan whose bodies are every item's request and whose ETag digests every item's ETag."""

    mode: Mode = "update"
    entries: list[BatchEntry] = field(default_factory=list)
    undo_batch: str | None = None

    @property
    def to_send(self) -> list[BatchEntry]:
        return [e for e in self.entries if e.plan is not None]

    def preview_text(self) -> str:
        """The question a person answers: every item in full, refused ones with their reason."""
        lines = [self.summary]
        for entry in self.entries:
            if entry.plan is None:
                lines.append(entry_line(entry))
                continue
            body = entry.plan.preview_text().splitlines()
            lines.append(f"{entry.position}. {body[0]}")
            lines += [f"   {line}" for line in body[1:]]
            lines += [f"   ! {note}" for note in entry.notes]
        return "\n".join(lines)

    def preview_lines(self) -> list[str]:
        """The same items in one line each, for the model (the exact operations are in the journal)."""
        return [entry_line(e) for e in self.entries]


async def plan_batch(
    engine: WriteEngine, requests: Sequence[BatchRequest], mode: Mode, progress: Progress | None = None
) -> BatchPlan:
    """Plan every request with the engine's planners (one read each); refusals are kept, not raised."""
    entries: list[BatchEntry] = []
    seen: dict[str, int] = {}
    for n, request in enumerate(requests, start=1):
        entry = BatchEntry(n, request.label, notes=list(request.notes))
        entries.append(entry)
        key = _key(request)
        await _say_if_throttled(engine, progress, n - 1, len(requests))
        if request.refused:
            entry.refused = request.refused
        elif request.unchanged:
            entry.unchanged = True
        elif key and key in seen:
            entry.refused = (
                f"item {seen[key]} already changes this one; put all its changes in one item "
                "(the second would find it changed by the first)"
                if request.create is None
                else f"item {seen[key]} already creates a referral with this external reference id"
            )
        else:
            try:
                if request.undo is not None:
                    entry.plan = await engine.plan_undo(request.undo)
                elif request.create is not None:
                    entry.plan = await engine.plan_create(request.create)
                else:
                    assert request.referral_id is not None
                    entry.plan = await engine.plan_update(
                        request.referral_id, request.changes, current=request.current
                    )
            except PcrefError as exc:
                entry.refused = str(exc)
            if key:
                seen.setdefault(key, n)
        if progress is not None:
            await progress(n, len(requests), f"planned {n}/{len(requests)}")
    sending = [e for e in entries if e.plan is not None]
    refused = sum(1 for e in entries if e.refused)
    unchanged = sum(1 for e in entries if e.unchanged)
    verb = {"update": "Change", "import": "Import", "undo": "Undo"}[mode]
    summary = (
        f"{verb} {len(sending)} of {len(entries)} item(s) in one batch"
        + (f"; {refused} refused (not sent)" if refused else "")
        + (f"; {unchanged} unchanged" if unchanged else "")
    )
    bodies = [_bound_request(e) for e in sending]
    return BatchPlan(
        tool="batch_update",
        kind="update",
        summary=summary,
        etag=_etag_digest(sending),
        bodies=bodies,
        mode=mode,
        entries=entries,
    )


async def execute_batch(
    engine: WriteEngine, store: PipelineStore, plan: BatchPlan, progress: Progress | None = None
) -> str:
    """Send every planned item as approved, one at a time, each journaled and linked to a new batch id.

    Returns the batch id. Each entry's ``outcome`` says what happened to it; an item the service
    refuses at send time does not stop the rest (each has its own ETag and its own journal entry).
    """
    batch_id = await store.new_batch(plan.mode, undo_of=plan.undo_batch)
    sending = plan.to_send
    for entry in plan.entries:
        if entry.refused:
            entry.outcome = "refused"
        elif entry.unchanged:
            entry.outcome = "unchanged"
    for done, entry in enumerate(sending, start=1):
        item_plan = entry.plan
        assert item_plan is not None
        # Named in the journal, so recent_changes shows which batch each change belongs to; the answer
        # says it once, as batch_id (each line keeps the summary as previewed).
        previewed = item_plan.summary
        item_plan.summary = f"{previewed} [batch {batch_id} #{entry.position}]"
        await _say_if_throttled(engine, progress, done - 1, len(sending))
        try:
            outcome = await engine.execute(item_plan)
        except PcrefError as exc:
            entry.outcome, entry.message = "failed", str(exc)
            entry.change_id = await _last_change_id(engine, item_plan)
        except BaseException:
            # Cancelled mid-batch: the engine journaled the item in flight; the rest were never sent.
            entry.outcome, entry.message = "in_doubt", "interrupted while sending"
            for rest in sending[done:]:
                rest.outcome = "not_sent"
            with anyio.move_on_after(10, shield=True):  # the link outlives the cancellation
                entry.change_id = await _last_change_id(engine, item_plan)
                if entry.change_id:
                    await store.add_change(batch_id, entry.change_id)
            raise
        else:
            entry.outcome = outcome.status
            entry.message = outcome.message
            entry.result = outcome
            entry.change_id = outcome.change_id
        finally:
            item_plan.summary = previewed
        if entry.change_id:
            await store.add_change(batch_id, entry.change_id)
        if progress is not None:
            await progress(
                done, len(sending), f"sent {done}/{len(sending)}: #{entry.position} {entry.outcome}"
            )
    return batch_id


async def undo_requests(store: PipelineStore, batch_id: str) -> list[BatchRequest]:
    """The changes of a batch to undo, newest first (so a later change is undone before an earlier)."""
    batch = await store.batch(batch_id)
    if batch is None:
        raise UndoNotPossible(
            f"There is no batch {batch_id!r} of yours.",
            hint="recent_changes {} lists your latest changes with their batch ids.",
        )
    return [BatchRequest(label=f"change {cid}", undo=cid) for cid in reversed(batch.change_ids)]


def entry_line(entry: BatchEntry, *, previewed: bool = False) -> str:
    """One item as the model reads it: what, and before → after for every field it sends.

    ``previewed``: the model already holds this item's preview line (it confirmed with the token that
    came with it), so an applied item says only which one it was and its change_id; any other outcome
    keeps the whole line.
    """
    head = f"{entry.position}. "
    if previewed and entry.outcome == "applied":
        return f"{head}{entry.label} → applied" + (
            f", change_id {entry.change_id}" if entry.change_id else ""
        )
    if entry.plan is None:
        what = "refused: " + (entry.refused or "") if entry.refused else "unchanged, nothing to send"
        line = f"{head}{entry.label}: {what}"
    else:
        plan = entry.plan
        parts = []
        if plan.kind == "create":
            parts = [f"{c.field}={show_value(quote_at(c.pointer, c.after))}" for c in plan.changes]
        else:
            parts = [
                f"{c.field}: {show_value(quote_at(c.pointer, c.before))} → {show_value(quote_at(c.pointer, c.after))}"
                for c in plan.changes
            ]
        line = f"{head}{plan.summary}: " + "; ".join(parts)
        if plan.lifecycle:
            line += f" (lifecycle {plan.lifecycle})"
        line += "".join(f" ! {w}" for w in plan.warnings)
    line += "".join(f" ! {note}" for note in entry.notes)
    if entry.outcome and entry.outcome not in ("refused", "unchanged"):
        line += f" → {entry.outcome}" + (f", change_id {entry.change_id}" if entry.change_id else "")
        if entry.outcome != "applied" and entry.message:
            line += f": {entry.message}"
    return line


def counts(plan: BatchPlan) -> dict[str, int]:
    """How many items ended each way (after execute_batch)."""
    out: dict[str, int] = {}
    for entry in plan.entries:
        key = entry.outcome or ("refused" if entry.refused else "unchanged" if entry.unchanged else "planned")
        out[key] = out.get(key, 0) + 1
    return out


# -- private ----------------------------------------------------------------------------------------


def _key(request: BatchRequest) -> str | None:
    """What two items must not share: the referral they change, the change they undo, the create's id."""
    if request.referral_id:
        return request.referral_id
    if request.undo is not None:
        return f"undo:{request.undo}"
    if request.create is not None and request.create.external_reference_id:
        return f"create:{request.create.external_reference_id}"
    return None


def _bound_request(entry: BatchEntry) -> dict[str, Any]:
    """What the approval binds for one item: its position, referral and exact bytes (its previewed
    ETag is bound through the plan's ``etag``, so a changed referral reads as stale, not as other
    arguments)."""
    plan = entry.plan
    assert plan is not None
    return {
        "n": entry.position,
        "kind": plan.kind,
        "referral": plan.referral_id,
        "operations": plan.wire_operations,
        "bodies": plan.bodies,
        "undo": plan.undo_of,
    }


def _etag_digest(entries: Sequence[BatchEntry]) -> str | None:
    """One value standing for every item's previewed ETag: any item changed → a different value."""
    if not entries:
        return None
    material = [(e.position, e.plan.referral_id, e.plan.etag) for e in entries if e.plan is not None]
    return "batch:" + hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]


async def _say_if_throttled(engine: WriteEngine, progress: Progress | None, done: int, total: int) -> None:
    """Before a call the client's rate limiter will hold back, tell the person why nothing moves."""
    limiter = getattr(engine.client, "limiter", None)
    if progress is None or limiter is None:
        return
    wait = limiter.wait_time()
    if wait >= 1:
        await progress(  # halfway to the next step: progress values must keep increasing
            done + 0.5,
            total,
            f"waiting {wait:.0f} s: Partner Center allows {limiter.calls} calls per {limiter.window:.0f} s",
        )


async def _last_change_id(engine: WriteEngine, plan: WritePlan) -> int | None:
    """The journal entry the engine made for ``plan`` before it raised (its newest for that referral)."""
    if plan.referral_id is None:
        return None
    recent = await engine.journal.recent(1, referral_id=plan.referral_id)
    return recent[0].id if recent else None
