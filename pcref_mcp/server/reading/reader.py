"""The generic reader (``_Reader``): every key placed on a field of the argument model, or a nested one,
every value read against its field (lists, enums, days, numbers in words, our quote marks), a note for each
liberty; and what it returns (``Reading``), whose ``refusal`` is the one way a problem reaches the model:
the problems, then the caller's own call as it should have been made, or the person's choice (``Choice``).

What the generic walk cannot derive is read by hooks, by model (``_MODEL_HOOKS``, ``_LIST_HOOKS``; the
package's table fills them) and by tool (server.reading._TOOL_HOOKS)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from pcref_mcp.referrals import when
from pcref_mcp.referrals.untrusted import unwrap
from pcref_mcp.server.reading.fields import _enum_value, _fields, _folded_synonyms, _index_of, _shape
from pcref_mcp.server.reading.words import _SECRET_ARGUMENTS, _at, _brief, _fold, _shown, _snake


@dataclass
class Reading:
    """The arguments as meant, a note for every liberty taken, and what could not be placed."""

    arguments: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fixed: int = 0  # problems the arguments now carry a confident fix for
    dropped: list[str] = field(default_factory=list)  # keys with no equivalent (left out of the call)

    def refusal(self, tool: str) -> str:
        """The problems, then the call as it should have been made: only when every problem has a
        fix that keeps the whole request (a suggestion is followed literally). Where the person must
        choose (``Choice``), one call per reading; otherwise no call, and what is missing said plainly."""
        text = " ".join(p.rstrip(".") + "." for p in self.problems)
        choices = list(_choices(self.arguments))
        if len(choices) > 1 or (choices and len(self.problems) - self.fixed > 1):
            return (
                text
                + " Ask the person about each; nothing was sent. Then resend the call with their answers."
            )
        if choices and _has_masked(_choose(self.arguments, 0)):  # the call cannot be echoed whole
            labels = "; ".join(label.removeprefix("If ") for label, _ in choices[0].readings)
            return (
                text + f" Ask the person which it is ({labels}); nothing was sent. Then resend the same call "
                "with their answer in it."
            )
        if choices:
            return (
                text
                + " Ask the person which they mean; nothing was sent. "
                + " ".join(
                    f"{label}: {tool} {_dumps(_choose(self.arguments, option))}"
                    for label, option in _options(choices)
                )
            )
        if _has_masked(self.arguments) or self.fixed + len(self.dropped) < len(self.problems):
            return text + " Nothing was sent; resend the call with this fixed (ask the person if unsure)."
        if self.dropped:  # the rest of the call can be done; only the person may let the part go
            keys = ", ".join(repr(k) for k in self.dropped)
            return (
                text
                + f" {keys} has no equivalent in this tool; nothing was sent. Ask the person whether to go "
                f"ahead without it. If they agree: {tool} {_dumps(self.arguments)}"
            )
        return text + f" Corrected call: {tool} {_dumps(self.arguments)}"


class Choice:
    """A value the person must choose: each reading with its label ("calendar Q1: 2027-03-31")."""

    def __init__(self, readings: list[tuple[str, Any]]) -> None:
        self.readings = readings

    def __repr__(self) -> str:
        return f"Choice({self.readings!r})"


def _choices(value: Any) -> Iterator[Choice]:
    if isinstance(value, Choice):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _choices(v)
    elif isinstance(value, list):
        for v in value:
            yield from _choices(v)


def _options(choices: list[Choice]) -> list[tuple[str, int]]:
    """The readings of the one choice (a call is suggested only when there is exactly one)."""
    return [(label, i) for i, (label, _) in enumerate(choices[0].readings)]


def _choose(value: Any, option: int) -> Any:
    """The arguments with the choice made (``option``)."""
    if isinstance(value, Choice):
        return value.readings[option][1]
    if isinstance(value, dict):
        return {k: _choose(v, option) for k, v in value.items()}
    if isinstance(value, list):
        return [_choose(v, option) for v in value]
    return value


def _dumps(arguments: Any) -> str:
    return json.dumps(_shown(arguments), ensure_ascii=False, separators=(",", ":"))


def _has_masked(arguments: Any) -> bool:
    """A corrected call would show a contact detail or a token masked, or a long text cut short:
    followed literally, it would send the mask or the cut. Such calls are not suggested."""
    return "as given>" in json.dumps(_shown(arguments), ensure_ascii=False, default=str) or _cut(arguments)


def _cut(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_cut(v) for v in value.values())
    if isinstance(value, list):
        return any(_cut(v) for v in value)
    return isinstance(value, str) and len(value) > 80


class _Reader:
    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.fixed = 0
        self.dropped: list[str] = []
        self.currency_choice: tuple[str, str] | None = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- objects ----------------------------------------------------------------------------------

    def object(self, data: dict[str, Any], model: type[BaseModel], where: str) -> dict[str, Any]:
        """``data`` with every key placed on a field of ``model`` (or a nested model), values read too."""
        fields = _fields(model)
        out: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        moved: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            name = self.place(key, value, fields, where)
            if name is None:
                home = self.nested_home(key, value, fields)
                if home is not None:
                    moved.setdefault(home, {})[key] = value
                    continue
                flattened = self.prefix_flatten(key, value, fields, where)
                if flattened is not None:
                    for name2, value2 in flattened.items():
                        self.put(out, given_as, name2, value2, f"{key}.{name2}", where)
                    continue
                self.unknown(key, value, fields, where, out)
                continue
            self.put(out, given_as, name, value, key, where)
        for home, inner_data in moved.items():
            self.note(f"{', '.join(_at(where, k) for k in inner_data)} read as inside {_at(where, home)}")
            existing = out.get(home)
            if existing is None:
                out[home] = inner_data
            elif isinstance(existing, dict):
                for key, value in inner_data.items():
                    if key in existing and existing[key] != value:
                        self.problems.append(
                            f"{_at(where, key)} and {_at(where, home)}.{key} differ; give it once, inside {home}."
                        )
                    existing.setdefault(key, value)
            else:  # nothing is dropped: a home that is not an object cannot take what was meant for it
                self.problems.append(
                    f"{', '.join(_at(where, k) for k in inner_data)} belong inside {_at(where, home)}, "
                    f"which is not an object; put them there."
                )
        for name, value in list(out.items()):
            out[name] = self.value(value, fields[name].annotation, _at(where, name), name)
        return out

    def put(
        self, out: dict[str, Any], given_as: dict[str, str], name: str, value: Any, key: str, where: str
    ) -> None:
        if name in out and out[name] != value:
            self.problems.append(
                f"{_at(where, given_as.get(name, name))} and {_at(where, key)} both mean {_at(where, name)} with different "
                "values; give it once."
            )
            return
        out[name] = value
        given_as.setdefault(name, key)

    def place(self, key: str, value: Any, fields: dict[str, Any], where: str) -> str | None:
        """The field ``key`` means, noting any renaming; None when it is no field of this model."""
        if key in fields:
            return key
        index = _index_of(fields)
        if key in index.aliases:
            return index.aliases[key]
        folded = _fold(key)
        if folded in index.folded:
            name = index.folded[folded]
            self.note(f"{_at(where, key)} read as {_at(where, name)}")
            return name
        claimed = index.claimed.get(folded, ())
        if len(claimed) == 1 and not (isinstance(value, dict) and self.prefix_fields(key, fields)):
            self.note(f"{_at(where, key)} read as {_at(where, claimed[0])}")
            return claimed[0]
        plural = index.plural.get(folded, ())
        if len(plural) == 1:
            self.note(f"{_at(where, key)} read as {_at(where, plural[0])}")
            return plural[0]
        return None

    def nested_home(self, key: str, value: Any, fields: dict[str, Any]) -> str | None:
        """The one nested object a key belongs to (``status`` sent beside ``filters``), if exactly one."""
        homes = []
        for name, info in fields.items():
            shape, inner = _shape(info.annotation)
            if shape == "model":
                probe = _Reader(self.tool)
                inner_fields = _fields(inner)
                if probe.place(key, value, inner_fields, name) is not None or probe.prefix_fields(
                    key, inner_fields
                ):
                    homes.append(name)
        return homes[0] if len(homes) == 1 else None

    def prefix_fields(self, key: str, fields: dict[str, Any]) -> list[str]:
        prefix = _snake(key) + "_"
        return [name for name in fields if name.startswith(prefix)]

    def prefix_flatten(
        self, key: str, value: Any, fields: dict[str, Any], where: str
    ) -> dict[str, Any] | None:
        """``customer: {name, country, city}`` -> ``customer_name``, ``customer_country``, ``customer_city``."""
        candidates = self.prefix_fields(key, fields)
        if not isinstance(value, dict) or not candidates:
            return None
        prefix = _snake(key) + "_"
        out: dict[str, Any] = {}
        for inner_key, inner_value in value.items():
            wanted = prefix + _snake(inner_key)
            match = next((c for c in candidates if _fold(c) == _fold(wanted)), None)
            if match is None:
                match = next(
                    (
                        c
                        for c in candidates
                        if _fold(wanted) in _folded_synonyms(c) or _fold(inner_key) in _folded_synonyms(c)
                    ),
                    None,
                )
            if match is None:
                return None
            out[match] = inner_value
        self.note(f"{_at(where, key)} {{…}} read as {', '.join(out)}")
        return out

    def unknown(self, key: str, value: Any, fields: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        names = list(fields)
        guesses = difflib.get_close_matches(_snake(key), names, n=3, cutoff=0.6)
        likely = difflib.get_close_matches(_snake(key), names, n=1, cutoff=0.75)
        what = "argument" if not where else "field"
        guess = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
        allowed = (
            f"Allowed: {', '.join(names)}."
            if names
            else f"This {'tool' if not where else 'object'} takes none."
        )
        self.problems.append(
            f"{_at(where, key)!r} is not a known {what}{' of ' + where if where else ''}.{guess} {allowed}"
        )
        if likely and likely[0] not in out:  # the corrected call carries only a confident guess
            out[likely[0]] = value
            self.fixed += 1
        elif not guesses and names:  # nothing near it: it has no equivalent here
            self.dropped.append(_at(where, key))

    # -- values -----------------------------------------------------------------------------------

    def value(self, value: Any, annotation: Any, where: str, name: str) -> Any:
        if value is None:
            return None
        if name in _DATE_FIELDS and isinstance(value, str):
            return self.day(value, where)
        if name in _RANGE_BOUNDS and isinstance(value, str):
            return self.day(value, where, bound=_RANGE_BOUNDS[name])
        if name in _UNIT_FIELDS and isinstance(value, str):
            said = re.fullmatch(rf"\s*(\d+)\s*(?:{_UNIT_FIELDS[name]})\s*", value, re.IGNORECASE)
            if said is not None:
                self.note(f"{where} {value!r} read as {int(said[1])}")
                return int(said[1])
        if name in _INT_FIELDS and isinstance(value, str) and _fold(value) in _NUMBER_WORDS:
            self.note(f"{where} {value!r} read as {_NUMBER_WORDS[_fold(value)]}")
            return _NUMBER_WORDS[_fold(value)]
        shape, inner = _shape(annotation)
        if shape == "list":
            if isinstance(value, str) and value.strip().startswith("["):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if not isinstance(value, list | tuple):
                self.note(f"{where} {_brief(value)} read as a list of one")
                value = [value]
            item_shape, item_model = _shape(inner)
            if item_shape == "model" and item_model in _LIST_HOOKS:
                value = _LIST_HOOKS[item_model](self, list(value), where)
            return [self.value(item, inner, f"{where}[{i}]", name) for i, item in enumerate(value)]
        if shape == "model":
            if isinstance(value, str) and value.strip().startswith("{"):
                try:
                    value = json.loads(value)
                except ValueError:
                    return value
            if isinstance(value, dict):
                hook = _MODEL_HOOKS.get(inner)
                if hook is not None:
                    value = hook(self, dict(value), where)
                return self.object(value, inner, where)
            return value
        if shape == "enum":
            read = _enum_value(value, inner)
            word = _ENUM_WORDS.get(_fold(read)) if isinstance(read, str) else None
            if read not in inner and word in inner:
                self.note(f"{where} {value!r} read as {word!r}")
                return word
            return read
        if shape in ("text", "any") and name not in _SECRET_ARGUMENTS:
            return self.unquote(value, where)
        return value

    def day(self, value: str, where: str, bound: int | None = None) -> Any:
        """A date field's value in words or with an offset, as the day meant (when.read_day). A range's
        bound (``bound`` 0: from, 1: to) takes a period's first or last day ("updated_from: last week")."""
        read = when.read_day(unwrap(value) or value)
        if read is None:
            return self.unquote(value, where)
        if read.iso is not None:
            self.note(f"{where} {_brief(value)} read as {read.how}")
            return read.iso
        if bound is not None and read.period is not None:
            day = read.period[bound]  # refused (a date is YYYY-MM-DD), with that bound in the call
            self.problems.append(
                f"{where} {_brief(value)} is no date (YYYY-MM-DD): {read.how.split('; ask')[0]}; as the "
                f"{('start', 'end')[bound]} of a range it is its {('first', 'last')[bound]} day, {day}"
            )
            self.fixed += 1
            return day
        self.problems.append(f"{where} {read.how}")
        if read.readings:
            return Choice([(f"If {label} ({iso})", iso) for label, iso in read.readings])
        return value

    def unquote(self, value: Any, where: str) -> Any:
        """Strings (anywhere inside) carrying our «…» or ‹…› marks lose them, with a note: whole
        values and marks inside a longer text alike (copied from an answer, never meant as data)."""
        if isinstance(value, str):
            plain = unwrap(value)
            if plain is None and _MARKS.search(value):
                plain = _MARKS.sub("", value)
            if plain is not None:
                self.note(f"{where} {_brief(value)} read without our quote marks: {_brief(plain)}")
                return plain
            return value
        if isinstance(value, dict):
            return {k: self.unquote(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.unquote(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value


# Our quote marks (untrusted.quote), wherever they appear in a value.
_MARKS = re.compile(r"[«»‹›]")


# Fields holding a day (read by when.read_day) and whole numbers (which may come in words).
_DATE_FIELDS = frozenset(
    {"closing_date", "sign_date", "start_date", "end_date", "marketplace_transaction_date"}
)


# A range's bounds (search filters): a period said in words gives its first day to a "from" (0) and its
# last day to a "to" (1).
_RANGE_BOUNDS = {
    f"{what}_{end}": i for what in ("closing", "created", "updated") for i, end in enumerate(("from", "to"))
}


_INT_FIELDS = frozenset({"limit", "change_id", "expiring_within_days"})


# Whole-number fields that count a unit, and the unit's words ("7 days" -> 7).
_UNIT_FIELDS = {"expiring_within_days": r"d|days?"}


_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "ahundred": 100, "onehundred": 100}


# Other words for an allowed value, where the enum has it (sections "everything" -> "all").
_ENUM_WORDS = {
    "everything": "all",
    "full": "all",
    "whole": "all",
    "allsections": "all",
    "spreadsheet": "csv",
    "excel": "csv",
    "xlsx": "csv",
    "file": "csv",
}


# Readers for what the generic walk cannot derive, by model: a whole list of items, or one object (the
# package's table fills them: server.reading).
_LIST_HOOKS: dict[type[BaseModel], Callable[[_Reader, list[Any], str], list[Any]]] = {}
_MODEL_HOOKS: dict[type[BaseModel], Callable[[_Reader, dict[str, Any], str], dict[str, Any]]] = {}
