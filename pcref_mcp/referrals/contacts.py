"""People and solutions in a referral's lists: when two entries are the same, and what of them to show.

A retried "add sales team member" must not add the person twice, so entries are compared the way a
person would: contacts by e-mail (case-insensitive), else by first and last name; solutions by id.
And a change to one contact is no reason to show everyone else's e-mail and phone: outside the
contacts a change is about, only names are shown (``hide_contact_details``).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

__all__ = [
    "CONTACT_LISTS",
    "EMAIL",
    "HIDDEN",
    "LIST_POINTERS",
    "describe",
    "entry_key",
    "find_same",
    "hide_contact_details",
    "is_email",
]

if TYPE_CHECKING:
    # Lists of people (JSON pointers) and every list whose entries a change can append: read from the
    # field table on first use (``__getattr__``), so the e-mail rule loads without the wire models.
    CONTACT_LISTS: frozenset[str]
    LIST_POINTERS: frozenset[str]
HIDDEN = "(not shown)"
_PRIVATE_KEYS = ("email", "phoneNumber")

# The one e-mail rule (write models and sandbox alike): something, "@", a domain of at least two
# non-empty labels; no spaces, no second "@".
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


@functools.cache
def _lists() -> dict[str, frozenset[str]]:
    from pcref_mcp.referrals.fields import REFERRAL_FIELDS

    return {
        "CONTACT_LISTS": frozenset(f.pointer for f in REFERRAL_FIELDS if f.entries == "member"),
        "LIST_POINTERS": frozenset(f.pointer for f in REFERRAL_FIELDS if f.entries is not None),
    }


def __getattr__(name: str) -> Any:
    if name in ("CONTACT_LISTS", "LIST_POINTERS"):
        return _lists()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_email(text: object) -> bool:
    """Whether ``text`` is an e-mail address by :data:`EMAIL` (the whole of it)."""
    return isinstance(text, str) and EMAIL.fullmatch(text) is not None


def entry_key(pointer: str, entry: Any) -> tuple[str, ...] | None:
    """What makes an entry of the list at ``pointer`` the same as another (None: cannot tell)."""
    if not isinstance(entry, dict):
        return None
    if pointer in _lists()["CONTACT_LISTS"]:
        email = str(entry.get("email") or "").strip().lower()
        if email:
            return ("email", email)
        first = str(entry.get("firstName") or "").strip().lower()
        last = str(entry.get("lastName") or "").strip().lower()
        return ("name", first, last) if first or last else None
    if pointer == "/details/requirements/solutions":
        ident = str(entry.get("id") or "").strip().lower()
        return ("id", ident) if ident else None
    return None


def find_same(pointer: str, entries: Any, entry: Any) -> Any:
    """The entry of ``entries`` that is the same as ``entry`` (None if there is none)."""
    key = entry_key(pointer, entry)
    if key is None or not isinstance(entries, list):
        return None
    for existing in entries:
        if entry_key(pointer, existing) == key:
            return existing
    return None


def describe(pointer: str, entry: Any) -> str:
    """A person or solution in a few words, for a preview line (names only, never contact details)."""
    if not isinstance(entry, dict):
        return repr(entry)
    if pointer in _lists()["CONTACT_LISTS"]:
        name = " ".join(str(entry.get(k) or "").strip() for k in ("firstName", "lastName")).strip()
        return name or "a contact without a name"
    return str(entry.get("name") or entry.get("id") or "an entry")


def hide_contact_details(pointer: str, value: Any, about: list[Any] | tuple[Any, ...] = ()) -> Any:
    """``value`` (a list at ``pointer``) with the e-mail and phone of every contact not in ``about``
    replaced by ``HIDDEN``; anything that is not a contact list is returned as it is."""
    if pointer not in _lists()["CONTACT_LISTS"] or not isinstance(value, list):
        return value
    keys = {entry_key(pointer, entry) for entry in about}
    keys.discard(None)
    out: list[Any] = []
    for entry in value:
        if isinstance(entry, dict) and entry_key(pointer, entry) not in keys:
            entry = {k: (HIDDEN if k in _PRIVATE_KEYS and v else v) for k, v in entry.items()}
        out.append(entry)
    return out
