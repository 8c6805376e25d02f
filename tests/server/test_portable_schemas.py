"""Tool schemas every client accepts (Copilot Studio, Gemini's OpenAPI subset, the Inspector's
--strict lint): no $ref, no type arrays (so no nullable ones), no untyped free-form schemas; and the
transform is generic: derived from whatever the models say, also for models changed later."""

from __future__ import annotations

import json
from typing import Any, Literal

import jsonschema
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field

from pcref_mcp.referrals.schemas import FREE_FORM, portable
from pcref_mcp.server.app import _compact_tool_schemas
from pcref_mcp.server.tools import Change, WriteResult

pytestmark = pytest.mark.anyio

# The Inspector's list of keywords that constrain an instance (schemaLint.ts).
CONSTRAINING = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "contentMediaType", "contentEncoding", "contentSchema",
    "maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties",
    "required", "dependentRequired", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains",
    "additionalItems", "unevaluatedItems", "properties", "patternProperties", "additionalProperties",
    "unevaluatedProperties", "propertyNames", "dependentSchemas", "dependencies", "$ref", "$dynamicRef",
    "$recursiveRef",
}  # fmt: skip
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def lint(schema: Any, path: str = "", keyword: str | None = None) -> list[str]:
    """What keeps a schema from being portable, as the Inspector and Copilot Studio see it."""
    if isinstance(schema, bool):
        return [] if keyword in ("additionalProperties",) else [f"{path}: bare boolean schema"]
    if not isinstance(schema, dict):
        return []
    found = []
    if isinstance(schema.get("type"), list):
        found.append(f"{path}: type array {schema['type']}")
    if "$ref" in schema or "$defs" in schema or "definitions" in schema:
        found.append(f"{path}: $ref/$defs")
    if keyword != "not" and not CONSTRAINING.intersection(schema):
        found.append(f"{path}: untyped schema")
    for key in _ONE:
        if key in schema:
            found += lint(schema[key], f"{path}.{key}", key)
    for key in _MANY:
        for i, item in enumerate(schema.get(key) or []):
            found += lint(item, f"{path}.{key}[{i}]", key)
    for key in _MAP:
        for name, item in (schema.get(key) or {}).items():
            found += lint(item, f"{path}.{key}.{name}", key)
    return found


