"""OData query options for GET /referrals, turned into parameterised SQL.

``$filter`` goes through a tokenizer and a recursive-descent parser. Field paths are checked against
the Referral model (an unknown field is a 400, not an empty page), values always travel as SQL
parameters, and paths that have an indexed column use it; the rest read the document with
``json_extract``. ``any``/``all`` lambdas become ``EXISTS`` over ``json_each``. Anything the parser
cannot read is an :class:`ODataError` naming the position and the token, never a silent full scan.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Union

from pydantic import BaseModel

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.models import Referral
from pcref_mcp.sandbox.clock import format_wire, parse_wire
from pcref_mcp.sandbox.store import COLUMNS

__all__ = [
    "DOCUMENTED_FILTER_FIELDS",
    "DOCUMENTED_LAMBDAS",
    "DOCUMENTED_ORDERBY",
    "FIELDS",
    "Compiled",
    "ODataError",
    "compile_filter",
    "compile_orderby",
    "parse_select",
]

Kind = Literal["string", "number", "bool", "datetime", "object", "array", "any"]


class ODataError(InvalidInput):
    """A query option the sandbox cannot accept; ``position`` is 0-based within the option's text."""

    def __init__(self, message: str, *, option: str, position: int | None = None, token: str | None = None):
        super().__init__(message, field=option, value=token)
        self.option = option
        self.position = position
        self.token = token


# --- the schema: what may be filtered on ----------------------------------------------------------


