"""Timestamps on the wire: the one reader and the one writer.

The service writes UTC with seven fractional digits (``2019-02-23T02:05:23.2931817Z``); documented
requests send whole seconds (``2026-11-27T10:00:00Z``). Everyone who reads or writes a wire timestamp
(the read models' helpers, the write models, the sandbox, search) goes through :func:`parse_wire`
and :func:`format_wire`, so the forms cannot drift apart (a test holds every other module to it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["REQUEST_DIGITS", "SERVICE_DIGITS", "format_wire", "parse_wire"]

SERVICE_DIGITS = 7  # what the service writes: more than datetime holds, so the last digit is 0
REQUEST_DIGITS = 0  # what every documented request sends

_WIRE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?"
)


def parse_wire(text: object, *, naive: bool = False) -> datetime | None:
    """An ISO 8601 timestamp (a date alone, any fraction, ``Z`` or an offset) as an aware UTC
    datetime; None when ``text`` is not one (or not a calendar date).

    Without a zone the time is read as UTC, as the service does; ``naive=True`` returns it without
    a zone instead, for a reader of what a person wrote that must not guess one.
    """
    found = _WIRE.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    year, month, day, hh, mm, ss, frac, zone = found.groups()
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hh or 0),
            int(mm or 0),
            int(ss or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    if zone is None:
        return when if naive else when.replace(tzinfo=UTC)
    if zone in ("Z", "z"):
        return when.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (when - sign * offset).replace(tzinfo=UTC)


def format_wire(when: datetime, digits: int = SERVICE_DIGITS, *, trim: bool = False) -> str:
    """``when`` in UTC as the wire writes it: ``digits`` fractional digits (0 to 7), ``Z``.

    ``trim`` drops trailing zeros of the fraction (and the dot when none is left). A fixed width sorts
    as text in time order, which the sandbox store's indexes rely on.
    """
    if not 0 <= digits <= 7:
        raise ValueError(f"a wire timestamp has 0 to 7 fractional digits, not {digits}")
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    fraction = f"{when.microsecond:06d}0"[:digits]
    if trim:
        fraction = fraction.rstrip("0")
    return f"{when:%Y-%m-%dT%H:%M:%S}{'.' + fraction if fraction else ''}Z"
