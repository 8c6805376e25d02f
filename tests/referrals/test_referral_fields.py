"""The field table (referrals/fields) against the read model: every row's pointer is a field of
``Referral``, and what the row holds (kind, enum, text limit, list entries) is read from there, never
written twice."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import TypeAdapter

from pcref_mcp.referrals import fields, models, patch_paths
from pcref_mcp.referrals.fields import FIELDS, WireField, held_at

# What pydantic says each kind is in the read model's JSON schema (a plain str for text and codes).
SCHEMA = models.Referral.model_json_schema()
STRING = {"type": "string"}
PLAIN = {
    "amount": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {**STRING, "format": "date-time"},
}
PLAIN |= dict.fromkeys(("text", "currency", "country"), STRING)
ENTRIES = {"member": "Member", "solution": "SolutionTag"}


def _schema_at(pointer: str) -> list[dict[str, Any]]:
    """The read model's schema at ``pointer``, as its alternatives (null left out), walked over
    pydantic's own JSON schema: independent of how fields.py reads the annotations."""
    node: dict[str, Any] = SCHEMA
    for part in pointer.strip("/").split("/"):
        (node,) = [alt for alt in _alternatives(node) if alt.get("type") in ("object", "array")]
        node = node["items"] if part == "-" or part.isdigit() else node["properties"][part]
    return _alternatives(node)


def _alternatives(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "$ref" in node:
        return _alternatives(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in node:
        return [alt for branch in node["anyOf"] for alt in _alternatives(branch) if alt != {"type": "null"}]
    return [{k: v for k, v in node.items() if k not in ("default", "title", "description")}]


@pytest.mark.parametrize("row", FIELDS, ids=lambda f: f.pointer)
def test_every_row_is_a_field_of_the_read_model_and_holds_what_it_says(row: WireField) -> None:
    held = _schema_at(row.pointer)
    if row.kind == "enum":  # Open[E]: E's values, or a string the service added later
        assert row.enum is not None
        assert held[0]["enum"] == [str(m) for m in row.enum] and held[1:] == [{"type": "string"}]
    elif row.kind in ENTRIES:
        (entry,) = held
        assert entry["type"] == "object" and set(entry["properties"]) == {
            info.alias for info in getattr(models, ENTRIES[row.kind]).model_fields.values()
        }
    elif row.kind.removesuffix("s") in ENTRIES:
        (listed,) = held
        assert listed["type"] == "array"
        assert listed["items"]["$ref"].endswith("/" + ENTRIES[row.kind.removesuffix("s")])
        assert row.entries == row.kind.removesuffix("s")
    else:
        assert held == [PLAIN[row.kind]], row.pointer
    if row.kind == "text":
        assert row.limit == (fields.NOTES_LIMIT if row.pointer.endswith("/notes") else fields.TEXT_LIMIT)
    else:
        assert row.limit is None
    assert held_at(row.pointer) == row.held


def test_a_row_cannot_restate_what_the_model_says() -> None:
    """One source for each fact: kind, enum, limit and list entries (the model's) and whether it is a
    deal registration's (its pointer's) are not parameters of a row."""
    given = {f.name for f in dataclasses.fields(WireField) if f.init}
    assert given == {"pointer", "name", "aliases", "ops", "nullable", "must_be_true"}
    for fact in ("kind", "enum", "limit", "entries", "registration"):
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


def test_every_changeable_kind_is_one_the_writer_knows() -> None:
    for row in (*fields.REFERRAL_FIELDS, *fields.REGISTRATION_FIELDS):
        assert row.kind in ("text", "enum") or patch_paths._kind_type(row.kind) is not None, row.pointer


def test_an_unknown_pointer_is_refused() -> None:
    with pytest.raises(KeyError, match="no field 'nope'"):
        held_at("/details/nope")
    with pytest.raises(KeyError):
        held_at("/details/notes/-")


def test_the_referrals_registration_status_is_a_registrations_or_none() -> None:
    rolled = [str(s) for s in models.ReferralRegistrationStatus]
    assert rolled == ["None", *(str(s) for s in models.RegistrationStatus)]
    assert models.Referral.model_validate({"registrationStatus": "None"}).registration_status == "None"
