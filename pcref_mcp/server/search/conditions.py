"""Filters as conditions: each a test on the referral's wire document, and (when there is one) the
OData expression that asks the service for the same thing plus the query features that needs; the
plan splits them into what the service is asked and what is done here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals import when
from pcref_mcp.referrals.catalog import country_code, currency_code
from pcref_mcp.referrals.lifecycle import expires_at, wire_time
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.write_models import currency_in_words
from pcref_mcp.server.search.filters import DOCUMENTED_ORDERBY, SORTS, Filters

if TYPE_CHECKING:
    from pcref_mcp.partner_center.capabilities import Capabilities

MAX_TEXT = 200  # checked in build_conditions (a clear message, and no bytes in the tool schema)

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
        sort_key=None if sortable else sort_key_for(pointer),
        sort_label=sort,
        reverse=direction == "desc",
        read_as=read_as,
        missing=[n for n in probed_features() if n in missing],
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


def sort_key_for(pointer: str) -> Callable[[Doc], Any]:
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


# --- the service's query features -----------------------------------------------------------------


def probed_features() -> tuple[str, ...]:
    """The probed query features in their order; the probe's module loads with the first search."""
    from pcref_mcp.partner_center.capabilities import FEATURES

    return tuple(FEATURES)


def documented(base_url: str) -> Capabilities:
    """What the documents say the service supports (loads the probe's module on first use)."""
    from pcref_mcp.partner_center.capabilities import Capabilities

    return Capabilities.documented(base_url)
