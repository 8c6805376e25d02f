"""Each rule that once drifted between the writer and the sandbox has one definition now.

The annual contract value (the sandbox divided by 365.0 and a Finite contract without an end by 1,
the writer by 365.25 and by 6), the e-mail pattern (two differed), the timestamp readers and writers
(four of each): the sandbox and the write models must give the same verdict on every shape, because
they call the same code. The recorded-service contract tests stay the independent check of the
sandbox against the service itself.
"""

from __future__ import annotations

import copy
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pcref_mcp.errors import InvalidInput, NotEligible
from pcref_mcp.referrals import contacts, contract, fields, lifecycle, patch_paths, timestamps, write_models
from pcref_mcp.referrals.write_models import DealRegistrationCreate, MemberIn
from pcref_mcp.sandbox import clock, rules
from tests.sandbox.helpers import NEW_REFERRAL, REGISTRATION

PACKAGE = Path(__file__).resolve().parents[2] / "pcref_mcp"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)


# --- the annual contract value ---------------------------------------------------------------------


def _won_referral() -> dict[str, Any]:
    """A sandbox referral every registration precondition but the contract is met for."""
    partner = rules.Partner("org-1", "Fabrikam", "6193175")
    doc = rules.build_referral(
        copy.deepcopy(NEW_REFERRAL), partner=partner, now=START, engagement_exists=lambda _: False
    )
    doc.update(
        type="Shared",
        status="Closed",
        substatus="Won",
        closedDateTime=timestamps.format_wire(START + timedelta(days=10)),
    )
    return doc


WON = _won_referral()


def _registration(term: str, value: float, currency: str, end: datetime | None) -> dict[str, Any]:
    body = copy.deepcopy(REGISTRATION)
    body["contract"] = {
        "currency": currency,
        "value": value,
        "term": term,
        "signDateTime": timestamps.format_wire(START, 0),
        "startDateTime": timestamps.format_wire(START, 0),
    }
    if end is not None:
        body["contract"]["endDateTime"] = timestamps.format_wire(end, 0)
    return body


def _sandbox_verdict(body: dict[str, Any]) -> str:
    try:
        rules.apply_patch(
            copy.deepcopy(WON), [{"op": "add", "path": "/registrations/-", "value": body}], now=NOW
        )
    except NotEligible as refused:
        return refused.message
    return ""


def _writer_verdict(body: dict[str, Any]) -> str:
    try:
        DealRegistrationCreate.model_validate(body)
    except ValidationError as refused:
        return write_models.validation_message(refused, DealRegistrationCreate)
    return ""


def _assert_same_contract_verdict(sandbox: str, writer: str, expected: list[str]) -> None:
    """Both messages hold exactly the contract sentences ``expected`` (other rules aside)."""
    for sentence in expected:
        assert sentence.rstrip(".") in sandbox and sentence.rstrip(".") in writer, (sentence, sandbox, writer)
    for marker in ("USD a year", "contract.endDateTime "):
        assert sandbox.count(marker) == writer.count(marker) == sum(marker in e for e in expected), marker


