"""Reading what the service really sends, not only what its documents show.

Real referrals break the documented schema in small ways: ``mpnId`` as a number, a price "N/A", a date
as epoch seconds, ``team`` as one object instead of a list, ``tags`` as a string, and the older
documents' PascalCase keys. One such value must never make a whole page unreadable, so every read
model first passes its raw JSON through :func:`normalise`, which walks the document against the model's
own fields (derived from the classes, never a second hand-written schema) and

* renames keys that differ from the wire name only in letter case (``Status`` → ``status``,
  ``ETag`` → ``eTag``), so PascalCase documents read exactly like camelCase ones;
* converts values whose meaning is clear (the :data:`RULES` table) and notes how it read them;
* leaves out values whose meaning is not clear, and notes each one as a :class:`ReadProblem`.

The notes travel with the referral (``Referral.read_problems``) so the views can show them.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from typing import Any, Literal

from pydantic import BaseModel

from pcref_mcp.referrals.timestamps import format_wire, parse_wire
from pcref_mcp.referrals.untrusted import quote

__all__ = ["RULES", "ReadProblem", "Slot", "normalise", "slots_of"]

Kind = Literal["str", "float", "int", "bool", "datetime", "model", "list", "any"]


@dataclass(frozen=True)
class ReadProblem:
    """One value that was not as documented: where, what was sent, and how it was read.

    ``read_as`` is None when the value was left out (its meaning was not clear).
    """

    path: str
    sent: str
    read_as: str | None

    @property
    def left_out(self) -> bool:
        return self.read_as is None

    def __str__(self) -> str:
        return self.describe()

    def describe(self, *, show_values: bool = True) -> str:
        """One line for a person; without the values where they may be contact details."""
        if not show_values:
            return f"{self.path}: " + ("could not be read; left out" if self.left_out else "normalised")
        if self.read_as is None:
            return f"{self.path}: sent {self.sent}, which could not be read; left out"
        return f"{self.path}: sent {self.sent}, read as {self.read_as}"


@dataclass(frozen=True)
class Slot:
    """What a model field holds, as far as reading is concerned."""

    kind: Kind
    model: type[BaseModel] | None = None
    enum: type[StrEnum] | None = None
    item: Slot | None = None
    dict_ok: bool = False  # a bare object is also a documented form (customerProfile.ids, 2018)
    values: frozenset[str] = frozenset()  # the enum's documented spellings
    plain: frozenset[type] = field(init=False, repr=False, compare=False)  # see _PLAIN

    def __post_init__(self) -> None:
        if self.enum is not None and not self.values:
            object.__setattr__(self, "values", frozenset(m.value for m in self.enum))
        plain = _PLAIN["enum" if self.enum is not None else self.kind]
        object.__setattr__(self, "plain", plain)


# --- the rules: how a value of the wrong type is read, per kind -----------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NOT_A_VALUE = frozenset({"", "n/a", "na", "null", "none", "-", "—", "tbd", "unknown"})
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH_MS = 100_000_000_000  # larger than this is milliseconds (year 5138 in seconds)

_JSON_TYPES = frozenset({type(None), str, int, float, bool, dict, list})
_PLAIN: dict[str, frozenset[type]] = {
    "str": frozenset({type(None), str}),
    "enum": frozenset({type(None)}),  # a str with an enum: the value is checked
    "float": frozenset({type(None), float, int}),
    "int": frozenset({type(None), int}),
    "bool": frozenset({type(None), bool}),
    "any": _JSON_TYPES,  # (and anything else: kept by its rule)
    "datetime": frozenset({type(None)}),
    "model": frozenset({type(None)}),
    "list": frozenset({type(None)}),
}
"""Per kind, the exact types of a value that is kept as sent whatever it holds: the walk checks a
value's type against this set before any other work, since almost every value is one of these."""

# The service's own form of a timestamp, narrowed so that everything it matches is a calendar date
# parse_wire reads (days up to 28, year from 0001): checked before parse_wire, which costs ten times as
# much; other forms (and the 29th to the 31st) still go through parse_wire.
_SERVICE_FORM = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?Z"
)

_Reader = Callable[[Any, Slot], tuple[Any, bool]]
_LEFT_OUT = object()


def _read_str(value: Any, slot: Slot) -> tuple[Any, bool]:
    if isinstance(value, str):
        if slot.enum is not None:
            canonical = _enum_values(slot.enum).get(value.strip().lower())
            if canonical is not None and canonical != value:
                return canonical, True
        return value, False
    if isinstance(value, bool):
        return _LEFT_OUT, True
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), True
    if isinstance(value, float):
        return repr(value), True
    return _LEFT_OUT, True


