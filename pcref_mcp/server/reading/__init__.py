"""The reader behind ``server.inputs`` (the one place input errors go through), by job:

- ``words``: the other words for a field (``SYNONYMS``); folding, echoing and masking text;
- ``fields``: what a model's fields hold, and the per-model name index keys are placed by;
- ``reader``: the generic reader (``_Reader``), ``Reading`` and its refusal, ``Choice``;
- ``amounts``: amounts with a currency, thousands dots, decimal commas, "$" against what is stored;
- ``changes``: the writes' hooks (update_field, register_deal, batch_update with CSV rows) and their
  change items;
- ``queries``: the reading tools' hooks (search_referrals with its filters and sort, get_referral,
  recent_changes);
- ``new_referral``: create_referral's consent, co-sell help and people.

This module is the table of which hook reads which tool and which model: importing any part of the
package fills it, so the reader never runs without its hooks.
"""

from __future__ import annotations

from pcref_mcp.referrals.write_models import Contact, NewReferral
from pcref_mcp.server.reading.changes import _batch_hook, _changes_hook, _preview_words
from pcref_mcp.server.reading.new_referral import _contact_hook, _new_referral_hook
from pcref_mcp.server.reading.queries import _filters_hook, _get_referral_hook, _recent_hook, _search_hook
from pcref_mcp.server.reading.reader import _MODEL_HOOKS
from pcref_mcp.server.search import Filters

# Readers for what the generic walk cannot derive, by tool: the raw arguments, before the walk.
_TOOL_HOOKS = {
    "recent_changes": _recent_hook,
    "create_referral": lambda reader, data, model: _preview_words(reader, data),
    "batch_update": _batch_hook,
    "search_referrals": _search_hook,
    "get_referral": _get_referral_hook,
    "update_field": _changes_hook,
    "register_deal": _changes_hook,
}

# ... and by model, wherever the walk meets one (change items: changes.read_changes; a change's people
# and solutions, write twins built on first use, are read with their hooks by changes._VALUE_MODELS).
_MODEL_HOOKS.update(
    {
        Contact: _contact_hook,
        Filters: _filters_hook,
        NewReferral: _new_referral_hook,
    }
)
