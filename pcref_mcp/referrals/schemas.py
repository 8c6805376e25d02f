"""JSON schemas derived from the models, made small enough to sit in a model's context.

Nothing here is written by hand: every schema starts as pydantic's ``model_json_schema()`` (or a
``TypeAdapter``'s) and ``compact_schema`` only removes what a validator does not need: titles,
single-use ``$defs`` (inlined), enum ``$ref``s (inlined), ``default: null``, second sentences of
descriptions. ``anyOf [X, null]`` becomes ``X`` with ``"null"`` added to its type where that is
exact, so the compact schema accepts the same instances as the original.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:  # the wire model and the PATCH rules load when a schema resource is read, not at start
    from pcref_mcp.referrals.patch_paths import PatchPath

__all__ = [
    "FREE_FORM",
    "compact_schema",
    "model_schema",
    "omit_nulls",
    "portable",
    "referral_json_schema",
    "strip_descriptions",
    "value_schema",
]

_REF_PREFIX = "#/$defs/"
# keywords whose value is one schema / a list of schemas / a name -> schema map
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas")
_FIRST_SENTENCE = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+(?=[A-Z(])")


def _copy(schema: Any) -> Any:
    """A deep copy of a schema, which is JSON: a round trip through the encoder, many times faster than
    ``copy.deepcopy`` (the tool schemas are compacted at every start)."""
    return json.loads(json.dumps(schema))


def compact_schema(schema: dict[str, Any], *, inline_all: bool = False) -> dict[str, Any]:
    """A smaller schema that validates exactly the same instances as ``schema``.

    ``inline_all`` inlines every definition that does not refer to itself (for clients that drop a
    tool whose schema has a ``$ref``), not only the single-use ones.
    """
    schema = _copy(schema)
    defs: dict[str, Any] = schema.pop("$defs", {})
    uses = Counter(_refs(schema))
    for definition in defs.values():
        uses.update(_refs(definition))
    inline = {
        name for name, definition in defs.items() if inline_all or uses[name] <= 1 or "enum" in definition
    }
    inline -= _recursive(defs)
    for name in inline:
        if uses[name] > 1:  # said once per use: the property names tell what it is
            defs[name] = {k: v for k, v in defs[name].items() if k != "description"}
    result = _walk(schema, defs, inline, stack=())
    kept = {name: _walk(defs[name], defs, inline, stack=(name,)) for name in defs if name not in inline}
    kept = {name: value for name, value in kept.items() if name in set(_refs(result)) | _refs_in(kept)}
    if kept:
        result["$defs"] = kept
    return result


def strip_descriptions(schema: Any) -> Any:
    """The same schema without prose: for output schemas, which clients validate and models never fill."""
    if isinstance(schema, list):
        return [strip_descriptions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: value if key in ("enum", "const", "required") else strip_descriptions(value)
        for key, value in schema.items()
        if not (key == "description" and isinstance(value, str))
    }


def omit_nulls(schema: Any) -> Any:
    """For answers dumped without None values: an optional property is absent, never null.

    Drops ``null`` from the type (and enum) of every property that is not required, which is exact
    for output that ``model_dump(exclude_none=True)`` produced.
    """
    if isinstance(schema, list):
        return [omit_nulls(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: omit_nulls(v) if k != "properties" else v for k, v in schema.items()}
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = set(schema.get("required", ()))
        out["properties"] = {
            name: omit_nulls(prop if name in required else _without_null(prop))
            for name, prop in properties.items()
        }
    return out


def _without_null(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return prop
    prop = dict(prop)
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [t for t in kind if t != "null"]
        prop["type"] = rest[0] if len(rest) == 1 else rest
    if isinstance(prop.get("enum"), list):
        prop["enum"] = [v for v in prop["enum"] if v is not None]
    options = prop.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        prop.pop("anyOf")
        prop = {**rest[0], **prop} if len(rest) == 1 else {**prop, "anyOf": rest}
    return prop


# A value of any JSON type but null, spelt so that every client can read it: one ``type`` per branch.
FREE_FORM: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "object"},
        {"type": "array"},
    ]
}


def portable(schema: dict[str, Any], *, output: bool = False) -> dict[str, Any]:
    """The same contract in the spelling every MCP client accepts (Copilot Studio, Gemini's OpenAPI
    subset, the Inspector's ``--strict`` check): no ``$ref``/``$defs`` (inlined), an optional property
    is optional rather than nullable, no ``type`` arrays (``anyOf`` with one ``type`` per branch), and a
    free-form value is typed (``FREE_FORM``) instead of an empty schema.

    For tool schemas only: the SDK validates arguments with the pydantic models, so what this changes
    is what clients see (a client no longer offers ``null`` for an optional argument).

    ``output``: a free-form property that is optional in an open object is left undeclared (exactly
    the same answers validate), and an object shape that an inlined ``$ref`` repeats is spelt out
    once, later uses being ``{"type": "object"}`` (what a ``$ref`` saved, without one).
    """
    inlined = compact_schema(schema, inline_all=True) if "$defs" in schema else _copy(schema)
    result = _spell_portably(omit_nulls(inlined), keyword=None, output=output)
    if output:
        result = _once(result, seen=set(), top=True)
    return result


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The compact input schema of a (friendly) model, e.g. a tool's arguments."""
    return compact_schema(model.model_json_schema())


def referral_json_schema() -> dict[str, Any]:
    """The full tolerant Referral read schema, compacted (served as a resource)."""
    from pcref_mcp.referrals.models import Referral

    return compact_schema(Referral.model_json_schema())


def value_schema(path: PatchPath) -> dict[str, Any]:
    """The compact schema of the value a PATCH on ``path`` takes."""
    return compact_schema(path.json_schema())


# --- helpers --------------------------------------------------------------------------------------


def _walk(node: Any, defs: dict[str, Any], inline: set[str], stack: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        name = ref[len(_REF_PREFIX) :]
        if name in inline and name not in stack:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            definition = _copy(defs[name])
            if "enum" in definition:
                definition.pop(
                    "description", None
                )  # an enum's values say what it is; its docstring is for us
            node = {**definition, **siblings}
            return _walk(node, defs, inline, (*stack, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "default" and value is None:
            continue
        if key == "additionalProperties" and value is True:
            continue
        if key == "description" and isinstance(value, str):
            out[key] = _FIRST_SENTENCE.split(value.strip(), maxsplit=1)[0]
        elif key in _ONE:
            out[key] = _walk(value, defs, inline, stack)
        elif key in _MANY and isinstance(value, list):
            out[key] = [_walk(item, defs, inline, stack) for item in value]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: _walk(item, defs, inline, stack) for name, item in value.items()}
        else:
            out[key] = value
    items = out.get("items")
    if "description" in out and isinstance(items, dict) and "description" in items:
        # an array's description already says what its items are
        out["items"] = {k: v for k, v in items.items() if k != "description"}
    return _collapse_null(out)


def _collapse_null(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, {type: null}]`` -> X with ``null`` added to its type or enum, when that is exact."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return node
    other = options[0] if options[1] == {"type": "null"} else options[1]
    kind = other.get("type")
    if not isinstance(kind, str) or kind == "null" or "const" in other or "$ref" in other:
        return node
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    if any(key in merged for key in other):
        return node
    widened = {**other, "type": [kind, "null"]}
    if "enum" in other:
        widened["enum"] = [*other["enum"], None]
    return {**widened, **merged}


# Keywords that constrain an instance (the Inspector's list); a schema with none accepts anything.
_CONSTRAINING = frozenset(
    {
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxProperties",
        "minProperties", "required", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains",
        "properties", "patternProperties", "additionalProperties", "propertyNames", "$ref",
    }
)  # fmt: skip
# keyword -> the JSON type it applies to (it moves into that type's branch when a type array is split)
_TYPE_KEYWORDS = {
    **dict.fromkeys(("maxLength", "minLength", "pattern", "format"), "string"),
    **dict.fromkeys(("multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"), "number"),
    **dict.fromkeys(("items", "prefixItems", "maxItems", "minItems", "uniqueItems", "contains"), "array"),
    **dict.fromkeys(
        ("properties", "required", "additionalProperties", "patternProperties", "propertyNames"), "object"
    ),
    **dict.fromkeys(("maxProperties", "minProperties"), "object"),
}


def _spell_portably(node: Any, keyword: str | None, *, output: bool) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ONE and (key != "additionalProperties" or isinstance(value, dict)):
            out[key] = _spell_portably(value, key, output=output)
        elif key in _MANY and isinstance(value, list):
            out[key] = [_spell_portably(item, key, output=output) for item in value]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: _spell_portably(item, key, output=output) for name, item in value.items()}
        else:
            out[key] = value
    if output and isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
        required = set(node.get("required", ()))
        out["properties"] = {
            name: prop
            for name, prop in out["properties"].items()
            if name in required or not _free_form(node["properties"][name])
        }
    kind = out.get("type")
    if isinstance(kind, list):
        out = _split_types(out, kind)
    if keyword != "not" and not _CONSTRAINING.intersection(out):
        out = {**out, **_copy(FREE_FORM)}
    return out


def _once(node: Any, seen: set[str], *, top: bool = False) -> Any:
    """Object shapes after their first appearance become ``{"type": "object"}`` (document order)."""
    if isinstance(node, list):
        return [_once(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if not top and node.get("type") == "object" and isinstance(node.get("properties"), dict):
        key = json.dumps(node, sort_keys=True)
        if key in seen:
            return {"type": "object"}
        seen.add(key)
    return {k: v if k in ("enum", "const", "required") else _once(v, seen) for k, v in node.items()}


def _free_form(node: Any) -> bool:
    return isinstance(node, dict) and not _CONSTRAINING.intersection(node)


def _split_types(node: dict[str, Any], kinds: list[Any]) -> dict[str, Any]:
    """``{type: [string, null], maxLength: 5}`` -> ``{anyOf: [{type: string, maxLength: 5}, {type: null}]}``."""
    if len(kinds) == 1:
        return {**node, "type": kinds[0]}
    outer = {k: v for k, v in node.items() if k != "type" and k not in _TYPE_KEYWORDS and k != "enum"}
    branches = []
    for kind in kinds:
        branch: dict[str, Any] = {"type": kind}
        for key, value in node.items():
            applies = _TYPE_KEYWORDS.get(key)
            if applies == kind or (applies == "number" and kind == "integer"):
                branch[key] = value
        if "enum" in node:
            values = [
                v for v in node["enum"] if _json_type(v) in (kind, "number" if kind == "integer" else kind)
            ]
            if kind != "null":
                branch["enum"] = values
        branches.append(branch)
    return {**outer, "anyOf": branches}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            found.append(ref[len(_REF_PREFIX) :])
        for value in node.values():
            found += _refs(value)
    elif isinstance(node, list):
        for item in node:
            found += _refs(item)
    return found


def _refs_in(defs: dict[str, Any]) -> set[str]:
    return {name for definition in defs.values() for name in _refs(definition)}


def _recursive(defs: dict[str, Any]) -> set[str]:
    """Definitions that reach themselves; they must stay as ``$defs``."""
    graph = {name: set(_refs(definition)) for name, definition in defs.items()}
    looping = set()
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            if name == start:
                looping.add(start)
                break
            if name not in seen and name in graph:
                seen.add(name)
                todo.extend(graph[name])
    return looping
