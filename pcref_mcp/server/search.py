"""search_referrals: filters a person would use, answered by the service where it can, here where not.

Every filter is a :class:`Condition`: a test on the referral's wire document, and (when there is one)
the OData expression that asks the service for the same thing plus the query features that needs.
The service gets the conditions its features allow (documented ones always, the rest as learnt by
:mod:`pcref_mcp.partner_center.capabilities`); the others are applied here over a bounded number of
the service's own pages, and the answer's note says so, with how much was scanned.

The cursor handed to the model is signed (a model cannot point the client and its bearer token at
another host or forge a query) and records the page a result came from and the position within it,
so the next page starts right after the last row shown even when the service pages differently
from what was asked (ignores ``$top``, pages by 100).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from pcref_mcp.errors import BadRequest, InvalidInput, PcrefError
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals import when
from pcref_mcp.referrals.catalog import country_code, currency_code
from pcref_mcp.referrals.lifecycle import EXPIRY_DAYS, SUBSTATUSES, expires_at, wire_time
from pcref_mcp.referrals.models import (
    Referral,
    ReferralDirection,
    ReferralQualification,
    ReferralRegistrationStatus,
    ReferralStatus,
    ReferralSubstatus,
    ReferralType,
    SkippedItem,
    skipped_note,
)
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.write_models import currency_in_words, parse_amount

if TYPE_CHECKING:
    from pcref_mcp.partner_center.capabilities import Capabilities
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.referrals.models import ReferralPage
    from pcref_mcp.server.runtime import Runtime

log = logging.getLogger("pcref_mcp.server")

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
SERVICE_PAGE = 100  # Partner Center's page (documented maximum of $top)

# Work done here when the service cannot: at most this many of its pages (100 items each on Partner
# Center) per call. A cursor continues a filtered scan; a sort done here covers only what was read.
MAX_SCAN_PAGES = 10
MAX_SCAN_ITEMS = 2000

MAX_TEXT = 200  # checked in build_conditions (a clear message, and no bytes in the tool schema)


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


# --- conditions -------------------------------------------------------------------------------------

Doc = dict[str, Any]


@dataclass(frozen=True)
class Condition:
    """One filter: how it reads (``label``), its test here, and how the service could answer it."""

    label: str
    test: Callable[[Doc], bool]
    expr: odata.Expr | None = None
    needs: tuple[str, ...] = ()
    relax: str = ""


@dataclass
class Plan:
    """What the service is asked and what is done here."""

    conditions: list[Condition]
    server: list[Condition]
    local: list[Condition]
    orderby: str | None
    sort_key: Callable[[Doc], Any] | None
    sort_label: str
    reverse: bool
    read_as: list[str]
    missing: list[str]

    @property
    def pure(self) -> bool:
        """The service does everything: ask it for just one page of ``limit`` rows."""
        return not self.local and self.sort_key is None

    def filter_expr(self) -> odata.Expr | None:
        parts = [c.expr for c in self.server if c.expr is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else odata.and_(*parts)

    def matches(self, doc: Doc) -> bool:
        # every condition, also those the service applied: a cheap check that keeps the answer right
        # when a cursor outlives a change in what the service is known to support
        return all(c.test(doc) for c in self.conditions)


def plan(filters: Filters, sort: str, capabilities: Capabilities, *, at: datetime | None = None) -> Plan:
    conditions, read_as = build_conditions(filters, at=at or when.now())
    server = [c for c in conditions if c.expr is not None and all(capabilities.supports(n) for n in c.needs)]
    local = [c for c in conditions if c not in server]
    path, direction, pointer = SORTS[sort]
    documented = path in DOCUMENTED_ORDERBY and not capabilities.seen_ignored("order_honoured")
    sortable = documented or (path not in DOCUMENTED_ORDERBY and capabilities.supports("orderby_other"))
    missing = sorted({n for c in local for n in c.needs if not capabilities.supports(n)})
    if not sortable:
        missing.append("order_honoured" if path in DOCUMENTED_ORDERBY else "orderby_other")
    return Plan(
        conditions=conditions,
        server=server,
        local=local,
        orderby=f"{path} {direction}" if sortable else None,
        sort_key=None if sortable else _sort_key(pointer),
        sort_label=sort,
        reverse=direction == "desc",
        read_as=read_as,
        missing=[n for n in _features() if n in missing],
    )


def build_conditions(filters: Filters, *, at: datetime) -> tuple[list[Condition], list[str]]:
    """The conditions for ``filters`` (checking ranges and codes), and how values were read."""
    out: list[Condition] = []
    read_as = filters.read_as
    _check_texts(filters)
    for name, pointer, values in (
        ("status", "/status", filters.status),
        ("substatus", "/substatus", filters.substatus),
        ("type", "/type", filters.type),
        ("qualification", "/qualification", filters.qualification),
    ):
        if values:
            out.append(_one_of(name, pointer, [str(v) for v in values], documented=True))
    if filters.direction is not None:
        out.append(_one_of("direction", "/direction", [str(filters.direction)], documented=True))
    if filters.engagement_id:
        out.append(_one_of("engagement_id", "/engagementId", [filters.engagement_id], documented=True))
    if filters.external_reference_id:
        out.append(_one_of("external_reference_id", "/externalReferenceId", [filters.external_reference_id]))
    if filters.country:
        codes = _codes(filters.country, country_code, "country", read_as)
        out.append(_one_of("country", "/customerProfile/address/country", codes, documented=True))
    if filters.currency:
        codes = _codes(filters.currency, currency_code, "currency", read_as)
        out.append(_one_of("currency", "/details/currency", codes))
    if filters.registration_status:
        out.append(
            _one_of(
                "registration_status", "/registrationStatus", [str(v) for v in filters.registration_status]
            )
        )
    if filters.sales_stage:
        out.append(_sales_stage(filters.sales_stage))
    for name, pointers, text in (
        ("name_contains", ("/name",), filters.name_contains),
        ("customer_contains", ("/customerProfile/name",), filters.customer_contains),
        ("text", ("/name", "/customerProfile/name", "/details/notes"), filters.text),
    ):
        if text:
            out.append(_contains(name, pointers, text))
    for name, pointer, start, end in (
        ("created", "/createdDateTime", filters.created_from, filters.created_to),
        ("updated", "/updatedDateTime", filters.updated_from, filters.updated_to),
        ("closing", "/details/closingDateTime", filters.closing_from, filters.closing_to),
    ):
        if start and end and start > end:
            raise InvalidInput(
                f"{name}_to {end} is before {name}_from {start}.",
                field=f"{name}_to",
                hint="Swap the two dates or drop one of them.",
            )
        if start or end:
            out.append(_date_range(name, pointer, start, end))
    if (
        filters.min_value is not None
        and filters.max_value is not None
        and filters.min_value > filters.max_value
    ):
        raise InvalidInput(
            f"min_value {filters.min_value:g} is above max_value {filters.max_value:g}.",
            field="min_value",
            hint="Swap them or drop one.",
        )
    if filters.min_value is not None or filters.max_value is not None:
        out.append(_value_range(filters.min_value, filters.max_value))
    if filters.expiring_within_days is not None:
        out += _expiring(filters.expiring_within_days, at)
    return out, read_as


def _check_texts(filters: Filters) -> None:
    for name in ("name_contains", "customer_contains", "text", "engagement_id", "external_reference_id"):
        value = getattr(filters, name)
        if value is not None and not value.strip():
            raise InvalidInput(f"{name} is empty.", field=name, hint=f"Give some text or leave {name} out.")
        if value is not None and len(value) > MAX_TEXT:
            raise InvalidInput(
                f"{name} is longer than {MAX_TEXT} characters.", field=name, hint="Use a few words."
            )
    for name in ("country", "currency", "sales_stage"):
        for value in getattr(filters, name) or ():
            if not value.strip() or len(value) > MAX_TEXT:
                raise InvalidInput(f"{name} {value[:40]!r} is not a {name}.", field=name)


def _one_of(name: str, pointer: str, values: Sequence[str], *, documented: bool = False) -> Condition:
    path = pointer.lstrip("/")
    wanted = list(dict.fromkeys(values))
    exprs = [odata.eq(path, v) for v in wanted]
    needs: tuple[str, ...] = () if documented else ("other_fields",)
    if len(exprs) > 1:
        needs += ("or",)
    folded = {v.casefold() for v in wanted}
    shown = wanted[0] if len(wanted) == 1 else " or ".join(wanted)
    return Condition(
        label=f"{name} {shown}",
        test=lambda doc: str(pointer_get(doc, pointer, "")).casefold() in folded,
        expr=exprs[0] if len(exprs) == 1 else odata.or_(*exprs),
        needs=needs,
        relax=f"add values to {name} or drop it",
    )


def _codes(values: Iterable[str], read: Callable[..., str], name: str, read_as: list[str]) -> list[str]:
    codes = []
    for value in values:
        code = read(currency_in_words(value) if name == "currency" else value, field=name)
        if code != value.strip().upper():
            read_as.append(f"{name} {value!r} as {code}")
        codes.append(code)
    return codes


def _sales_stage(stages: Sequence[str]) -> Condition:
    """Stages as written (the service has been seen sending "100" and null as well as Qualify…Close)."""
    known = {s.casefold(): s for s in ("Qualify", "Develop", "Propose", "Close")}
    values = [known.get(s.strip().casefold(), s.strip()) for s in stages]
    return _one_of("sales_stage", "/salesStage", values)


def _contains(name: str, pointers: tuple[str, ...], text: str) -> Condition:
    """``text`` in one of the fields; for the free ``text`` search, every word of it, in any order
    ("fourth coffee teams" finds «Fourth Coffee - Teams opportunity»)."""
    words = text.split() if name == "text" else []
    words = words if len(words) > 1 else [text]
    needles = [w.casefold() for w in words]

    def one(word: str) -> odata.Expr:
        exprs = [odata.contains(p.lstrip("/"), word, ignore_case=True) for p in pointers]
        return exprs[0] if len(exprs) == 1 else odata.or_(*exprs)

    def test(doc: Doc) -> bool:
        texts = [str(pointer_get(doc, p, "") or "").casefold() for p in pointers]
        return all(any(needle in t for t in texts) for needle in needles)

    return Condition(
        label=f"{name} {text!r}" + (" (every word, in any order)" if len(words) > 1 else ""),
        test=test,
        expr=one(words[0]) if len(words) == 1 else odata.and_(*(one(w) for w in words)),
        needs=("contains", "tolower") + (("or",) if len(pointers) > 1 else ()),
        relax=f"use fewer or shorter words in {name} or drop it",
    )


def _date_range(name: str, pointer: str, start: date | None, end: date | None) -> Condition:
    low = datetime.combine(start, time.min, UTC) if start else None
    high = datetime.combine(end + timedelta(days=1), time.min, UTC) if end else None
    path = pointer.lstrip("/")
    exprs = ([odata.ge(path, low)] if low else []) + ([odata.lt(path, high)] if high else [])

    def test(doc: Doc) -> bool:
        when = wire_time(pointer_get(doc, pointer, None))
        return when is not None and (low is None or when >= low) and (high is None or when < high)

    shown = f"{start or '…'}..{end or '…'}"
    return Condition(
        label=f"{name} {shown}",
        test=test,
        expr=exprs[0] if len(exprs) == 1 else odata.and_(*exprs),
        needs=("date_range",) if name in ("created", "updated") else ("date_range", "other_fields"),
        relax=f"widen {name}_from/{name}_to",
    )


def _value_range(low: float | None, high: float | None) -> Condition:
    path = "details/dealValue"
    exprs = ([odata.ge(path, low)] if low is not None else []) + (
        [odata.le(path, high)] if high is not None else []
    )

    def test(doc: Doc) -> bool:
        value = pointer_get(doc, "/details/dealValue", None)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    shown = f"{low:g}" if low is not None else "…"
    shown += f"..{high:g}" if high is not None else "..…"
    return Condition(
        label=f"value {shown}",
        test=test,
        expr=exprs[0] if len(exprs) == 1 else odata.and_(*exprs),
        needs=("date_range", "other_fields"),
        relax="widen min_value/max_value",
    )


def _expiring(days: int, at: datetime) -> list[Condition]:
    """Unanswered incoming referrals (New) expire ``EXPIRY_DAYS`` after they arrive."""
    until = at + timedelta(days=days)

    def test(doc: Doc) -> bool:
        expires = expires_at(doc)
        return expires is not None and at <= expires <= until

    return [
        _one_of("direction", "/direction", ["Incoming"], documented=True),
        _one_of("status", "/status", ["New"], documented=True),
        Condition(
            label=f"expiring within {days} days",
            test=test,
            relax="raise expiring_within_days (up to 14)",
        ),
    ]


def _sort_key(pointer: str) -> Callable[[Doc], Any]:
    def key(doc: Doc) -> Any:
        value = pointer_get(doc, pointer, None)
        if isinstance(value, str) and pointer.endswith("DateTime"):
            return wire_time(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    return key


# --- running a search -------------------------------------------------------------------------------


@dataclass
class Page:
    referrals: list[Referral]
    total: int | None
    next_cursor: str | None
    note: str | None = None
    incomplete: bool = False  # the service stopped paging as asked: matches may be missing


@dataclass
class _Scan:
    rows: list[Referral] = field(default_factory=list)
    pages: int = 0
    scanned: int = 0
    complete: bool = False
    cursor: dict[str, Any] | None = None
    total: int | None = None
    skipped: list[SkippedItem] = field(default_factory=list)  # page items that could not be read
    unfiltered: int = 0  # rows the service sent that its filter should have excluded
    repeated: int = 0  # rows the service sent again within this scan (left out)
    stalled: bool = False  # a whole page of rows sent before: paging does not work as asked
    disordered: bool = False  # rows the service sent out of the order asked


async def run(runtime: Runtime, filters: Filters, sort: str, limit: int, cursor: str | None) -> Page:
    """One page of matches, and a cursor for the next when there is more."""
    signer = _CursorSigner(runtime.cursor_key)
    state: dict[str, Any] = {}
    if cursor:
        state = signer.open(cursor)
        try:
            earlier = Filters.model_validate(state["f"])
            earlier_sort, earlier_limit = str(state["s"]), int(state["l"])
        except (KeyError, ValueError, TypeError):
            raise _bad_cursor() from None
        # a cursor continues the search it came from: other filters or another sort are refused,
        # another page size is used
        given = filters.model_dump()
        if (given != Filters().model_dump() and given != earlier.model_dump()) or sort not in (
            DEFAULT_SORT,
            earlier_sort,
        ):
            raise InvalidInput(
                "A cursor continues the search it came from; it cannot change the filters or the sort.",
                field="cursor",
                hint="Pass only cursor (and limit) for the next page, or search again without cursor.",
            )
        filters, sort = earlier, earlier_sort
        limit = earlier_limit if limit == DEFAULT_LIMIT else limit
    needed = features_needed(filters, sort, limit)
    capabilities = await _capabilities(runtime, needed)
    the_plan = plan(filters, sort, capabilities)
    try:
        scan = await _scan(runtime.client, the_plan, capabilities, limit, state)
    except BadRequest:
        leaned = _leans_on_probed(the_plan, capabilities)
        if cursor or not leaned:
            raise
        # what was learnt (or asked unlearnt) does not hold: learn those features, try once more
        log.info("the service refused a query feature it answered before; probing again")
        capabilities = await _capabilities(runtime, [n for n in _features() if n in leaned], refresh=True)
        the_plan = plan(filters, sort, capabilities)
        scan = await _scan(runtime.client, the_plan, capabilities, limit, state)
    ignored = []
    if scan.disordered and not cursor and the_plan.sort_key is None:
        # the service answered the order with another one: sort here instead, and say so
        path = SORTS[sort][0]
        feature = "order_honoured" if path in DOCUMENTED_ORDERBY else "orderby_other"
        seen = replace(
            capabilities,
            supported={**capabilities.supported, feature: False},
            probed_at=capabilities.probed_at or when.now(),
        )
        the_plan = plan(filters, sort, seen)
        scan = await _scan(runtime.client, the_plan, seen, limit, {})
        ignored.append(f"The service ignored $orderby {path}: sorted here.")
    elif scan.disordered:
        ignored.append("The service sent rows out of the order asked; search again to sort them here.")
    if scan.stalled:
        ignored.append(
            "The service sent a page of referrals it had already sent (it does not page as asked): the "
            "list stops here and may lack matches."
        )
    if scan.unfiltered:
        # the service did not apply its filter: its count counts something else
        scan.total = (int(state.get("n", 0)) + len(scan.rows)) if scan.cursor is None else None
        ignored.append(
            f"The service returned {scan.unfiltered} referral(s) its filter should have excluded; they "
            "were left out here and its total is not used."
        )
    next_cursor = None
    if scan.cursor is not None:
        base = {"f": filters.model_dump(mode="json", exclude_none=True), "s": sort, "l": limit}
        next_cursor = signer.seal({**base, **scan.cursor})
    return Page(
        referrals=scan.rows,
        total=scan.total,
        next_cursor=next_cursor,
        incomplete=scan.stalled,
        note=" ".join([*ignored, _note(the_plan, scan, first_page=not cursor) or ""]).strip() or None,
    )


async def _scan(
    client: PartnerCenterClient, the_plan: Plan, capabilities: Capabilities, limit: int, state: dict[str, Any]
) -> _Scan:
    if the_plan.sort_key is not None:
        return await _sorted_scan(client, the_plan, limit, int(state.get("off", 0)))
    return await _stream(
        client,
        the_plan,
        capabilities,
        limit,
        state.get("src"),
        int(state.get("at", 0)),
        int(state.get("n", 0)),
    )


def _leans_on_probed(the_plan: Plan, capabilities: Capabilities) -> set[str]:
    """The features the query sent uses that were learnt (or are asked unlearnt) rather than documented."""
    used = {n for c in the_plan.server for n in c.needs}
    if the_plan.orderby and the_plan.orderby.split()[0] not in DOCUMENTED_ORDERBY:
        used.add("orderby_other")
    if the_plan.pure:
        used |= {n for n in ("skip",) if capabilities.supports(n)}
        used |= {"count"} if _asks_count(capabilities) else set()
    return used


def features_needed(filters: Filters, sort: str, limit: int = SERVICE_PAGE) -> list[str]:
    """The probed features this search would hand to the service if they work: those its filters
    need, ``orderby_other`` for an undocumented sort, and, for pages smaller than the service's own,
    ``$skip`` and ``@odata.count`` (to ask for just ``limit`` rows and still know the total and where
    the next page starts; without them each call reads the service's whole page). Nothing else is
    probed for a search: the documented order is checked on every page it reads
    (``_Scan.disordered``), and pages of ``SERVICE_PAGE`` follow the service's next links."""
    conditions, _ = build_conditions(filters, at=when.now())
    needed = {n for c in conditions if c.expr is not None for n in c.needs}
    if SORTS[sort][0] not in DOCUMENTED_ORDERBY:
        needed.add("orderby_other")
    if limit < SERVICE_PAGE:
        needed |= {"skip", "count"}
    return [n for n in _features() if n in needed]


async def _capabilities(runtime: Runtime, needed: list[str], *, refresh: bool = False) -> Capabilities:
    """What the service answers; only what the documents show when it cannot be learnt right now."""
    try:
        found: Capabilities = await runtime.query_capabilities(needed, refresh=refresh)
        return found
    except PcrefError as exc:
        log.warning("could not learn the service's query features (%s); using the documented ones", exc)
        return _documented(runtime.client.base_url)


def _first_source(the_plan: Plan, capabilities: Capabilities, limit: int) -> dict[str, Any]:
    # Ask for exactly one page of rows only when the service does everything and can skip to the
    # next; otherwise take its own page size and follow its next links.
    top = limit if the_plan.pure and capabilities.supports("skip") else None
    expr = the_plan.filter_expr()
    # asked unless seen not to work: a refusal is learnt (search probes again and retries without it),
    # and an answer is used only as far as it proves itself (``_a_total``)
    count = the_plan.pure and _asks_count(capabilities)
    return {
        "q": {
            "filter": str(expr) if expr else None,
            "orderby": the_plan.orderby or "createdDateTime desc",
            "top": top,
            "skip": 0 if top else None,
            "count": count,
        }
    }


def _asks_count(capabilities: Capabilities) -> bool:
    """``$count=true`` is asked where it was seen to work, or where nothing is known of it yet."""
    return capabilities.supports("count") or "count" not in capabilities.learnt


def _total(page: ReferralPage, source: dict[str, Any], capabilities: Capabilities) -> int | None:
    """The number of all matches of a pure plan, where this answer proves it: a ``@odata.count`` the
    probe saw count all matches; one this answer shows is not the page's own (more than the rows read
    so far, with a next page to read); or, on the service's own pages, the rows up to a page with no
    next link (the listing ends there). A count equal to the page (the documents' example; the strict
    sandbox) says nothing by itself."""
    count, q = page.odata_count, source.get("q") or {}
    if count is not None and q.get("count") and capabilities.supports("count"):
        return count
    read = int(source.get("read", 0)) + len(page.value)
    if page.odata_next_link:
        return count if count is not None and q.get("count") and count > read else None
    return read if not q.get("top") else None


async def _fetch(client: PartnerCenterClient, source: dict[str, Any]) -> ReferralPage:
    if "link" in source:
        return await client.list_page(next_link=str(source["link"]))
    q = source["q"]
    query = odata.Query(
        filter=odata.Expr(q["filter"]) if q.get("filter") else None,
        orderby=[q["orderby"]] if q.get("orderby") else [],
        top=q.get("top"),
        skip=q.get("skip") or None,
        count=bool(q.get("count")),
    )
    return await client.list_page(query)


def _next_source(
    page: ReferralPage, source: dict[str, Any], capabilities: Capabilities
) -> dict[str, Any] | None:
    """Where the next page comes from: the next link, else (where ``$skip`` was seen to work) the
    query asked, skipping every row read under it (next-link pages included)."""
    q = source.get("q")
    read = int(source.get("read", 0)) + len(page.value)
    if page.odata_next_link:
        after: dict[str, Any] = {"link": page.odata_next_link}
        return {**after, "q": q, "read": read} if q else after
    if not q or not q.get("top") or not page.value or not capabilities.supports("skip"):
        return None
    skip = (q.get("skip") or 0) + read
    if q.get("count") and capabilities.supports("count") and page.odata_count is not None:
        # a count the probe saw count all matches: where the matches end
        return None if skip >= page.odata_count else {"q": {**q, "skip": skip}}
    if read < q["top"]:
        return None  # assumed: fewer rows than asked, and no next link, is the end
    return {"q": {**q, "skip": skip}}


async def _stream(
    client: PartnerCenterClient,
    the_plan: Plan,
    capabilities: Capabilities,
    limit: int,
    source: dict[str, Any] | None,
    at: int,
    returned: int,
) -> _Scan:
    """Rows in the service's order, from ``source`` at position ``at``; stops at ``limit`` rows, at
    the end, or (when filtering here) after ``MAX_SCAN_PAGES`` pages."""
    scan = _Scan()
    source = source or _first_source(the_plan, capabilities, limit)
    last: Any = None
    ids: set[str] = set()
    while True:
        page = await _fetch(client, source)
        scan.pages += 1
        scan.skipped.extend(page.skipped)
        total = _total(page, source, capabilities) if the_plan.pure else None
        if total is not None:
            scan.total = total
        items = page.value
        fresh = [str(r.id) for r in items[at:] if str(r.id) not in ids]
        if items[at:] and not fresh:  # the same rows again: paging does not work as asked
            scan.stalled, scan.complete, scan.total = True, False, None
            return scan
        for index in range(at, len(items)):
            scan.scanned += 1
            if str(items[index].id) in ids:
                scan.repeated += 1
                continue
            ids.add(str(items[index].id))
            doc = items[index].to_wire()
            ordered_by = SORTS[the_plan.sort_label][2] if the_plan.orderby else None
            if ordered_by is not None:  # an order asked of the service is checked, not trusted
                value = _sort_key(ordered_by)(doc)
                if value is not None and last is not None:
                    scan.disordered |= value > last if the_plan.reverse else value < last
                last = value if value is not None else last
            if the_plan.matches(doc):
                scan.rows.append(items[index])
            elif not all(c.test(doc) for c in the_plan.server):
                scan.unfiltered += 1
            if len(scan.rows) == limit:
                if index + 1 < len(items):
                    scan.cursor = {"src": source, "at": index + 1, "n": returned + limit}
                else:
                    after = _next_source(page, source, capabilities)
                    scan.cursor = {"src": after, "at": 0, "n": returned + limit} if after else None
                scan.complete = scan.cursor is None
                if scan.complete and scan.total is None:
                    scan.total = returned + len(scan.rows)
                return scan
        after = _next_source(page, source, capabilities)
        if after is None:
            scan.complete = True
            if scan.total is None:
                scan.total = returned + len(scan.rows)
            return scan
        if not the_plan.pure and (scan.pages >= MAX_SCAN_PAGES or scan.scanned >= MAX_SCAN_ITEMS):
            scan.cursor = {"src": after, "at": 0, "n": returned + len(scan.rows)}
            return scan
        source, at = after, 0


async def _sorted_scan(client: PartnerCenterClient, the_plan: Plan, limit: int, offset: int) -> _Scan:
    """Sorting the service cannot do: read up to ``MAX_SCAN_PAGES`` pages, sort, cut one page."""
    scan = _Scan()
    assert the_plan.sort_key is not None
    expr = the_plan.filter_expr()
    source: dict[str, Any] | None = {
        "q": {"filter": str(expr) if expr else None, "orderby": "createdDateTime desc"}
    }
    matches: list[tuple[Any, Referral]] = []
    no_skip = _documented(client.base_url)
    ids: set[str] = set()
    while source is not None:
        page = await _fetch(client, source)
        scan.pages += 1
        scan.skipped.extend(page.skipped)
        scan.scanned += len(page.value)
        for referral in page.value:
            if str(referral.id) in ids:  # listed again on a later page (the list moved): sorted once
                scan.repeated += 1
                continue
            ids.add(str(referral.id))
            doc = referral.to_wire()
            if the_plan.matches(doc):
                matches.append((the_plan.sort_key(doc), referral))
        source = _next_source(page, source, no_skip)
        if source is not None and (scan.pages >= MAX_SCAN_PAGES or scan.scanned >= MAX_SCAN_ITEMS):
            break
    scan.complete = source is None
    present = [m for m in matches if m[0] is not None]
    absent = [m for m in matches if m[0] is None]
    present.sort(key=lambda m: m[0], reverse=the_plan.reverse)
    ordered = [r for _, r in present + absent]  # referrals without the value last either way
    scan.rows = ordered[offset : offset + limit]
    if offset + limit < len(ordered):
        scan.cursor = {"off": offset + limit}
    scan.total = len(ordered) if scan.complete else None
    return scan


def _note(the_plan: Plan, scan: _Scan, *, first_page: bool) -> str | None:
    parts: list[str] = []
    if the_plan.read_as:
        parts.append("Read " + "; ".join(the_plan.read_as) + ".")
    if the_plan.local or the_plan.sort_key is not None:
        done = [c.label for c in the_plan.local]
        if the_plan.sort_key is not None:
            done.append(f"sort {the_plan.sort_label}")
        why = f" (the service lacks: {', '.join(the_plan.missing)})" if the_plan.missing else ""
        pages = f"{scan.pages} page" + ("s" if scan.pages != 1 else "")
        parts.append(
            f"Done here, not by the service{why}: {'; '.join(done)}; "
            f"scanned {scan.scanned} referrals in {pages}."
        )
        if not scan.complete and the_plan.sort_key is not None:
            parts.append(
                f"Sorted only the first {scan.scanned} referrals; more exist: add filters to narrow."
            )
        elif not scan.complete and len(scan.rows) == 0:
            parts.append("Nothing matched yet; pass next_cursor to scan further.")
    if not scan.rows and scan.complete and first_page:
        if the_plan.conditions:
            applied = "; ".join(c.label for c in the_plan.conditions)
            relax = "; ".join(dict.fromkeys(c.relax for c in reversed(the_plan.conditions) if c.relax))
            parts.append(f"No referral matches all of: {applied}. To widen: {relax}.")
        else:
            parts.append("There are no referrals.")
    unread = skipped_note(scan.skipped)
    if unread:
        parts.append(unread)
    partly = [str(r.id) for r in scan.rows if any(p.left_out for p in r.read_problems)]
    if partly:  # e.g. a deal value "N/A": the row shows none, which is not the same as none set
        parts.append(
            f"Values of {', '.join(partly[:5])}{' …' if len(partly) > 5 else ''} could not be read and are "
            "left out of the rows; get_referral lists them (readProblems)."
        )
    return " ".join(parts) or None


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        "This cursor is not one this server handed out (or it belongs to an earlier session).",
        field="cursor",
        hint="Run search_referrals again without cursor to start from the first page.",
    )


class _CursorSigner:
    """Seals the search state (filters, the service's page and a position in it) into an opaque
    cursor only this server session can open."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, state: dict[str, Any]) -> str:
        raw = json.dumps(state, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def open(self, cursor: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            blob = b""
        mac, raw = blob[:12], blob[12:]
        if len(blob) <= 12 or not hmac.compare_digest(
            mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        ):
            raise _bad_cursor()
        state: dict[str, Any] = json.loads(raw)
        return state


def _features() -> tuple[str, ...]:
    """The probed query features in their order; the probe's module loads with the first search."""
    from pcref_mcp.partner_center.capabilities import FEATURES

    return tuple(FEATURES)


def _documented(base_url: str) -> Capabilities:
    """What the documents say the service supports (loads the probe's module on first use)."""
    from pcref_mcp.partner_center.capabilities import Capabilities

    return Capabilities.documented(base_url)
