"""MCP prompts, one Markdown file each under ``prompts/``, loaded at start.

Front matter holds the description; ``$name`` placeholders in the body become required arguments.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path
from typing import Any

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.types import INVALID_PARAMS


def prompt_files() -> list[tuple[str, str]]:
    """(name, text) of every prompt file, sorted by name."""
    try:
        root: Any = resources.files("pcref_mcp.prompts")
        files = [f for f in root.iterdir() if f.name.endswith(".md")]
    except (ModuleNotFoundError, FileNotFoundError):
        root = Path(__file__).resolve().parents[2] / "prompts"
        files = list(root.glob("*.md"))
    return sorted((f.name[: -len(".md")], f.read_text(encoding="utf-8")) for f in files)


def register_prompts(server: MCPServer[Any]) -> None:
    prompts: dict[str, Prompt] = {}
    for name, text in prompt_files():
        meta, body = parse_front_matter(text)
        template = string.Template(body)
        names = sorted({m[1] or m[2] for m in template.pattern.findall(body) if m[1] or m[2]})
        descriptions = {k[len("arg_") :]: v for k, v in meta.items() if k.startswith("arg_")}
        prompts[name] = Prompt(
            name=name,
            title=meta.get("title"),
            description=meta.get("description", ""),
            arguments=[PromptArgument(name=n, description=descriptions.get(n), required=True) for n in names],
            fn=lambda _t=template, **kw: _t.substitute({k: str(v) for k, v in kw.items()}),
        )
        server.add_prompt(prompts[name])
    server.middleware.append(PromptRequestCheck(prompts))


class PromptRequestCheck:
    """SDK ``ServerMiddleware``: unknown prompts and missing or unknown arguments are the caller's
    mistake, answered -32602 naming the fix.

    The SDK answers them as a generic failure (code 0, or -32603 on 2026-07-28) with a logged
    traceback, so ``prompts/get`` is checked here, against the prompts registered, before it runs.
    Malformed params are left to the SDK's own validation.
    """

    def __init__(self, prompts: dict[str, Prompt]) -> None:
        self.prompts = prompts

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        params = ctx.params if ctx.method == "prompts/get" else None
        if isinstance(params, dict) and isinstance(params.get("name"), str):
            arguments = params.get("arguments")
            if arguments is None or isinstance(arguments, dict):
                self.check(params["name"], arguments)
        return await call_next(ctx)

    def check(self, name: str, arguments: dict[str, Any] | None) -> None:
        prompt = self.prompts.get(name)
        if prompt is None:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Unknown prompt {name!r}; prompts: {', '.join(sorted(self.prompts))}.",
                data={"name": name, "prompts": sorted(self.prompts)},
            )
        declared = {a.name: a for a in prompt.arguments or []}
        given = arguments or {}
        missing = sorted(n for n, a in declared.items() if a.required and given.get(n) in (None, ""))
        unknown = sorted(set(given) - set(declared))
        if missing or unknown:
            parts = [
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            ]
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Prompt {name!r} arguments: {'; '.join(p for p in parts if p)}. "
                f"It takes: {', '.join(declared) or 'no arguments'}.",
                data={"name": name, "missing": missing, "unknown": unknown, "arguments": list(declared)},
            )


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    head, _, body = text[4:].partition("\n---\n")
    meta = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta, body.lstrip("\n")