async def test_every_tool_schema_is_portable(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert len(tools) >= 8
    for tool in tools:
        assert lint(tool.input_schema) == [], tool.name
        assert tool.output_schema is not None
        assert lint(tool.output_schema) == [], tool.name
        text = json.dumps([tool.input_schema, tool.output_schema])
        assert "$ref" not in text and '"null"' not in text, tool.name


async def test_free_form_values_are_typed_and_still_take_any_value(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    value = tools["update_field"].input_schema["properties"]["changes"]["items"]["properties"]["value"]
    assert value["anyOf"] == FREE_FORM["anyOf"]
    field = tools["update_field"].input_schema["properties"]["changes"]["items"]["properties"]["field"]
    assert "pcref://fields" in field["description"]  # where the value schemas are
    for sample in ("x", 250000, 1.5, True, {"email": "a@b.c"}, ["SOL-1-IPC"]):
        jsonschema.validate(sample, value)


async def test_optional_arguments_are_optional_not_nullable(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    filters = tools["search_referrals"].input_schema["properties"]["filters"]
    assert filters["type"] == "object"
    assert filters["properties"]["status"]["type"] == "array"
    assert "required" not in filters  # every filter may be left out
    cursor = tools["search_referrals"].input_schema["properties"]["cursor"]
    assert cursor == {"type": "string"}


async def test_write_answers_validate_against_the_portable_output_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["update_field"].output_schema
    row = {"id": "r1", "status": "New/Pending", "name": "«x»", "value": 5.0, "extra": {"a": None}}
    answer = WriteResult(
        status="confirmation_required",
        message="m",
        preview={"summary": "s", "changes": [{"field": "notes", "before": None, "after": ["a", 1]}]},  # type: ignore[arg-type]
        referral=row,  # type: ignore[arg-type]
        created=[row, {**row, "id": "r2"}],  # type: ignore[list-item]
    ).model_dump(mode="json", exclude_none=True)
    jsonschema.validate(answer, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**answer, "status": "done"}, schema)
    # a write's row is an object there (spelled out once, on search_referrals: the 20 KB budget)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**answer, "referral": "r1"}, schema)
    row_schema = tools["search_referrals"].output_schema["properties"]["rows"]["items"]  # type: ignore[index]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": 1, "status": "x"}, row_schema)


# --- generic: a model changed by someone else comes out portable too ----------------------------


class Person(BaseModel):
    """A person (used twice: inlined twice)."""

    name: str = Field(min_length=1)
    email: str | None = None


class Item(BaseModel):
    field: str
    value: Any = Field(description="Anything")
    mode: Literal["replace", "append", "remove"] | None = None  # e.g. a new field on Change
    note: str | None = Field(description="Required but nullable")
    scores: list[int | None] = Field(default_factory=list)
    owner: Person | None = None
    team: list[Person] = Field(default_factory=list)


class Answer(BaseModel):
    item: Item | None = None
    items: list[Item] = Field(default_factory=list)
    anything: Any = None


async def _schemas_of(fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    tool = Tool.from_function(fn)
    _compact_tool_schemas([tool])
    server: MCPServer[Any] = MCPServer("probe", tools=[tool])
    tool = (await server.list_tools())[0]
    assert tool.output_schema is not None
    return tool.input_schema, tool.output_schema


async def test_a_new_model_shape_comes_out_portable() -> None:
    async def probe(items: list[Item], extra: dict[str, Any] | None = None) -> Answer:
        raise AssertionError("never called")

    inputs, outputs = await _schemas_of(probe)
    assert lint(inputs) == [] and lint(outputs) == []
    item = inputs["properties"]["items"]["items"]
    assert item["properties"]["mode"] == {"enum": ["replace", "append", "remove"], "type": "string"}
    assert item["properties"]["value"]["anyOf"] == FREE_FORM["anyOf"]
    # required and nullable stays nullable, spelt as anyOf branches with one type each
    assert item["properties"]["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert item["properties"]["scores"]["items"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert item["properties"]["team"]["items"]["properties"]["name"] == {"minLength": 1, "type": "string"}
    good = {"field": "f", "value": {"x": 1}, "note": None, "scores": [1, None], "team": [{"name": "A"}]}
    jsonschema.validate({"items": [good]}, inputs)
    for bad in ({**good, "mode": "merge"}, {**good, "team": [{"name": ""}]}, {"field": "f", "value": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"items": [bad]}, inputs)


def test_portable_keeps_what_a_schema_accepts_apart_from_null_for_optional_properties() -> None:
    original = Item.model_json_schema()
    spelt = portable(original)
    assert lint(spelt) == []
    samples: list[Any] = [
        {"field": "a", "value": 1, "note": "n"},
        {"field": "a", "value": [1], "note": None, "owner": {"name": "B", "email": "b@c.d"}},
        {"field": "a", "value": "x", "note": "n", "scores": [None, 3], "mode": "append"},
        {"field": "a", "note": "n"},  # value missing
        {"field": "a", "value": 1, "note": "n", "mode": "merge"},
        {"field": "a", "value": 1, "note": "n", "owner": {"name": ""}},
        {"field": 3, "value": 1, "note": "n"},
    ]
    for sample in samples:
        assert _valid(original, sample) == _valid(spelt, sample), sample
    # the one difference: an optional property is optional, not nullable
    assert _valid(original, {"field": "a", "value": 1, "note": "n", "mode": None})
    assert not _valid(spelt, {"field": "a", "value": 1, "note": "n", "mode": None})


def test_change_value_schema_is_typed_free_form() -> None:
    spelt = portable(Change.model_json_schema())
    assert spelt["properties"]["value"]["anyOf"] == FREE_FORM["anyOf"]
    assert lint(spelt) == []


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError:
        return False
    return True
