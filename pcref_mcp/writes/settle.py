"""Settle in-doubt writes: decide from the service and the journal whether each one landed.

A write is in doubt when its process died between sending it and recording the answer. Every
update carries ``If-Match`` with the ETag it was previewed on, which makes the question decidable
for updates:

- a later journaled write of the same referral that was sent with the *same* ETag succeeded, so the
  in-doubt one did not land (had it landed, the ETag would have moved and that write would have
  been refused);
- otherwise, the first later journaled write of that referral saw, in its before-image, exactly the
  values the in-doubt write sets (and another ETag): it landed;
- with no later write: the referral's ETag is still the previewed one: it did not land; it moved
  and holds exactly the values the write sets: it landed.

Anything else (someone outside the journal changed the referral since) stays in doubt for a person,
with :meth:`JournalEntry.how_to_check`. Creates and deal registrations are left to a person too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pcref_mcp.errors import NotFound, PcrefError
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.writes.journal import Journal, JournalEntry

__all__ = ["Settled", "settle_in_doubt"]

_MISSING = object()
READS = 3  # reads of the referral before "still the previewed ETag" is believed


class _Reader(Protocol):
    async def get(self, referral_id: str) -> Any: ...


@dataclass(frozen=True)
class Settled:
    entry_id: int
    status: Literal["applied", "failed", "in_doubt"]
    how: str


async def settle_in_doubt(journal: Journal, client: _Reader, *, limit: int = 1000) -> list[Settled]:
    """Settle everyone's in-doubt updates among the last ``limit`` entries (an administrator's task)."""
    entries = await journal.recent(limit, any_actor=True)
    outcomes: list[Settled] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.status != "in_doubt":
            continue
        verdict = await _verdict(entry, entries, client)
        if verdict.status != "in_doubt":
            await journal.settle(entry.id, verdict.status, verdict.how)
        outcomes.append(verdict)
    return outcomes


async def _verdict(entry: JournalEntry, entries: list[JournalEntry], client: _Reader) -> Settled:
    if entry.kind not in ("update", "undo") or not entry.referral_id or not entry.etag_before:
        return Settled(entry.id, "in_doubt", "only updates are settled here; " + entry.how_to_check())
    sets = _values_set(entry)
    later = sorted(
        (
            e
            for e in entries
            if e.referral_id == entry.referral_id and e.id > entry.id and e.status == "applied"
        ),
        key=lambda e: e.id,
    )
    if any(e.etag_before == entry.etag_before for e in later):
        return Settled(
            entry.id, "failed", "a later write was accepted with the same ETag: this one did not land"
        )
    if later:
        seen = later[0].before_image
        if sets and all(seen.get(path, _MISSING) == value for path, value in sets.items()):
            return Settled(entry.id, "applied", f"change {later[0].id} found its values in place")
        return Settled(entry.id, "in_doubt", entry.how_to_check())
    # A read may come from a replica that has not seen the write: "still the previewed ETag" must
    # hold on every one of a few reads (any read where it moved is judged by its values).
    for _ in range(READS):
        try:
            current = await client.get(entry.referral_id)
        except NotFound:
            return Settled(entry.id, "in_doubt", "the referral cannot be read any more")
        except PcrefError as exc:
            return Settled(entry.id, "in_doubt", f"the referral could not be read ({exc})")
        if current.e_tag != entry.etag_before:
            break
    else:
        return Settled(
            entry.id, "failed", f"the referral still has the previewed ETag on {READS} reads: it did not land"
        )
    wire = current.to_wire()
    if sets and all(pointer_get(wire, path, _MISSING) == value for path, value in sets.items()):
        return Settled(entry.id, "applied", "the referral holds exactly the values it sets")
    return Settled(entry.id, "in_doubt", entry.how_to_check())


def _values_set(entry: JournalEntry) -> dict[str, Any]:
    return {
        str(op["path"]): op.get("value")
        for op in entry.operations
        if op.get("op") in ("replace", "add") and not str(op.get("path", "")).endswith("/-")
    }
