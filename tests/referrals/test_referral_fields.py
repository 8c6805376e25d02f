"""The field table (referrals/fields) against the read model: every row's pointer is a field of
``Referral``, and what the row holds (kind, enum, text limit, list entries) is read from there, never
written twice."""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import StrEnum
from typing import Any

import pytest
from pydantic import TypeAdapter

from pcref_mcp.referrals import fields, models, patch_paths
from pcref_mcp.referrals.fields import FIELDS, WireField, held_at

# What a kind is in the read model's own annotation (the field's type without None and Annotated).
PLAIN = {"amount": float, "bool": bool, "text": str, "currency": str, "country": str, "datetime": str}


def _annotation(pointer: str) -> Any:
    """The read model's annotation at ``pointer``, walked here on its own (not by fields.py)."""
    annotation: Any = models.Referral
    for part in pointer.strip("/").split("/"):
        inner = _bare(annotation)
        if part == "-" or part.isdigit():
            (annotation,) = typing.get_args(inner)
        else:
            annotation = {info.alias: info.annotation for info in inner.model_fields.values()}[part]
    return annotation


def _bare(annotation: Any) -> Any:
    """Without None and Annotated; ``Open[E]`` is ``E``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _bare(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        enums = [a for a in members if isinstance(a, type) and issubclass(a, StrEnum)]
        return enums[0] if enums else _bare(members[0]) if len(members) == 1 else annotation
    return annotation


@pytest.mark.parametrize("row", FIELDS, ids=lambda f: f.pointer)
def test_every_row_is_a_field_of_the_read_model_and_holds_what_it_says(row: WireField) -> None:
    held = _bare(_annotation(row.pointer))
    if row.kind == "enum":
        assert row.enum is not None and held is row.enum
    elif row.kind in ("member", "solution"):
        assert held is {"member": models.Member, "solution": models.SolutionTag}[row.kind]
    elif row.kind in ("members", "solutions"):
        (item,) = typing.get_args(held)
        assert item is {"members": models.Member, "solutions": models.SolutionTag}[row.kind]
        assert row.entries == row.kind.removesuffix("s")
    else:
        assert held is PLAIN[row.kind], row.pointer
    if row.kind == "text":
        assert row.limit == (fields.NOTES_LIMIT if row.pointer.endswith("/notes") else fields.TEXT_LIMIT)
    else:
        assert row.limit is None
    assert held_at(row.pointer) == row.held


def test_a_row_cannot_restate_what_the_model_says() -> None:
    """One source for each fact: kind, enum, limit and list entries are not parameters of a row."""
    given = {f.name for f in dataclasses.fields(WireField) if f.init}
    assert given == {"pointer", "name", "aliases", "ops", "registration", "nullable", "must_be_true"}
    for fact in ("kind", "enum", "limit", "entries"):
        with pytest.raises(TypeError):
            WireField("/name", **{fact: None})  # type: ignore[arg-type]


def test_create_text_is_every_limited_text_of_the_model() -> None:
    expected = {
        "/name",
        "/target/-/id",
        "/customerProfile/name",
        *(
            f"/customerProfile/address/{k}"
            for k in ("addressLine1", "addressLine2", "city", "state", "postalCode", "region")
        ),
        *(
            f"{team}/-/{k}"
            for team in ("/customerProfile/team", "/team")
            for k in ("firstName", "lastName", "phoneNumber", "email", "title")
        ),
        "/inviteContext/notes",
    }
    assert {f.pointer for f in fields.CREATE_TEXT} == expected
    assert all(not f.changeable and f.kind == "text" for f in fields.CREATE_TEXT)
    assert fields.text_limit("/inviteContext/notes") == fields.NOTES_LIMIT
    assert fields.text_limit("/team/-/email") == fields.text_limit("/unknown") == fields.TEXT_LIMIT


@pytest.mark.parametrize("marked", [models.Text, models.Notes, models.Iso4217, models.Iso3166])
def test_the_markers_change_nothing_pydantic_does(marked: Any) -> None:
    """Reads and schemas of a marked field are a plain ``str``'s (the tolerance and tool schemas stay)."""
    plain, typed = TypeAdapter(str | None), TypeAdapter(marked | None)
    assert typed.json_schema() == plain.json_schema()
    assert typed.core_schema == plain.core_schema
    assert typed.validate_python("x" * 20_000) == "x" * 20_000  # a read keeps what the service sent


def test_every_kind_is_one_the_writer_and_the_sandbox_know() -> None:
    from pcref_mcp.sandbox import checks

    for row in (*fields.REFERRAL_FIELDS, *fields.REGISTRATION_FIELDS):
        assert row.kind in ("text", "enum") or row.kind in patch_paths._KIND_TYPES, row.pointer
    for row in FIELDS:
        assert row.kind in ("text", "enum") or row.kind in checks._CHECKS, row.pointer


def test_an_unknown_pointer_is_refused() -> None:
    with pytest.raises(KeyError, match="no field 'nope'"):
        held_at("/details/nope")
    with pytest.raises(KeyError):
        held_at("/details/notes/-")


def test_the_referrals_registration_status_is_a_registrations_or_none() -> None:
    rolled = [str(s) for s in models.ReferralRegistrationStatus]
    assert rolled == ["None", *(str(s) for s in models.RegistrationStatus)]
    assert models.Referral.model_validate({"registrationStatus": "None"}).registration_status == "None"
