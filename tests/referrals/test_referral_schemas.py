"""Derived schemas: compact, still exact, and following the models (no hand-written schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import Field, TypeAdapter

from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import PatchPath, resolve
from pcref_mcp.referrals.schemas import compact_schema, model_schema, referral_json_schema, value_schema
from pcref_mcp.referrals.write_models import MemberIn, NewDealRegistration, NewReferral, ReferralCreate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"

GOOD_NEW_REFERRAL: dict[str, Any] = {
    "name": "Contoso ERP",
    "customer_name": "Contoso Ltd",
    "customer_country": "US",
    "customer_city": "Redmond",
    "customer_size": "10to50employees",
    "customer_contacts": [{"first_name": "Sue", "last_name": "Smith", "email": "sue@contoso.com"}],
    "deal_kind": "co_sell",
    "customer_consent_to_contact": True,
    "deal_value": 120000,
    "currency": "USD",
    "closing_date": "2026-11-27",
    "products": ["Azure"],
    "assistance_request_code": "ProofOfConceptOrDemo",
    "help_notes": "Please join the demo.",
    "team": [{"first_name": "Brian", "last_name": "Roberts", "phone": None}],
    "notes": None,
}


def walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += walk(value)
    elif isinstance(node, list):
        for item in node:
            found += walk(item)
    return found


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_compact_schema_is_smaller_and_tidy() -> None:
    full = NewReferral.model_json_schema()
    compact = model_schema(NewReferral)
    assert len(json.dumps(compact)) < len(json.dumps(full))
    nodes = walk(compact)
    assert not any(isinstance(n.get("title"), str) for n in nodes)  # a property named "title" is a dict
    assert not any(n.get("default", 0) is None for n in nodes)
    assert compact["properties"]["deal_kind"]["enum"] == ["private", "partner_led", "co_sell"]  # enum inlined
    assert compact["properties"]["customer_country"]["description"] == "ISO 3166 alpha-2, e.g. US"
    assert set(compact.get("$defs", {})) == {"Contact"}  # shared by customer_contacts and team


def test_property_named_title_is_kept() -> None:
    schema = value_schema(resolve("add sales team member"))
    assert "title" in schema["properties"]


@pytest.mark.parametrize("model", [NewReferral, NewDealRegistration, ReferralCreate])
def test_compact_schema_is_valid_json_schema(model: Any) -> None:
    validator(model_schema(model))


def test_compact_new_referral_schema_accepts_and_rejects_like_the_original() -> None:
    full, compact = validator(NewReferral.model_json_schema()), validator(model_schema(NewReferral))
    bad = [
        {**GOOD_NEW_REFERRAL, "deal_kind": "cosell"},
        {**GOOD_NEW_REFERRAL, "deal_value": -1},
        {**GOOD_NEW_REFERRAL, "customer_size": "huge"},
        {**GOOD_NEW_REFERRAL, "colour": "blue"},
        {k: v for k, v in GOOD_NEW_REFERRAL.items() if k != "name"},
        {**GOOD_NEW_REFERRAL, "team": [{"first_name": "x"}]},
    ]
    assert full.is_valid(GOOD_NEW_REFERRAL) and compact.is_valid(GOOD_NEW_REFERRAL)
    for instance in bad:
        assert not full.is_valid(instance)
        assert not compact.is_valid(instance), instance


def test_read_schema_validates_every_reference_referral() -> None:
    schema = validator(referral_json_schema())
    for path in FIXTURES.glob("referral_*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert schema.is_valid(document), path.name  # explicit nulls included
    for referral in json.loads((FIXTURES / "page_research_list_page.json").read_text())["value"]:
        assert schema.is_valid(referral)
    assert not schema.is_valid({"status": 5})
    assert not schema.is_valid({"details": {"dealValue": "lots"}})


def test_referral_schema_matches_the_uncompacted_one_on_samples() -> None:
    full, compact = validator(Referral.model_json_schema()), validator(referral_json_schema())
    samples = [
        {"statusReason": None, "status": "Active", "team": [{"email": "a@b.c", "title": "CTO"}]},
        {"team": [{"title": 3}]},
        {"registrations": [{"contract": {"value": "x"}}]},
        {"links": {"self": {"uri": None}}},
        {"expirationDateTime": None, "salesStage": "100"},
    ]
    for sample in samples:
        assert full.is_valid(sample) == compact.is_valid(sample), sample


def test_registration_schema_for_wire_body() -> None:
    registration = json.loads((FIXTURES / "patch_research_registration_add.json").read_text())[0]["value"]
    from pcref_mcp.referrals.write_models import DealRegistrationCreate

    schema = validator(model_schema(DealRegistrationCreate))
    assert schema.is_valid(registration)
    assert not schema.is_valid({**registration, "contract": {**registration["contract"], "term": "Forever"}})


def test_value_schema_per_path() -> None:
    assert value_schema(resolve("status")) == {"enum": ["None", "New", "Active", "Closed"], "type": "string"}
    assert value_schema(resolve("deal value"))["minimum"] == 0
    validator(value_schema(resolve("sales team"))).validate(
        [{"firstName": "Jane", "email": "jane@contoso.com"}]
    )


def test_schemas_follow_the_models() -> None:
    """No hand-written schema: a new model field shows up in the derived schemas."""

    class NewReferralPlus(NewReferral):
        partner_role: str = Field(description="The partner's role on a services deal.")

    class MemberPlus(MemberIn):
        linked_in_profile_url: str | None = None

    before, after = model_schema(NewReferral), model_schema(NewReferralPlus)
    assert before != after
    assert after["properties"]["partner_role"] == {
        "description": "The partner's role on a services deal.",
        "type": "string",
    }
    assert "partner_role" in after["required"]
    team, team_plus = resolve("sales team"), PatchPath("/team", "sales team", TypeAdapter(list[MemberPlus]))
    assert "linkedInProfileUrl" not in value_schema(team)["items"]["properties"]
    assert "linkedInProfileUrl" in value_schema(team_plus)["items"]["properties"]


def test_compact_keeps_recursive_and_shared_defs() -> None:
    schema = {
        "$defs": {
            "Node": {"title": "Node", "type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
            "Color": {"title": "Color", "enum": ["red", "blue"], "type": "string"},
        },
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/Node"},
            "b": {"$ref": "#/$defs/Color"},
            "c": {"anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}], "default": None},
        },
    }
    compact = compact_schema(schema)
    assert compact["$defs"] == {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}
    assert compact["properties"]["b"] == {"enum": ["red", "blue"], "type": "string"}
    assert compact["properties"]["c"] == {"enum": ["red", "blue", None], "type": ["string", "null"]}
    check = validator(compact)
    assert check.is_valid({"a": {"next": {}}, "c": None}) and not check.is_valid({"c": "green"})
