"""The deal registration contract's rules (research notes §4), defined once.

Both sides of the wire check them: the write models before a registration is previewed, and the
sandbox when one arrives, as the service does. Neither has a copy: they call
:func:`contract_problems` with the field names their reader knows.

What the service does, from the documents ("Bulk operations for Azure IP co-sell deal
registrations", the connector definition): the contract value excludes hardware; a Perpetual
contract has no end date and its value is spread over 6 years; a Finite contract needs an end date,
and its annual value is the value over the years between start and end (at least one year); the
annual value must exceed USD 25,000. A Finite contract without an end date has no annual value at
all: it is refused for the missing date alone (the old sandbox divided its value by 1, the writer by
6; neither is the service's rule). The documents do not say how a year is counted: it is 365.25 days,
so a contract of whole calendar years is that many years whether or not it spans a 29 February.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pcref_mcp.referrals.timestamps import REQUEST_DIGITS, format_wire
from pcref_mcp.referrals.wire_values import ContractTerm

__all__ = [
    "MIN_ANNUAL_CONTRACT_VALUE_USD",
    "PERPETUAL_YEARS",
    "WIRE_NAMES",
    "YEAR_DAYS",
    "ContractFacts",
    "annual_contract_value",
    "contract_problems",
]

MIN_ANNUAL_CONTRACT_VALUE_USD = 25_000.0
PERPETUAL_YEARS = 6  # a perpetual contract's value is spread over six years
YEAR_DAYS = 365.25

# role -> the name a reader of the wire body sees
WIRE_NAMES: Mapping[str, str] = {
    "term": "contract.term",
    "start": "contract.startDateTime",
    "end": "contract.endDateTime",
    "value": "contract.value",
}


def annual_contract_value(
    value: float, term: str, start: datetime | None, end: datetime | None
) -> float | None:
    """The contract's value per year: Perpetual spreads it over 6 years, Finite over the years from
    start to end (at least one); None where there is none to tell (Finite without both dates, or a
    term the documents do not name)."""
    if term == ContractTerm.PERPETUAL:
        return value / PERPETUAL_YEARS
    if term == ContractTerm.FINITE and start is not None and end is not None:
        return value / max(1.0, (end - start).days / YEAR_DAYS)
    return None


@dataclass(frozen=True)
class ContractFacts:
    """What the contract rules read, whoever holds the contract: a request body, a person's input, the
    sandbox's copy of what arrived."""

    term: str | None
    start: datetime | None
    end: datetime | None
    value: float | None
    currency: str | None


def contract_problems(contract: ContractFacts, names: Mapping[str, str] = WIRE_NAMES) -> list[str]:
    """Every contract rule ``contract`` breaks, one sentence each, naming the fields by ``names``. The
    value rule is checked in USD only (a caller says so for other currencies)."""
    term, start, end, value = contract.term, contract.start, contract.end, contract.value
    problems: list[str] = []
    if term == ContractTerm.FINITE and end is None:
        problems.append(
            f"{names['end']} is required when {names['term']} is 'Finite'; give the date the contract ends."
        )
    if term == ContractTerm.FINITE and start is not None and end is not None and end <= start:
        problems.append(f"{names['end']} {_day(end)} must be after {names['start']} {_day(start)}.")
    if term == ContractTerm.PERPETUAL and end is not None:
        problems.append(
            f"{names['end']} must be empty when {names['term']} is 'Perpetual' (a perpetual contract has no end "
            "date); remove it or use 'Finite'."
        )
    if value is None or contract.currency != "USD":
        return problems
    annual = annual_contract_value(value, term or "", start, end)
    if annual is not None and annual <= MIN_ANNUAL_CONTRACT_VALUE_USD:
        spread = "spread over 6 years" if term == ContractTerm.PERPETUAL else "from start to end date"
        problems.append(
            f"{names['value']} {value:,.0f} USD is {annual:,.0f} USD a year; Azure IP co-sell registration needs "
            f"an annual contract value above {MIN_ANNUAL_CONTRACT_VALUE_USD:,.0f} USD ({spread})."
        )
    return problems


def _day(moment: datetime) -> str:
    return format_wire(moment, REQUEST_DIGITS)[:10]
