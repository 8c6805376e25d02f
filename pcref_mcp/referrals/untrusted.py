"""Text that others wrote (names, notes, invite notes, reasons) is data, never instructions.

Everything that reaches the model passes such text through ``quote``: wrapped in «…», with any
guillemets inside replaced so the text can never close its own quote and pose as ours.
"""

from __future__ import annotations

from typing import Any

OPEN, CLOSE = "«", "»"

# Wire keys whose string values were written by someone else.
UNTRUSTED_KEYS = frozenset(
    {
        "name",
        "notes",
        "statusReason",
        "organizationName",
        "customerAction",
        "addressLine1",
        "addressLine2",
        "city",
        "state",
        "region",
        "title",
        "firstName",
        "lastName",
        "publisherName",
        # ids and labels others chose: a CRM's id, a campaign, tags, a postal code
        "externalReferenceId",
        "campaignId",
        "referralProgram",
        "tags",
        "postalCode",
    }
)
# Lists of objects whose "id" someone else chose (customerProfile.ids: DUNS or the partner's own ids).
UNTRUSTED_ID_LISTS = frozenset({"ids"})


def quote(text: Any) -> str | None:
    if text is None:
        return None
    clean = str(text).replace(OPEN, "‹").replace(CLOSE, "›")
    return f"{OPEN}{clean}{CLOSE}"


def quote_fields(value: Any, key: str | None = None) -> Any:
    """A wire value with every untrusted string inside it quoted (dicts and lists walked)."""
    if isinstance(value, dict):
        if key in UNTRUSTED_ID_LISTS:
            return {
                k: quote(v) if k == "id" and isinstance(v, str) else quote_fields(v, k)
                for k, v in value.items()
            }
        return {k: quote_fields(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [quote_fields(v, key) for v in value]
    if isinstance(value, str) and key in UNTRUSTED_KEYS:
        return quote(value)
    return value


def quote_at(pointer: str, value: Any) -> Any:
    """``quote_fields`` for the value found at a JSON pointer (its last segment names the field)."""
    key = pointer.rstrip("/-").rsplit("/", 1)[-1]
    return quote_fields(value, key)


# Our marks, outer and inner (``quote`` turns marks inside the text into the inner pair).
_MARKS = ((OPEN, CLOSE), ("‹", "›"))


def unwrap(text: str) -> str | None:
    """The text inside our quote marks when all of ``text`` is wrapped in them («…», ‹…›, nested), else None.

    Text copied back from an answer ("«Tailspin Toys»") must not round-trip the marks into data.
    """
    inner = text.strip()
    while len(inner) >= 2 and any(inner[0] == o and inner[-1] == c for o, c in _MARKS):
        body = inner[1:-1]
        if any(o in body or c in body for o, c in _MARKS[:1]):  # «a» and «b»: two quotes, not one
            break
        inner = body.strip()
    return inner if inner != text.strip() and inner else None
