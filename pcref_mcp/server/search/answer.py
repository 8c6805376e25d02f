"""search_referrals' answer: one page of matches for the filters, the cursor for the next, and the
note that says what was done here rather than by the service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import BadRequest, InvalidInput, PcrefError
from pcref_mcp.referrals import when
from pcref_mcp.referrals.models import Referral, skipped_note
from pcref_mcp.server.search import paging
from pcref_mcp.server.search.conditions import Plan, build_conditions, documented, plan, probed_features
from pcref_mcp.server.search.cursor import CursorSigner, bad_cursor
from pcref_mcp.server.search.filters import DEFAULT_LIMIT, DEFAULT_SORT, DOCUMENTED_ORDERBY, SORTS, Filters

if TYPE_CHECKING:
    from pcref_mcp.partner_center.capabilities import Capabilities
    from pcref_mcp.server.runtime import Runtime

log = logging.getLogger("pcref_mcp.server")


@dataclass
class Page:
    referrals: list[Referral]
    total: int | None
    next_cursor: str | None
    note: str | None = None
    incomplete: bool = False  # the service stopped paging as asked: matches may be missing


async def run(runtime: Runtime, filters: Filters, sort: str, limit: int, cursor: str | None) -> Page:
    """One page of matches, and a cursor for the next when there is more."""
    signer = CursorSigner(runtime.cursor_key)
    state: dict[str, Any] = {}
    if cursor:
        state = signer.open(cursor)
        try:
            earlier = Filters.model_validate(state["f"])
            earlier_sort, earlier_limit = str(state["s"]), int(state["l"])
        except (KeyError, ValueError, TypeError):
            raise bad_cursor() from None
        # a cursor continues the search it came from: other filters or another sort are refused,
        # another page size is used
        given = filters.model_dump()
        if (given != Filters().model_dump() and given != earlier.model_dump()) or sort not in (
            DEFAULT_SORT,
            earlier_sort,
        ):
            raise InvalidInput(
                "A cursor continues the search it came from; it cannot change the filters or the sort.",
                field="cursor",
                hint="Pass only cursor (and limit) for the next page, or search again without cursor.",
            )
        filters, sort = earlier, earlier_sort
        limit = earlier_limit if limit == DEFAULT_LIMIT else limit
    needed = features_needed(filters, sort, limit)
    capabilities = await _capabilities(runtime, needed)
    the_plan = plan(filters, sort, capabilities)
    try:
        scan = await paging.scan(runtime.client, the_plan, capabilities, limit, state)
    except BadRequest:
        leaned = _leans_on_probed(the_plan, capabilities)
        if cursor or not leaned:
            raise
        # what was learnt (or asked unlearnt) does not hold: learn those features, try once more
        log.info("the service refused a query feature it answered before; probing again")
        capabilities = await _capabilities(
            runtime, [n for n in probed_features() if n in leaned], refresh=True
        )
        the_plan = plan(filters, sort, capabilities)
        scan = await paging.scan(runtime.client, the_plan, capabilities, limit, state)
    ignored = []
    if scan.disordered and not cursor and the_plan.sort_key is None:
        # the service answered the order with another one: sort here instead, and say so
        path = SORTS[sort][0]
        feature = "order_honoured" if path in DOCUMENTED_ORDERBY else "orderby_other"
        seen = replace(
            capabilities,
            supported={**capabilities.supported, feature: False},
            probed_at=capabilities.probed_at or when.now(),
        )
        the_plan = plan(filters, sort, seen)
        scan = await paging.scan(runtime.client, the_plan, seen, limit, {})
        ignored.append(f"The service ignored $orderby {path}: sorted here.")
    elif scan.disordered:
        ignored.append("The service sent rows out of the order asked; search again to sort them here.")
    if scan.stalled:
        ignored.append(
            "The service sent a page of referrals it had already sent (it does not page as asked): the "
            "list stops here and may lack matches."
        )
    if scan.unfiltered:
        # the service did not apply its filter: its count counts something else
        scan.total = (int(state.get("n", 0)) + len(scan.rows)) if scan.cursor is None else None
        ignored.append(
            f"The service returned {scan.unfiltered} referral(s) its filter should have excluded; they "
            "were left out here and its total is not used."
        )
    next_cursor = None
    if scan.cursor is not None:
        base = {"f": filters.model_dump(mode="json", exclude_none=True), "s": sort, "l": limit}
        next_cursor = signer.seal({**base, **scan.cursor})
    return Page(
        referrals=scan.rows,
        total=scan.total,
        next_cursor=next_cursor,
        incomplete=scan.stalled,
        note=" ".join([*ignored, _note(the_plan, scan, first_page=not cursor) or ""]).strip() or None,
    )


def _leans_on_probed(the_plan: Plan, capabilities: Capabilities) -> set[str]:
    """The features the query sent uses that were learnt (or are asked unlearnt) rather than documented."""
    used = {n for c in the_plan.server for n in c.needs}
    if the_plan.orderby and the_plan.orderby.split()[0] not in DOCUMENTED_ORDERBY:
        used.add("orderby_other")
    if the_plan.pure:
        used |= {n for n in ("skip",) if capabilities.supports(n)}
        used |= {"count"} if paging.asks_count(capabilities) else set()
    return used


def features_needed(filters: Filters, sort: str, limit: int = paging.SERVICE_PAGE) -> list[str]:
    """The probed features this search would hand to the service if they work: those its filters
    need, ``orderby_other`` for an undocumented sort, and, for pages smaller than the service's own,
    ``$skip`` and ``@odata.count`` (to ask for just ``limit`` rows and still know the total and where
    the next page starts; without them each call reads the service's whole page). Nothing else is
    probed for a search: the documented order is checked on every page it reads
    (``paging.Scan.disordered``), and pages of ``paging.SERVICE_PAGE`` follow the service's next links."""
    conditions, _ = build_conditions(filters, at=when.now())
    needed = {n for c in conditions if c.expr is not None for n in c.needs}
    if SORTS[sort][0] not in DOCUMENTED_ORDERBY:
        needed.add("orderby_other")
    if limit < paging.SERVICE_PAGE:
        needed |= {"skip", "count"}
    return [n for n in probed_features() if n in needed]


async def _capabilities(runtime: Runtime, needed: list[str], *, refresh: bool = False) -> Capabilities:
    """What the service answers; only what the documents show when it cannot be learnt right now."""
    try:
        found: Capabilities = await runtime.query_capabilities(needed, refresh=refresh)
        return found
    except PcrefError as exc:
        log.warning("could not learn the service's query features (%s); using the documented ones", exc)
        return documented(runtime.client.base_url)


def _note(the_plan: Plan, scan: paging.Scan, *, first_page: bool) -> str | None:
    parts: list[str] = []
    if the_plan.read_as:
        parts.append("Read " + "; ".join(the_plan.read_as) + ".")
    if the_plan.local or the_plan.sort_key is not None:
        done = [c.label for c in the_plan.local]
        if the_plan.sort_key is not None:
            done.append(f"sort {the_plan.sort_label}")
        why = f" (the service lacks: {', '.join(the_plan.missing)})" if the_plan.missing else ""
        pages = f"{scan.pages} page" + ("s" if scan.pages != 1 else "")
        parts.append(
            f"Done here, not by the service{why}: {'; '.join(done)}; "
            f"scanned {scan.scanned} referrals in {pages}."
        )
        if not scan.complete and the_plan.sort_key is not None:
            parts.append(
                f"Sorted only the first {scan.scanned} referrals; more exist: add filters to narrow."
            )
        elif not scan.complete and len(scan.rows) == 0:
            parts.append("Nothing matched yet; pass next_cursor to scan further.")
    if not scan.rows and scan.complete and first_page:
        if the_plan.conditions:
            applied = "; ".join(c.label for c in the_plan.conditions)
            relax = "; ".join(dict.fromkeys(c.relax for c in reversed(the_plan.conditions) if c.relax))
            parts.append(f"No referral matches all of: {applied}. To widen: {relax}.")
        else:
            parts.append("There are no referrals.")
    unread = skipped_note(scan.skipped)
    if unread:
        parts.append(unread)
    partly = [str(r.id) for r in scan.rows if any(p.left_out for p in r.read_problems)]
    if partly:  # e.g. a deal value "N/A": the row shows none, which is not the same as none set
        parts.append(
            f"Values of {', '.join(partly[:5])}{' …' if len(partly) > 5 else ''} could not be read and are "
            "left out of the rows; get_referral lists them (readProblems)."
        )
    return " ".join(parts) or None