ENDS = (
    None,
    datetime(2024, 12, 1, tzinfo=UTC),
    datetime(2025, 6, 1, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
)
ENDS += (datetime(2028, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))  # 1,095 days; 1,461 with 29 Feb
VALUES = (1_000, 24_999, 25_000, 25_001, 75_000, 100_000, 150_001, 160_000)
SHAPES = list(itertools.product(("Finite", "Perpetual"), VALUES, ("USD", "EUR"), ENDS))


@pytest.mark.parametrize(("term", "value", "currency", "end"), SHAPES)
def test_sandbox_and_writer_agree_on_every_contract_shape(
    term: str, value: float, currency: str, end: datetime | None
) -> None:
    body = _registration(term, value, currency, end)
    sandbox, writer = _sandbox_verdict(body), _writer_verdict(body)
    expected = contract.contract_problems(
        contract.ContractFacts(term=term, start=START, end=end, value=value, currency=currency)
    )
    _assert_same_contract_verdict(sandbox, writer, expected)
    assert bool(sandbox) == bool(writer) == bool(expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    term=st.sampled_from(["Finite", "Perpetual"]),
    value=st.integers(min_value=0, max_value=1_000_000),
    days=st.one_of(st.none(), st.integers(min_value=-400, max_value=4_000)),
)
def test_sandbox_and_writer_agree_on_random_contracts(term: str, value: int, days: int | None) -> None:
    end = None if days is None else START + timedelta(days=days)
    body = _registration(term, value, "USD", end)
    sandbox, writer = _sandbox_verdict(body), _writer_verdict(body)
    expected = contract.contract_problems(
        contract.ContractFacts(term=term, start=START, end=end, value=value, currency="USD")
    )
    _assert_same_contract_verdict(sandbox, writer, expected)
    assert bool(sandbox) == bool(writer) == bool(expected)


def test_the_service_rule_for_each_shape() -> None:
    """What the documents say, in numbers: Perpetual over 6 years, Finite over its years of 365.25
    days (at least one), and a Finite contract without an end date has no annual value to judge."""
    annual = contract.annual_contract_value
    assert annual(600_000, "Perpetual", START, None) == 100_000
    assert annual(75_000, "Finite", START, datetime(2028, 1, 1, tzinfo=UTC)) == pytest.approx(
        75_000 / (1095 / 365.25)
    )
    assert (
        annual(75_000, "Finite", START, datetime(2025, 3, 1, tzinfo=UTC)) == 75_000
    )  # under a year: one year
    assert annual(75_000, "Finite", START, None) is None
    assert annual(75_000, "Finite", None, datetime(2028, 1, 1, tzinfo=UTC)) is None
    # refused for the missing date alone, never for a value it cannot have
    only = contract.contract_problems(
        contract.ContractFacts(term="Finite", start=START, end=None, value=1_000, currency="USD")
    )
    assert only == [
        "contract.endDateTime is required when contract.term is 'Finite'; give the date the contract ends."
    ]


def test_one_annual_value_everywhere() -> None:
    assert write_models.annual_contract_value is contract.annual_contract_value
    assert write_models.PERPETUAL_YEARS == contract.PERPETUAL_YEARS
    assert not hasattr(rules, "PERPETUAL_YEARS") and not hasattr(rules, "MIN_ANNUAL_CONTRACT_USD")


# --- the e-mail rule -------------------------------------------------------------------------------

ADDRESSES = {
    "sue.smith@contoso.example": True,
    "a+b@sub.contoso.co.uk": True,
    "x@y.z": True,
    "jane": False,
    "jane@": False,
    "@contoso.com": False,
    "jane@contoso": False,
    "jane@.contoso.com": False,
    "jane@contoso..com": False,
    "jane@contoso.com.": False,
    "jane doe@contoso.com": False,
    "jane@@contoso.com": False,
    "jane@con@toso.com": False,
}


def test_one_email_rule_object() -> None:
    assert rules.is_email is contacts.is_email
    assert write_models.is_email is contacts.is_email
    assert not hasattr(rules, "_EMAIL") and not hasattr(write_models, "_EMAIL")


@pytest.mark.parametrize(("address", "valid"), ADDRESSES.items())
def test_writer_and_sandbox_read_each_address_alike(address: str, valid: bool) -> None:
    assert contacts.is_email(address) is valid
    try:
        MemberIn(first_name="Jane", email=address)
        writer = True
    except ValidationError:
        writer = False
    try:
        rules._member("/team/0", {"firstName": "Jane", "email": address})
        sandbox = True
    except InvalidInput:
        sandbox = False
    assert writer is sandbox is valid


# --- timestamps --------------------------------------------------------------------------------


def test_one_timestamp_reader_and_writer() -> None:
    assert clock.parse_wire is timestamps.parse_wire
    assert clock.format_wire is timestamps.format_wire
    stamp = "2019-02-23T02:05:23.2931817Z"
    assert lifecycle.wire_time(stamp) == timestamps.parse_wire(stamp)
    assert write_models.wire_datetime(NOW) == timestamps.format_wire(NOW, timestamps.REQUEST_DIGITS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-02-23T02:05:23.2931817Z", datetime(2019, 2, 23, 2, 5, 23, 293181, tzinfo=UTC)),
        ("2019-02-23T02:05:23Z", datetime(2019, 2, 23, 2, 5, 23, tzinfo=UTC)),
        ("2019-02-23T04:05:23+02:00", datetime(2019, 2, 23, 2, 5, 23, tzinfo=UTC)),
        ("2019-02-23", datetime(2019, 2, 23, tzinfo=UTC)),
        ("2019-02-23T02:05", datetime(2019, 2, 23, 2, 5, tzinfo=UTC)),
        ("2019-02-30", None),
        ("yesterday", None),
        (None, None),
        (20190223, None),
    ],
)
def test_parse_wire(text: Any, expected: datetime | None) -> None:
    assert timestamps.parse_wire(text) == expected


