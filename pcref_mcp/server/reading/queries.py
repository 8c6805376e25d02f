"""The reading tools' hooks: search_referrals (sort words, pages, a limit over 100, filters as a list;
status words in filters), get_referral (``include_<section>``) and recent_changes (a window in words)."""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel

from pcref_mcp.referrals import lifecycle, when
from pcref_mcp.server.reading.changes import _OUTCOME_WORDS
from pcref_mcp.server.reading.fields import _enum_value, _enum_values, _fields, _shape
from pcref_mcp.server.reading.reader import _Reader
from pcref_mcp.server.reading.words import SYNONYMS, _at, _brief, _fold, _snake
from pcref_mcp.server.search import Filters

# search_referrals: the sort column words and their natural direction.
SORT_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "updated": (
        "desc",
        ("updated", "updateddatetime", "lastmodified", "modified", "lastupdated", "updatedat"),
    ),
    "created": ("desc", ("created", "createddatetime", "createdat", "newest")),
    "closing": ("asc", ("closing", "closingdate", "closingdatetime", "closedate", "close", "expectedclose")),
    "value": ("desc", ("value", "dealvalue", "amount", "dealamount", "size", "dealsize")),
}


# A sort said as people say it ("biggest first"): the word decides column and direction.
_SORT_PHRASES: dict[str, str] = {
    "biggest": "value_desc",
    "largest": "value_desc",
    "highest": "value_desc",
    "smallest": "value_asc",
    "lowest": "value_asc",
    "soonest": "closing_asc",
    "latest": "updated_desc",
    "oldest": "created_asc",
}


DIRECTIONS: dict[str, str] = {"asc": "asc", "ascending": "asc", "desc": "desc", "descending": "desc"}


def _search_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """Sort words (``sortBy``, ``orderBy``, ``direction: desc``) and page/offset in search_referrals;
    filters as a list of conditions (all must match) as one object."""
    filters = data.get("filters")
    if isinstance(filters, list) and filters and all(isinstance(f, dict) for f in filters):
        keys = [k for f in filters for k in f]
        if len(keys) == len(set(keys)):
            data["filters"] = {k: v for f in filters for k, v in f.items()}
            reader.note("filters [{…}, {…}] read as one filters object (all must match)")
    sort_keys = [
        k for k in data if _fold(k) in {"sortby", "orderby", "sort", "order", "sortfield", "sortcolumn"}
    ]
    direction_keys = [
        k
        for k in data
        if _fold(k) in {"direction", "sortdirection", "sortorder", "orderdirection", "order", "dir"}
        and isinstance(data[k], str)
        and _fold(data[k]) in DIRECTIONS
    ]
    if sort_keys or direction_keys:
        raw_sort = " ".join(_words(data[k]) for k in sort_keys if k not in direction_keys)
        raw_direction = " ".join(_words(data[k]) for k in direction_keys)
        allowed = get_args(_fields(model)["sort"].annotation)
        literal = _enum_value(raw_sort, allowed) if raw_sort and not raw_direction else None
        if literal in allowed:
            for k in sort_keys:
                data.pop(k)
            data["sort"] = literal
            if sort_keys != ["sort"]:
                reader.note(f"{'+'.join(sort_keys)} read as sort {literal!r}")
        else:
            sort = _read_sort(raw_sort, raw_direction)
            if sort is None:
                reader.problems.append(
                    f"Sort {_brief((raw_sort + ' ' + raw_direction).strip())} is not one this tool knows; "
                    f"use sort one of: {', '.join(allowed)}."
                )
            for k in {*sort_keys, *direction_keys}:
                data.pop(k)
            data["sort"] = sort or raw_sort
            if sort is not None:
                reader.note(f"{'+'.join([*sort_keys, *direction_keys])} read as sort {sort!r}")
    limit_key = next((k for k in data if _fold(k) in {"limit", *map(_fold, SYNONYMS["limit"])}), None)
    limit = data.get(limit_key) if limit_key else None
    if isinstance(limit, int | str) and str(limit).strip().isdigit() and int(str(limit).strip()) > 100:
        data.pop(limit_key or "limit")
        data["limit"] = 100
        reader.problems.append(
            f"{limit_key} {limit}: a page holds at most 100 referrals; ask for 100, then pass next_cursor from "
            "the answer as cursor for the next 100 (or format csv for every match in one file)"
        )
        reader.fixed += 1
    for key in list(data):
        if _fold(key) in {"page", "pagenumber", "offset", "skip", "start"}:
            value = data.pop(key)
            first = 1 if _fold(key) in {"page", "pagenumber"} else 0
            if value in (first, str(first)):
                reader.note(f"{key} {value} read as the first page (no cursor)")
            else:
                reader.problems.append(
                    f"{key} {_brief(value)}: this tool pages with a cursor, not by {key}; call it first without "
                    "cursor, then pass next_cursor from each answer as cursor for the next page."
                )


