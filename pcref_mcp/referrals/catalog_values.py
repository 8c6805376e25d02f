"""What a catalog is: a named list of allowed ids with the labels people say, and the forgiving lookup.

Lookups are forgiving about how a person types a value and strict about what is sent: "dynamics 365
enterprise" resolves to ``Dynamics365Enterprise``; an unknown value raises ``InvalidInput`` naming
the closest ids. The catalogs themselves are data: ``catalog`` (the service's) and ``iso`` (countries
and currencies).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pcref_mcp.errors import InvalidInput

__all__ = ["Catalog", "CatalogValue", "fold", "quoted"]


@dataclass(frozen=True)
class CatalogValue:
    """One allowed id; ``label`` is how a person says it, ``parents`` groups it (a play's areas)."""

    id: str
    label: str | None = None
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """A named list of allowed ids. ``legacy`` ids are read from old referrals but never sent."""

    name: str
    noun: str
    description: str
    values: tuple[CatalogValue, ...]
    legacy: tuple[CatalogValue, ...] = ()
    #: other words people use for one id ("Other" → GeneralOrOther); each names exactly one id
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for alias, id in self.aliases.items():
            assert id in self, f"{self.name}: alias {alias!r} names no id"

    @cached_property
    def _index(self) -> dict[str, str]:
        """Ids, labels and aliases, folded -> the id; built with the first look-up, not at import (a
        start that answers ``tools/list`` folds no country name: cold start, issue 24)."""
        index: dict[str, str] = {}
        for value in self.values:
            for key in (value.id, value.label):
                if key:
                    index.setdefault(fold(key), value.id)
        for alias, id in self.aliases.items():
            index.setdefault(fold(alias), id)
        return index

    @property
    def uri(self) -> str:
        return f"catalog://{self.name}"

    def ids(self) -> tuple[str, ...]:
        return tuple(value.id for value in self.values)

    def __contains__(self, item: object) -> bool:
        return any(value.id == item for value in self.values)

    def __len__(self) -> int:
        return len(self.values)

    def label(self, id: str) -> str:
        """The label of ``id`` (the id itself when it has none)."""
        for value in (*self.values, *self.legacy):
            if value.id == id:
                return value.label or value.id
        return id

    def is_legacy(self, id: str) -> bool:
        return any(value.id == id for value in self.legacy)

    def lookup(self, text: str, *, field: str | None = None) -> str:
        """The canonical id for ``text`` (case, spaces and punctuation ignored), or ``InvalidInput``."""
        found = self._index.get(fold(text)) if isinstance(text, str) else None
        if found is not None:
            return found
        raise InvalidInput(
            self.unknown_message(text, field=field),
            field=field or self.name,
            value=text,
            allowed=self.close_matches(text) or self.ids(),
        )

    def close_matches(self, text: object, *, n: int = 3) -> list[str]:
        """Up to ``n`` ids that look like ``text`` (difflib on the folded forms)."""
        if not isinstance(text, str):
            return []
        import difflib  # a near miss is rare: not loaded with the catalogs at start

        matches = difflib.get_close_matches(fold(text), list(self._index), n=n * 2, cutoff=0.6)
        return list(dict.fromkeys(self._index[match] for match in matches))[:n]

    def unknown_message(self, text: object, *, field: str | None = None) -> str:
        """``products 'Dynamcs' is not a known product; did you mean 'Dynamics365Business'? ...``."""
        subject = f"{field or self.name} {text!r}"
        legacy = isinstance(text, str) and fold(text) in {fold(value.id) for value in self.legacy}
        if legacy:
            return (
                f"{subject} is an older {self.noun} the service no longer accepts; "
                f"use one of: {quoted(self.ids())}."
            )
        if len(self.values) <= 12:
            return f"{subject} is not a known {self.noun}; use one of: {quoted(self.ids())}."
        close = self.close_matches(text)
        if close:
            return f"{subject} is not a known {self.noun}; did you mean {quoted(close, last='or')}? All values: {self.uri}."
        return (
            f"{subject} is not a known {self.noun}; see {self.uri} for the {len(self.values)} allowed values."
        )

    def to_json(self) -> dict[str, Any]:
        """Same as ``as_resource``; the name the MCP resources layer calls."""
        return self.as_resource()

    def as_resource(self) -> dict[str, Any]:
        """The JSON the MCP layer serves for ``catalog://<name>``."""
        values: list[dict[str, Any]] = []
        for value in self.values:
            entry: dict[str, Any] = {"id": value.id}
            if value.label:
                entry["label"] = value.label
            if value.parents:
                entry["parents"] = list(value.parents)
            values.append(entry)
        resource: dict[str, Any] = {"name": self.name, "description": self.description, "values": values}
        if self.legacy:
            resource["readOnlyValues"] = [value.id for value in self.legacy]
        return resource

    def find(self, text: str) -> str | None:
        """The id ``text`` names (an id or a label, folded), or None: no message, for callers with
        their own (``iso.country_code``)."""
        return self._index.get(fold(text))


def fold(text: str) -> str:
    """Case, accents, spaces and punctuation ignored, "&" read as "and": "Dynamics 365 Enterprise" ->
    dynamics365enterprise, "Türkiye" -> turkiye."""
    plain = unicodedata.normalize("NFKD", text.casefold().replace("&", "and"))
    return re.sub(r"[^0-9a-z]", "", "".join(c for c in plain if not unicodedata.combining(c)))


def quoted(items: Iterable[str], *, last: str = "") -> str:
    quoted = [repr(item) for item in items]
    if last and len(quoted) > 1:
        return f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"
    return ", ".join(quoted)
