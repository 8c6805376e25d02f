"""The repair check (issue 21): a suggestion is a promise.

A model follows the call a refusal suggests, literally. For each imperfect call below (the person's
intent in words, and a check of what doing it means), the call is made; a refusal's suggested call
(``<tool> {json}`` after "Corrected call:", "Example:" or "Call:") is then made exactly as given,
and the check judges the result. Outcomes:

* ``done``: the call itself did what was meant (the liberty taken is said in ``read_as``);
* ``repaired``: refused, and its suggestion, followed literally, did what was meant;
* ``asked``: refused with no call to follow (or several, for the person to choose between), saying
  plainly what is missing: right only where the case says the person must be asked;
* ``broken``: a suggestion that, followed, did something else (or failed again);
* ``silent``: the call succeeded but did something other than meant.

The figures (``_figures``) are what ``docs/model-contract.md`` reports. Today, for relative dates,
is fixed at 2026-12-07 (a Monday) in UTC, the default time zone.

Placeholders: ``$contoso`` (the one Contoso Ltd referral, Active/Accepted, USD), ``$active`` (an
Active/Accepted referral with a sales team), ``$new`` (New, incoming), ``$gbp`` (an Active GBP one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.referrals import when
from pcref_mcp.referrals.untrusted import unwrap
from pcref_mcp.server.tools import TOOLS as ALL_TOOLS
from tests.server.conftest import Sandbox, fill_roles

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)  # a Monday
TOOLS = tuple(spec.name for spec in ALL_TOOLS)  # a suggestion names one of these
LOOK_UPS = ("search_referrals", "get_referral", "recent_changes", "search", "fetch")  # read-only steps
SUGGESTION = re.compile(rf"\b({'|'.join(TOOLS)}) (?=\{{)")
RAW = ("validation error", "pydantic", "input should be", "type=")

Answer = dict[str, Any]
Check = Callable[[Answer], bool]


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    args: dict[str, Any]
    intent: str
    check: Check
    ask: tuple[str, ...] = ()  # the person must be asked: the refusal must say these words


def case(
    id: str, tool: str, args: dict[str, Any], intent: str, check: Check, *, ask: tuple[str, ...] = ()
) -> Case:
    return Case(id, tool, args, intent, check, ask)


# --- checks ---------------------------------------------------------------------------------------


# A create previews fields by name (its request is one body): the names for the pointers checked here.
CREATED = {"/details/closingDateTime": "closing date", "/name": "name", "/details/notes": "notes"}


def op(path: str, test: Callable[[Any], bool]) -> Check:
    """The preview sends ``path`` with a value that passes ``test`` (a create: the field it previews)."""

    def check(out: Answer) -> bool:
        preview = out.get("preview") or {}
        if any(o["path"] == path and test(o.get("value")) for o in preview.get("operations", [])):
            return True
        return any(
            c["field"] == CREATED.get(path) and test(_plain(c.get("after")))
            for c in preview.get("changes", [])
        )

    return check


def op_is(path: str, value: Any) -> Check:
    return op(path, lambda v: v == value)


def day(path: str, iso: str) -> Check:
    return op(path, lambda v: isinstance(v, str) and v.startswith(iso))


def on(referral: str, check: Check) -> Check:
    """The preview is of ``referral`` (a placeholder) and passes ``check``; filled in at run time."""
    return lambda out: out.get("_referral") == referral and check(out)


def all_rows(test: Callable[[dict[str, Any]], bool], *, at_most: int | None = None) -> Check:
    def check(out: Answer) -> bool:
        found = out.get("rows") or []
        return bool(found) and all(test(r) for r in found) and (at_most is None or len(found) <= at_most)

    return check


def ordered_by_value(out: Answer) -> bool:
    values = [r["value"] for r in out.get("rows") or [] if r.get("value") is not None]
    return len(values) > 2 and values == sorted(values, reverse=True)


def csv_rows(count: int | None = None) -> Check:
    def check(out: Answer) -> bool:
        text = out.get("_csv")
        if not text:
            return False
        lines = [line for line in text.splitlines()[1:] if line.strip()]
        return count is None or len(lines) == count

    return check


def hits(test: Callable[[str], bool], *, at_least: int = 1) -> Check:
    return lambda out: len([h for h in out.get("results") or [] if test(h["title"])]) >= at_least


def fetched(referral: str) -> Check:
    return lambda out: out.get("_id") == referral


def since_cut(prefix: str) -> Check:
    """recent_changes read ``since`` as this UTC moment (its first referrals line says from when)."""
    return lambda out: bool(out.get("referrals")) and out["referrals"][0].startswith(f"Since {prefix}")


def recent(out: Answer) -> bool:
    return "changes" in out


def plain_text(path: str, expected: str) -> Check:
    return op(path, lambda v: v == expected)


def batch_ok(out: Answer) -> bool:
    return out.get("status") in ("applied", "confirmation_required") or "items" in out


# --- the corpus -----------------------------------------------------------------------------------

CLOSING = "/details/closingDateTime"
NOTES = "/details/notes"

CORPUS: list[Case] = [
    # search: every part of the request kept
    case(
        "export-csv",
        "search_referrals",
        {"export": "csv"},
        "all referrals as a CSV file",
        csv_rows(),
    ),
    case(
        "outcome-lost",
        "search_referrals",
        {"outcome": "lost"},
        "the lost referrals",
        all_rows(lambda r: r["status"] == "Closed/Lost"),
    ),
    case(
        "biggest-first",
        "search_referrals",
        {"sort": "biggest first"},
        "referrals, biggest deal first",
        ordered_by_value,
    ),
    case(
        "limit-and-csv",
        "search_referrals",
        {"limit": 5, "format": "csv"},
        "five referrals as CSV",
        csv_rows(5),
    ),
    case(
        "stauts-typo",
        "search_referrals",
        {"filters": {"stauts": "Closed"}},
        "the closed referrals",
        all_rows(lambda r: r["status"].startswith("Closed")),
    ),
    case(
        "limit-in-words",
        "search_referrals",
        {"limit": "twenty"},
        "twenty referrals",
        lambda out: len(out.get("rows") or []) == 20,
    ),
    case(
        "words-out-of-order",
        "search",
        {"query": "fourth coffee teams"},
        "the Fourth Coffee Teams opportunities",
        hits(lambda t: "Fourth Coffee - Teams" in t, at_least=2),
    ),
    case(
        "words-out-of-order-filters",
        "search_referrals",
        {"filters": {"text": "teams fourth coffee"}},
        "the Fourth Coffee Teams opportunities",
        all_rows(lambda r: "Fourth Coffee - Teams" in r["name"]),
    ),
    case(
        "status-close-filter",
        "search_referrals",
        {"filters": {"status": "closed won"}},
        "the won referrals",
        all_rows(lambda r: r["status"] == "Closed/Won"),
    ),
    # references: a referral named the way people name it
    case(
        "customer-name-as-id",
        "get_referral",
        {"referral_id": "Contoso Ltd"},
        "the Contoso Ltd referral",
        fetched("$contoso"),
    ),
    case(
        "id-prefix",
        "get_referral",
        {"referral_id": "$contoso8"},
        "the referral whose id starts so",
        fetched("$contoso"),
    ),
    case(
        "fetch-by-name",
        "fetch",
        {"id": "Contoso"},
        "the Contoso referral",
        fetched("$contoso"),
    ),
    case(
        "ambiguous-name",
        "get_referral",
        {"referral_id": "Fourth Coffee - Teams opportunity"},
        "one of two referrals with that name: the person must choose",
        lambda out: False,
        ask=("Fourth Coffee", "Active/Accepted"),
    ),
    case(
        "update-by-customer",
        "update_field",
        {"referral_id": "Contoso Ltd", "changes": [{"field": "deal value", "value": 90000}]},
        "Contoso's deal value to 90,000",
        on("$contoso", op_is("/details/dealValue", 90000)),
    ),
    # dates as people say them (today: Monday 2026-12-07, UTC)
    case(
        "closing-negative-offset",
        "update_field",
        {
            "referral_id": "$active",
            "changes": [{"field": "closing date", "value": "2026-12-11T23:00:00-08:00"}],
        },
        "closes Friday 11 December (Pacific)",
        day(CLOSING, "2026-12-11"),
    ),
    case(
        "closing-next-friday",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "next Friday"}]},
        "said on a Monday: this week's Friday or next week's? The person must say (each a call)",
        lambda out: False,
        ask=("2026-12-11", "2026-12-18"),
    ),
    case(
        "closing-this-friday",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "by Friday"}]},
        "closes Friday 2026-12-11",
        day(CLOSING, "2026-12-11"),
    ),
    case(
        "closing-day-month-no-year",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "Dec 15"}]},
        "closes 2026-12-15",
        day(CLOSING, "2026-12-15"),
    ),
    case(
        "closing-no-zone",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "2026-12-31 17:00"}]},
        "closes 2026-12-31",
        day(CLOSING, "2026-12-31"),
    ),
    case(
        "closing-eom",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "EOM"}]},
        "closes 2026-12-31",
        day(CLOSING, "2026-12-31"),
    ),
    case(
        "closing-next-quarter",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "next quarter"}]},
        "a period: which day? The person must say",
        lambda out: False,
        ask=("2027-01-01", "2027-03-31"),
    ),
    case(
        "closing-end-of-month",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "end of the month"}]},
        "closes 2026-12-31",
        day(CLOSING, "2026-12-31"),
    ),
    case(
        "closing-in-two-weeks",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "in two weeks"}]},
        "closes 2026-12-21",
        day(CLOSING, "2026-12-21"),
    ),
    case(
        "closing-end-of-q1",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "end of Q1"}]},
        "closes at the end of the first quarter: calendar (2027-03-31) or Microsoft's fiscal? Ask",
        day(CLOSING, "2027-03-31"),
        ask=("2027-03-31", "fiscal"),
    ),
    case(
        "closing-last-week",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "last week"}]},
        "a period, not a day: the person must say which day",
        lambda out: False,
        ask=("last week", "2026-11-30"),
    ),
    case(
        "create-closing-end-of-month",
        "create_referral",
        {
            "referral": {
                "name": "Fabrikam data platform",
                "customer_name": "Fabrikam Retail GmbH",
                "customer_country": "DE",
                "customer_city": "Berlin",
                "deal_kind": "private",
                "customer_consent_to_contact": True,
                "notes": "Migration of the analytics estate",
                "closing_date": "end of the month",
            }
        },
        "a new referral closing 2026-12-31",
        day("/details/closingDateTime", "2026-12-31"),
    ),
    case(
        "since-offset",
        "recent_changes",
        {"since": "2026-11-30T09:00:00+01:00"},
        "changes since 08:00 UTC on 30 November",
        since_cut("2026-11-30 08:00"),
    ),
    case(
        "since-last-week",
        "recent_changes",
        {"since": "last week"},
        "changes since the start of last week (Monday 2026-11-30)",
        since_cut("2026-11-30 00:00"),
    ),
    case(
        "since-seven-days",
        "recent_changes",
        {"since": "7 days"},
        "changes in the last 7 days",
        since_cut("2026-11-30 13:00"),
    ),
    case(
        "from-for-since",
        "recent_changes",
        {"from": "2026-11-30"},
        "changes since 30 November",
        since_cut("2026-11-30 00:00"),
    ),
    case(
        "days-for-since",
        "recent_changes",
        {"days": 7},
        "changes in the last 7 days",
        since_cut("2026-11-30 13:00"),
    ),
    case(
        "recent-limit",
        "recent_changes",
        {"limit": 5},
        "the latest five writes (the tool lists 20: the first five of them)",
        recent,
    ),
    # lifecycle
    case(
        "status-close",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "status", "value": "close"}]},
        "close it out: won, lost or declined? The person must say",
        lambda out: False,
        ask=("won", "lost", "declined"),
    ),
    case(
        "status-close-as-won",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "status", "value": "close as won"}]},
        "mark it won",
        op_is("/substatus", "Won"),
    ),
    # our own quote marks inside longer text
    case(
        "quoted-reason-inside",
        "update_field",
        {
            "referral_id": "$active",
            "changes": [{"field": "notes", "value": "«Went with a competitor.» (AWS)"}],
        },
        "notes: Went with a competitor. (AWS)",
        plain_text(NOTES, "Went with a competitor. (AWS)"),
    ),
    case(
        "quoted-name-inside",
        "create_referral",
        {
            "referral": {
                "name": "«Tailspin Toys - Azure opportunity» follow-up",
                "customer_name": "Tailspin Toys",
                "customer_country": "GB",
                "customer_city": "London",
                "deal_kind": "private",
                "customer_consent_to_contact": True,
                "notes": "Second phase",
            }
        },
        "a referral named: Tailspin Toys - Azure opportunity follow-up",
        plain_text("/name", "Tailspin Toys - Azure opportunity follow-up"),
    ),
    # money
    case(
        "currency-conflict",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "deal value", "value": "€250k", "currency": "USD"}]},
        "250k in one currency: euro or dollar? The person must say (each currency a call to choose)",
        lambda out: False,
        ask=("EUR", "USD"),
    ),
    case(
        "bare-dollar-on-create",
        "create_referral",
        {
            "referral": {
                "name": "Fabrikam data platform",
                "customer_name": "Fabrikam Retail GmbH",
                "customer_country": "DE",
                "customer_city": "Berlin",
                "deal_kind": "private",
                "customer_consent_to_contact": True,
                "notes": "Migration of the analytics estate",
                "deal_value": "$250k",
            }
        },
        "which dollar? The person must say",
        lambda out: False,
        ask=("USD",),
    ),
    case(
        "value-in-words",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "deal value", "value": "lots"}]},
        "no amount given: the person must say how much",
        lambda out: False,
        ask=("lots",),
    ),
    # other refusals
    case(
        "unknown-field-typo",
        "update_field",
        {"referral_id": "$active", "changes": [{"feild": "closing date", "value": "2027-01-31"}]},
        "closes 2027-01-31",
        day(CLOSING, "2027-01-31"),
    ),
    case(
        "undo-by-word",
        "undo_change",
        {"change_id": "abc"},
        "undo a change, id unknown: the person (or recent_changes) must name it",
        lambda out: False,
        ask=("recent_changes",),
    ),
    case(
        "get-sections-everything",
        "get_referral",
        {"referral_id": "$contoso", "sections": "everything"},
        "the whole referral",
        lambda out: (
            out.get("_id") == "$contoso"
            and "team" in ((out.get("referral") or {}).get("customerProfile") or {})
        ),
    ),
    case(
        "unchanged-csv-import",
        "batch_update",
        {"csv": "$csv_unchanged"},
        "import a file that matches Partner Center: nothing to do, said plainly",
        lambda out: out.get("status") in ("applied", "unchanged") and "already" in out.get("message", ""),
    ),
    # money in many forms
    case(
        "amount-european-grouping",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "deal value", "value": "250.000 €"}]},
        "250,000 or 250 euros? The person must say (each reading a call to confirm)",
        lambda out: False,
        ask=("250,000", "250"),
    ),
    case(
        "amount-millions",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "deal value", "value": "1.5M USD"}]},
        "1,500,000 US dollars",
        op_is("/details/dealValue", 1500000),
    ),
    case(
        "amount-code-first",
        "update_field",
        {"referral_id": "$contoso", "changes": [{"field": "deal value", "value": "USD 250,000"}]},
        "250,000 US dollars",
        op_is("/details/dealValue", 250000),
    ),
    case(
        "bare-dollar-own-currency",
        "update_field",
        {"referral_id": "$contoso", "changes": [{"field": "deal value", "value": "$250k"}]},
        "250,000 in the referral's own dollars",
        op_is("/details/dealValue", 250000),
    ),
    case(
        "bare-dollar-on-pounds",
        "update_field",
        {"referral_id": "$gbp", "changes": [{"field": "deal value", "value": "$250k"}]},
        "which dollar, on a referral in pounds? The person must say",
        lambda out: False,
        ask=("USD",),
    ),
    # lifecycle phrasings
    case(
        "lost-because",
        "update_field",
        {
            "referral_id": "$active",
            "changes": [{"field": "status", "value": "lost because the budget was cut"}],
        },
        "mark it lost, with the reason",
        lambda out: (
            op_is("/substatus", "Lost")(out) and op("/statusReason", lambda v: "budget" in str(v))(out)
        ),
    ),
    case(
        "closed-dash-lost",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "status", "value": "Closed - Lost"}]},
        "mark it lost",
        op_is("/substatus", "Lost"),
    ),
    case(
        "accept-new",
        "update_field",
        {"referral_id": "$new", "changes": [{"field": "status", "value": "accept"}]},
        "accept the incoming referral",
        op_is("/status", "Active"),
    ),
    case(
        "reopen-closed",
        "update_field",
        {"referral_id": "$closed", "changes": [{"field": "status", "value": "Active"}]},
        "reopen a closed referral: impossible, say so",
        lambda out: False,
        ask=("cannot be reopened",),
    ),
    case(
        "search-status-close",
        "search_referrals",
        {"filters": {"status": "close"}},
        "the closed referrals",
        all_rows(lambda r: r["status"].startswith("Closed")),
    ),
    case(
        "search-not-interested",
        "search_referrals",
        {"filters": {"status": "declined"}},
        "the declined referrals",
        all_rows(lambda r: r["status"] == "Closed/Declined"),
    ),
    # references
    case(
        "several-by-customer",
        "update_field",
        {"referral_id": "Tailspin Toys", "changes": [{"field": "notes", "value": "call back"}]},
        "one of Tailspin's six referrals: the person must choose",
        lambda out: False,
        ask=("Tailspin Toys", "New/"),
    ),
    case(
        "unknown-name",
        "get_referral",
        {"referral_id": "Zzyzx Unknown Co"},
        "no such referral: say so, with the look-up",
        lambda out: False,
        ask=("Zzyzx Unknown Co",),
    ),
    case(
        "name-any-case",
        "get_referral",
        {"referral_id": "contoso ltd - microsoft365 opportunity"},
        "the Contoso referral",
        fetched("$contoso"),
    ),
    case(
        "fetch-url",
        "fetch",
        {"id": "referral://$contoso"},
        "the Contoso referral",
        fetched("$contoso"),
    ),
    case(
        "batch-by-customer",
        "batch_update",
        {
            "items": [
                {"referral_id": "Contoso Ltd", "changes": [{"field": "closing date", "value": "2027-02-26"}]}
            ]
        },
        "Contoso's closing date to 2027-02-26",
        lambda out: (
            out.get("status") == "confirmation_required" and any("2027-02-26" in i for i in out["items"])
        ),
    ),
    # dates
    case(
        "closing-day-first",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "31/12/2026"}]},
        "closes 2026-12-31",
        day(CLOSING, "2026-12-31"),
    ),
    case(
        "closing-two-readings",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "03/04/2027"}]},
        "3 April or 4 March? The person must say",
        lambda out: False,
        ask=("2027-04-03", "2027-03-04"),
    ),
    case(
        "closing-end-of-next-month",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "end of next month"}]},
        "closes 2027-01-31",
        day(CLOSING, "2027-01-31"),
    ),
    case(
        "closing-tomorrow",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "tomorrow"}]},
        "closes 2026-12-08",
        day(CLOSING, "2026-12-08"),
    ),
    case(
        "closing-next-week",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "closing date", "value": "next week"}]},
        "a period: which day? The person must say",
        lambda out: False,
        ask=("2026-12-14",),
    ),
    case(
        "create-closing-offset",
        "create_referral",
        {
            "referral": {
                "name": "Fabrikam data platform",
                "customer_name": "Fabrikam Retail GmbH",
                "customer_country": "DE",
                "customer_city": "Berlin",
                "deal_kind": "private",
                "customer_consent_to_contact": True,
                "notes": "Migration of the analytics estate",
                "closing_date": "2027-03-31T17:00:00-05:00",
            }
        },
        "a new referral closing 2027-03-31",
        day(CLOSING, "2027-03-31"),
    ),
    case(
        "since-yesterday",
        "recent_changes",
        {"since": "yesterday"},
        "since yesterday",
        since_cut("2026-12-06 00:00"),
    ),
    case(
        "since-last-month",
        "recent_changes",
        {"since": "last month"},
        "since 1 November",
        since_cut("2026-11-01 00:00"),
    ),
    case(
        "since-two-weeks",
        "recent_changes",
        {"since": "2 weeks"},
        "the last two weeks",
        since_cut("2026-11-23 13:00"),
    ),
    case(
        "period-for-since",
        "recent_changes",
        {"period": "last week"},
        "since last week",
        since_cut("2026-11-30 00:00"),
    ),
    # exports and pages
    case(
        "csv-of-won",
        "search_referrals",
        {"format": "csv", "filters": {"status": "won"}},
        "the won referrals as CSV",
        lambda out: (
            csv_rows()(out) and all(",Closed,Won," in line for line in out["_csv"].splitlines()[1:] if line)
        ),
    ),
    case("excel-for-csv", "search_referrals", {"format": "excel"}, "a file for Excel", csv_rows()),
    case(
        "limit-over-a-page",
        "search_referrals",
        {"limit": 200},
        "200 referrals: 100 a page, the next with next_cursor",
        lambda out: (
            len(out.get("rows") or []) == 60
            or (len(out.get("rows") or []) == 100 and bool(out.get("next_cursor")))
        ),
    ),
    case(
        "batch-two-sources",
        "batch_update",
        {
            "items": [{"referral_id": "$active", "changes": [{"field": "notes", "value": "x"}]}],
            "csv": "id,notes\n",
        },
        "items or a CSV? The person must say",
        lambda out: False,
        ask=("exactly one",),
    ),
    case(
        "create-without-consent",
        "create_referral",
        {
            "referral": {
                "name": "Fabrikam data platform",
                "customer_name": "Fabrikam Retail GmbH",
                "customer_country": "DE",
                "customer_city": "Berlin",
                "deal_kind": "private",
                "notes": "Migration of the analytics estate",
            }
        },
        "a create; nobody asked the customer about being contacted: the person must be asked",
        lambda out: False,
        ask=("customer_consent_to_contact", "ask the person whether the customer agreed"),
    ),
    case(
        "batch-id-for-referral-id",
        "batch_update",
        {"items": [{"id": "$active", "changes": [{"field": "closing date", "value": "2027-02-26"}]}]},
        "closing date of one referral",
        lambda out: out.get("status") == "confirmation_required",
    ),
    case(
        "dry-run",
        "update_field",
        {"referral_id": "$active", "changes": [{"field": "deal value", "value": 5000}], "dry_run": True},
        "show what would change, write nothing",
        op_is("/details/dealValue", 5000),
    ),
]


# --- running a case -------------------------------------------------------------------------------


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(when, "now", lambda: NOW)
    return NOW


@pytest.fixture
async def roles(sandbox: Sandbox) -> dict[str, str]:
    everything = await sandbox.find("id ne ''")
    contoso = next(r for r in everything if r["customerProfile"]["name"] == "Contoso Ltd")
    active = next(
        r for r in everything if r["status"] == "Active" and r.get("team") and r["id"] != contoso["id"]
    )
    new = next(r for r in everything if r["status"] == "New" and r["direction"] == "Incoming")
    prefix = contoso["id"][:8]
    assert sum(1 for r in everything if r["id"].startswith(prefix)) == 1
    gbp = next(r for r in everything if r["status"] == "Active" and r["details"].get("currency") == "GBP")
    closed = next(r for r in everything if r["status"] == "Closed")
    return {
        "$contoso8": prefix,
        "$contoso": contoso["id"],
        "$active": active["id"],
        "$new": new["id"],
        "$gbp": gbp["id"],
        "$closed": closed["id"],
    }


def suggestions(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every ``<tool> {json}`` in a message: the calls it suggests."""
    found = []
    decoder = json.JSONDecoder()
    for match in SUGGESTION.finditer(text):
        try:
            args, _ = decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        if isinstance(args, dict):
            found.append((match[1], args))
    return found


