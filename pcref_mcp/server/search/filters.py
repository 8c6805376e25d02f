"""What a person asks search_referrals for: the filters (any case, a scalar where a list goes,
"Closed/Won" as status plus substatus) and the sort.

:mod:`.conditions` turns them into tests and OData; nothing here talks to the service.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from pcref_mcp.referrals.lifecycle import EXPIRY_DAYS, SUBSTATUSES
from pcref_mcp.referrals.wire_values import (
    ReferralDirection,
    ReferralQualification,
    ReferralRegistrationStatus,
    ReferralStatus,
    ReferralSubstatus,
    ReferralType,
)
from pcref_mcp.referrals.write_models import parse_amount

Sort = Literal[
    "updated_desc",
    "updated_asc",
    "created_desc",
    "created_asc",
    "closing_asc",
    "closing_desc",
    "value_desc",
    "value_asc",
]
# sort -> (OData path, direction, JSON pointer for sorting here)
SORTS: dict[str, tuple[str, Literal["asc", "desc"], str]] = {
    "updated_desc": ("updatedDateTime", "desc", "/updatedDateTime"),
    "updated_asc": ("updatedDateTime", "asc", "/updatedDateTime"),
    "created_desc": ("createdDateTime", "desc", "/createdDateTime"),
    "created_asc": ("createdDateTime", "asc", "/createdDateTime"),
    "closing_asc": ("details/closingDateTime", "asc", "/details/closingDateTime"),
    "closing_desc": ("details/closingDateTime", "desc", "/details/closingDateTime"),
    "value_desc": ("details/dealValue", "desc", "/details/dealValue"),
    "value_asc": ("details/dealValue", "asc", "/details/dealValue"),
}
DOCUMENTED_ORDERBY = frozenset({"createdDateTime", "updatedDateTime"})
DEFAULT_SORT = "updated_desc"
DEFAULT_LIMIT = 20


def _many(value: Any) -> Any:
    """A scalar where a list is expected is the one-item list (``status: "Closed"``)."""
    return value if value is None or isinstance(value, list) else [value]


def _fold(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _enum_ci(enum: type[Any]) -> Callable[[Any], Any]:
    """Enum values in any case or spacing (``"sales qualified"`` -> ``SalesQualified``)."""
    by_fold = {_fold(member.value): member.value for member in enum}

    def read(value: Any) -> Any:
        if isinstance(value, str):
            return by_fold.get(_fold(value), value)
        return value

    return read


def _many_ci(enum: type[Any]) -> Callable[[Any], Any]:
    one = _enum_ci(enum)

    def read(value: Any) -> Any:
        value = _many(value)
        return [one(v) for v in value] if isinstance(value, list) else value

    return read


def _one_of_list(value: Any) -> Any:
    """``direction: ["Incoming"]`` is ``"Incoming"``."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class Filters(BaseModel):
    """All must match; a list matches any of its values."""

    model_config = ConfigDict(extra="forbid")

    status: Annotated[list[ReferralStatus], BeforeValidator(_many_ci(ReferralStatus))] | None = None
    substatus: Annotated[list[ReferralSubstatus], BeforeValidator(_many_ci(ReferralSubstatus))] | None = None
    direction: (
        Annotated[
            ReferralDirection, BeforeValidator(_enum_ci(ReferralDirection)), BeforeValidator(_one_of_list)
        ]
        | None
    ) = None
    type: Annotated[list[ReferralType], BeforeValidator(_many_ci(ReferralType))] | None = None
    qualification: (
        Annotated[list[ReferralQualification], BeforeValidator(_many_ci(ReferralQualification))] | None
    ) = None
    name_contains: str | None = None
    customer_contains: str | None = None
    text: str | None = Field(default=None, description="In name, customer or notes")
    engagement_id: str | None = None
    external_reference_id: str | None = None
    country: Annotated[list[str], BeforeValidator(_many)] | None = Field(default=None, description="Or name")
    currency: Annotated[list[str], BeforeValidator(_many)] | None = None
    sales_stage: Annotated[list[str], BeforeValidator(_many)] | None = Field(
        default=None, description="Qualify, Develop, Propose, Close"
    )
    registration_status: (
        Annotated[list[ReferralRegistrationStatus], BeforeValidator(_many_ci(ReferralRegistrationStatus))]
        | None
    ) = None
    expiring_within_days: Annotated[int, Field(ge=1, le=EXPIRY_DAYS)] | None = Field(
        default=None, description="Unanswered incoming, expiring within N days"
    )
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    closing_from: date | None = None
    closing_to: date | None = None
    min_value: Annotated[float, Field(ge=0), BeforeValidator(parse_amount)] | None = None
    max_value: Annotated[float, Field(ge=0), BeforeValidator(parse_amount)] | None = None

    _read_as: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _read_states(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """``status: "Closed/Won"`` (the form rows show) or ``"won"`` is status Closed + substatus Won."""
        notes: list[str] = []
        if isinstance(data, dict) and data.get("status") is not None:
            data = dict(data)
            data["status"], substatus, notes = read_states(data["status"], data.get("substatus"))
            if substatus is not None:
                data["substatus"] = substatus
        model = handler(data)
        if notes and isinstance(model, Filters):
            model._read_as = notes
        return model

    @property
    def read_as(self) -> list[str]:
        """How values given in another form were read (for the answer's note)."""
        return list(self._read_as)


# --- status words -----------------------------------------------------------------------------------

_STATUS_WORDS: dict[str, ReferralStatus] = {_fold(s.value): s for s in ReferralStatus}
_SUBSTATUS_WORDS: dict[str, ReferralSubstatus] = {
    **{_fold(s.value): s for s in ReferralSubstatus if s is not ReferralSubstatus.NONE},
    "win": ReferralSubstatus.WON,
    "lose": ReferralSubstatus.LOST,
    "decline": ReferralSubstatus.DECLINED,
    "expire": ReferralSubstatus.EXPIRED,
    "accept": ReferralSubstatus.ACCEPTED,
    "receive": ReferralSubstatus.RECEIVED,
}
_OPEN = frozenset({"open", "opened", "inprogress", "ongoing"})
_STATUS_OF: dict[ReferralSubstatus, ReferralStatus] = {
    sub: status for status, subs in SUBSTATUSES.items() for sub in subs
}


def _unique(items: list[Any]) -> list[Any]:
    """``items`` without repeats, in order; by equality, so a stray ``{}`` among them is kept for the
    model's validation to refuse (not a crash on hashing)."""
    kept: list[Any] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def read_states(status: Any, substatus: Any) -> tuple[Any, Any, list[str]]:
    """(statuses, substatuses, notes) for status values that may carry a substatus.

    A value this cannot read is passed on unchanged, so the model's validation refuses it with the
    allowed values. A plain status next to a paired one keeps all its substatuses ("Closed/Won" or
    "Active" is Closed/Won plus Active/Accepted).
    """
    items = status if isinstance(status, list) else [status]
    statuses: list[Any] = []
    paired: list[ReferralSubstatus] = []
    plain: list[ReferralStatus] = []
    notes: list[str] = []
    for item in items:
        if not isinstance(item, str):
            statuses.append(item)
            continue
        if _fold(item) in _OPEN:
            statuses += [ReferralStatus.NEW.value, ReferralStatus.ACTIVE.value]
            plain += [ReferralStatus.NEW, ReferralStatus.ACTIVE]
            notes.append(f"status {item!r} as New or Active")
            continue
        words = [w for w in re.split(r"[\s/,:\-–—]+", item.strip()) if w]
        found_status = [_STATUS_WORDS[_fold(w)] for w in words if _fold(w) in _STATUS_WORDS]
        found_sub = [_SUBSTATUS_WORDS[_fold(w)] for w in words if _fold(w) in _SUBSTATUS_WORDS]
        if len(found_status) + len(found_sub) != len(words) or len(found_status) > 1 or len(found_sub) > 1:
            statuses.append(item)
            continue
        sub = found_sub[0] if found_sub else None
        state = found_status[0] if found_status else (_STATUS_OF.get(sub) if sub else None)
        if state is None or (sub is not None and sub not in SUBSTATUSES.get(state, ())):
            statuses.append(item)  # e.g. "Active/Won": refused with the allowed values
            continue
        statuses.append(state.value)
        if sub is None:
            plain.append(state)
        else:
            paired.append(sub)
            notes.append(f"status {item!r} as status {state.value} + substatus {sub.value}")
    if not paired:
        return _unique(statuses), substatus, notes
    subs: list[Any] = list(paired)
    for state in plain:
        subs += [s for s in SUBSTATUSES.get(state, ()) if s not in subs]
    given = _many(substatus)
    if isinstance(given, list):
        subs += [s for s in given if s not in subs]
    return _unique(statuses), [s.value if hasattr(s, "value") else s for s in subs], notes