def _get_referral_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """``include_contacts: true`` (any ``include_<section>``, or ``include: [...]``) -> sections."""
    allowed = [str(a) for a in get_args(_shape(_fields(model)["sections"].annotation)[1])]
    for key in list(data):
        match = re.fullmatch(r"include_?(\w*)", _snake(key))
        if match is None:
            continue
        wanted = [match[1]] if match[1] else data[key]
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if match[1] == "contacts" and data[key] in (False, "false", 0, None):
            data.pop(key)
            reader.note(f"{key} false read as the default sections (contacts are left out unless asked for)")
            continue
        if match[1] and data[key] not in (True, "true", 1):
            continue
        sections = [_enum_value(w, allowed) for w in wanted if isinstance(w, str)]
        if not sections or any(s not in allowed for s in sections):
            continue
        data.pop(key, None)
        current = data.get("sections")
        current = [current] if isinstance(current, str) else list(current or [])
        if not current:
            current = [s for s in allowed if s not in ("contacts", "all")]
        data["sections"] = current + [s for s in sections if s not in current]
        reader.note(f"{key} read as sections {data['sections']}")


def _recent_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """recent_changes: a window as ``days``/``hours``/``weeks`` (-> since), ``since`` in words or with an
    offset (-> a UTC time, said), and ``limit`` (the tool lists the latest 20: said, with the call)."""
    for key in list(data):
        unit = {"days": "d", "hours": "h", "weeks": "w", "lastndays": "d"}.get(_fold(key))
        if unit is not None and "since" not in data and str(data[key]).strip().isdigit():
            value = data.pop(key)
            data["since"] = f"{int(str(value).strip())}{unit}"
            reader.note(f"{key} {value} read as since {data['since']!r}")
    since_key = next((k for k in data if _fold(k) in {_fold(s) for s in ("since", *SYNONYMS["since"])}), None)
    since = data.get(since_key) if since_key else None
    if isinstance(since, str | int) and re.fullmatch(r"\d{1,4}\s*[dhw]", str(since).strip()):
        count, unit = int(str(since).strip()[:-1]), str(since).strip()[-1]
        since = f"{count} {dict(d='day', h='hour', w='week')[unit]}s"
    if isinstance(since, str) and since_key is not None:
        read = when.read_since(since)
        if read is not None:
            moment, how = read
            data.pop(since_key)
            data["since"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            reader.note(f"{since_key} {_brief(since)} read as {data['since']} ({how})")
    for key in list(data):
        if _fold(key) in {"limit", "top", "max", "count", "n"}:
            value = data.pop(key)
            reader.problems.append(
                f"{key} {_brief(value)}: recent_changes takes no limit; it lists your latest 20 writes, newest "
                f"first, so the first {_brief(value)} lines are the ones asked for"
            )
            reader.fixed += 1


# Those that say only "closed", in a search filter (where "Closed" is itself a status).
_CLOSE_WORDS = frozenset(w for w, outcomes in _OUTCOME_WORDS.items() if len(outcomes) == 3) - {"closed"}


def _filters_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A status filter as a search row shows it ("Closed/Won") or as a word ("won"): status and substatus.
    A flag named by a filter's value (``incoming: true``) is that filter with that value."""
    fields = _fields(Filters)
    for flag in [k for k in data if k not in fields and data[k] in (True, "true", "yes")]:
        owners = [
            (name, value)
            for name, info in fields.items()
            for value in _enum_values(info.annotation)
            if _fold(value) == _fold(flag)
        ]
        if len(owners) == 1 and owners[0][0] not in data:
            name, value = owners[0]
            data.pop(flag)
            data[name] = value
            reader.note(f"{_at(where, flag)} true read as {_at(where, name)} {value!r}")
    key = next((k for k in data if _fold(k) in ("status", "outcome", "result", "state")), None)
    if key is None or any(_fold(k) == "substatus" for k in data):
        return data
    values = data[key] if isinstance(data[key], list) else [data[key]]
    if any(isinstance(v, str) and _fold(v) in _CLOSE_WORDS for v in values):
        values = ["Closed" if isinstance(v, str) and _fold(v) in _CLOSE_WORDS else v for v in values]
        reader.note(
            f"{_at(where, key)} {_brief(data[key])} read as status 'Closed' (won, lost, declined or expired)"
        )
        data[key] = values
    intents = [
        lifecycle.read_intent(v) if isinstance(v, str) and _fold(v) not in _STATUS_WORDS else None
        for v in values
    ]
    if not any(intents):
        return data
    if not all(intents):
        return data  # a mix of plain statuses and states: left for the model to judge
    data["status"] = sorted({str(i.status) for i in intents if i})
    if key != "status":
        data.pop(key)
    data["substatus"] = [str(i.substatus) for i in intents if i]
    reader.note(
        f"{_at(where, key)} {_brief(values)} read as status {data['status']} and substatus {data['substatus']}"
    )
    return data


_STATUS_WORDS = frozenset(s.value.casefold() for s in lifecycle.S)


def _words(value: Any) -> str:
    """A sort given as text, an object ({"field": "value", "direction": "desc"}) or a list of them."""
    if isinstance(value, dict):
        return " ".join(_words(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_words(v) for v in value)
    return str(value)


def _read_sort(column: str, direction: str) -> str | None:
    """A sort literal from a column word ("dealValue", "closing date", "-value") and a direction
    ("desc", "ascending"); a column alone sorts its natural way (newest, soonest, largest first)."""
    words_said = set(re.findall(r"[a-z]+", f"{column} {direction}".casefold()))
    for said, sort in _SORT_PHRASES.items():
        if said in words_said:
            return sort
    whole = _fold(column.lstrip("-+"))
    minus = "desc" if column.strip().startswith("-") else None
    for name, (natural, spellings) in SORT_COLUMNS.items():
        if whole in spellings:
            return f"{name}_{DIRECTIONS.get(_fold(direction)) or minus or natural}"
    words = re.split(r"[\s,]+", f"{column} {direction}".strip())
    sign: str | None = minus
    col: str | None = None
    for word in words:
        folded = _fold(word.lstrip("-+"))
        if folded in DIRECTIONS:
            sign = DIRECTIONS[folded]
            continue
        for name, (_, spellings) in SORT_COLUMNS.items():
            if folded in spellings or any(folded == s + d for s in spellings for d in DIRECTIONS):
                col = name
                sign = sign or next(
                    (DIRECTIONS[d] for d in DIRECTIONS if folded.endswith(d) and folded != d), None
                )
    if col is None:
        col = "updated" if not column.strip() else None
    if col is None:
        return None
    return f"{col}_{sign or SORT_COLUMNS[col][0]}"
