"""The sandbox's checks of a create's or a PUT's body read the read model (through the field table):
which values it checks is said in sandbox/checks, what each holds is the model's."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import fields, models
from pcref_mcp.sandbox import checks


def _problems(body: dict[str, Any], before: dict[str, Any] | None = None) -> list[str]:
    problems: list[str] = []
    checks.check_body(problems, body, before=before)
    return problems


def test_every_limited_text_of_the_model_is_checked() -> None:
    entries = tuple(p + "/" for p in checks._ENTRY_LISTS)
    for row in fields.FIELDS:
        if row.kind == "text" and not row.pointer.startswith(entries):  # entries: checked as people
            assert row.pointer in checks.BODY_VALUES, row.pointer


def test_every_kind_is_one_the_sandbox_checks() -> None:
    for row in fields.FIELDS:
        assert row.kind in ("text", "enum") or row.kind in checks._CHECKS, row.pointer


@pytest.mark.parametrize("pointer", checks.BODY_VALUES)
def test_each_value_is_judged_as_the_model_says(pointer: str) -> None:
    held = fields.held_at(pointer)
    check = checks._BODY_CHECKS[pointer]
    assert check is not None
    if held.kind == "enum":
        assert held.enum is not None
        for member in held.enum:
            check(pointer, str(member))
        with pytest.raises(InvalidInput, match="is not one of"):
            check(pointer, "Nonsense")
    elif held.kind == "text":
        limit = held.limit or fields.TEXT_LIMIT
        check(pointer, "x" * limit)
        with pytest.raises(InvalidInput, match=f"longer than {limit}"):
            check(pointer, "x" * (limit + 1))


def test_a_body_is_walked_with_every_problem_named_once() -> None:
    problems = _problems(
        {
            "type": "Sideways",
            "customerProfile": "Contoso",
            "target": [{"type": "Nope", "id": "x" * 501}],
            "team": {"firstName": "Jane"},
            "inviteContext": {"notes": "y" * (fields.NOTES_LIMIT + 1), "assistanceRequestCode": "Q"},
            "details": {"currency": "", "requirements": {"industries": "Retail"}},
        }
    )
    assert problems == [
        "type 'Sideways' is not one of: Independent, Shared",
        "customerProfile must be an object",
        "team must be a list",
        "target[0].type 'Nope' is not one of: None, SolutionProfile, BusinessProfileLocation",
        "inviteContext.assistanceRequestCode 'Q' is not one of: "
        + ", ".join(str(c) for c in models.AssistanceRequestCode),
        "target[0].id is longer than 500 characters",
        f"inviteContext.notes is longer than {fields.NOTES_LIMIT} characters",
        "details.requirements.industries must be a list",
    ]


def test_blank_is_no_value_where_the_service_takes_it_so() -> None:
    body = {"customerProfile": {"size": "", "address": {"country": ""}}, "details": {"currency": ""}}
    assert _problems(body) == []
    assert _problems({"salesStage": ""}) == ["salesStage '' is not one of: Qualify, Develop, Propose, Close"]


def test_a_put_does_not_judge_again_what_it_sends_back_unchanged() -> None:
    stored = {"salesStage": "100", "type": "Independent"}
    assert _problems({"salesStage": "100"}, before=stored) == []
    assert _problems({"salesStage": "101"}, before=stored) == [
        "salesStage '101' is not one of: Qualify, Develop, Propose, Close"
    ]
