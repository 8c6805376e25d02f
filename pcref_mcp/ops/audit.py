"""``pcref-mcp audit``: the journal as JSON lines, for an auditor or a SIEM.

One line per journaled write, oldest first, paged out of the store (:meth:`Store.journal_after`,
500 rows a page), so an export of any size is written as it is read and never held in memory.
Filterable by time (``--since``/``--until``: ISO 8601, a date, or ``24h``/``7d`` back from now) and
by person (``--person``: their principal id or their sign-in name).

The field names are stable (README, "Operations": a SIEM maps them once); a field that does not
apply is null, never left out. Contact details are redacted as a preview shows them: the e-mail and
phone of the contacts a change adds, removes or creates, names for everyone else
(:meth:`JournalEntry.redacted`). Nothing is quoted or shortened: it is a record, not a display.

=================  ==============================================================================
``schema``         ``pcref-audit/1`` (changes only when a field changes meaning)
``change_id``      the journal's id (what ``undo_change`` and ``recent_changes`` name)
``at``             when the write was journaled, before it was sent (UTC, ms, ``Z``)
``finished_at``    when its outcome was recorded (null while pending)
``person_id``      who: the principal's stable id (Entra object id; ``local`` for single-user)
``person``         who, as they signed in (user principal name), when known
``tool``           the MCP tool (``update_field``, ``create_referral``, ``batch_update``…)
``kind``           ``update``, ``create``, ``register``, ``update_registration``, ``undo``…
``referral_id``    the referral written (null for a create that never got one)
``external_ref``   a create's external reference id
``fields``         the JSON pointers the change set (``/details/dealValue``…), in order
``changes``        the operations sent (``op``, ``path``, ``value``; a create's ``body``), redacted
``before``         each changed field's value before the write, redacted
``approval``       how the person approved it: ``elicitation``, ``page`` or ``token`` (null for
                   writes journaled before this version recorded it)
``outcome``        ``pending``, ``applied``, ``failed``, ``in_doubt``, ``partial``
``error``          what the service or the server said, for a write that did not apply
``batch_id``       the batch it belongs to (``batch_update``), else null
``undo_of``        the change this one undid; ``undone_by``: the change that undid this one
``request_id``     the HTTP request that made it (also in the logs and the error text)
``correlation_id`` the id sent to Partner Center with the request (its support asks for it)
``etag_before``    the referral's ETag the person approved; ``etag_after``: after the write
=================  ==============================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from pcref_mcp.errors import InvalidInput

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store
    from pcref_mcp.writes.journal import JournalEntry

__all__ = ["FIELDS", "SCHEMA", "audit_lines", "parse_moment", "record", "write_audit"]

SCHEMA = "pcref-audit/1"
FIELDS: tuple[str, ...] = (
    "schema",
    "change_id",
    "at",
    "finished_at",
    "person_id",
    "person",
    "tool",
    "kind",
    "referral_id",
    "external_ref",
    "fields",
    "changes",
    "before",
    "approval",
    "outcome",
    "error",
    "batch_id",
    "undo_of",
    "undone_by",
    "request_id",
    "correlation_id",
    "etag_before",
    "etag_after",
)
PAGE = 500
_BATCH = re.compile(r"\[batch (\S+) #\d+\]")
_AGO = re.compile(r"^(\d+)([mhd])$")


def record(entry: JournalEntry) -> dict[str, Any]:
    """One journal entry as an audit record (every field of :data:`FIELDS`, in that order)."""
    changes, before = entry.redacted()
    batch = _BATCH.search(entry.summary or "")
    values = {
        "schema": SCHEMA,
        "change_id": entry.id,
        "at": entry.started_at,
        "finished_at": entry.finished_at,
        "person_id": entry.actor_id,
        "person": entry.actor_name,
        "tool": entry.tool,
        "kind": entry.kind,
        "referral_id": entry.referral_id,
        "external_ref": entry.external_ref,
        "fields": [str(op.get("path", "/")) for op in entry.operations],
        "changes": changes,
        "before": before,
        "approval": entry.approval_path,
        "outcome": entry.status,
        "error": entry.error,
        "batch_id": batch.group(1) if batch else None,
        "undo_of": entry.undo_of,
        "undone_by": entry.undone_by,
        "request_id": entry.request_id,
        "correlation_id": entry.correlation_id,
        "etag_before": entry.etag_before,
        "etag_after": entry.etag_after,
    }
    return {name: values[name] for name in FIELDS}


async def audit_lines(
    store: Store,
    *,
    since: str | None = None,
    until: str | None = None,
    person: str | None = None,
    page: int = PAGE,
) -> AsyncIterator[str]:
    """The export, one JSON line at a time, read a page at a time."""
    from pcref_mcp.writes.journal import entry_of

    after = 0
    by_id = person if person and "@" not in person else None
    while True:
        rows = await store.journal_after(after, page, since=since, until=until, actor_id=by_id)
        for row in rows:
            entry = entry_of(row)
            if person and by_id is None and (entry.actor_name or "").lower() != person.lower():
                continue
            yield json.dumps(record(entry), ensure_ascii=False, default=str, separators=(",", ":"))
        if len(rows) < page:
            return
        after = int(rows[-1]["id"])


async def write_audit(store: Store, out: IO[str], **filters: Any) -> int:
    """Write the export to ``out`` as it is read (flushed a page at a time); how many lines."""
    count = 0
    async for line in audit_lines(store, **filters):
        out.write(line + "\n")
        count += 1
        if count % PAGE == 0:
            out.flush()
    out.flush()
    return count


def parse_moment(text: str | None, *, now: datetime | None = None) -> str | None:
    """``--since``/``--until`` as a journal stamp: ISO 8601 (a date is its midnight UTC; no zone is
    UTC), or ``30m``/``24h``/``7d`` back from now."""
    from pcref_mcp.writes.journal import stamp

    if not text:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        amount, unit = int(ago.group(1)), ago.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[
            unit
        ]
        return stamp((now or datetime.now(UTC)) - delta)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"Cannot read {text!r} as a time.",
            hint="Use ISO 8601 (2026-12-01 or 2026-12-01T09:00:00Z) or a span back from now (30m, 24h, 7d).",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return stamp(moment)
