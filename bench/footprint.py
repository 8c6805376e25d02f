"""Context footprint: bytes of the ``tools/list`` answer, per tool and in total, output schemas included.

Baseline: what a naive generator makes of the connector's OpenAPI (Swagger 2.0) definition — one tool
per operation, the input schema built from the operation's parameters (body schemas inlined from
``definitions``), the output schema from its success response (inlined). Vendor extensions
(``x-ms-*``) are dropped, which only makes the baseline smaller. Both answers are measured the same
way: a compact JSON-RPC ``tools/list`` answer, bytes/4 as a token estimate.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench.common import wire_bytes

# The connector's own OpenAPI definition (Oct 2023), copied from the reference material so the
# baseline is measured the same way from any clone.
SWAGGER = Path(__file__).resolve().parent / "data" / "partner-center-referrals-connector.swagger.json"
TYPED_KEYS = ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf")


def run(tools_list_answer: dict[str, Any] | None = None, swagger: Path = SWAGGER) -> dict[str, Any]:
    """Figures for the server's tools (from a wire answer if given, else built in-process)."""
    if tools_list_answer is not None:
        ours = list(tools_list_answer["result"]["tools"])
        source = "stdio wire answer"
    else:
        ours = _in_process_tools()
        source = "in-process list_tools"
    naive = naive_tools(json.loads(swagger.read_text()))
    ours_total, naive_total = wire_bytes(envelope(ours)), wire_bytes(envelope(naive))
    untyped = [f"{t['name']}: {p}" for t in ours for p in untyped_arguments(t.get("inputSchema", {}))]
    top_level_untyped = [u for u in untyped if "." not in u.split(": ", 1)[1] and "[]" not in u]
    return {
        "source": source,
        "tools": [_per_tool(t) for t in ours],
        "naive_tools": [_per_tool(t) for t in naive],
        "total_bytes": ours_total,
        "naive_total_bytes": naive_total,
        "ratio": ours_total / naive_total,
        "untyped_arguments": untyped,
        "untyped_top_level": top_level_untyped,
        "arguments": sum(len(t.get("inputSchema", {}).get("properties", {})) for t in ours),
    }


def envelope(tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "result": {"tools": tools}}


def naive_tools(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One MCP tool per OpenAPI operation, as a straightforward generator would emit it."""
    definitions = spec.get("definitions", {})
    tools = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            properties: dict[str, Any] = {}
            required: list[str] = []
            for param in [*shared, *op.get("parameters", [])]:
                param = _resolve(param, spec)
                name = param["name"]
                if param.get("in") == "body":
                    schema = _inline(param.get("schema", {}), definitions)
                    if param.get("description"):
                        schema = {"description": param["description"], **schema}
                else:
                    schema = {
                        k: v
                        for k, v in param.items()
                        if k not in ("in", "name", "required") and not k.startswith("x-")
                    }
                properties[name] = _strip_extensions(schema)
                if param.get("required"):
                    required.append(name)
            tool: dict[str, Any] = {
                "name": op.get("operationId") or f"{method}_{path}",
                "description": "\n\n".join(x for x in (op.get("summary"), op.get("description")) if x),
                "inputSchema": {
                    "type": "object",
                    "properties": properties,
                    **({"required": required} if required else {}),
                },
            }
            success = next(
                (
                    r
                    for code, r in sorted(op.get("responses", {}).items())
                    if code.startswith("2") and "schema" in r
                ),
                None,
            )
            if success is not None:
                tool["outputSchema"] = _strip_extensions(_inline(success["schema"], definitions))
            tools.append(tool)
    return tools


def untyped_arguments(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths of properties (recursively) whose schema says nothing about their type."""
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if not _typed(prop, schema):
            out.append(path)
        out.extend(_nested_untyped(prop, path, schema))
    return out


# --- private ----------------------------------------------------------------------------------------


def _per_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": tool["name"],
        "bytes": wire_bytes(tool),
        "input_bytes": wire_bytes(tool.get("inputSchema", {})),
        "output_bytes": wire_bytes(tool["outputSchema"]) if "outputSchema" in tool else 0,
    }


def _typed(prop: dict[str, Any], root: dict[str, Any]) -> bool:
    if any(k in prop for k in ("type", "enum", "const")):
        return True
    if "$ref" in prop:
        return _typed(_ref(prop["$ref"], root), root)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in prop:
            return all(_typed(p, root) for p in prop[key])
    return False


def _nested_untyped(prop: dict[str, Any], path: str, root: dict[str, Any], depth: int = 0) -> list[str]:
    if depth > 6:
        return []
    out: list[str] = []
    if "$ref" in prop:
        prop = _ref(prop["$ref"], root)
    if "properties" in prop:
        for name, sub in prop["properties"].items():
            if not _typed(sub, root):
                out.append(f"{path}.{name}")
            out.extend(_nested_untyped(sub, f"{path}.{name}", root, depth + 1))
    if isinstance(prop.get("items"), dict):
        out.extend(_nested_untyped(prop["items"], f"{path}[]", root, depth + 1))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in prop.get(key, []):
            out.extend(_nested_untyped(sub, path, root, depth + 1))
    return out


def _ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _resolve(param: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return _ref(param["$ref"], spec) if "$ref" in param else param


def _inline(schema: Any, definitions: dict[str, Any], depth: int = 0) -> Any:
    if isinstance(schema, list):
        return [_inline(s, definitions, depth) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema and depth < 20:
        target = definitions.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return _inline(copy.deepcopy(target), definitions, depth + 1)
    return {k: _inline(v, definitions, depth) for k, v in schema.items()}


def _strip_extensions(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strip_extensions(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _strip_extensions(v) for k, v in schema.items() if not k.startswith("x-")}
    return schema


def _in_process_tools() -> list[dict[str, Any]]:
    import anyio

    from pcref_mcp.config import Settings
    from pcref_mcp.server.app import build_server

    server = build_server(Settings())
    tools = anyio.run(server.list_tools)
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


if __name__ == "__main__":
    result = run()
    print(json.dumps({k: v for k, v in result.items()}, indent=1))
