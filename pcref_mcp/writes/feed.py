"""The change feed: which referrals were updated since a time, what changed in each where the server
can tell, and the person's own journaled writes since then.

Partner Center documents sorting by ``updatedDateTime`` but not filtering on dates, so the feed
reads newest first (``$orderby=updatedDateTime desc``) and stops at the first referral older than
the cut-off: the fewest pages that can answer. What changed comes from the last snapshot this
server kept of each referral (``PipelineStore``, per person, in the store every replica shares); a referral never seen before says so
instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.untrusted import quote, quote_at
from pcref_mcp.writes.journal import stamp
from pcref_mcp.writes.preview import WATCHED, field_name

if TYPE_CHECKING:
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.writes.journal import Journal, JournalEntry
    from pcref_mcp.writes.pipeline_store import PipelineStore

MAX_PAGES = 10  # 1,000 referrals updated since the cut-off: beyond that, narrow the time
PAGE = 100
# Compared between snapshots: the fields a stale preview reports, plus the names people read.
TRACKED: tuple[str, ...] = (*WATCHED, "/name", "/customerProfile/name")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class Feed:
    since: datetime
    referrals: list[str] = field(default_factory=list)
    writes: list[JournalEntry] = field(default_factory=list)
    truncated: bool = False


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A cut-off as people give it: 2026-11-02, 2026-11-02T09:00Z, 7d, 24h, monday, yesterday (UTC)."""
    now = now or datetime.now(UTC)
    raw = text.strip().lower()
    today = datetime.combine(now.date(), time.min, UTC)
    if raw in ("today", "yesterday"):
        return today - timedelta(days=1 if raw == "yesterday" else 0)
    day = raw.removeprefix("last ").removeprefix("since ")
    if day in _DAYS:  # the latest such day, today included ("last monday" on a Monday: a week ago)
        back = (now.weekday() - _DAYS.index(day)) % 7
        return today - timedelta(days=back or (7 if raw.startswith("last ") else 0))
    relative = re.fullmatch(r"(\d{1,4})\s*(h|d|w)", raw)
    if relative:
        hours = int(relative[1]) * {"h": 1, "d": 24, "w": 168}[relative[2]]
        return now - timedelta(hours=hours)
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.min, UTC)
        parsed = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"since {quote(text if len(text) <= 40 else text[:40] + '…')} is not a time this server reads.",
            field="since",
            hint="Use a date (2026-11-02), a UTC time (2026-11-02T09:00Z), 7d, 24h or a weekday (monday).",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def changes_since(
    client: PartnerCenterClient, store: PipelineStore, journal: Journal, since: datetime
) -> Feed:
    """Referrals updated since ``since`` (newest first, each with what changed) and own writes."""
    feed = Feed(since=since)
    seen: list[Referral] = []
    next_link: str | None = None
    skip = 0
    for _ in range(MAX_PAGES):
        if next_link:
            page = await client.list_page(next_link=next_link)
        else:
            page = await client.list_page(
                odata.Query(orderby=["updatedDateTime desc"], top=PAGE, skip=skip or None, count=True)
            )
        older = False
        for referral in page.value:
            if _updated(referral) < since:
                older = True
                break
            seen.append(referral)
        if older or not page.value:
            break
        next_link = page.odata_next_link
        skip += len(page.value)
        if not next_link and (page.odata_count is None or skip >= page.odata_count):
            break
    else:
        feed.truncated = True
    before = await store.snapshots([str(r.id) for r in seen])
    for referral in seen:
        feed.referrals.append(_line(referral, before.get(str(referral.id))))
    await remember(store, seen)
    cutoff = stamp(since)
    feed.writes = [e for e in await journal.recent(200) if e.started_at >= cutoff]
    return feed


async def remember(store: PipelineStore, referrals: list[Referral]) -> None:
    """Keep these referrals' tracked fields as the last state seen (the next feed compares with them)."""
    await store.remember([(str(r.id), r.updated_date_time, snapshot(r)) for r in referrals])


def snapshot(referral: Referral) -> dict[str, Any]:
    wire = referral.to_wire()
    return {p: pointer_get(wire, p) for p in TRACKED}


# -- private ----------------------------------------------------------------------------------------


def _line(referral: Referral, before: dict[str, Any] | None) -> str:
    customer = referral.customer_profile.name if referral.customer_profile else None
    head = (
        f"referral {referral.id} ({quote(referral.name or 'unnamed')} — {quote(customer or 'unknown customer')}) "
        f"updated {(referral.updated_date_time or '?')[:16]}Z"
    )
    if before is None:
        return f"{head}: first seen here, no earlier state to compare; now {referral.status}/{referral.substatus}"
    now = snapshot(referral)
    moved = [
        f"{field_name(p)}: {_shown(quote_at(p, before.get(p)))} → {_shown(quote_at(p, now[p]))}"
        for p in TRACKED
        if p in before and before[p] != now[p]
    ]
    return f"{head}: " + ("; ".join(moved) if moved else "no tracked field changed since last seen")


def _updated(referral: Referral) -> datetime:
    raw = referral.updated_date_time or referral.created_date_time
    if not raw:
        return datetime.max.replace(tzinfo=UTC)  # no date: cannot be older, keep it and read on
    parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _shown(value: Any) -> str:
    if value is None:
        return "(empty)"
    return value if isinstance(value, str) and value.startswith("«") else repr(value)
