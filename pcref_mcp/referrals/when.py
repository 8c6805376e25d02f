"""Dates and periods as people say them, read against today in the configured time zone.

Two readers, one per kind of argument (the table is in docs/model-contract.md):

* ``read_day`` for a date field (closing date, contract dates): a day. "next Friday", "end of the
  month", "in two weeks", "7 days" are read as one day, and the answer says which. A date-time with
  an offset keeps the calendar day the person wrote ("2026-12-11T23:00:00-08:00" is 11 December).
  A period ("last week") or a day that two readers would place differently ("end of Q1": calendar
  or Microsoft's fiscal year) is refused with the readings, for the person to choose.
* ``read_since`` for a cut-off (recent_changes since): a moment. "7 days", "last week", "this
  month", an offset time: converted to UTC, and the answer says so.

Each returns None for text it does not recognise (the field's own check then judges it).

``parse_when`` is that check for the write models' date fields: an ISO date or an aware date-time,
or a date written in words or in a local order where it can be read one way only; anything else is
refused (``FieldProblem``).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from pcref_mcp.referrals.problems import FieldProblem
from pcref_mcp.referrals.timestamps import parse_wire
from pcref_mcp.referrals.write_messages import _show

ZONE: tzinfo = UTC
ZONE_NAME = "UTC"

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fourteen": 14,
    "thirty": 30,
}
_UNIT_DAYS = {"day": 1, "week": 7, "fortnight": 14}
_ISO_NO_ZONE = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
# month names and their short forms → the month (write_models reads dates with it too)
MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_ABBREVIATIONS = {
    "eom": "end of the month",
    "eoy": "end of the year",
    "eoq": "end of the quarter",
    "eow": "end of the week",
}
_ISO_WITH_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-]\d{2}:?\d{2})")


def configure(zone: str) -> None:
    """The time zone "today" is read in (Settings.time_zone, checked there): set as the server starts."""
    global ZONE, ZONE_NAME
    ZONE, ZONE_NAME = (UTC, "UTC") if zone.upper() == "UTC" else (ZoneInfo(zone), zone)


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().astimezone(ZONE).date()


@dataclass(frozen=True)
class Day:
    """A day read from words: the ISO date and how it was read; or readings to choose from."""

    iso: str | None
    how: str
    readings: tuple[tuple[str, str], ...] = ()  # (label, ISO date) when the person must choose
    period: tuple[str, str] | None = None  # a period's first and last day (a range's bound may use them)


def read_day(text: str) -> Day | None:
    """A date field's value in words, or a date-time with an offset; None if not such a value."""
    raw = " ".join(text.strip().casefold().split())
    offset = _ISO_WITH_OFFSET.fullmatch(text.strip())
    if offset is not None and offset[2] not in ("+00:00", "+0000", "-00:00"):
        return Day(offset[1], f"the calendar day written ({offset[1]}); its time and offset are not kept")
    no_zone = _ISO_NO_ZONE.fullmatch(text.strip())
    if no_zone is not None:
        return Day(no_zone[1], f"the calendar day written ({no_zone[1]}); its time is not kept")
    parts = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", raw)
    if parts and int(parts[1]) <= 12 and int(parts[2]) <= 12 and parts[1] != parts[2]:
        a, b, year = int(parts[1]), int(parts[2]), int(parts[3])
        day_first, month_first = date(year, b, a).isoformat(), date(year, a, b).isoformat()
        return Day(
            None,
            f"{text.strip()!r} can be read two ways: {day_first} (day first) or {month_first} (month first)",
            (("day first", day_first), ("month first", month_first)),
        )
    ymd = re.fullmatch(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})", raw)
    if ymd is not None:  # 2027/03/31: year first is read one way only
        try:
            day = date(int(ymd[1]), int(ymd[2]), int(ymd[3]))
        except ValueError:
            return None
        return Day(day.isoformat(), f"{day.isoformat()} (year, month, day as written)")
    t = today()
    said = f"today being {t.isoformat()} in {ZONE_NAME}"
    words = _ABBREVIATIONS.get(raw, raw).removeprefix("on ").removeprefix("by ").removesuffix(" day")
    words = re.sub(r"\s+(morning|afternoon|evening|noon|eod|cob|end of day|close of business)$", "", words)
    words = words.replace("within ", "in ")
    if words in ("today", "tomorrow", "yesterday"):
        shift = {"today": 0, "tomorrow": 1, "yesterday": -1}[words]
        return _day(t + timedelta(days=shift), said)
    week_after = re.fullmatch(r"(?:a week from |(?:the )?week after )(\w+)|(\w+) week", words)
    if week_after and (week_after[1] or week_after[2]) in _WEEKDAYS:
        name = week_after[1] or week_after[2]
        ahead = (_WEEKDAYS.index(name) - t.weekday()) % 7 or 7
        return _day(t + timedelta(days=ahead + 7), f"a week after the coming {name.title()}, {said}")
    weekday = re.fullmatch(r"(?:(next|this|coming|this coming)\s+)?(\w+?)(?:\s+(next week))?", words)
    if weekday and weekday[2] in _WEEKDAYS:
        target = _WEEKDAYS.index(weekday[2])
        ahead = (target - t.weekday()) % 7 or 7
        monday = t - timedelta(days=t.weekday()) + timedelta(days=7)
        if weekday[3]:  # "Friday next week": the one in the week after this
            return _day(monday + timedelta(days=target), said)
        coming = t + timedelta(days=ahead)
        if weekday[1] == "next" and coming < monday:  # this week's, or next week's? People differ
            later = coming + timedelta(days=7)
            return Day(
                None,
                f"{text.strip()!r} can be read two ways: this coming {weekday[2].title()} {coming.isoformat()} or "
                f"the {weekday[2].title()} of next week {later.isoformat()} ({said})",
                (("this coming one", coming.isoformat()), ("next week's", later.isoformat())),
            )
        return _day(coming, f"the coming {weekday[2].title()}, {said}")
    span = re.fullmatch(
        r"(?:in\s+)?(\d{1,3}|[a-z]+)\s+(day|week|fortnight|month)s?(?:\s+from\s+(?:now|today))?", words
    )
    if span and (span[1].isdigit() or span[1] in _NUMBERS):
        count = int(span[1]) if span[1].isdigit() else _NUMBERS[span[1]]
        if span[2] == "month":
            return _day(_add_months(t, count), said)
        return _day(t + timedelta(days=count * _UNIT_DAYS[span[2]]), said)
    month_end = re.fullmatch(r"(?:the\s+)?(?:end|last\s+day)\s+of\s+([a-z]+)\.?(?:\s+(\d{4}))?", words)
    if month_end and month_end[1] in MONTHS:
        month = MONTHS[month_end[1]]
        year = int(month_end[2]) if month_end[2] else t.year + (1 if month < t.month else 0)
        last = date(year, month, calendar.monthrange(year, month)[1])
        return _day(last, f"the last day of {last.strftime('%B %Y')}, {said}")
    end = re.fullmatch(r"(?:the\s+)?end\s+of\s+(?:the\s+)?(this|next)?\s*(month|year|quarter|week)", words)
    if end:
        return _day(_end_of(t, end[2], next_one=end[1] == "next"), said)
    quarter = re.fullmatch(r"(?:the\s+)?end\s+of\s+(?:the\s+)?q([1-4])(?:\s+(\d{4}))?", words)
    if quarter:
        return _quarter(t, int(quarter[1]), int(quarter[2]) if quarter[2] else None)
    in_month = re.fullmatch(
        r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]+)\.?|([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?",
        words,
    )
    if in_month:
        day_number, month_name = (in_month[1], in_month[2]) if in_month[1] else (in_month[4], in_month[3])
        if month_name in MONTHS:
            return _next_date(t, MONTHS[month_name], int(day_number), said)
    nth = re.fullmatch(r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)", words)
    if nth:
        number = int(nth[1])
        for shift in range(0, 3):
            first = _add_months(t.replace(day=1), shift)
            if number <= calendar.monthrange(first.year, first.month)[1] and first.replace(day=number) >= t:
                return _day(first.replace(day=number), f"the next {words.removeprefix('the ')}, {said}")
    month_alone = re.fullmatch(r"(?:(?:in|during|sometime in)\s+)?([a-z]+)\.?(?:\s+(\d{4}))?", words)
    if month_alone and month_alone[1] in MONTHS and (len(month_alone[1]) > 3 or month_alone[2]):
        month = MONTHS[month_alone[1]]
        year = int(month_alone[2]) if month_alone[2] else t.year + (1 if month < t.month else 0)
        first = date(year, month, 1)
        last = first.replace(day=calendar.monthrange(year, month)[1])
        return Day(
            None,
            f"{text.strip()!r} is a month ({first} to {last}, {said}), not a day; ask the person which day",
            period=(first.isoformat(), last.isoformat()),
        )
    period = re.fullmatch(r"(last|this|next)\s+(week|month|quarter|year)", words)
    if period:
        first, last = _period(t, period[2], {"last": -1, "this": 0, "next": 1}[period[1]])
        return Day(
            None,
            f"{text.strip()!r} is a period ({first} to {last}, {said}), not a day; ask the person which day",
            period=(first.isoformat(), last.isoformat()),
        )
    return None


def read_since(text: str) -> tuple[datetime, str] | None:
    """A cut-off in words or with an offset, as a UTC moment and how it was read; None otherwise."""
    raw = " ".join(text.strip().casefold().split()).removeprefix("since ").removeprefix("the ")
    moment = now()
    t = today()
    said = f"now being {moment.astimezone(ZONE).strftime('%Y-%m-%d %H:%M')} in {ZONE_NAME}"
    iso = _ISO_WITH_OFFSET.fullmatch(text.strip())
    if iso is not None:
        parsed = parse_wire(text)
        if parsed is not None:
            return parsed, f"{text.strip()} in UTC"
    span = re.fullmatch(
        r"(?:last|past|the last|the past)?\s*(\d{1,4}|[a-z]+)\s*(hours?|days?|weeks?|hrs?|h|d|w)(?:\s+ago)?",
        raw,
    )
    if span and (span[1].isdigit() or span[1] in _NUMBERS):
        count = int(span[1]) if span[1].isdigit() else _NUMBERS[span[1]]
        unit = {"h": "hour", "d": "day", "w": "week"}[span[2][0]]
        hours = count * {"hour": 1, "day": 24, "week": 168}[unit]
        return moment - timedelta(hours=hours), f"the last {count} {unit}(s), {said}"
    start = re.fullmatch(
        r"(?:the\s+)?(?:start|beginning)\s+of\s+(?:the\s+|this\s+)?(week|month|quarter|year)", raw
    )
    if start:
        first, _ = _period(t, start[1], 0)
        return _midnight(first), f"the start of this {start[1]} ({first.isoformat()}, {said})"
    on_day = re.fullmatch(
        r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]+)\.?|([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?",
        raw,
    )
    if on_day:
        number, name = (on_day[1], on_day[2]) if on_day[1] else (on_day[4], on_day[3])
        if name in MONTHS:  # "1 Dec": the latest such day, today included (a cut-off lies behind)
            for year in (t.year, t.year - 1):
                try:
                    day = date(year, MONTHS[name], int(number))
                except ValueError:
                    return None
                if day <= t:
                    return _midnight(day), f"the start of {day.isoformat()}, {said}"
    period = re.fullmatch(r"(last|this)\s+(week|month)|(a|one)\s+(week|month)\s+ago", raw)
    if period and period[1]:
        first, _ = _period(t, period[2], -1 if period[1] == "last" else 0)
        return _midnight(first), f"the start of {period[1]} {period[2]} ({first.isoformat()}, {said})"
    return None


def _next_date(today_: date, month: int, day: int, said: str) -> Day | None:
    """ "15 December" without a year: the next such day, today included (a closing date lies ahead)."""
    for year in (today_.year, today_.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today_:
            return _day(candidate, f"the next {candidate.strftime('%d %B')}, {said}")
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, ZONE).astimezone(UTC)


def _day(day: date, how: str) -> Day:
    return Day(day.isoformat(), f"{day.isoformat()} ({day.strftime('%A')}, {how})")


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _end_of(day: date, unit: str, *, next_one: bool) -> date:
    if unit == "week":  # the working week: Friday
        friday = day - timedelta(days=day.weekday()) + timedelta(days=4 + (7 if next_one else 0))
        return friday
    if unit == "month":
        first = _add_months(day.replace(day=1), 1 if next_one else 0)
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    if unit == "year":
        return date(day.year + (1 if next_one else 0), 12, 31)
    # a quarter ends on the same days in the calendar and in Microsoft's fiscal year
    month = ((day.month - 1) // 3 + 1) * 3 + (3 if next_one else 0)
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def _quarter(day: date, number: int, year: int | None) -> Day:
    """ "end of Q1": the calendar Q1 and Microsoft's fiscal Q1 (July to September) end months apart."""
    cal_month, fiscal_month = number * 3, (number * 3 + 6 - 1) % 12 + 1
    cal = date(year or day.year, cal_month, calendar.monthrange(year or day.year, cal_month)[1])
    if year is None and cal < day:
        cal = date(day.year + 1, cal_month, cal.day)
    fy = year or day.year
    fiscal = date(fy, fiscal_month, calendar.monthrange(fy, fiscal_month)[1])
    if year is not None and fiscal_month >= 7:  # FY2027 Q1 ends 2026-09-30
        fiscal = date(year - 1, fiscal_month, fiscal.day)
    if year is None and fiscal < day:
        fiscal = date(fiscal.year + 1, fiscal_month, fiscal.day)
    return Day(
        None,
        f"'end of Q{number}' can be read two ways: calendar Q{number} ends {cal.isoformat()}, Microsoft's "
        f"fiscal Q{number} ends {fiscal.isoformat()}",
        (
            (f"calendar Q{number}", cal.isoformat()),
            (f"Microsoft fiscal Q{number}", fiscal.isoformat()),
        ),
    )


def _period(day: date, unit: str, shift: int) -> tuple[date, date]:
    if unit == "year":
        return date(day.year + shift, 1, 1), date(day.year + shift, 12, 31)
    if unit == "quarter":
        first = _add_months(day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1), 3 * shift)
        last = _add_months(first, 2)
        return first, last.replace(day=calendar.monthrange(last.year, last.month)[1])
    if unit == "week":
        monday = day - timedelta(days=day.weekday()) + timedelta(days=7 * shift)
        return monday, monday + timedelta(days=6)
    first = _add_months(day.replace(day=1), shift)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


# --- a date field's value: a date as written, one reading only (write models' ``DateInput``) --------

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Dates people write that can be read one way only: a month by name in either order ("March 31,
# 2027", "31 Mar 2027"), or day and month as numbers where one of them cannot be a month ("31/12/2027").
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_YEAR = r"(?P<year>\d{4})"
_DATE_IN_WORDS = (
    re.compile(rf"{_MONTH}\s+{_DAY},?\s+{_YEAR}", re.IGNORECASE),
    re.compile(rf"{_DAY}(?:\s+|-)(?:of\s+)?{_MONTH}(?:,?\s+|-){_YEAR}", re.IGNORECASE),
)
_DATE_IN_NUMBERS = re.compile(r"(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<year>\d{4})")


def parse_when(value: Any) -> datetime:
    """A date or an aware date-time (``2026-11-27``, ``2026-11-27T10:00:00Z``) as an aware UTC datetime.

    A date means midnight UTC. A date-time without a time zone is refused: guessing one would move
    the date for someone.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    elif isinstance(value, str) and (written := _written_date(value.strip())) is not None:
        return datetime.combine(written, time(), UTC)
    elif isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        day = parse_wire(value)
        if day is None:
            raise FieldProblem(lambda f: f"{f} {value!r} is not a calendar date.")
        return day
    elif isinstance(value, str):
        read = parse_wire(value, naive=True)
        if read is None:
            raise FieldProblem(
                lambda f: (
                    f"{f} {value!r} is not a date; use YYYY-MM-DD or a UTC date-time such as "
                    "'2026-11-27T10:00:00Z'."
                )
            )
        moment = read
    else:
        raise FieldProblem(lambda f: f"{f} {value!r} is not a date; use YYYY-MM-DD.")
    if moment.tzinfo is None:
        raise FieldProblem(
            lambda f: (
                f"{f} {_show(value)} has no time zone; add 'Z' for UTC (e.g. '2026-11-27T10:00:00Z') "
                "or give just the date."
            )
        )
    return moment.astimezone(UTC)


def _written_date(text: str) -> date | None:
    """A date written in words or with its parts in a local order, where it can be read one way
    only; None when ``text`` is not such a date at all. Refuses a date that two readers would read
    differently (``03/04/2027``) or that is not in the calendar."""
    for pattern in _DATE_IN_WORDS:
        found = pattern.fullmatch(text)
        if found and found["month"].lower() in MONTHS:
            year, month, day = int(found["year"]), MONTHS[found["month"].lower()], int(found["day"])
            break
    else:
        found = _DATE_IN_NUMBERS.fullmatch(text)
        if not found:
            return None
        a, b, year = int(found["a"]), int(found["b"]), int(found["year"])
        if a <= 12 and b <= 12 and a != b:
            readings = f"{_spelled(year, a, b)} or {_spelled(year, b, a)}"
            raise FieldProblem(
                lambda f, r=readings: f"{f} {text!r} can be read two ways ({r}); use YYYY-MM-DD."  # type: ignore[misc]
            )
        month, day = (a, b) if a <= 12 else (b, a)
    try:
        return date(year, month, day)
    except ValueError:
        raise FieldProblem(lambda f: f"{f} {text!r} is not a calendar date; use YYYY-MM-DD.") from None


def _spelled(year: int, month: int, day: int) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return f"{year}-{month:02d}-{day:02d}"


__all__ = ["MONTHS", "Day", "configure", "now", "parse_when", "read_day", "read_since", "today"]
