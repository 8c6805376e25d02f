"""The JSON Schema metaschema check, done once per schema in the test processes (a pytest plugin).

The SDK's client checks every tool's output schema against the metaschema (``check_schema``) the
first time a session validates that tool's result: the suite opens hundreds of sessions on the same
few schemas, and those checks were about a tenth of the CPU of tests/server. Here the ``check_schema``
of each of jsonschema's validator classes remembers the schemas it found valid, by their content, and
answers at once when the same content is checked again by the same class.

Nothing is decided differently. What the check decides depends only on the class (its metaschema and
format checker, fixed) and the schema's content; the content is keyed as canonical JSON text, and only
for schemas made of plain JSON values (exactly dict with str keys, list, str, int, float, bool, None),
on which that text is one-to-one: ``1``, ``1.0`` and ``true`` differ, and a tuple (which jsonschema
does not take for an array) or any other type is not keyed at all. A schema found invalid is never
remembered: it is checked, and raises, every time; so are schemas not keyed, and calls passing their
own ``format_checker``. Installed at the start of the run and removed at its end; the product's own
processes are not affected.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

_CLASSES = tuple(
    getattr(jsonschema, name)
    for name in (
        "Draft3Validator",
        "Draft4Validator",
        "Draft6Validator",
        "Draft7Validator",
        "Draft201909Validator",
        "Draft202012Validator",
    )
)
MAX_REMEMBERED = 4096  # distinct valid schemas per run; past that, checked every time as before
_valid: set[tuple[type, str]] = set()
_originals: dict[type, Any] = {}


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON all the way down (exact types: no subclasses, no tuples)."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return kind in (str, int, float, bool) or value is None


def _key(cls: type, schema: Any) -> tuple[type, str] | None:
    if not _plain(schema):
        return None
    return cls, json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _remembering(original: Any) -> Any:
    """``check_schema`` remembering what it found valid; ``original`` is the class's own (a classmethod)."""

    def check_schema(cls: type, schema: Any, *args: Any, **kwargs: Any) -> None:
        check = original.__get__(None, cls)
        if args or kwargs:  # a format checker of the caller's own: not remembered
            check(schema, *args, **kwargs)
            return
        key = _key(cls, schema)
        if key is not None and key in _valid:
            return
        check(schema)  # raises SchemaError when the schema is invalid: then nothing is remembered
        if key is not None and len(_valid) < MAX_REMEMBERED:
            _valid.add(key)

    return classmethod(check_schema)


def pytest_configure(config: pytest.Config) -> None:
    for cls in _CLASSES:
        if cls not in _originals:
            _originals[cls] = cls.__dict__["check_schema"]
            cls.check_schema = _remembering(_originals[cls])


def pytest_unconfigure(config: pytest.Config) -> None:
    for cls, original in _originals.items():
        cls.check_schema = original
    _originals.clear()
    _valid.clear()
