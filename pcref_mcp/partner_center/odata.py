"""A small OData query builder that always escapes.

Filters are built from :class:`Expr` values only, never from pasted strings, so a value a person typed
(a customer name with an apostrophe, say) can never change the meaning of the query. Property paths
are checked against a strict pattern; values go through :func:`literal`.

    >>> str(and_(eq("status", "Active"), eq("customerProfile/name", "O'Brien")))
    "(status eq 'Active' and customerProfile/name eq 'O''Brien')"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.timestamps import format_wire

__all__ = [
    "Expr",
    "OrderBy",
    "Query",
    "and_",
    "any_",
    "contains",
    "eq",
    "ge",
    "gt",
    "le",
    "literal",
    "lt",
    "ne",
    "not_",
    "or_",
    "path",
    "startswith",
]

PATH_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*(/[A-Za-z][A-Za-z0-9]*)*$")
_VAR_PATTERN = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass(frozen=True)
class Expr:
    """A boolean OData expression. Only the helpers in this module make them."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __and__(self, other: Expr) -> Expr:
        return and_(self, other)

    def __or__(self, other: Expr) -> Expr:
        return or_(self, other)

    def __invert__(self) -> Expr:
        return not_(self)


@dataclass(frozen=True)
class OrderBy:
    path: str
    direction: Literal["asc", "desc"] = "asc"

    def __str__(self) -> str:
        return f"{path(self.path)} {self.direction}"


@dataclass(frozen=True)
class Query:
    """``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$count``, ``$select`` for GET /referrals."""

    filter: Expr | None = None
    orderby: Sequence[OrderBy | str] = field(default=())
    top: int | None = None
    skip: int | None = None
    count: bool = False
    select: Sequence[str] = field(default=())

    def to_params(self) -> dict[str, str]:
        """Query-string parameters; httpx percent-encodes them."""
        params: dict[str, str] = {}
        if self.filter is not None:
            if not isinstance(self.filter, Expr):
                raise InvalidInput(
                    "A filter must be built with pcref_mcp.partner_center.odata helpers, not a raw string.",
                    field="filter",
                )
            params["$filter"] = str(self.filter)
        if self.orderby:
            params["$orderby"] = ",".join(str(_orderby(item)) for item in self.orderby)
        if self.top is not None:
            params["$top"] = str(_non_negative("top", self.top, minimum=1))
        if self.skip is not None:
            params["$skip"] = str(_non_negative("skip", self.skip))
        if self.count:
            params["$count"] = "true"
        if self.select:
            params["$select"] = ",".join(path(p) for p in self.select)
        return params

    def to_query_string(self) -> str:
        """The encoded query string: spaces as ``%20`` (never ``+``, which some OData servers read
        literally); OData's own punctuation (``$ ' ( ) , / :``) left readable."""
        return "&".join(
            f"{quote(name, safe='$')}={quote(value, safe=_QUERY_SAFE)}"
            for name, value in self.to_params().items()
        )


_QUERY_SAFE = "$'(),/:@"


# --- values and paths -----------------------------------------------------------------------------


def literal(value: Any) -> str:
    """The OData literal for a Python value; strings are quoted with ``'`` doubled."""
    if value is None:
        return "null"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, UUID):
        return f"'{value}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput("Numbers in a filter must be finite.", field="value", value=value)
        if isinstance(value, Decimal) and not value.is_finite():
            raise InvalidInput("Numbers in a filter must be finite.", field="value", value=str(value))
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return format_wire(value, 6 if value.microsecond else 0)
    if isinstance(value, date):
        return value.isoformat()
    raise InvalidInput(
        f"A filter value cannot be a {type(value).__name__}.",
        field="value",
        allowed="str, bool, int, float, Decimal, datetime, date, UUID, enum or None",
    )


def path(value: str) -> str:
    """A property path such as ``customerProfile/address/country``; anything else is refused."""
    if not isinstance(value, str) or not PATH_PATTERN.match(value):
        raise InvalidInput(
            f"{value!r} is not a property path.",
            field="path",
            value=value,
            allowed="names of letters and digits separated by '/', e.g. customerProfile/address/country",
        )
    return value


# --- comparisons ----------------------------------------------------------------------------------


def _comparison(op: str) -> Callable[[str, Any], Expr]:
    """The function that builds ``path op value`` (the value escaped by :func:`literal`)."""

    def compare(p: str, value: Any) -> Expr:
        return Expr(f"{path(p)} {op} {literal(value)}")

    compare.__name__ = compare.__qualname__ = op
    compare.__doc__ = f"``p {op} value``."
    return compare


eq = _comparison("eq")
ne = _comparison("ne")
gt = _comparison("gt")
ge = _comparison("ge")
lt = _comparison("lt")
le = _comparison("le")


def contains(p: str, text: str, *, ignore_case: bool = False) -> Expr:
    """``contains(p,'text')``; with ``ignore_case`` ``contains(tolower(p),'text')`` (text lower-cased)."""
    if ignore_case:
        return Expr(
            f"contains(tolower({path(p)}),{_string(text.lower() if isinstance(text, str) else text)})"
        )
    return Expr(f"contains({path(p)},{_string(text)})")


def startswith(p: str, text: str) -> Expr:
    return Expr(f"startswith({path(p)},{_string(text)})")


def any_(collection: str, var: str, expr: Expr) -> Expr:
    """``team/any(t:t/email eq '…')``; build ``expr`` with paths starting at ``var``."""
    if not _VAR_PATTERN.match(var):
        raise InvalidInput(
            f"{var!r} is not a lambda variable.", field="var", allowed="lower-case letters/digits"
        )
    return Expr(f"{path(collection)}/any({var}:{_expr(expr)})")


# --- logic ----------------------------------------------------------------------------------------


def and_(*exprs: Expr) -> Expr:
    return _join("and", exprs)


def or_(*exprs: Expr) -> Expr:
    return _join("or", exprs)


def not_(expr: Expr) -> Expr:
    return Expr(f"not ({_expr(expr)})")


# --- private helpers ------------------------------------------------------------------------------


def _string(text: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput("Text searches take a string.", field="text", value=text)
    return literal(text)


def _expr(expr: Expr) -> str:
    if not isinstance(expr, Expr):
        raise InvalidInput("Combine only expressions built by the odata helpers.", field="filter")
    return expr.text


def _join(op: str, exprs: Sequence[Expr]) -> Expr:
    parts = [_expr(e) for e in exprs]
    if not parts:
        raise InvalidInput(f"{op}_() needs at least one expression.", field="filter")
    if len(parts) == 1:
        return Expr(parts[0])
    return Expr("(" + f" {op} ".join(parts) + ")")


def _orderby(item: OrderBy | str) -> OrderBy:
    if isinstance(item, OrderBy):
        return item
    name, _, direction = item.strip().partition(" ")
    direction = direction.strip() or "asc"
    if direction not in ("asc", "desc"):
        raise InvalidInput(f"Bad sort direction {direction!r}.", field="orderby", allowed=["asc", "desc"])
    return OrderBy(path(name), direction)  # type: ignore[arg-type]


def _non_negative(name: str, value: int, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"${name} must be a whole number >= {minimum}.", field=name, value=value)
    return value
