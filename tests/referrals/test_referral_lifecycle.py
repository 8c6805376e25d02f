"""The lifecycle table, walked pair by pair, and the deal-registration rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcref_mcp.referrals.lifecycle import (
    REGISTRATION_TERMINAL,
    Intent,
    allowed_targets,
    check_transition,
    read_intent,
    registration_editable,
    registration_message,
    registration_unmet,
    wire_time,
)
from pcref_mcp.referrals.models import Referral, ReferralStatus, ReferralSubstatus, RegistrationStatus
from pcref_mcp.referrals.models import ReferralStatus as S
from pcref_mcp.referrals.models import ReferralSubstatus as Sub

# The table exactly as "Referral resources" prints it: status -> (allowed statuses, its substatuses).
DOC_TABLE = {
    "New": ({"New", "Active", "Closed"}, {"Pending", "Received"}),
    "Active": ({"Active", "Closed"}, {"Accepted"}),
    "Closed": ({"Closed"}, {"Won", "Lost", "Declined", "Expired"}),
}
STATUSES = st.sampled_from([*(s.value for s in ReferralStatus), None, "Open", "closed", ""])
SUBSTATUSES = st.sampled_from([*(s.value for s in ReferralSubstatus), None, "Error", "won", ""])


def expected(from_s: Any, from_sub: Any, to_s: Any, to_sub: Any, by_partner: bool) -> bool:
    if from_s not in DOC_TABLE:
        return False
    target_s = from_s if to_s is None else to_s
    target_sub = from_sub if to_sub is None else to_sub
    if target_s not in DOC_TABLE[from_s][0] or target_sub not in DOC_TABLE[target_s][1]:
        return False
    # Expired is set by the service (14 days unanswered); a partner cannot choose it.
    return not (by_partner and target_sub == "Expired" and target_sub != from_sub)


@given(STATUSES, SUBSTATUSES, STATUSES, SUBSTATUSES, st.booleans())
def test_every_transition_agrees_with_the_table(
    from_s: Any, from_sub: Any, to_s: Any, to_sub: Any, by_partner: bool
) -> None:
    check = check_transition(from_s, from_sub, to_s, to_sub, by_partner=by_partner)
    assert check.ok is expected(from_s, from_sub, to_s, to_sub, by_partner)
    if not check.ok:
        assert check.message
        assert check.allowed == allowed_targets(from_s, by_partner=by_partner)
        for status, sub in check.allowed:  # every alternative offered is itself allowed
            assert check_transition(from_s, from_sub, status, sub, by_partner=by_partner).ok


def test_every_pair_exhaustively() -> None:
    values_s = [*(s.value for s in ReferralStatus), None, "Open"]
    values_sub = [*(s.value for s in ReferralSubstatus), None, "Error"]
    for a in values_s:
        for b in values_sub:
            for c in values_s:
                for d in values_sub:
                    assert check_transition(a, b, c, d).ok is expected(a, b, c, d, True), (a, b, c, d)


def test_refusal_lists_the_alternatives() -> None:
    check = check_transition("Closed", "Won", "Active", "Accepted")
    assert check.message == (
        "A referral that is Closed cannot move to Active (a closed referral cannot be reopened). "
        "Allowed from Closed: Closed/Won, Closed/Lost, Closed/Declined."
    )


# --- deal registration ----------------------------------------------------------------------------

NOW = datetime(2024, 10, 10, tzinfo=UTC)


def referral(**changes: Any) -> Referral:
    doc: dict[str, Any] = {
        "status": "Closed",
        "substatus": "Won",
        "type": "Shared",
        "createdDateTime": "2024-10-01T00:00:00.1234567Z",
        "closedDateTime": "2024-10-05T00:00:00Z",
        "consent": {"consentToShareReferralWithMicrosoftSellers": True},
        "details": {"requirements": {"solutions": [{"id": "SOL-6115380-IPC", "type": "Name"}]}},
        "registrations": [],
    }
    doc.update(changes)
    return Referral.model_validate(doc)


def test_eligible_referral_has_nothing_unmet() -> None:
    assert registration_unmet(referral(), solution_ids=["SOL-6115380-IPC"], now=NOW) == []


def test_every_unmet_condition_is_listed_at_once() -> None:
    r = referral(
        status="Active",
        substatus="Accepted",
        type="Independent",
        consent={"consentToShareReferralWithMicrosoftSellers": False},
        closedDateTime=None,
        createdDateTime="2024-10-09T12:00:00Z",
        registrations=[{"status": "ReviewPending"}],
    )
    unmet = registration_unmet(r, solution_ids=["SOL-1-ABC", "DevOps"], now=NOW)
    assert unmet == [
        "The referral is Active/Accepted; it must be won (Closed/Won) first.",
        "The referral is not shared with Microsoft sellers (a private deal); only co-sell and partner-led deals "
        "can be registered. Ask the person whether the customer agreed to the deal being shared with "
        "Microsoft sellers; only if so, set 'share with microsoft sellers' to true first.",
        "Solution 'SOL-1-ABC' is not on the referral; add it first ('add solution').",
        "Solution 'DevOps' is not an Azure IP co-sell solution id; use a marketplace solution id such as "
        "'SOL-6115380-IPC'.",
        "The referral was created less than 72 hours ago; it can be marked won from 2024-10-12 12:00 UTC.",
        "The referral already has a deal registration that is ReviewPending; a new one can be added only after "
        "it is Approved, Closed, Failed, Passed.",
    ]
    assert registration_message(unmet[:1]) == (
        "This referral cannot get an Azure IP co-sell deal registration yet: (1) The referral is "
        "Active/Accepted; it must be won (Closed/Won) first."
    )


def test_won_too_soon_after_creation() -> None:
    r = referral(createdDateTime="2024-10-01T00:00:00Z", closedDateTime="2024-10-02T06:00:00Z")
    assert registration_unmet(r, solution_ids=["SOL-6115380-IPC"], now=NOW) == [
        "The referral was marked won 30 hours after it was created; a registration needs the win recorded at "
        "least 72 hours after creation (from 2024-10-04 00:00 UTC)."
    ]


def test_no_solution_named() -> None:
    assert registration_unmet(referral(), solution_ids=[], now=NOW) == [
        "No solution was named; give the Azure IP co-sell solution id (e.g. 'SOL-6115380-IPC')."
    ]


def test_a_terminal_registration_allows_a_new_one() -> None:
    for status in REGISTRATION_TERMINAL:
        r = referral(registrations=[{"status": status.value}])
        assert registration_unmet(r, solution_ids=["SOL-6115380-IPC"], now=NOW) == []


def test_only_action_required_is_editable() -> None:
    assert [s for s in RegistrationStatus if registration_editable(s)] == [RegistrationStatus.ACTION_REQUIRED]
    assert registration_editable("ActionRequired") and not registration_editable(None)
    assert not registration_editable("SomethingNew")


def test_wire_time_reads_seven_fraction_digits() -> None:
    assert wire_time("2019-02-23T02:05:23.2931817Z") == datetime(2019, 2, 23, 2, 5, 23, 293181, tzinfo=UTC)
    assert wire_time(None) is None and wire_time("yesterday") is None


# --- plain-language intents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("won", Intent(S.CLOSED, Sub.WON)),
        ("Win", Intent(S.CLOSED, Sub.WON)),
        ("lost", Intent(S.CLOSED, Sub.LOST)),
        ("declined", Intent(S.CLOSED, Sub.DECLINED)),
        ("reject", Intent(S.CLOSED, Sub.DECLINED)),
        ("accept", Intent(S.ACTIVE, Sub.ACCEPTED)),
        ("Closed/Won", Intent(S.CLOSED, Sub.WON)),
        ("Closed - Lost", Intent(S.CLOSED, Sub.LOST)),
        ("closed won", Intent(S.CLOSED, Sub.WON)),
        ("Active/Accepted", Intent(S.ACTIVE, Sub.ACCEPTED)),
        ("close as won because budget approved", Intent(S.CLOSED, Sub.WON, "budget approved")),
        ("lost: went with a competitor", Intent(S.CLOSED, Sub.LOST, "went with a competitor")),
        ("mark as lost (no budget)", Intent(S.CLOSED, Sub.LOST, "no budget")),
        ("Pending", Intent(S.NEW, Sub.PENDING)),
    ],
)
def test_read_intent(said: str, meant: Intent) -> None:
    assert read_intent(said) == meant


@pytest.mark.parametrize("said", ["Closed", "Active", "New", "reopen", "", "New/Won", 5, None, "x " * 300])
def test_read_intent_leaves_bare_statuses_and_other_text(said: object) -> None:
    assert read_intent(said) is None
