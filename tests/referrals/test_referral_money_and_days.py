"""Amounts, currencies and days as people write them (referrals.money, referrals.when): the rules the
unseen corpus (tests/server/test_unseen_corpus.py) found missing, each as a table row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pcref_mcp.referrals import money, when
from pcref_mcp.referrals.lifecycle import S, Sub, read_intent
from pcref_mcp.referrals.write_models import FieldProblem, currency_in_words, parse_amount


@pytest.mark.parametrize(
    ("said", "read"),
    [
        ("CHF 1'200'000", ("1200000", "CHF")),
        ("2.5 million", ("2500000", None)),
        ("120 grand", ("120000", None)),
        ("90000 euros", ("90000", "EUR")),
        ("80k pounds", ("80000", "GBP")),
        ("GBP 45.5k", ("45500", "GBP")),
        ("1.200.000", ("1200000", None)),  # a dot that repeats can only group
        ("$300k", ("300000", "$")),  # which dollar: the caller asks
        ("250.000 €", ("250.000", "EUR")),  # a grouping dot or a decimal point: the caller asks
    ],
)
def test_amounts_as_written(said: str, read: tuple[str, str | None]) -> None:
    assert money.split(said) == read


@pytest.mark.parametrize("said", ["lots", "TBD", "250.000", "12 apples", "$ 5 EUR"])
def test_what_is_no_amount_is_not_read(said: str) -> None:
    assert money.split(said) is None


def test_a_decimal_comma_is_a_reading_offered_never_taken() -> None:
    assert money.split("1,5 Mio. €") is None
    assert money.decimal_comma("1,5 Mio. €") == ("1500000", "EUR")
    assert money.decimal_comma("15,000") is None  # a grouping comma
    with pytest.raises(FieldProblem):
        parse_amount("1,5m")


def test_an_amount_field_reads_words_but_never_guesses_a_grouping_dot() -> None:
    assert parse_amount("2.5 million") == 2_500_000
    assert parse_amount("120 grand") == 120_000
    with pytest.raises(FieldProblem):
        parse_amount("250.000")
    with pytest.raises(FieldProblem):
        parse_amount("100 dollars")  # which dollar


@pytest.mark.parametrize(("said", "code"), [("euros", "EUR"), ("Swiss francs", "CHF"), ("pounds", "GBP")])
def test_currency_words(said: str, code: str) -> None:
    assert currency_in_words(said) == code
    assert currency_in_words("dollars") == "dollars"  # several: left to the currency's own check


@pytest.fixture
def monday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(when, "now", lambda: datetime(2026, 12, 7, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("said", "iso"),
    [
        ("2027/03/31", "2027-03-31"),
        ("last day of March", "2027-03-31"),
        ("end of February", "2027-02-28"),
        ("end of November", "2027-11-30"),  # this month's end is next year's only once it is past
    ],
)
def test_days_in_words(monday: None, said: str, iso: str) -> None:
    day = when.read_day(said)
    assert day is not None and day.iso == iso


@pytest.mark.parametrize(
    ("said", "period"),
    [("March 2027", ("2027-03-01", "2027-03-31")), ("last week", ("2026-11-30", "2026-12-06"))],
)
def test_a_period_is_no_day_but_names_its_bounds(monday: None, said: str, period: tuple[str, str]) -> None:
    day = when.read_day(said)
    assert day is not None and day.iso is None and day.period == period


@pytest.mark.parametrize(
    ("said", "since"),
    [
        ("last 24h", "2026-12-06T10:00"),
        ("start of the month", "2026-12-01T00:00"),
        ("1 Dec", "2026-12-01T00:00"),
        ("Dec 8", "2025-12-08T00:00"),  # a cut-off lies behind: last year's
    ],
)
def test_cut_offs_in_words(monday: None, said: str, since: str) -> None:
    read = when.read_since(said)
    assert read is not None and read[0].strftime("%Y-%m-%dT%H:%M") == since


@pytest.mark.parametrize(
    ("said", "state"),
    [
        ("WON!", (S.CLOSED, Sub.WON)),
        ("deal signed", (S.CLOSED, Sub.WON)),
        ("Closed Won", (S.CLOSED, Sub.WON)),
    ],
)
def test_lifecycle_words(said: str, state: tuple[S, Sub]) -> None:
    intent = read_intent(said)
    assert intent is not None and (intent.status, intent.substatus) == state
