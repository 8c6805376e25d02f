"""The referral lifecycle as data: which (status, substatus) a referral may move to.

Source: "Referral resources", status & substatus transition states. A referral's substatus must
belong to its status; the status may only move along ``TRANSITIONS``. Closed is final: a closed
referral can change its closing substatus but never reopen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from pcref_mcp.referrals.models import ReferralStatus as S
from pcref_mcp.referrals.models import ReferralSubstatus as Sub

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

# Plain-language verbs a person uses, mapped to the target state.
INTENTS: dict[str, tuple[S, Sub]] = {
    "receive": (S.NEW, Sub.RECEIVED),
    "accept": (S.ACTIVE, Sub.ACCEPTED),
    "win": (S.CLOSED, Sub.WON),
    "lose": (S.CLOSED, Sub.LOST),
    "decline": (S.CLOSED, Sub.DECLINED),
}

EXPIRY_DAYS = 14

T = TypeVar("T", S, Sub)


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
        return TransitionCheck(False, f"The referral's current status {from_status!r} is not a lifecycle state.")
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
        return enum(value)
    except ValueError:
        return None
