"""server.inputs: its tables stay unambiguous for every model a tool reads, and its hook is the only way in."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server, build_tools
from pcref_mcp.server.inputs import GuardedTool, normalise
from pcref_mcp.server.reading.fields import _shape
from pcref_mcp.server.reading.words import SYNONYMS, _fold


def _models(settings: Any) -> dict[str, type[BaseModel]]:
    """Every model a tool reads: its argument model and every model nested in it."""
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [tool.fn_metadata.arg_model for tool in build_tools(settings)]
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
    tools = build_tools(settings)
    assert tools and all(isinstance(tool, GuardedTool) for tool in tools)
    listed = anyio.run(build_server(settings).list_tools)
    assert [tool.name for tool in listed] == [tool.name for tool in tools]  # the server serves these


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


# --- every key used or refused, for any arguments at all --------------------------------------------

KEYS = st.sampled_from(
    [
        *{name for words in SYNONYMS.values() for name in words},
        *SYNONYMS,
        "status",
        "filters",
        "changes",
        "field",
        "value",
        "mode",
        "currency",
        "reason",
        "sortBy",
        "direction",
        "page",
        "include_contacts",
        "customer",
        "confirmToken",
        "op",
        "path",
        "zzz",
        "Status",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.sampled_from(["won", "Closed/Won", "«Tailspin»", "DevOps", "append", "replace", "desc", "New", "x"]),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
TOOLS = {
    tool.name: tool.fn_metadata.arg_model
    for tool in build_tools(
        Settings(journal_path=Path(tempfile.gettempdir()) / "pcref-inputs-unused.sqlite3")
    )
}


def _unplaced(value: Any, annotation: Any, where: str) -> list[str]:
    """Keys in ``value`` that no field of the annotated model takes (what pydantic would drop)."""
    shape, inner = _shape(annotation)
    if shape == "list" and isinstance(value, list):
        return [k for i, item in enumerate(value) for k in _unplaced(item, inner, f"{where}[{i}]")]
    if shape != "model" or not isinstance(value, dict):
        return []
    fields = inner.model_fields
    names = set(fields) | {info.alias for info in fields.values() if info.alias}
    lost = [f"{where}.{key}" for key in value if key not in names]
    for key, item in value.items():
        if key in fields:
            lost += _unplaced(item, fields[key].annotation, f"{where}.{key}")
    return lost


@pytest.mark.parametrize("tool", sorted(TOOLS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.dictionaries(KEYS, JSON, max_size=5))
def test_every_key_is_placed_or_refused(tool: str, arguments: dict[str, Any]) -> None:
    model = TOOLS[tool]
    reading = normalise(tool, arguments, model)
    if not reading.problems:
        assert _unplaced(reading.arguments, model, tool) == [], (arguments, reading)
    for text in (*reading.problems, *reading.notes):
        assert "pydantic" not in text and "Input should be" not in text