async def answer(
    client: Client, tool: str, args: dict[str, Any], roles: dict[str, str]
) -> tuple[bool, str, Answer]:
    """(refused, text, structured answer with what the checks need: the referral, the CSV)."""
    result = await client.call_tool(tool, args)
    text = result.content[0].text  # type: ignore[union-attr]
    out: Answer = dict(result.structured_content or {})
    back = {v: k for k, v in roles.items() if k != "$contoso8"}
    referral = (out.get("referral") or {}) if isinstance(out.get("referral"), dict) else {}
    ident = out.get("id") or referral.get("id")
    if ident:
        out["_id"] = back.get(str(ident), str(ident))
    if out.get("preview") and tool == "update_field":  # the referral previewed (named in the summary)
        out["_referral"] = next((v for k, v in back.items() if k in text), None)
    for content in result.content[1:]:
        resource = getattr(content, "resource", None)
        if resource is not None and getattr(resource, "mime_type", "") == "text/csv":
            out["_csv"] = resource.text
    return bool(result.is_error), text, out


async def judge(client: Client, c: Case, roles: dict[str, str]) -> tuple[str, str]:
    """The outcome of one case and the text behind it."""
    refused, text, out = await answer(client, c.tool, fill_roles(c.args, roles), roles)
    assert not any(p in text.lower() for p in RAW), text
    assert not refused or not re.search(r"(?<!\.)\.\.(?!\.)", text), text  # sentences end once
    if not refused:
        return ("done" if c.check(out) else "silent"), text
    calls = suggestions(text)
    if c.ask:
        if not all(w.lower() in text.lower() for w in c.ask):
            return "unhelpful", text
        outcomes = [await answer(client, tool, args, roles) for tool, args in calls]
        if any(again for again, _, _ in outcomes):
            return "broken", text  # a suggestion that is refused in turn
        writes = [o for (tool, _), o in zip(calls, outcomes, strict=True) if tool not in LOOK_UPS]
        if len(calls) == 1 and writes and not c.check(writes[0][2]):
            return "broken", text  # one call to confirm: it must be the reading it names
        return "asked", text
    if len(calls) != 1:
        return ("asked" if calls else "unhelpful"), text
    tool, args = calls[0]
    again, text2, out2 = await answer(client, tool, args, roles)
    if again or not c.check(out2):
        return "broken", f"{text}\n--- followed: {tool} {json.dumps(args)}\n{text2[:800]}"
    return "repaired", text