def test_format_wire_forms() -> None:
    when = datetime(2019, 2, 23, 2, 5, 23, 293181, tzinfo=UTC)
    assert timestamps.format_wire(when) == "2019-02-23T02:05:23.2931810Z"
    assert timestamps.format_wire(when, 0) == "2019-02-23T02:05:23Z"
    assert timestamps.format_wire(when.replace(microsecond=500000), 6, trim=True) == "2019-02-23T02:05:23.5Z"
    assert timestamps.parse_wire(timestamps.format_wire(when)) == when


# Modules that read or write the service's timestamps: none may carry its own reader or writer.
WIRE_TIME_MODULES = (
    "referrals",
    "sandbox",
    "partner_center/client.py",
    "partner_center/odata.py",
    "writes/feed.py",
)
OWN_TIME_CODE = re.compile(
    r"fromisoformat\(|strftime\(\s*[\"']%Y-%m-%dT|:%Y-%m-%dT|isoformat\(timespec|def (?:parse|format)_wire\b"
)
# A pattern for a date's shape; allowed only where what a person or a $filter wrote is recognised before
# its value goes to parse_wire.
DATE_SHAPE = re.compile(r"\\d\{4\}-\\d\{2\}")
SHAPE_READERS = ("referrals/when.py", "referrals/write_models.py", "sandbox/odata.py")


def test_no_other_module_defines_a_timestamp_reader_or_writer() -> None:
    found = []
    for place in WIRE_TIME_MODULES:
        root = PACKAGE / place
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            name = str(path.relative_to(PACKAGE))
            if path.name == "timestamps.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if OWN_TIME_CODE.search(line) or (DATE_SHAPE.search(line) and name not in SHAPE_READERS):
                    found.append(f"{name}:{number}: {line.strip()}")
    assert found == [], "use pcref_mcp.referrals.timestamps:\n" + "\n".join(found)


# --- the changeable fields: one table, read by the writer and the sandbox ------------------------

GOOD: dict[str, Any] = {
    "amount": 1000,
    "currency": "EUR",
    "datetime": "2026-11-27T00:00:00Z",
    "bool": True,
    "member": {"firstName": "Jane", "lastName": "Doe", "email": "jane@contoso.example"},
    "solution": {"id": "SOL-6115380-IPC", "type": "Name"},
}
BAD: dict[str, Any] = {
    "amount": -5,
    "currency": "QQQ",
    "datetime": "soon",
    "bool": "maybe",
    "member": {"firstName": "Jane", "email": "jane"},
    "solution": {"id": 5},
}


def _samples(field: fields.WireField) -> tuple[list[Any], list[Any]]:
    """Values every reader must accept, and values every reader must refuse, for ``field``."""
    if field.kind == "text":
        assert field.limit is not None
        return ["x" * field.limit], ["x" * (field.limit + 1), 42]
    if field.kind == "enum":
        assert field.enum is not None
        return [str(next(iter(field.enum)))], ["Nonsense"]
    kind = field.kind.removesuffix("s")
    if field.kind.endswith("s"):  # a list of them
        return [[GOOD[kind]]], [[BAD[kind]], GOOD[kind]]
    return [GOOD[kind]], [BAD[kind]]


@pytest.mark.parametrize(
    "field", [*fields.REFERRAL_FIELDS, *fields.REGISTRATION_FIELDS], ids=lambda f: f.pointer
)
def test_writer_and_sandbox_judge_each_changeable_field_alike(field: fields.WireField) -> None:
    path = patch_paths.resolve(field.pointer, registration=field.registration)
    check = (
        rules._REGISTRATION_VALIDATORS[field.pointer.removeprefix("/registrations/0/")]
        if field.registration
        else rules._VALIDATORS[field.pointer]
    )
    good, bad = _samples(field)
    for value in good:
        check(field.pointer, path.validate(value))  # what the writer sends, the sandbox takes
    for value in bad:
        with pytest.raises(InvalidInput):
            path.validate(value)
        with pytest.raises(InvalidInput):
            check(field.pointer, value)
    assert (None in good) is False
    if field.nullable:
        assert path.validate(None) is None and check(field.pointer, None) is None


def test_create_text_limits_are_the_tables() -> None:
    from pcref_mcp.writes import creates

    assert dict(creates._TEXT_LIMITS)["/details/notes"] == fields.NOTES_LIMIT
    assert dict(creates._TEXT_LIMITS)["/name"] == rules.MAX_TEXT == fields.TEXT_LIMIT
