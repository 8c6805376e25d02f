"""PATCH paths: friendly names, aliases, pointers, value checks and the lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.errors import InvalidInput, LifecycleViolation
from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import (
    REFERRAL_PATHS,
    REGISTRATION_PATHS,
    Edit,
    build_operations,
    build_registration_operations,
    removed_entries,
    resolve,
)

ACTIVE = Referral.model_validate({"status": "Active", "substatus": "Accepted"})
REFERRAL_NAMES = (
    "'deal value', 'closing date', 'notes', 'currency', 'status', 'substatus', 'status reason', "
    "'external reference id', 'campaign id', 'referral program', 'sales stage', 'share with microsoft sellers', "
    "'sales team', 'add sales team member', 'customer contacts', 'add customer contact', 'solutions', "
    "'add solution'"
)


def ops(changes: list[Any], current: Referral | None = None) -> list[dict[str, Any]]:
    return [op.model_dump() for op in build_operations(changes, current=current)]


def refusal(changes: list[Any], current: Referral | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        build_operations(changes, current=current)
    return caught.value


@pytest.mark.parametrize(
    ("said", "pointer"),
    [
        ("deal value", "/details/dealValue"),
        ("Deal_Value", "/details/dealValue"),
        ("amount", "/details/dealValue"),
        ("closing date", "/details/closingDateTime"),
        ("close date", "/details/closingDateTime"),
        ("closing date time", "/details/closingDateTime"),
        ("reason", "/statusReason"),
        ("external reference id", "/externalReferenceId"),
        ("share with microsoft sellers", "/consent/consentToShareReferralWithMicrosoftSellers"),
        ("add sales team member", "/team/-"),
        ("/details/notes", "/details/notes"),
        ("/DETAILS/NOTES", "/details/notes"),
    ],
)
def test_resolve_friendly_names_aliases_and_pointers(said: str, pointer: str) -> None:
    assert resolve(said).pointer == pointer


@pytest.mark.parametrize(
    ("said", "pointer"),
    [
        ("contract value", "/registrations/0/contract/value"),
        ("end date", "/registrations/0/contract/endDateTime"),
    ],
)
def test_resolve_registration_fields(said: str, pointer: str) -> None:
    assert resolve(said, registration=True).pointer == pointer


def test_unknown_field_lists_the_names() -> None:
    err = refusal([("colour", "blue")])
    assert (
        err.message == f"'colour' is not a referral field that can be changed; use one of: {REFERRAL_NAMES}."
    )
    assert refusal([("dela value", 1)]).message == (
        f"'dela value' is not a referral field that can be changed; did you mean 'deal value'? Fields: "
        f"{REFERRAL_NAMES}."
    )
    assert refusal([("contract value", 1)]).message.startswith(
        "'contract value' is a deal registration field; here use one of: 'deal value'"
    )


def test_values_are_checked_and_normalized() -> None:
    assert ops(
        [
            ("deal value", "120k"),
            ("notes", "n"),
            ("closing date", "2026-11-27"),
            ("currency", "eur"),
            ("sales stage", "qualify"),
            ("share with microsoft sellers", "yes"),
        ]
    ) == [
        {"op": "replace", "path": "/details/dealValue", "value": 120000.0},
        {"op": "replace", "path": "/details/closingDateTime", "value": "2026-11-27T00:00:00Z"},
        {"op": "replace", "path": "/details/notes", "value": "n"},
        {"op": "replace", "path": "/details/currency", "value": "EUR"},
        {"op": "replace", "path": "/salesStage", "value": "Qualify"},
        {"op": "replace", "path": "/consent/consentToShareReferralWithMicrosoftSellers", "value": True},
    ]
    assert ops([("closing date", "2026-11-27T10:00:00Z")])[0]["value"] == "2026-11-27T10:00:00Z"
    assert ops([("deal value", "120,000")])[0]["value"] == 120000.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("deal value", "lots"),
            "deal value 'lots' is not an unambiguous amount; use digits such as 120000, 120,000 or 120k.",
        ),
        (("deal value", -1), "deal value -1 is too small; use a number of at least 0."),
        (
            ("currency", "euro dollars"),
            "currency 'euro dollars' is not an ISO 4217 currency code; use a three-letter code such "
            "as 'EUR'.",
        ),
        (
            ("closing date", "03/11/2026"),
            "closing date '03/11/2026' can be read two ways (2026-03-11 or 2026-11-03); use YYYY-MM-DD.",
        ),
        (
            ("status", "Finished"),
            "status 'Finished' is not allowed; use one of: 'None', 'New', 'Active' or 'Closed'.",
        ),
        (
            ("add sales team member", {"firstName": "Jane", "email": "jane"}),
            "add sales team member: email 'jane' is not an e-mail address; use the form name@example.com.",
        ),
    ],
)
def test_bad_values_name_field_value_and_allowed(change: tuple[str, Any], expected: str) -> None:
    assert refusal([change]).message == expected


def test_append_pointers_use_add() -> None:
    assert ops(
        [("/team/-", {"first_name": "Jane", "email": "jane@contoso.com"}), ("add solution", "SOL-1-IPC")]
    ) == [
        {"op": "add", "path": "/team/-", "value": {"firstName": "Jane", "email": "jane@contoso.com"}},
        {
            "op": "add",
            "path": "/details/requirements/solutions/-",
            "value": {"id": "SOL-1-IPC", "type": "Name"},
        },
    ]


def test_operations_follow_the_allow_list_order_whatever_the_order_given() -> None:
    result = ops(
        [
            ("notes", "won it"),
            ("reason", "Signed"),
            ("deal value", 5),
            ("substatus", "won"),
            ("status", "closed"),
        ],
        ACTIVE,
    )
    assert [op["path"] for op in result] == [
        "/details/dealValue",
        "/details/notes",
        "/status",
        "/substatus",
        "/statusReason",
    ]
    assert result[2]["value"] == "Closed" and result[3]["value"] == "Won"
    shuffled = [
        ("status", "closed"),
        ("deal value", 5),
        ("substatus", "won"),
        ("reason", "Signed"),
        ("notes", "won it"),
    ]
    assert ops(shuffled, ACTIVE) == result


def test_status_without_substatus_says_which_go_with_it() -> None:
    assert refusal([("status", "Closed")], ACTIVE).message == (
        "status 'Closed' needs a substatus in the same change; with Closed use one of: Won, Lost, Declined "
        "(or say it plainly: status 'won', 'lost' or 'declined')."
    )


def test_lifecycle_refusal_lists_alternatives() -> None:
    err = refusal([("status", "New"), ("substatus", "Pending")], ACTIVE)
    assert isinstance(err, LifecycleViolation)
    assert err.message == (
        "A referral that is Active cannot move to New. Allowed from Active: Active/Accepted, Closed/Won, "
        "Closed/Lost, Closed/Declined."
    )
    assert err.allowed == ["Active/Accepted", "Closed/Won", "Closed/Lost", "Closed/Declined"]
    closed = Referral.model_validate({"status": "Closed", "substatus": "Won"})
    assert refusal([("substatus", "Expired")], closed).message == (
        "Substatus Expired is set only by Partner Center. Allowed from Closed: Closed/Won, Closed/Lost, "
        "Closed/Declined."
    )


def test_substatus_alone_is_checked_against_current_status() -> None:
    assert ops(
        [("substatus", "Lost")], Referral.model_validate({"status": "Closed", "substatus": "Won"})
    ) == [{"op": "replace", "path": "/substatus", "value": "Lost"}]
    # a bare substatus names its status: Won belongs to Closed only
    assert ops([("substatus", "Won")], ACTIVE) == [
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Won"},
    ]


def test_without_current_the_pair_must_still_match() -> None:
    assert refusal([("status", "New"), ("substatus", "Won")]).message == (
        "substatus 'Won' does not belong to status 'New'; with New use one of: Pending, Received."
    )


def test_every_problem_is_reported_at_once() -> None:
    assert refusal([("colour", 1), ("deal value", -1), ("notes", "a"), ("notes", "b")]).message == (
        f"'colour' is not a referral field that can be changed; use one of: {REFERRAL_NAMES}. "
        "deal value -1 is too small; use a number of at least 0. "
        "'notes' is given twice ('notes' and 'notes'); give it once."
    )


# --- registration ---------------------------------------------------------------------------------


def with_registration(status: str | None) -> Referral:
    registrations = [] if status is None else [{"status": status}]
    return Referral.model_validate({"status": "Closed", "substatus": "Won", "registrations": registrations})


def test_registration_changes_when_action_required() -> None:
    result = build_registration_operations(
        [("contract value", "160k"), ("term", "perpetual"), ("end date", None)],
        with_registration("ActionRequired"),
    )
    assert [op.model_dump() for op in result] == [
        {"op": "replace", "path": "/registrations/0/contract/value", "value": 160000.0},
        {"op": "replace", "path": "/registrations/0/contract/endDateTime", "value": None},
        {"op": "replace", "path": "/registrations/0/contract/term", "value": "Perpetual"},
    ]


def test_registration_refused_unless_action_required() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_registration_operations([("contract value", 1)], with_registration("ReviewPending"))
    assert caught.value.message == (
        "The deal registration is ReviewPending; it can be changed only while it is ActionRequired "
        "(Microsoft asked for changes)."
    )
    with pytest.raises(InvalidInput, match="has no deal registration"):
        build_registration_operations([("contract value", 1)], with_registration(None))


def test_registration_deployed_on_azure_false_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_registration_operations([("deployed on azure", False)], with_registration("ActionRequired"))
    assert caught.value.message == (
        "deployed on azure False would make Partner Center close the referral without a registration; only "
        "solutions deployed on Azure can be registered."
    )


def test_value_schema_is_derived_for_every_path() -> None:
    for path in (*REFERRAL_PATHS, *REGISTRATION_PATHS):
        assert path.json_schema(), path.name
    assert resolve("status").json_schema()["enum"] == ["None", "New", "Active", "Closed"]


# --- nothing lost by accident -----------------------------------------------------------------------

WITH_LISTS = Referral.model_validate(
    {
        "status": "Active",
        "substatus": "Accepted",
        "team": [{"firstName": "Kenji", "lastName": "Roberts", "email": "kenji@fabrikam.example"}],
        "details": {
            "notes": "First call done.",
            "requirements": {"solutions": [{"id": "SOL-1-IPC", "name": "X"}]},
        },
    }
)
JANE = {"first_name": "Jane", "last_name": "Doe", "email": "jane@fabrikam.example"}


def test_notes_append_after_a_blank_line() -> None:
    assert ops([Edit("notes", "Met the CTO", "append")], WITH_LISTS) == [
        {"op": "replace", "path": "/details/notes", "value": "First call done.\n\nMet the CTO"}
    ]
    assert ops([Edit("notes", "Met the CTO", "append")]) == [
        {"op": "replace", "path": "/details/notes", "value": "Met the CTO"}
    ]


def test_a_list_replacement_that_removes_entries_needs_mode_replace() -> None:
    message = refusal([("sales team", [JANE])], WITH_LISTS).message
    assert "«Kenji Roberts»" in message and "mode 'replace'" in message and "kenji@" not in message
    replaced = build_operations([Edit("sales team", [JANE], "replace")], current=WITH_LISTS)
    assert removed_entries(WITH_LISTS, replaced) == {"sales team": ["«Kenji Roberts»"]}
    kept = {"first_name": "Kenji", "last_name": "Roberts", "email": "KENJI@fabrikam.example"}
    assert ops([("sales team", [kept, JANE])], WITH_LISTS)[0]["path"] == "/team"  # nobody goes
    assert "«X»" in refusal([("solutions", ["DevOps"])], WITH_LISTS).message


def test_mode_append_on_a_list_adds_each_entry_in_order() -> None:
    assert [o["path"] for o in ops([Edit("solutions", ["DevOps", "SOL-2-IPC"], "append")], WITH_LISTS)] == [
        "/details/requirements/solutions/-",
        "/details/requirements/solutions/-",
    ]
    assert "holds one value" in refusal([Edit("deal value", 5, "append")]).message


def test_a_closed_referral_refuses_a_bare_status_for_the_true_reason() -> None:
    closed = Referral.model_validate({"status": "Closed", "substatus": "Lost"})
    err = refusal([("status", "Active")], closed)
    assert isinstance(err, LifecycleViolation)
    assert "cannot be reopened" in err.message and "needs a substatus" not in err.message


def test_status_alone_with_one_possible_substatus_gets_it() -> None:
    new = Referral.model_validate({"status": "New", "substatus": "Received"})
    assert ops([("status", "active")], new) == [
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
    ]


def test_an_intent_and_a_contradicting_substatus_are_refused() -> None:
    assert "give one of them" in refusal([("status", "won"), ("substatus", "Lost")], ACTIVE).message