def _read_float(value: Any, slot: Slot) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return _LEFT_OUT, True
    if isinstance(value, int | float):
        return value, False
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _NUMBER.match(text):
            return float(text), True
    return _LEFT_OUT, True


def _read_int(value: Any, slot: Slot) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return _LEFT_OUT, True
    if isinstance(value, int):
        return value, False
    if isinstance(value, float) and value.is_integer():
        return int(value), True
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()), True
    return _LEFT_OUT, True


def _read_bool(value: Any, slot: Slot) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return value, False
    if isinstance(value, int) and value in (0, 1):
        return bool(value), True
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE, True
    return _LEFT_OUT, True


def _read_datetime(value: Any, slot: Slot) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return _LEFT_OUT, True
    if isinstance(value, int | float):
        return _from_epoch(float(value)), True
    if isinstance(value, str):
        text = value.strip()
        if parse_wire(text) is not None:
            return value, False
        if _NUMBER.match(text):
            return _from_epoch(float(text)), True
        ms_date = _MS_DATE.match(text)
        if ms_date:
            return _from_epoch(float(ms_date.group(1)) / 1000), True
    return _LEFT_OUT, True


def _read_any(value: Any, slot: Slot) -> tuple[Any, bool]:
    return value, False


RULES: dict[Kind, _Reader] = {
    "str": _read_str,
    "float": _read_float,
    "int": _read_int,
    "bool": _read_bool,
    "datetime": _read_datetime,
    "any": _read_any,
}
"""How a scalar that is not of the documented type is read. A reader returns the value to keep and
whether it differs from what was sent; ``_LEFT_OUT`` means the meaning is not clear."""


# --- the walk ------------------------------------------------------------------------------------


def normalise(model: type[BaseModel], doc: Any, path: str = "") -> tuple[Any, list[ReadProblem]]:
    """``doc`` made readable by ``model``, and a note for every value that was not as documented.

    Nothing is copied while nothing differs: a document (or any object or list in it) whose every
    value is as documented comes back as the very same object, so reading the usual page costs one
    walk and no copies. Where something differs, that object and the ones holding it are copies;
    ``doc`` itself is never changed. A ``doc`` that is not an object at all is returned as is (the
    caller cannot read it).
    """
    problems: list[ReadProblem] = []
    if not isinstance(doc, dict):
        return doc, problems
    return _object(model, doc, path, problems), problems


def _object(
    model: type[BaseModel], doc: dict[str, Any], path: str, problems: list[ReadProblem]
) -> dict[str, Any]:
    slots, names = slots_of(model)
    out: dict[str, Any] | None = None  # the copy, made at the first entry not kept as sent
    for index, (key, value) in enumerate(doc.items()):
        slot = slots.get(key)
        name = key
        if slot is None:
            wire = names.get(key.lower()) if isinstance(key, str) else None
            if wire is None or wire in doc:  # unknown, or both spellings sent: kept as sent
                if out is not None:
                    out[key] = value
                continue
            name, slot = wire, slots[wire]
        if type(value) in slot.plain or (type(value) is str and value in slot.values):
            read = value
        else:
            read = _value(slot, value, f"{path}/{name}", problems)
        if out is None:
            if read is value and name is key:
                continue
            out = dict(islice(doc.items(), index))
        if read is not _LEFT_OUT:
            out[name] = read
    return doc if out is None else out


def _documented(slot: Slot, value: Any) -> bool:
    """A scalar as documented: nothing to do (after the walk's type check, the values that need one
    more look: an enum's spellings, the service's timestamps)."""
    kind, typ = slot.kind, type(value)
    return (
        kind == "any"
        or (typ is str and kind == "str" and (slot.enum is None or value in slot.values))
        or (typ is str and kind == "datetime" and _SERVICE_FORM.fullmatch(value) is not None)
        or (kind == "float" and (typ is float or typ is int))
        or (typ is bool and kind == "bool")
        or (typ is int and kind == "int")
    )


