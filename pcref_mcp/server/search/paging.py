"""Reading the service's pages for a plan: the query it is asked, where the next page comes from, the
rows in the service's order (checked, not trusted), or a sort done here over a bounded scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pcref_mcp.partner_center import odata
from pcref_mcp.referrals.models import Referral, SkippedItem
from pcref_mcp.server.search.conditions import Plan, documented, sort_key_for
from pcref_mcp.server.search.filters import SORTS

if TYPE_CHECKING:
    from pcref_mcp.partner_center.capabilities import Capabilities
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.referrals.models import ReferralPage

SERVICE_PAGE = 100  # Partner Center's page (documented maximum of $top)

# Work done here when the service cannot: at most this many of its pages (100 items each on Partner
# Center) per call. A cursor continues a filtered scan; a sort done here covers only what was read.
MAX_SCAN_PAGES = 10
MAX_SCAN_ITEMS = 2000


@dataclass
class Scan:
    """What one call read of the service's pages: the rows to show, how much was read, where to go on,
    and what the service did other than asked."""

    rows: list[Referral] = field(default_factory=list)
    pages: int = 0
    scanned: int = 0
    complete: bool = False
    cursor: dict[str, Any] | None = None
    total: int | None = None
    skipped: list[SkippedItem] = field(default_factory=list)  # page items that could not be read
    unfiltered: int = 0  # rows the service sent that its filter should have excluded
    repeated: int = 0  # rows the service sent again within this scan (left out)
    stalled: bool = False  # a whole page of rows sent before: paging does not work as asked
    disordered: bool = False  # rows the service sent out of the order asked


async def scan(
    client: PartnerCenterClient, the_plan: Plan, capabilities: Capabilities, limit: int, state: dict[str, Any]
) -> Scan:
    """One page of rows for ``the_plan``, continuing where the cursor's ``state`` left off: sorted here
    when the service cannot sort, else in the service's own order."""
    if the_plan.sort_key is not None:
        return await _sorted_scan(client, the_plan, limit, int(state.get("off", 0)))
    return await _stream(
        client,
        the_plan,
        capabilities,
        limit,
        state.get("src"),
        int(state.get("at", 0)),
        int(state.get("n", 0)),
    )


def _first_source(the_plan: Plan, capabilities: Capabilities, limit: int) -> dict[str, Any]:
    # Ask for exactly one page of rows only when the service does everything and can skip to the
    # next; otherwise take its own page size and follow its next links.
    top = limit if the_plan.pure and capabilities.supports("skip") else None
    expr = the_plan.filter_expr()
    # asked unless seen not to work: a refusal is learnt (search probes again and retries without it),
    # and an answer is used only as far as it proves itself (``_a_total``)
    count = the_plan.pure and asks_count(capabilities)
    return {
        "q": {
            "filter": str(expr) if expr else None,
            "orderby": the_plan.orderby or "createdDateTime desc",
            "top": top,
            "skip": 0 if top else None,
            "count": count,
        }
    }


def asks_count(capabilities: Capabilities) -> bool:
    """``$count=true`` is asked where it was seen to work, or where nothing is known of it yet."""
    return capabilities.supports("count") or "count" not in capabilities.learnt


def _total(page: ReferralPage, source: dict[str, Any], capabilities: Capabilities) -> int | None:
    """The number of all matches of a pure plan, where this answer proves it: a ``@odata.count`` the
    probe saw count all matches; one this answer shows is not the page's own (more than the rows read
    so far, with a next page to read); or, on the service's own pages, the rows up to a page with no
    next link (the listing ends there). A count equal to the page (the documents' example; the strict
    sandbox) says nothing by itself."""
    count, q = page.odata_count, source.get("q") or {}
    if count is not None and q.get("count") and capabilities.supports("count"):
        return count
    read = int(source.get("read", 0)) + len(page.value)
    if page.odata_next_link:
        return count if count is not None and q.get("count") and count > read else None
    return read if not q.get("top") else None


async def _fetch(client: PartnerCenterClient, source: dict[str, Any]) -> ReferralPage:
    if "link" in source:
        return await client.list_page(next_link=str(source["link"]))
    q = source["q"]
    query = odata.Query(
        filter=odata.Expr(q["filter"]) if q.get("filter") else None,
        orderby=[q["orderby"]] if q.get("orderby") else [],
        top=q.get("top"),
        skip=q.get("skip") or None,
        count=bool(q.get("count")),
    )
    return await client.list_page(query)


