"""MCP prompts, one Markdown file each under ``prompts/``, loaded at start.

Front matter holds the description; ``$name`` placeholders in the body become required arguments.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument


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
    for name, text in prompt_files():
        meta, body = parse_front_matter(text)
        template = string.Template(body)
        names = sorted({m[1] or m[2] for m in template.pattern.findall(body) if m[1] or m[2]})
        descriptions = {k[len("arg_") :]: v for k, v in meta.items() if k.startswith("arg_")}
        server.add_prompt(
            Prompt(
                name=name,
                title=meta.get("title"),
                description=meta.get("description", ""),
                arguments=[
                    PromptArgument(name=n, description=descriptions.get(n), required=True) for n in names
                ],
                fn=lambda _t=template, **kw: _t.substitute({k: str(v) for k, v in kw.items()}),
            )
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
