"""search_referrals: filters a person would use, answered by the service where it can, here where not.

Every filter is a condition: a test on the referral's wire document, and (when there is one) the
OData expression that asks the service for the same thing plus the query features that needs.
The service gets the conditions its features allow (documented ones always, the rest as learnt by
:mod:`pcref_mcp.partner_center.capabilities`); the others are applied here over a bounded number of
the service's own pages, and the answer's note says so, with how much was scanned.

The cursor handed to the model is signed (a model cannot point the client and its bearer token at
another host or forge a query) and records the page a result came from and the position within it,
so the next page starts right after the last row shown even when the service pages differently
from what was asked (ignores ``$top``, pages by 100).

By job: :mod:`.filters` (what is asked: the filters and the sort), :mod:`.conditions` (filters as
tests and OData, the plan), :mod:`.paging` (the service's pages read for a plan), :mod:`.cursor`
(the signed cursor) and :mod:`.answer` (one page of matches and its note). Callers use the names
below; they load on first use (the tool list needs only :mod:`.filters`, whose models are its
schemas: the planner, the paging and OData load with the first search).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pcref_mcp.server.search.answer import Page, run
    from pcref_mcp.server.search.conditions import Plan, plan
    from pcref_mcp.server.search.filters import SORTS, Filters, Sort, read_states

# Where each name lives: imported the first time it is asked for (PEP 562), not with the package.
_HOMES = {
    "Page": "answer",
    "run": "answer",
    "Plan": "conditions",
    "plan": "conditions",
    "SORTS": "filters",
    "Filters": "filters",
    "Sort": "filters",
    "read_states": "filters",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = ["SORTS", "Filters", "Page", "Plan", "Sort", "plan", "read_states", "run"]
