"""Every JSON example in the reference material parses into the models and dumps back equal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from referral_reference_docs import documents, reference_dir

from pcref_mcp.referrals.catalog import CATALOGS
from pcref_mcp.referrals.models import PatchOperation, Referral, ReferralPage
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, REGISTRATION_POINTERS
from pcref_mcp.referrals.write_models import DealRegistrationCreate, ReferralCreate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
OPERATIONS = TypeAdapter(list[PatchOperation])


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def round_trip(path: Path) -> tuple[Any, Any, set[str]]:
    """The document, what the model dumps back, and the pointers the reader says it normalised."""
    original = json.loads(path.read_text(encoding="utf-8"))
    if path.name.startswith("page_"):
        page = ReferralPage.model_validate(original)
        noted = {p.path for p in page.read_problems}
        noted |= {f"/value/{i}{p.path}" for i, r in enumerate(page.value) for p in r.read_problems}
        return original, page.to_wire(), noted
    if path.name.startswith("patch_"):
        operations = OPERATIONS.validate_python(original)
        return original, [op.model_dump(mode="json", exclude_unset=True) for op in operations], set()
    referral = Referral.model_validate(original)
    return original, referral.to_wire(), {p.path for p in referral.read_problems}


def differences(original: Any, dumped: Any, path: str = "") -> set[str]:
    """Pointers where ``dumped`` differs from ``original``; keys match ignoring letter case (the
    reader renames PascalCase keys to the documented camelCase)."""
    if isinstance(original, dict) and isinstance(dumped, dict):
        out: set[str] = set()
        by_case = {k.lower(): k for k in dumped}
        if len(original) != len(dumped):
            out.add(path or "/")
        for key, value in original.items():
            twin = key if key in dumped else by_case.get(key.lower())
            out |= differences(value, dumped.get(twin) if twin else None, f"{path}/{twin or key}")
        return out
    if isinstance(original, list) and isinstance(dumped, list) and len(original) == len(dumped):
        return set().union(
            *(differences(a, b, f"{path}/{i}") for i, (a, b) in enumerate(zip(original, dumped, strict=True)))
        )
    return set() if original == dumped else {path}


def test_there_are_fixtures() -> None:
    assert len(fixture_files()) >= 11


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_example_dumps_back_equal(path: Path) -> None:
    original, dumped, noted = round_trip(path)
    # Every field kept; keys only re-cased; a value differs only where the reader says how it read it.
    assert differences(original, dumped) <= noted


def test_pascal_case_example_reads_like_camel_case() -> None:
    # seeds/003's co-sell request sends ConsentToContact etc. in PascalCase.
    referral = Referral.model_validate(load("referral_cosell_step1_partner_request.json"))
    assert referral.consent is not None and referral.consent.consent_to_contact is True
    assert "ConsentToContact" not in referral.to_wire()["consent"]


def test_2018_request_keeps_its_old_field_names() -> None:
    # seeds/004 opens with "{ {" (a doc typo); the fixture drops only that stray brace.
    referral = Referral.model_validate(load("referral_2018_create_request.json"))
    assert referral.model_extra is not None and referral.model_extra["statusDetail"] == "Pending"
    assert referral.customer_profile is not None and referral.customer_profile.ids == {"duns": "1234567"}
    assert referral.to_wire()["details"]["estimatedDealValue"] == "50000"


def test_create_request_is_a_valid_strict_create_body() -> None:
    original = load("referral_create_request.json")
    assert ReferralCreate.model_validate(original).to_wire() == original


def test_registration_add_value_is_a_valid_strict_registration() -> None:
    (operation,) = load("patch_research_registration_add.json")
    assert operation["path"] == REGISTRATION_ADD_POINTER
    registration = DealRegistrationCreate.model_validate(operation["value"])
    assert registration.to_wire() == operation["value"]
    assert registration.warnings() == []


def test_patch_examples_use_only_allowed_pointers() -> None:
    allowed = {*REFERRAL_POINTERS, *REGISTRATION_POINTERS, REGISTRATION_ADD_POINTER}
    for path in FIXTURES.glob("patch_*.json"):
        assert {op["path"] for op in json.loads(path.read_text())} <= allowed


def test_microsoft_specific_shapes_survive() -> None:
    page = ReferralPage.model_validate(load("page_research_list_page.json"))
    referral = page.value[0]
    assert referral.consent is not None and referral.consent.consent_to_to_share_info_with_others is True
    assert referral.e_tag == '"6700f96c-0000-1000-0000-6218f27c0000"'
    assert page.odata_next_link is not None and "$skiptoken=" in page.odata_next_link
    step1 = Referral.model_validate(load("referral_cosell_step1_partner_request.json"))
    # seeds/003 sends these in PascalCase: they read as the documented fields, none left as extras.
    assert step1.consent is not None and step1.consent.model_extra == {}
    assert step1.consent.consent_to_to_share_info_with_others is True
    assert step1.consent.consent_to_microsoft_to_contact_specific_partners is True


def _is_catalog_list(doc: Any) -> bool:
    """seeds/002 lists catalogs as ``[{"id": ...}]``; those live in pcref_mcp.referrals.catalog."""
    if (
        not isinstance(doc, list)
        or not doc
        or not all(isinstance(d, dict) and list(d) == ["id"] for d in doc)
    ):
        return False
    ids = {d["id"] for d in doc}
    return any(ids <= {*c.ids(), *(v.id for v in c.legacy)} for c in CATALOGS.values())


@pytest.mark.skipif(reference_dir() is None, reason="reference folder (../shared/reference) not present")
def test_every_reference_example_has_a_fixture() -> None:
    folder = reference_dir()
    assert folder is not None
    covered = {json.dumps(json.loads(p.read_text(encoding="utf-8")), sort_keys=True) for p in fixture_files()}
    found = list(documents(folder))
    assert len(found) >= 16
    missing = [
        where
        for where, doc in found
        if json.dumps(doc, sort_keys=True) not in covered and not _is_catalog_list(doc)
    ]
    assert missing == []
