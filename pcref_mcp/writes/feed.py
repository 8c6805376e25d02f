"""The change feed: which referrals were updated since a time, what changed in each where the server
can tell, and the person's own journaled writes since then.

Partner Center documents sorting by ``updatedDateTime`` but not filtering on dates, so the feed
reads newest first (``$orderby=updatedDateTime desc``) and stops early only when what it read proves
the rest is older: the order held on every row read so far (a service that ignores ``$orderby`` is
caught by the first row out of order, and then everything is read), the page is read to its end and
at least :data:`CONFIRM_OLDER` rows were older than the cut-off. Rows are de-duplicated by id. A
referral without ``updatedDateTime`` was never updated: its creation time is its last change, and
as the service may sort such rows anywhere (after all others, usually) a second scan by
``createdDateTime`` finds those created since the cut-off. Paging follows ``@odata.nextLink``;
``$skip`` and ``@odata.count`` are used only where the capability probe saw them work (a page of
rows all read before ends the scan). When completeness cannot be established the feed says how far
it read and why (``Feed.incomplete``) instead of presenting a short list as complete.

What changed comes from the last snapshot this server kept of each referral (``PipelineStore``, per
person, in the store every replica shares); a referral never seen before says so instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.timestamps import parse_wire
from pcref_mcp.referrals.untrusted import quote, quote_at
from pcref_mcp.writes.journal import stamp
from pcref_mcp.writes.preview import WATCHED, field_name

if TYPE_CHECKING:
    from pcref_mcp.partner_center.capabilities import Capabilities
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.writes.journal import Journal, JournalEntry
    from pcref_mcp.writes.pipeline_store import PipelineStore

MAX_PAGES = 10  # per scan: 1,000 referrals; beyond that, narrow the time
PAGE = 100
# the probed query features the scan relies on when they were seen to work (asked of the runtime)
FEATURES_USED = ("order_honoured", "skip", "count")
CONFIRM_OLDER = 2  # rows older than the cut-off, in order, before the rest is taken as older too
# Compared between snapshots: the fields a stale preview reports, plus the names people read.
TRACKED: tuple[str, ...] = (*WATCHED, "/name", "/customerProfile/name")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class Feed:
    since: datetime
    referrals: list[str] = field(default_factory=list)
    writes: list[JournalEntry] = field(default_factory=list)
    truncated: bool = False  # the list may not be complete (``incomplete`` says why)
    incomplete: str | None = None
    read: int = 0  # rows the service listed, duplicates included


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
    parsed = parse_wire(raw)
    if parsed is None:
        raise InvalidInput(
            f"since {quote(text if len(text) <= 40 else text[:40] + '…')} is not a time this server reads.",
            field="since",
            hint="Use a date (2026-11-02), a UTC time (2026-11-02T09:00Z), 7d, 24h or a weekday (monday).",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def changes_since(
    client: PartnerCenterClient,
    store: PipelineStore,
    journal: Journal,
    since: datetime,
    capabilities: Capabilities | None = None,
) -> Feed:
    """Referrals updated since ``since`` (newest first, each with what changed) and own writes.

    Nothing about the service's order, paging or counts is taken on trust (see the module notes):
    the list is complete, or ``Feed.incomplete`` says how far it read and why it stopped.
    ``capabilities`` is what the probe saw; without it ``$skip`` and ``@odata.count`` are not used.
    """
    feed = Feed(since=since)
    caps = capabilities
    by_update = await _scan(client, "updatedDateTime", since, caps)
    found = dict(by_update.rows)
    reasons = list(by_update.gaps)
    read = by_update.read
    if not by_update.reached_end:
        # A referral never updated may carry no updatedDateTime at all; where the service sorts it is
        # not known (after everything, usually), so those created since the cut-off are read by
        # creation time. Those with an update time were judged by the first scan.
        by_creation = await _scan(client, "createdDateTime", since, caps)
        read += by_creation.read
        for rid, referral in by_creation.rows.items():
            found.setdefault(rid, referral)
        reasons += [gap for gap in by_creation.gaps if gap not in reasons]
    seen = sorted(found.values(), key=_newest_first)
    if reasons:
        feed.truncated = True
        feed.incomplete = f"the list may not be complete: read {read} referral(s), " + "; ".join(reasons)
    feed.read = read
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


@dataclass
class _Scan:
    rows: dict[str, Referral] = field(default_factory=dict)  # updated since the cut-off, by id
    gaps: list[str] = field(default_factory=list)  # why the scan may have missed some
    read: int = 0
    reached_end: bool = False  # every row the service lists was read


async def _scan(
    client: PartnerCenterClient, order_field: str, since: datetime, caps: Capabilities | None
) -> _Scan:
    """Newest first by ``order_field``; stops early only where the order seen proves the rest older."""
    scan = _Scan()
    use_skip = caps is not None and caps.supports("skip")
    use_count = caps is not None and caps.supports("count")
    # the probe saw this order ignored: every row must be read
    ordered = caps is None or not caps.seen_ignored("order_honoured")
    seen: set[str] = set()
    last: datetime | None = None
    older = 0
    position = 0  # rows the service listed so far: $skip of the next page
    next_link: str | None = None
    for _ in range(MAX_PAGES):
        if next_link:
            page = await client.list_page(next_link=next_link)
        else:
            page = await client.list_page(
                odata.Query(orderby=[f"{order_field} desc"], top=PAGE, skip=position or None, count=use_count)
            )
        fresh = 0
        for referral in page.value:
            scan.read += 1
            rid = str(referral.id)
            if rid in seen:
                continue  # listed twice (paging over a list that moved, or $skip ignored)
            seen.add(rid)
            fresh += 1
            changed = _last_change(referral)
            if changed is None or changed >= since:
                scan.rows[rid] = referral
            key = _when(
                referral.updated_date_time if order_field == "updatedDateTime" else referral.created_date_time
            )
            if key is None:
                continue  # placed wherever the service puts rows without it: says nothing of order
            if last is not None and key > last:
                ordered = False
            last = key if last is None else min(last, key)
            older += key < since
        position += len(page.value)
        if ordered and older >= CONFIRM_OLDER:
            return scan  # in order throughout, page read to its end, the rest is older
        if not page.value:
            scan.reached_end = True
            return scan
        if page.odata_next_link:
            next_link = page.odata_next_link
            continue
        next_link = None
        if not fresh:
            scan.gaps.append(
                f"the service listed only referrals it had listed before (at row {position}), so $skip "
                "seems ignored and the rest could not be reached"
            )
            return scan
        total = page.odata_count if use_count else None  # a count seen to count all matches
        if total is not None and position >= total:
            scan.reached_end = True
            return scan
        if use_skip:
            continue  # the next page by $skip; an empty page (or one of rows read before) ends it
        if total is None and len(page.value) < PAGE:
            # Assumed, not verified: a page shorter than $top without a next link is the last.
            scan.reached_end = True
            return scan
        counted = f" though it counts {total} matches" if total is not None else ""
        unverified = " (its @odata.count is not known to count all matches)" if page.odata_count else ""
        scan.gaps.append(
            f"after {position} rows the service gave no next link{counted}, and $skip is not known to "
            f"work on this service{unverified if total is None else ''}"
        )
        return scan
    scan.gaps.append(
        f"it stopped after {MAX_PAGES} pages"
        + (
            ""
            if ordered
            else f" (the service did not return them in {order_field} order, so all had to be read)"
        )
        + ": ask for a later time for the rest"
    )
    return scan


def _last_change(referral: Referral) -> datetime | None:
    """When the referral last changed: its update time, else (never updated) its creation time."""
    return _when(referral.updated_date_time) or _when(referral.created_date_time)


def _newest_first(referral: Referral) -> tuple[int, float]:
    changed = _last_change(referral)
    return (0, -changed.timestamp()) if changed else (1, 0.0)


def _when(raw: Any) -> datetime | None:
    if not raw:
        return None
    return parse_wire(str(raw))


def _shown(value: Any) -> str:
    if value is None:
        return "(empty)"
    return value if isinstance(value, str) and value.startswith("«") else repr(value)
