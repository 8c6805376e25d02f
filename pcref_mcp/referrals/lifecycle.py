"""The referral lifecycle as data: which (status, substatus) a referral may move to.

Source: "Referral resources", status & substatus transition states. A referral's substatus must
belong to its status; the status may only move along ``TRANSITIONS``. Closed is final: a closed
referral can change its closing substatus but never reopen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pcref_mcp.referrals.catalog import is_solution_profile_id
from pcref_mcp.referrals.timestamps import parse_wire
from pcref_mcp.referrals.wire_values import ReferralStatus as S
from pcref_mcp.referrals.wire_values import ReferralSubstatus as Sub
from pcref_mcp.referrals.wire_values import ReferralType, RegistrationStatus

if TYPE_CHECKING:
    from pcref_mcp.referrals.models import Referral  # the wire models: only named here

# status -> statuses it may move to
TRANSITIONS: dict[S, tuple[S, ...]] = {
    S.NEW: (S.NEW, S.ACTIVE, S.CLOSED),
    S.ACTIVE: (S.ACTIVE, S.CLOSED),
    S.CLOSED: (S.CLOSED,),
}

# status -> the substatuses that belong to it
SUBSTATUSES: dict[S, tuple[Sub, ...]] = {
    S.NEW: (Sub.PENDING, Sub.RECEIVED),
    S.ACTIVE: (Sub.ACCEPTED,),
    S.CLOSED: (Sub.WON, Sub.LOST, Sub.DECLINED, Sub.EXPIRED),
}

# Substatuses only the service sets (an unanswered incoming referral expires after 14 days).
SERVICE_ONLY_SUBSTATUSES: frozenset[Sub] = frozenset({Sub.EXPIRED})

# Plain-language intents a person (or a search row) uses, mapped to the target state. Both the verb
# and its participle: "win the deal", "mark as won". ``read_intent`` also reads "Closed/Won" forms.
INTENTS: dict[str, tuple[S, Sub]] = {
    "receive": (S.NEW, Sub.RECEIVED),
    "received": (S.NEW, Sub.RECEIVED),
    "accept": (S.ACTIVE, Sub.ACCEPTED),
    "accepted": (S.ACTIVE, Sub.ACCEPTED),
    "win": (S.CLOSED, Sub.WON),
    "won": (S.CLOSED, Sub.WON),
    "lose": (S.CLOSED, Sub.LOST),
    "lost": (S.CLOSED, Sub.LOST),
    "decline": (S.CLOSED, Sub.DECLINED),
    "declined": (S.CLOSED, Sub.DECLINED),
    "reject": (S.CLOSED, Sub.DECLINED),
    "rejected": (S.CLOSED, Sub.DECLINED),
    "signed": (S.CLOSED, Sub.WON),
    "booked": (S.CLOSED, Sub.WON),
    "take": (S.ACTIVE, Sub.ACCEPTED),
}

# Words around an intent that add nothing: "close as won", "mark it lost", "set to accepted".
_FILLER = frozenset({"close", "closed", "as", "mark", "marked", "it", "set", "to", "the", "deal", "referral"})
# Where a reason starts: "close as won because the budget was approved", "lost: went with a competitor".
_REASON = re.compile(r"\s*(?:\bbecause\b|\bdue to\b|\breason(?: is)?\b|[:(])\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Intent:
    """The state a plain-language status means, and the reason it gave ("because ...")."""

    status: S
    substatus: Sub
    reason: str | None = None


def read_intent(text: object) -> Intent | None:
    """``"won"``, ``"accept"``, ``"Closed/Won"``, ``"Closed - Lost"``, ``"close as won because …"``
    -> the (status, substatus) they mean and the reason; None for a bare status ("Closed") or other text.

    A bare substatus ("Declined", "Pending") names its status too: every substatus belongs to one status.
    """
    if not isinstance(text, str) or len(text) > 500:
        return None
    found = _intent_of(text)
    if found is not None:
        return Intent(*found)
    parts = _REASON.split(text, maxsplit=1)
    if len(parts) == 2 and (found := _intent_of(parts[0])) is not None:
        reason = parts[1].strip().rstrip(").").strip()
        return Intent(*found, reason or None)
    return None


def _intent_of(words: str) -> tuple[S, Sub] | None:
    tokens = [w for w in re.split(r"[\s/\\\-–—_,.;|!?]+", words.casefold()) if w]
    if not tokens or len(tokens) > 6:
        return None
    status = _parse_folded(S, tokens[0])
    if len(tokens) == 2 and status is not None:
        sub = _parse_folded(Sub, tokens[1])
        if sub is not None and sub in SUBSTATUSES.get(status, ()):
            return status, sub
    key = " ".join(w for w in tokens if w not in _FILLER)
    if key in INTENTS:
        return INTENTS[key]
    sub = _parse_folded(Sub, key)
    if sub is not None and sub is not Sub.NONE:
        return next(s for s, subs in SUBSTATUSES.items() if sub in subs), sub
    return None


def _parse_folded(enum: type[T], word: str) -> T | None:
    return next((member for member in enum if member.value.casefold() == word), None)


EXPIRY_DAYS = 14

T = TypeVar("T", S, Sub, RegistrationStatus)


@dataclass(frozen=True)
class TransitionCheck:
    """Either ``ok`` or a message and the exact states the referral may move to instead."""

    ok: bool
    message: str = ""
    allowed: tuple[tuple[S, Sub], ...] = field(default_factory=tuple)


def allowed_targets(status: S | str, *, by_partner: bool = True) -> tuple[tuple[S, Sub], ...]:
    """Every (status, substatus) a referral in ``status`` may move to."""
    try:
        current = S(status)
    except ValueError:
        return ()
    targets = []
    for to_status in TRANSITIONS.get(current, ()):
        for sub in SUBSTATUSES[to_status]:
            if by_partner and sub in SERVICE_ONLY_SUBSTATUSES:
                continue
            targets.append((to_status, sub))
    return tuple(targets)


def check_transition(
    from_status: S | str | None,
    from_substatus: Sub | str | None,
    to_status: S | str | None,
    to_substatus: Sub | str | None,
    *,
    by_partner: bool = True,
) -> TransitionCheck:
    """Check a move against the table; ``to_*`` of None means "unchanged"."""
    current_status = _parse(S, from_status)
    if current_status is None or current_status is S.NONE:
        return TransitionCheck(
            False, f"The referral's current status {from_status!r} is not a lifecycle state."
        )
    target_status = current_status if to_status is None else _parse(S, to_status)
    if target_status is None:
        return _refused(current_status, f"Unknown status {to_status!r}.", by_partner)
    target_sub = _parse(Sub, from_substatus) if to_substatus is None else _parse(Sub, to_substatus)
    if to_substatus is not None and target_sub is None:
        return _refused(current_status, f"Unknown substatus {to_substatus!r}.", by_partner)
    if target_status not in TRANSITIONS.get(current_status, ()):
        return _refused(
            current_status,
            f"A referral that is {current_status} cannot move to {target_status}"
            + (" (a closed referral cannot be reopened)." if current_status is S.CLOSED else "."),
            by_partner,
        )
    if target_sub is None or target_sub not in SUBSTATUSES[target_status]:
        subs = ", ".join(SUBSTATUSES[target_status])
        return _refused(
            current_status,
            f"Substatus {target_sub or to_substatus or from_substatus} does not belong to status "
            f"{target_status}; with {target_status} use one of: {subs}.",
            by_partner,
        )
    if by_partner and target_sub in SERVICE_ONLY_SUBSTATUSES and target_sub != _parse(Sub, from_substatus):
        return _refused(current_status, f"Substatus {target_sub} is set only by Partner Center.", by_partner)
    return TransitionCheck(True)


def describe(targets: tuple[tuple[S, Sub], ...]) -> str:
    """``New/Received, Active/Accepted, ...`` for messages."""
    return ", ".join(f"{s}/{sub}" for s, sub in targets)


def _refused(current: S, message: str, by_partner: bool) -> TransitionCheck:
    allowed = allowed_targets(current, by_partner=by_partner)
    return TransitionCheck(False, f"{message} Allowed from {current}: {describe(allowed)}.", allowed)


def _parse(enum: type[T], value: object) -> T | None:
    if value is None:
        return None
    try:
        return enum(str(value))
    except ValueError:
        return None


# --- deal registration (Azure IP co-sell): eligibility and status rules ---------------------------
# Source: "Register deals" and "Bulk operations for Azure IP co-sell deal registrations" (research
# notes §4). Eligibility is a table of rules; ``registration_unmet`` reports every unmet one at once.

R = RegistrationStatus

# A registration in one of these states is settled: no edits, and a new registration may be added.
REGISTRATION_TERMINAL: frozenset[R] = frozenset({R.APPROVED, R.PASSED, R.FAILED, R.CLOSED})

# Edits (``replace /registrations/0/...``) are accepted only while Microsoft asks for changes.
REGISTRATION_EDITABLE: frozenset[R] = frozenset({R.ACTION_REQUIRED})

# A referral may be registered only when it was marked won at least this long after it was created.
WON_AFTER_CREATION = timedelta(hours=72)


def registration_editable(status: R | str | None) -> bool:
    """True when the registration may be changed (only ``ActionRequired``)."""
    return _parse(R, status) in REGISTRATION_EDITABLE


def registration_terminal(status: R | str | None) -> bool:
    return _parse(R, status) in REGISTRATION_TERMINAL


@dataclass(frozen=True)
class _Eligibility:
    referral: Referral
    solution_ids: tuple[str, ...]
    now: datetime


def registration_unmet(referral: Referral, *, solution_ids: list[str], now: datetime) -> list[str]:
    """Every unmet precondition for registering ``solution_ids`` on ``referral`` (empty when eligible)."""
    facts = _Eligibility(referral, tuple(solution_ids), now.astimezone(UTC))
    return [message for rule in REGISTRATION_RULES for message in rule(facts)]


def registration_message(unmet: list[str]) -> str:
    """One paragraph for ``NotEligible``: what is missing, numbered."""
    if not unmet:
        return "The referral can be registered."
    items = " ".join(f"({n}) {item}" for n, item in enumerate(unmet, 1))
    return f"This referral cannot get an Azure IP co-sell deal registration yet: {items}"


def _must_be_won(facts: _Eligibility) -> list[str]:
    r = facts.referral
    if str(r.status) == S.CLOSED and str(r.substatus) == Sub.WON:
        return []
    return [f"The referral is {r.status}/{r.substatus}; it must be won (Closed/Won) first."]


def _must_be_shared(facts: _Eligibility) -> list[str]:
    r = facts.referral
    shared = bool(r.consent and r.consent.consent_to_share_referral_with_microsoft_sellers)
    if shared or str(r.type) == ReferralType.SHARED:
        return []
    return [
        "The referral is not shared with Microsoft sellers (a private deal); only co-sell and partner-led "
        "deals can be registered. Ask the person whether the customer agreed to the deal being shared with "
        "Microsoft sellers; only if so, set 'share with microsoft sellers' to true first."
    ]


def _solutions_on_referral(facts: _Eligibility) -> list[str]:
    if not facts.solution_ids:
        return ["No solution was named; give the Azure IP co-sell solution id (e.g. 'SOL-6115380-IPC')."]
    r = facts.referral
    present = (
        {s.id for s in (r.details.requirements.solutions or [])}
        if r.details and r.details.requirements
        else set()
    )
    present |= {t.id for t in r.target or []}
    problems = []
    for solution_id in facts.solution_ids:
        if not is_solution_profile_id(solution_id):
            problems.append(
                f"Solution {solution_id!r} is not an Azure IP co-sell solution id; use a marketplace solution id "
                "such as 'SOL-6115380-IPC'."
            )
        elif solution_id not in present:
            problems.append(
                f"Solution {solution_id!r} is not on the referral; add it first ('add solution')."
            )
    return problems


def _won_72_hours_after_creation(facts: _Eligibility) -> list[str]:
    r = facts.referral
    created = wire_time(r.created_date_time)
    if created is None:
        return []
    earliest = created + WON_AFTER_CREATION
    closed = wire_time(r.closed_date_time)
    if closed is not None and str(r.status) == S.CLOSED:
        if closed >= earliest:
            return []
        hours = (closed - created).total_seconds() / 3600
        return [
            f"The referral was marked won {hours:.0f} hours after it was created; a registration needs the win "
            f"recorded at least 72 hours after creation (from {_show_time(earliest)})."
        ]
    if facts.now >= earliest:
        return []
    return [
        f"The referral was created less than 72 hours ago; it can be marked won from {_show_time(earliest)}."
    ]


def _no_open_registration(facts: _Eligibility) -> list[str]:
    open_ = [g for g in facts.referral.registrations or [] if not registration_terminal(g.status)]
    if not open_:
        return []
    return [
        f"The referral already has a deal registration that is {open_[0].status}; a new one can be added only "
        f"after it is {', '.join(sorted(REGISTRATION_TERMINAL))}."
    ]


REGISTRATION_RULES: tuple[Callable[[_Eligibility], list[str]], ...] = (
    _must_be_won,
    _must_be_shared,
    _solutions_on_referral,
    _won_72_hours_after_creation,
    _no_open_registration,
)


def expires_at(wire: dict[str, Any]) -> datetime | None:
    """When an unanswered incoming referral (New) expires: the service's expirationDateTime, else
    ``EXPIRY_DAYS`` after it arrived. None for every other referral (it does not expire)."""
    if wire.get("direction") != "Incoming" or wire.get("status") != "New":
        return None
    expires = wire_time(wire.get("expirationDateTime"))
    if expires is None:
        created = wire_time(wire.get("createdDateTime"))
        expires = created + timedelta(days=EXPIRY_DAYS) if created else None
    return expires


def wire_time(text: str | None) -> datetime | None:
    """A service timestamp as an aware UTC datetime; None if absent or odd (see :mod:`.timestamps`)."""
    return parse_wire(text) if text else None


def _show_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
