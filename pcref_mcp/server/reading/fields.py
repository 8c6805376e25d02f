"""What a model's fields hold (``_shape``), and the per-model name index ``place`` reads keys against
(aliases, folded names, synonyms, plurals), built once per model."""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from pcref_mcp.server.reading.words import SYNONYMS, _fold


@dataclass(frozen=True)
class _AnyField:
    annotation: Any = Any
    alias: str | None = None


_ANY_FIELD = _AnyField()


class _Fields(dict[str, Any]):
    """A model's fields (name -> FieldInfo), read-only by convention, with the lookups ``place``
    needs (aliases, folded names, synonyms, plurals) built once: every key of every call used to
    rebuild them, field by field."""

    _index: _Index | None = None


@dataclass(frozen=True)
class _Index:
    aliases: dict[str, str]  # alias -> field
    folded: dict[str, str]  # folded name or alias -> the first field it names
    claimed: dict[str, tuple[str, ...]]  # folded synonym -> the fields claiming it
    plural: dict[str, tuple[str, ...]]  # folded singular/plural form -> the fields it may mean

    @classmethod
    def build(cls, fields: dict[str, Any]) -> _Index:
        aliases = {info.alias: name for name, info in fields.items() if info.alias}
        folded: dict[str, str] = {}
        claimed: dict[str, list[str]] = {}
        plural: dict[str, list[str]] = {}
        for name, info in fields.items():
            folded.setdefault(_fold(name), name)
            folded.setdefault(_fold(info.alias or name), name)
            for synonym in _folded_synonyms(name):
                claimed.setdefault(synonym, []).append(name)
            own = _fold(name)
            # the key plus "s"/"es" is this field, or the key is this field plus "s"
            forms = {own + "s", *(own[: -len(end)] for end in ("s", "es") if own.endswith(end))}
            for form in sorted(forms):
                plural.setdefault(form, []).append(name)
        return cls(
            aliases,
            folded,
            {k: tuple(v) for k, v in claimed.items()},
            {k: tuple(dict.fromkeys(v)) for k, v in plural.items()},
        )


def _index_of(fields: dict[str, Any]) -> _Index:
    if isinstance(fields, _Fields):
        if fields._index is None:
            fields._index = _Index.build(fields)
        return fields._index
    return _Index.build(fields)


@functools.cache
def _fields(model: type[BaseModel]) -> _Fields:
    """The model's fields, built (with their index) once per model."""
    return _Fields(model.model_fields)


def forget_indexes() -> None:
    """Drop every model's name index, so the next call builds it again: how a benchmark measures a
    call that finds none built (the first of a process)."""
    _fields.cache_clear()


@functools.cache
def _folded_synonyms(name: str) -> frozenset[str]:
    return frozenset(_fold(s) for s in SYNONYMS.get(name, ()))


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a field holds: ("model", cls), ("list", item), ("enum", values), ("text"|"any"|"other", None)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _shape(args[0]) if len(args) == 1 else ("other", None)
    if origin is list:
        return "list", get_args(annotation)[0]
    if origin is Literal:
        return "enum", tuple(str(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "enum", tuple(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if annotation is str:
        return "text", None
    if annotation is Any:
        return "any", None
    return "other", None


def _enum_values(annotation: Any) -> tuple[str, ...]:
    """The allowed values of an enum field or of a list of an enum; () for any other field."""
    shape, inner = _shape(annotation)
    if shape == "list":
        shape, inner = _shape(inner)
    return tuple(inner) if shape == "enum" else ()


def _enum_value(value: Any, allowed: tuple[str, ...] | list[str]) -> Any:
    """An allowed value in any case or spacing ("Closed", "closed", "updated desc" -> "updated_desc")."""
    if not isinstance(value, str):
        return value
    folded = _fold(value)
    return next((a for a in allowed if _fold(a) == folded), value)