RESULTS: dict[str, str] = {}


@pytest.mark.parametrize("c", CORPUS, ids=[c.id for c in CORPUS])
async def test_repair(
    c: Case, client: Client, roles: dict[str, str], today: datetime, sandbox: Sandbox
) -> None:
    if "$csv_unchanged" in json.dumps(c.args):
        roles = {**roles, "$csv_unchanged": await _unchanged_csv(client, roles)}
    outcome, text = await judge(client, c, roles)
    RESULTS[c.id] = outcome
    print(f"\nREPAIR {c.id}: {outcome}" + (f"\nTEXT {text[:700]}" if outcome == "asked" else ""))
    expected = ("asked",) if c.ask else ("done", "repaired")
    assert outcome in expected, f"{c.intent}: {outcome}\n{text[:1500]}"


async def _unchanged_csv(client: Client, roles: dict[str, str]) -> str:
    """The export of the Contoso referral: imported as it is, it changes nothing."""
    _, _, out = await answer(
        client, "search_referrals", {"filters": {"customer": "Contoso Ltd"}, "format": "csv"}, roles
    )
    return str(out["_csv"])


def _figures() -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in RESULTS.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def test_no_suggestion_is_a_template() -> None:
    """Examples are built from the caller's call, never a generic one."""
    from pcref_mcp.server import inputs

    assert not getattr(inputs, "EXAMPLES", None)


def _plain(value: Any) -> Any:
    return unwrap(value) or value if isinstance(value, str) else value