@dataclass(frozen=True)
class Node:
    kind: Kind
    children: dict[str, Node] = field(default_factory=dict)  # object fields, or array item fields
    item: Kind | None = None  # for arrays: kind of each element


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete alternatives of an annotation (Optional/Union/Annotated removed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [annotation]


def _node_for(annotation: Any, name: str) -> Node:
    options = _unwrap(annotation)
    for option in options:  # prefer the richest reading (list over dict, model over str)
        if typing.get_origin(option) is list:
            (inner,) = typing.get_args(option) or (Any,)
            element = _node_for(inner, name)
            if element.kind == "object":
                return Node("array", element.children, "object")
            return Node("array", {}, element.kind)
        if isinstance(option, type) and issubclass(option, BaseModel):
            return Node("object", _fields_of(option))
    for option in options:
        if option is bool:
            return Node("bool")
        if option in (int, float):
            return Node("number")
        if option is str or (isinstance(option, type) and issubclass(option, Enum)):
            return Node("datetime" if name.endswith("DateTime") else "string")
    return Node("any")


def _fields_of(model: type[BaseModel]) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for py_name, info in model.model_fields.items():
        alias = info.alias or (model.model_config.get("alias_generator") or (lambda s: s))(py_name)  # type: ignore[operator]
        if not isinstance(alias, str) or alias.startswith("@"):
            continue
        out[alias] = _node_for(info.annotation, alias)
    return out


FIELDS: dict[str, Node] = _fields_of(Referral)

# What the public documents show (the strict profile accepts only this): ``eq`` joined by ``and``
# (parentheses allowed) on these fields, ``any`` over the referral team by e-mail, and ordering by the
# two timestamps. Sources: "Get a list of referrals" (partner-rest 2019, learn.microsoft.com).
DOCUMENTED_FILTER_FIELDS = frozenset(
    {
        "engagementId",
        "status",
        "substatus",
        "qualification",
        "type",
        "direction",
        "customerProfile/address/country",
    }
)
DOCUMENTED_LAMBDAS: dict[str, frozenset[str]] = {"team": frozenset({"email"})}
DOCUMENTED_ORDERBY = frozenset({"createdDateTime", "updatedDateTime"})


# --- tokens ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?(?![\w.:-]))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.:-]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()/,:])
    """,
    re.VERBOSE,
)

_COMPARISONS = {"eq": "IS", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_KEYWORDS = {"and", "or", "not", *_COMPARISONS}
_FUNCTIONS: dict[str, tuple[tuple[Kind, ...], Kind]] = {
    "contains": (("string", "string"), "bool"),
    "startswith": (("string", "string"), "bool"),
    "endswith": (("string", "string"), "bool"),
    "tolower": (("string",), "string"),
    "toupper": (("string",), "string"),
    "trim": (("string",), "string"),
    "length": (("string",), "number"),
}
MAX_FILTER_LENGTH = 4000
MAX_DEPTH = 40


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str, option: str = "$filter") -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ODataError(
                f"Invalid {option} at position {pos}: unexpected character {text[pos]!r}.",
                option=option,
                position=pos,
                token=text[pos],
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- compiled SQL ---------------------------------------------------------------------------------


@dataclass
class Compiled:
    """A SQL fragment, its parameters in order, and the OData kind of its value."""

    sql: str
    params: list[Any]
    kind: Kind
    literal: bool = False  # a bare literal (its parameter may be re-typed against the other side)
    is_null: bool = False
    predicate: bool = False  # a condition (comparison, and/or/not, contains, any/all), not a value


def _condition(sql: str, params: list[Any]) -> Compiled:
    """A condition (comparison, and/or/not, contains, any/all): a boolean that is not a value."""
    return Compiled(sql, params, "bool", predicate=True)


def compile_filter(text: str, *, strict: bool = False) -> tuple[str, list[Any]]:
    """``$filter`` text -> (SQL boolean expression over table ``referrals``, parameters).

    ``strict`` accepts only what the documents show (see ``DOCUMENTED_FILTER_FIELDS``)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(f"$filter is longer than {MAX_FILTER_LENGTH} characters.", option="$filter")
    if not text.strip():
        raise ODataError("$filter is empty.", option="$filter", position=0)
    parser = _FilterParser(text, strict=strict)
    result = parser.parse()
    return result.sql, result.params


def compile_orderby(text: str, *, strict: bool = False) -> str:
    """``$orderby`` text -> ORDER BY clause (id as the final tiebreak so pages are stable).

    ``strict`` accepts only the documented fields (``DOCUMENTED_ORDERBY``)."""
    keys: list[str] = []
    first_direction = "ASC"
    pos = 0
    for part in text.split(","):
        stripped = part.strip()
        start = pos + (len(part) - len(part.lstrip()))
        pos += len(part) + 1
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+(asc|desc))?", stripped)
        if not m:
            raise ODataError(
                f"Invalid $orderby at position {start}: expected 'field [asc|desc]' but found {stripped!r}.",
                option="$orderby",
                position=start,
                token=stripped,
            )
        path, direction = m.group(1), (m.group(2) or "asc").upper()
        node = _resolve(path.split("/"), FIELDS, "$orderby", start)
        if strict and path not in DOCUMENTED_ORDERBY:
            raise ODataError(
                f"Invalid $orderby at position {start}: ordering by {path!r} is not supported; "
                f"supported: {', '.join(sorted(DOCUMENTED_ORDERBY))}.",
                option="$orderby",
                position=start,
                token=path,
            )
        if node.kind in ("object", "array", "any"):
            raise ODataError(
                f"Invalid $orderby: {path!r} is not a simple value and cannot be sorted on.",
                option="$orderby",
                position=start,
                token=path,
            )
        if not keys:
            first_direction = direction
        column = COLUMNS.get(path)
        expr = column if column else "json_extract(doc, " + _quote_path(path) + ")"
        keys.append(f"{expr} {direction}")
    if not keys:
        raise ODataError("$orderby is empty.", option="$orderby", position=0)
    keys.append(f"id {first_direction}")
    return ", ".join(keys)


