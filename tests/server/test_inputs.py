"""server.inputs: its tables stay unambiguous for every model a tool reads, and its hook is the only way in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pcref_mcp.server.app import build_server
from pcref_mcp.server.inputs import SYNONYMS, GuardedTool, _fold, _shape, normalise


def _models(settings: Any) -> dict[str, type[BaseModel]]:
    """Every model a tool reads: its argument model and every model nested in it."""
    server = build_server(settings)
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [tool.fn_metadata.arg_model for tool in server._tool_manager.list_tools()]
    while todo:
        model = todo.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for info in model.model_fields.values():
            shape, inner = _shape(info.annotation)
            if shape == "list":
                shape, inner = _shape(inner)
            if shape == "model":
                todo.append(inner)
    return found


def test_every_tool_is_guarded(settings: Any) -> None:
    tools = build_server(settings)._tool_manager.list_tools()
    assert tools and all(isinstance(tool, GuardedTool) for tool in tools)


def test_no_word_means_two_fields_of_one_model(settings: Any) -> None:
    models = _models(settings)
    assert {"search_referralsArguments", "Filters", "Change", "NewReferral", "Contact"} <= set(models)
    for model in models.values():
        fields = {_fold(name): name for name in model.model_fields}
        claimed: dict[str, str] = {}
        for name in model.model_fields:
            for word in SYNONYMS.get(name, ()):
                folded = _fold(word)
                assert folded not in fields or fields[folded] == name, (model.__name__, word, name)
                assert claimed.setdefault(folded, name) == name, (model.__name__, word, claimed[folded], name)


def test_an_exact_call_is_read_as_sent_without_notes(settings: Any) -> None:
    models = _models(settings)
    arguments = {"filters": {"status": ["New"], "direction": "Incoming"}, "sort": "closing_asc", "limit": 5}
    reading = normalise("search_referrals", arguments, models["search_referralsArguments"])
    assert (reading.arguments, reading.notes, reading.problems) == (arguments, [], [])