def _next_source(
    page: ReferralPage, source: dict[str, Any], capabilities: Capabilities
) -> dict[str, Any] | None:
    """Where the next page comes from: the next link, else (where ``$skip`` was seen to work) the
    query asked, skipping every row read under it (next-link pages included)."""
    q = source.get("q")
    read = int(source.get("read", 0)) + len(page.value)
    if page.odata_next_link:
        after: dict[str, Any] = {"link": page.odata_next_link}
        return {**after, "q": q, "read": read} if q else after
    if not q or not q.get("top") or not page.value or not capabilities.supports("skip"):
        return None
    skip = (q.get("skip") or 0) + read
    if q.get("count") and capabilities.supports("count") and page.odata_count is not None:
        # a count the probe saw count all matches: where the matches end
        return None if skip >= page.odata_count else {"q": {**q, "skip": skip}}
    if read < q["top"]:
        return None  # assumed: fewer rows than asked, and no next link, is the end
    return {"q": {**q, "skip": skip}}


async def _stream(
    client: PartnerCenterClient,
    the_plan: Plan,
    capabilities: Capabilities,
    limit: int,
    source: dict[str, Any] | None,
    at: int,
    returned: int,
) -> Scan:
    """Rows in the service's order, from ``source`` at position ``at``; stops at ``limit`` rows, at
    the end, or (when filtering here) after ``MAX_SCAN_PAGES`` pages."""
    scan = Scan()
    source = source or _first_source(the_plan, capabilities, limit)
    last: Any = None
    ids: set[str] = set()
    while True:
        page = await _fetch(client, source)
        scan.pages += 1
        scan.skipped.extend(page.skipped)
        total = _total(page, source, capabilities) if the_plan.pure else None
        if total is not None:
            scan.total = total
        items = page.value
        fresh = [str(r.id) for r in items[at:] if str(r.id) not in ids]
        if items[at:] and not fresh:  # the same rows again: paging does not work as asked
            scan.stalled, scan.complete, scan.total = True, False, None
            return scan
        for index in range(at, len(items)):
            scan.scanned += 1
            if str(items[index].id) in ids:
                scan.repeated += 1
                continue
            ids.add(str(items[index].id))
            doc = items[index].to_wire()
            ordered_by = SORTS[the_plan.sort_label][2] if the_plan.orderby else None
            if ordered_by is not None:  # an order asked of the service is checked, not trusted
                value = sort_key_for(ordered_by)(doc)
                if value is not None and last is not None:
                    scan.disordered |= value > last if the_plan.reverse else value < last
                last = value if value is not None else last
            if the_plan.matches(doc):
                scan.rows.append(items[index])
            elif not all(c.test(doc) for c in the_plan.server):
                scan.unfiltered += 1
            if len(scan.rows) == limit:
                if index + 1 < len(items):
                    scan.cursor = {"src": source, "at": index + 1, "n": returned + limit}
                else:
                    after = _next_source(page, source, capabilities)
                    scan.cursor = {"src": after, "at": 0, "n": returned + limit} if after else None
                scan.complete = scan.cursor is None
                if scan.complete and scan.total is None:
                    scan.total = returned + len(scan.rows)
                return scan
        after = _next_source(page, source, capabilities)
        if after is None:
            scan.complete = True
            if scan.total is None:
                scan.total = returned + len(scan.rows)
            return scan
        if not the_plan.pure and (scan.pages >= MAX_SCAN_PAGES or scan.scanned >= MAX_SCAN_ITEMS):
            scan.cursor = {"src": after, "at": 0, "n": returned + len(scan.rows)}
            return scan
        source, at = after, 0


async def _sorted_scan(client: PartnerCenterClient, the_plan: Plan, limit: int, offset: int) -> Scan:
    """Sorting the service cannot do: read up to ``MAX_SCAN_PAGES`` pages, sort, cut one page."""
    scan = Scan()
    assert the_plan.sort_key is not None
    expr = the_plan.filter_expr()
    source: dict[str, Any] | None = {
        "q": {"filter": str(expr) if expr else None, "orderby": "createdDateTime desc"}
    }
    matches: list[tuple[Any, Referral]] = []
    no_skip = documented(client.base_url)
    ids: set[str] = set()
    while source is not None:
        page = await _fetch(client, source)
        scan.pages += 1
        scan.skipped.extend(page.skipped)
        scan.scanned += len(page.value)
        for referral in page.value:
            if str(referral.id) in ids:  # listed again on a later page (the list moved): sorted once
                scan.repeated += 1
                continue
            ids.add(str(referral.id))
            doc = referral.to_wire()
            if the_plan.matches(doc):
                matches.append((the_plan.sort_key(doc), referral))
        source = _next_source(page, source, no_skip)
        if source is not None and (scan.pages >= MAX_SCAN_PAGES or scan.scanned >= MAX_SCAN_ITEMS):
            break
    scan.complete = source is None
    present = [m for m in matches if m[0] is not None]
    absent = [m for m in matches if m[0] is None]
    present.sort(key=lambda m: m[0], reverse=the_plan.reverse)
    ordered = [r for _, r in present + absent]  # referrals without the value last either way
    scan.rows = ordered[offset : offset + limit]
    if offset + limit < len(ordered):
        scan.cursor = {"off": offset + limit}
    scan.total = len(ordered) if scan.complete else None
    return scan