def parse_select(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    for name in names:
        if name not in FIELDS and name != "@odata.etag":
            raise ODataError(
                f"Invalid $select: unknown field {name!r}. Select top-level fields such as id, status, "
                "customerProfile.",
                option="$select",
                token=name,
            )
    return names


def _quote_path(path: str) -> str:
    """A JSON path literal for a *validated* field path (identifiers only, so nothing to escape)."""
    return "'$." + ".".join(path.split("/")) + "'"


def _resolve(parts: list[str], scope: dict[str, Node], option: str, pos: int) -> Node:
    node: Node | None = None
    children = scope
    walked: list[str] = []
    for part in parts:
        node = children.get(part)
        walked.append(part)
        if node is None:
            known = ", ".join(sorted(children)) if len(children) <= 12 else "see the Referral resource"
            raise ODataError(
                f"Invalid {option} at position {pos}: unknown field {'/'.join(walked)!r} ({known}).",
                option=option,
                position=pos,
                token="/".join(walked),
            )
        children = node.children
    assert node is not None
    return node


# --- the parser -----------------------------------------------------------------------------------


@dataclass
class _Scope:
    variable: str
    alias: str
    fields: dict[str, Node]
    item: Kind | None
    collection: str = ""


class _FilterParser:
    def __init__(self, text: str, *, strict: bool = False) -> None:
        self.text = text
        self.strict = strict
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.scopes: list[_Scope] = []
        self.aliases = 0

    # helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> ODataError:
        tok = tok or self.peek()
        shown = tok.text if tok.kind != "end" else "end of input"
        return ODataError(
            f"Invalid $filter at position {tok.pos}: {message} (found {shown!r}).",
            option="$filter",
            position=tok.pos,
            token=tok.text,
        )

    def refuse_in_strict(self, message: str, tok: Token | None = None) -> None:
        if self.strict:
            raise self.strict_error(message, tok)

    def strict_error(self, message: str, tok: Token | None = None) -> ODataError:
        return self.error(f"{message} (the service documents only eq/and filters)", tok)

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.text != text:
            raise self.error(f"expected {text!r}")
        return self.next()

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.text == word

    # grammar
    def parse(self) -> Compiled:
        expr = self._as_condition(self.boolean())
        if self.peek().kind != "end":
            raise self.error("expected 'and', 'or' or the end of the filter")
        return expr

    def boolean(self) -> Compiled:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("the filter is nested too deeply")
        try:
            return self.or_expr()
        finally:
            self.depth -= 1

    def or_expr(self) -> Compiled:
        left = self.and_expr()
        while self.keyword("or"):
            self.refuse_in_strict("'or' is not supported; send one query per alternative")
            self.next()
            right = self.and_expr()
            left = _condition(f"({left.sql} OR {right.sql})", left.params + right.params)
        return left

    def and_expr(self) -> Compiled:
        left = self.unary()
        while self.keyword("and"):
            self.next()
            right = self.unary()
            left = _condition(f"({left.sql} AND {right.sql})", left.params + right.params)
        return left

    def unary(self) -> Compiled:
        if self.keyword("not"):
            self.refuse_in_strict("'not' is not supported")
            self.next()
            inner = self.unary()
            inner = self._as_condition(inner)
            return _condition(f"(NOT COALESCE({inner.sql}, 0))", inner.params)
        return self.comparison()

    def comparison(self) -> Compiled:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "ident" and tok.text in _COMPARISONS:
            if tok.text != "eq":
                self.refuse_in_strict(f"the operator {tok.text!r} is not supported; only 'eq'")
            self.next()
            right_tok = self.peek()
            right = self.operand()
            return self._compare(left, tok.text, right, right_tok)
        if tok.kind == "ident" and tok.text not in _KEYWORDS:
            raise self.error("expected a comparison operator (eq, ne, gt, ge, lt, le)")
        if left.predicate:
            return left
        if left.kind != "bool":
            raise self.error("expected a comparison operator (eq, ne, gt, ge, lt, le) after this value", tok)
        self.refuse_in_strict("a bare value is not a condition; compare it with 'eq'", tok)
        return _condition(f"({left.sql} IS 1)", left.params)

    def operand(self) -> Compiled:
        tok = self.peek()
        if tok.text == "(":
            self.next()
            inner = self.boolean()
            self.expect(")")
            return inner
        if tok.kind == "string":
            self.next()
            return Compiled("?", [tok.text[1:-1].replace("''", "'")], "string", literal=True)
        if tok.kind == "datetime" or tok.kind == "date":
            self.next()
            when = parse_wire(tok.text)
            if when is None:
                raise self.error("this is not a valid date and time", tok)
            return Compiled("?", [format_wire(when)], "datetime", literal=True)
        if tok.kind == "guid":
            self.next()
            return Compiled("?", [tok.text.lower()], "string", literal=True)
        if tok.kind == "number":
            self.next()
            number = float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
            return Compiled("?", [number], "number", literal=True)
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                self.next()
                return Compiled("?", [tok.text == "true"], "bool", literal=True)
            if tok.text == "null":
                self.next()
                return Compiled("NULL", [], "any", literal=True, is_null=True)
            if tok.text in _KEYWORDS:
                raise self.error("expected a field, a value or a function")
            if self.peek(1).text == "(":
                return self.function()
            return self.path()
        raise self.error("expected a field, a value or a function")

    def function(self) -> Compiled:
        name_tok = self.next()
        name = name_tok.text
        if name not in _FUNCTIONS:
            raise self.error(f"unknown function {name!r}; supported: {', '.join(_FUNCTIONS)}", name_tok)
        self.refuse_in_strict(f"the function {name!r} is not supported", name_tok)
        self.expect("(")
        wanted, result = _FUNCTIONS[name]
        args: list[Compiled] = []
        for index, kind in enumerate(wanted):
            if index:
                self.expect(",")
            arg_tok = self.peek()
            arg = self.operand()
            if arg.kind not in (kind, "datetime") or arg.is_null:
                raise self.error(f"{name}() takes text arguments", arg_tok)
            args.append(arg)
        self.expect(")")
        params = [p for a in args for p in a.params]
        if name == "contains":
            sql = f"(instr({args[0].sql}, {args[1].sql}) > 0)"
        elif name == "startswith":
            sql = f"(substr({args[0].sql}, 1, length({args[1].sql})) = {args[1].sql})"
            params = args[0].params + args[1].params + args[1].params
        elif name == "endswith":
            sql = (
                f"(length({args[1].sql}) = 0 AND {args[0].sql} IS NOT NULL "
                f"OR substr({args[0].sql}, -length({args[1].sql})) = {args[1].sql})"
            )
            params = args[1].params + args[0].params + args[0].params + args[1].params + args[1].params
        elif name == "tolower":
            sql = f"lower({args[0].sql})"
        elif name == "toupper":
            sql = f"upper({args[0].sql})"
        elif name == "trim":
            sql = f"trim({args[0].sql})"
        else:
            sql = f"length({args[0].sql})"
        return Compiled(sql, params, result, predicate=result == "bool")

    def path(self) -> Compiled:
        first = self.next()
        parts = [first.text]
        while self.peek().text == "/":
            self.next()
            tok = self.next()
            if tok.kind != "ident":
                raise self.error("expected a field name after '/'", tok)
            if tok.text in ("any", "all") and self.peek().text == "(":
                return self.lambda_(parts, tok.text, first)
            parts.append(tok.text)
        scope = next((s for s in reversed(self.scopes) if s.variable == parts[0]), None)
        if scope is not None:
            rest = parts[1:]
            if not rest:
                kind: Kind = scope.item or "object"
                if kind in ("object", "array"):
                    raise self.error(f"{parts[0]!r} is an object; compare one of its fields", first)
                return Compiled(f"{scope.alias}.value", [], kind)
            node = _resolve(rest, scope.fields, "$filter", first.pos)
            self._scalar(node, parts, first)
            if self.strict and "/".join(rest) not in DOCUMENTED_LAMBDAS.get(scope.collection, frozenset()):
                raise self.strict_error(f"filtering on {'/'.join(parts)!r} is not supported", first)
            return Compiled(
                f"json_extract({scope.alias}.value, {_quote_path('/'.join(rest))})", [], node.kind
            )
        node = _resolve(parts, FIELDS, "$filter", first.pos)
        self._scalar(node, parts, first)
        path = "/".join(parts)
        if self.strict and path not in DOCUMENTED_FILTER_FIELDS:
            raise self.strict_error(
                f"filtering on {path!r} is not supported; supported: "
                f"{', '.join(sorted(DOCUMENTED_FILTER_FIELDS))}, team/any(t:t/email eq …)",
                first,
            )
        column = COLUMNS.get(path)
        return Compiled(column or f"json_extract(doc, {_quote_path(path)})", [], node.kind)

    def _scalar(self, node: Node, parts: list[str], tok: Token) -> None:
        if node.kind in ("object", "array", "any"):
            hint = " use any()/all() on lists" if node.kind == "array" else ""
            raise self.error(
                f"{'/'.join(parts)!r} is not a simple value;{hint or ' name one of its fields'}", tok
            )

    def lambda_(self, parts: list[str], which: str, first: Token) -> Compiled:
        scope = next((s for s in reversed(self.scopes) if s.variable == parts[0]), None)
        if scope is not None:
            node = _resolve(parts[1:], scope.fields, "$filter", first.pos) if parts[1:] else None
            source = f"{scope.alias}.value"
            json_path = "'$." + ".".join(parts[1:]) + "'" if parts[1:] else "'$'"
        else:
            node = _resolve(parts, FIELDS, "$filter", first.pos)
            source = "doc"
            json_path = _quote_path("/".join(parts))
        if node is None or node.kind != "array":
            raise self.error(f"{'/'.join(parts)!r} is not a list; any()/all() apply to lists", first)
        collection = "/".join(parts)
        if self.strict and (scope is not None or which != "any" or collection not in DOCUMENTED_LAMBDAS):
            raise self.strict_error(
                f"{collection}/{which}(…) is not supported; only team/any(t:t/email eq …)", first
            )
        self.expect("(")
        self.aliases += 1
        alias = f"j{self.aliases}"
        each = f"json_each({source}, {json_path}) AS {alias}"
        if self.peek().text == ")":
            self.next()
            if which == "all":
                return _condition("1", [])
            return _condition(f"EXISTS (SELECT 1 FROM {each})", [])
        var = self.next()
        if var.kind != "ident" or var.text in _KEYWORDS:
            raise self.error("expected a lambda variable such as 't'", var)
        self.expect(":")
        self.scopes.append(_Scope(var.text, alias, node.children, node.item, collection))
        try:
            body = self._as_condition(self.boolean())
        finally:
            self.scopes.pop()
        self.expect(")")
        if which == "any":
            return _condition(f"EXISTS (SELECT 1 FROM {each} WHERE {body.sql})", body.params)
        sql = f"NOT EXISTS (SELECT 1 FROM {each} WHERE NOT COALESCE({body.sql}, 0))"
        return _condition(sql, body.params)

    def _compare(self, left: Compiled, op: str, right: Compiled, right_tok: Token) -> Compiled:
        kinds = {left.kind, right.kind}
        if not (left.is_null or right.is_null):
            compatible = left.kind == right.kind or kinds == {"string", "datetime"} or "any" in kinds
            if not compatible:
                raise self.error(
                    f"cannot compare a {left.kind} with a {right.kind}",
                    right_tok,
                )
            left, right = _coerce_datetime(left, right), _coerce_datetime(right, left)
        elif op not in ("eq", "ne"):
            raise self.error(f"null can only be compared with eq or ne, not {op}", right_tok)
        if left.kind == "object" or right.kind == "object":
            raise self.error("cannot compare objects", right_tok)
        if right.is_null or left.is_null:
            side = left if right.is_null else right
            sql = f"({side.sql} IS {'NOT ' if op == 'ne' else ''}NULL)"
            return _condition(sql, side.params)
        if op == "eq" and not (left.literal and right.literal):
            sql = f"({left.sql} = {right.sql})"  # equality with a value: = lets the planner use indexes
        else:
            sql = f"({left.sql} {_COMPARISONS[op]} {right.sql})"
        return _condition(sql, left.params + right.params)

    def _as_condition(self, value: Compiled) -> Compiled:
        if value.predicate:
            return value
        if value.kind != "bool":
            raise self.error("expected a condition")
        return _condition(f"({value.sql} IS 1)", value.params)


def _coerce_datetime(value: Compiled, other: Compiled) -> Compiled:
    """A quoted ISO string compared with a DateTime field is normalised to the stored format."""
    if value.literal and value.kind == "string" and other.kind == "datetime" and value.params:
        when = parse_wire(str(value.params[0]))
        if when is not None:
            return Compiled("?", [format_wire(when)], "datetime", literal=True)
    return value
