"""Seeding a store, from an in-memory copy of the same seed where one is kept.

Generating a seed and loading it (documents drawn, serialised, indexed, analysed) costs far more than
copying the finished database with SQLite's backup API, and a process on a manual clock seeds the same
data again and again (every test's fresh sandbox starts at the same instant). So a seed generated on a
manual clock is kept in memory, keyed by everything the documents depend on, and the next store asking
for the same seed gets a page-for-page copy: the same rows, byte for byte, the same indexes and the same
planner statistics. A running clock never asks for the same seed twice (the dates are relative to now),
so nothing is kept for it; nor for seeds too large to be worth holding in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from pcref_mcp.sandbox.rules import Partner
from pcref_mcp.sandbox.seed import generate
from pcref_mcp.sandbox.store import Store

__all__ = ["KEEP", "MAX_KEPT_SIZE", "seed_store"]

MAX_KEPT_SIZE = 1000  # referrals; about 5 MB of database
KEEP = 8  # seeds kept, least recently used dropped first

_Key = tuple[int, int, str, str, str, str, bool]
_kept: OrderedDict[_Key, tuple[Store, int]] = OrderedDict()
_lock = threading.Lock()


def seed_store(
    store: Store, size: int, *, seed: int, now: datetime, partner: Partner, real_world: bool, keep: bool
) -> int:
    """Replace ``store``'s referrals and write log with the seed; how many referrals it holds.

    ``keep`` (the clock is manual, so the same seed may be asked for again): copy a kept seed, or
    generate one in memory, keep it and copy it. The copy replaces the whole database, its ``meta``
    table included (the caller records what it seeded afterwards).
    """
    if not keep or size > MAX_KEPT_SIZE:
        store.clear()
        return store.bulk_insert(generate(size, seed=seed, now=now, partner=partner, real_world=real_world))
    # now as written, offset included: the same instant in another zone may draw other dates
    key: _Key = (size, seed, now.isoformat(), partner.org_id, partner.org_name, partner.mpn_id, real_world)
    with _lock:
        kept = _kept.get(key)
        if kept is not None:
            _kept.move_to_end(key)
    if kept is None:
        template = Store(None)
        count = template.bulk_insert(
            generate(size, seed=seed, now=now, partner=partner, real_world=real_world)
        )
        kept = (template, count)
        with _lock:
            _kept[key] = kept
            while len(_kept) > KEEP:  # not closed: a copy may be reading it (freed once unused)
                _kept.popitem(last=False)
    template, count = kept
    store.copy_from(template)
    return count
