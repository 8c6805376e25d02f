"""A referral named the way people name it: its id, a unique id prefix, its name or its customer.

Every tool that takes a referral (``referral_id``, batch items, the connector's ``fetch`` ``id``) reads
the reference here before anything else runs (``inputs.GuardedTool``). A full id is used as given.
Anything else is looked up: exactly one match is used and the answer says how it was read; several
are listed (id, name, customer, status) for the person to choose; none is refused with the look-up
to make, built from the caller's own words.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pcref_mcp.errors import Ambiguous, InvalidInput, PcrefError
from pcref_mcp.referrals.untrusted import quote

# A full referral id (a GUID, what the service issues).
_FULL_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The start of one: at least six hex digits, dashes where a GUID has them.
_PREFIX = re.compile(r"[0-9a-fA-F]{6}[0-9a-fA-F-]{0,29}")
MAX_SCAN_PAGES = 20  # 2,000 referrals, newest first, for an id prefix
SHOWN = 10


def is_full_id(text: str) -> bool:
    return _FULL_ID.fullmatch(text.strip()) is not None


async def resolve(runtime: Any, text: str, where: str, *, strict: bool = True) -> tuple[str, str | None]:
    """The id ``text`` names, and a note when it was not one (None: used as given). Not ``strict``
    (a batch item): what names no single referral is left as given, for the item's own refusal."""
    from pcref_mcp.server import search as searching

    given = text.strip().removeprefix("{").removesuffix("}").strip()  # a GUID as some tools print it
    if not given or is_full_id(given) or given.lower().startswith("referral://") or set("/?#") & set(given):
        return given, None
    if await _exists(runtime, given):  # an id of another shape (or a recording's), used as given
        return given, None
    found: list[Any] = []
    how = ""
    if _PREFIX.fullmatch(given):
        cursor: str | None = None
        for _ in range(MAX_SCAN_PAGES):
            page = await searching.run(runtime, searching.Filters(), "updated_desc", 100, cursor)
            found += [r for r in page.referrals if str(r.id).lower().startswith(given.lower())]
            cursor = page.next_cursor
            if not cursor:
                break
        how = "the id starting so"
    if not found and " " not in given:  # a CRM id: the referral's external reference id, exactly
        page = await searching.run(
            runtime, searching.Filters(external_reference_id=given), "updated_desc", 100, None
        )
        found = [r for r in page.referrals if (r.external_reference_id or "").casefold() == given.casefold()]
        how = "the referral whose external reference id is so"
    if not found:
        page = await searching.run(runtime, searching.Filters(text=given), "updated_desc", 100, None)
        named = [r for r in page.referrals if _named(r, given, exact=True)]
        found = named or [r for r in page.referrals if _named(r, given, exact=False)]
        how = "the referral named so" if named else "the referral whose name or customer says so"
    if not found and not strict:
        return given, None
    if len(found) == 1:
        only = found[0]
        return str(
            only.id
        ), f"{where} {json.dumps(given, ensure_ascii=False)} read as {only.id} ({how}: {_line(only)})"
    if not found:
        raise InvalidInput(
            f"Referral not found: {where} {quote(given)} is no referral's id, nor the start of one, nor a "
            "referral's name or customer.",
            field=where,
            hint=f"Find it by its words: search_referrals {_call({'filters': {'text': given}})}",
        )
    listed = "; ".join(f"{r.id} ({_line(r)})" for r in found[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    raise Ambiguous(
        f"{where} {quote(given)} names {len(found)} referrals: {listed}{more}.",
        field=where,
        readings=[(f"If {r.id} ({_line(r)})", str(r.id)) for r in found[:SHOWN]],
        hint="Ask the person which one they mean, then call again with its id. Nothing was sent.",
    )


async def _exists(runtime: Any, referral_id: str) -> bool:
    try:
        await runtime.client.get(referral_id)
    except PcrefError:  # not found, or not an id the service takes: look it up as a name
        return False
    return True


def _named(referral: Any, text: str, *, exact: bool) -> bool:
    wanted = " ".join(text.casefold().split())
    names = [referral.name or "", referral.customer_profile.name if referral.customer_profile else ""]
    for name in names:
        have = " ".join(name.casefold().split())
        if (have == wanted) if exact else all(word in have for word in wanted.split()):
            return True
    return False


def _line(referral: Any) -> str:
    customer = referral.customer_profile.name if referral.customer_profile else None
    return (
        f"{quote(referral.name or 'unnamed')} — {quote(customer or 'unknown customer')}, "
        f"{referral.status}/{referral.substatus}"
    )


def _call(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


__all__ = ["is_full_id", "resolve"]