def _value(slot: Slot, value: Any, path: str, problems: list[ReadProblem]) -> Any:
    """``value`` read by ``slot``: the same object when it is as documented, else what it reads as
    (``_LEFT_OUT`` when its meaning is not clear), noted in ``problems``."""
    if value is None:
        return None
    if slot.kind == "model":
        assert slot.model is not None
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            problems.append(ReadProblem(path, "a list of one object", "that object"))
            value = value[0]
        if not isinstance(value, dict):
            problems.append(ReadProblem(path, _show(value), None))
            return _LEFT_OUT
        return _object(slot.model, value, path, problems)
    if slot.kind == "list":
        return _list(slot, value, path, problems)
    if slot.dict_ok and isinstance(value, dict):  # an object where the model takes one (tags: str | object)
        return value
    if _documented(slot, value):
        return value
    read, changed = RULES[slot.kind](value, slot)
    if read is _LEFT_OUT:
        problems.append(ReadProblem(path, _show(value), None))
    elif changed:
        problems.append(ReadProblem(path, _show(value), _show(read)))
    return read


def _list(slot: Slot, value: Any, path: str, problems: list[ReadProblem]) -> Any:
    assert slot.item is not None
    if isinstance(value, dict):
        if slot.dict_ok:
            return value
        problems.append(ReadProblem(path, "one object instead of a list", "a list of one"))
        value = [value]
    elif isinstance(value, str) and slot.item.kind in ("str", "any"):
        parts = [p.strip() for p in re.split(r"[,;]", value) if p.strip()]
        problems.append(ReadProblem(path, f"the text {_show(value)} instead of a list", repr(parts)))
        return parts
    elif not isinstance(value, list):
        problems.append(ReadProblem(path, _show(value), None))
        return _LEFT_OUT
    item = slot.item
    items: list[Any] | None = None  # the copy, made at the first entry not kept as sent
    for index, entry in enumerate(value):
        read = entry if type(entry) in item.plain else _value(item, entry, f"{path}/{index}", problems)
        if items is None:
            if read is entry:
                continue
            items = value[:index]
        if read is not _LEFT_OUT:
            items.append(read)
    return value if items is None else items


# --- the fields of a model, derived from its annotations -----------------------------------------

_SLOTS: dict[type[BaseModel], tuple[dict[str, Slot], dict[str, str]]] = {}


def slots_of(model: type[BaseModel]) -> tuple[dict[str, Slot], dict[str, str]]:
    """The model's fields by wire name, and every spelling (lower-cased wire and Python names) → wire name."""
    cached = _SLOTS.get(model)
    if cached is not None:
        return cached
    slots: dict[str, Slot] = {}
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        wire = info.alias or name
        slot = _slot(info.annotation)
        if name.endswith("_date_time") and slot.kind == "str":
            slot = Slot("datetime")
        slots[wire] = slot
        names[wire.lower()] = wire
        names.setdefault(name.lower(), wire)
        names.setdefault(name.replace("_", "").lower(), wire)
    _SLOTS[model] = (slots, names)
    return slots, names


def _slot(annotation: Any) -> Slot:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _slot(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        dict_ok = any(typing.get_origin(a) is dict or a is dict for a in members)
        members = [a for a in members if not (typing.get_origin(a) is dict or a is dict)] or members
        enum = next((a for a in members if isinstance(a, type) and issubclass(a, StrEnum)), None)
        if enum is not None:
            return Slot("str", enum=enum)
        if len(members) > 1:
            return Slot("any")
        found = _slot(members[0])
        return Slot(found.kind, found.model, found.enum, found.item, dict_ok) if dict_ok else found
    if origin is list:
        args = typing.get_args(annotation)
        return Slot("list", item=_slot(args[0]) if args else Slot("any"))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return Slot("model", model=annotation)
        if issubclass(annotation, StrEnum):
            return Slot("str", enum=annotation)
        if annotation is bool:
            return Slot("bool")
        if annotation is int:
            return Slot("int")
        if annotation is float:
            return Slot("float")
        if annotation is str:
            return Slot("str")
    return Slot("any")


_ENUMS: dict[type[StrEnum], dict[str, str]] = {}


def _enum_values(enum: type[StrEnum]) -> dict[str, str]:
    """Lower-cased values → the documented spelling."""
    values = _ENUMS.get(enum)
    if values is None:
        values = _ENUMS[enum] = {m.value.lower(): m.value for m in enum}
    return values


def _from_epoch(seconds: float) -> str:
    if abs(seconds) >= _EPOCH_MS:
        seconds /= 1000
    return format_wire(datetime.fromtimestamp(seconds, tz=UTC), 6, trim=True)


def _show(value: Any) -> str:
    """A short, safe rendering of what was sent (these are notes, not data: never long)."""
    if isinstance(value, str):
        return str(quote(value if len(value) <= 40 else value[:39] + "…"))
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value) if not isinstance(value, float) or not value.is_integer() else str(value)
