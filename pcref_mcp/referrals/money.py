"""Money: how the service reads an amount, and how a person's written amount is read.

:func:`wire_amount` is what the service accepts in a request (a JSON number, or a plain number in a
string, as the documents send ``"dealValue": "10000"``); :func:`parse_amount` is what a person writes
in a money field (``"120,000"``, ``"120k"``), refusing whatever could be read two ways, and ends in the
first. The sandbox uses the first, the write models the second.

Amounts with a currency said beside them, as people write them ("CHF 1'200'000", "80k pounds",
"120 grand"), for every money field the input reader sees (deal value, contract and solution value,
the search's value bounds, CSV cells): ``split`` separates the amount from the currency and writes the
amount in plain digits; ``currency_word`` names the ISO code a currency word means. Where a text could
be read two ways ("250.000": a grouping dot or a decimal point; "$": several dollars) it is not read
here; the callers ask the person (``server.inputs``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pcref_mcp.referrals.problems import FieldProblem

__all__ = [
    "CURRENCY_WORDS",
    "MAGNITUDES",
    "MAX_AMOUNT",
    "currency_word",
    "decimal_comma",
    "parse_amount",
    "split",
    "wire_amount",
]


MAX_AMOUNT = 1e15  # larger is not a deal value but a typing accident (and loses cents as a double)

_AMOUNT = re.compile(r"(?P<num>\d+(\.\d+)?|\d{1,3}(,\d{3})+(\.\d+)?)\s*(?P<unit>[kKmM]?)")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}


def wire_amount(value: Any) -> float | int | None:
    """The number the service reads from a request value: a JSON number, or a string holding one;
    None when it is not a finite number (``true``, ``"12k"``, NaN). Whole numbers stay ``int``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        value = int(parsed) if parsed.is_integer() else parsed
    if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def parse_amount(value: Any) -> Any:
    """A money amount from a number or an unambiguous string: ``"120000"``, ``"120,000"``, ``"120k"``.

    Anything that could be read two ways (``"1,5"``, ``"120.000"`` with a grouping dot) is refused.
    Other types pass through for pydantic to judge.
    """
    if isinstance(value, bool):
        raise FieldProblem(lambda f: f"{f} {value!r} is not an amount; use a number such as 120000.")
    if not isinstance(value, str):
        return value
    read = split(value)
    if read is not None and read[1] is None:  # "2.5 million", "1,5 Mio", "CHF-free 1'200'000"
        return float(read[0])
    if "$" in value or (read is not None and read[1] == "$"):
        raise FieldProblem(
            lambda f: (
                f"{f} {value!r}: '$' names several currencies (USD, CAD, AUD…); give the amount in digits "
                "and the currency code, e.g. 250000 with currency 'USD'."
            )
        )
    match = _AMOUNT.fullmatch(value.strip())
    if match is None or re.fullmatch(r"\d{1,3}\.\d{3}", match["num"]):
        raise FieldProblem(
            lambda f: (
                f"{f} {value!r} is not an unambiguous amount; use digits such as 120000, 120,000 or 120k."
            )
        )
    number = wire_amount(match["num"].replace(",", ""))
    assert number is not None  # the pattern admits digits only
    return float(number) * _UNITS[match["unit"].lower()]


# Words and abbreviations for a multiple, as people write them after an amount.
MAGNITUDES: dict[str, int] = {
    "k": 1_000,
    "thousand": 1_000,
    "grand": 1_000,
    "tsd": 1_000,
    "m": 1_000_000,
    "mm": 1_000_000,
    "mn": 1_000_000,
    "mio": 1_000_000,
    "million": 1_000_000,
    "millions": 1_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
}

# A currency said in words or by a symbol that names one currency. "$" (and "dollars") names many
# (catalog.DOLLAR_CURRENCIES): it is returned as "$" for the caller to settle.
CURRENCY_WORDS: dict[str, str] = {
    "€": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "£": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "poundssterling": "GBP",
    "sterling": "GBP",
    "britishpounds": "GBP",
    "quid": "GBP",
    "¥": "JPY",
    "yen": "JPY",
    "japaneseyen": "JPY",
    "₹": "INR",
    "rupees": "INR",
    "indianrupees": "INR",
    "swissfrancs": "CHF",
    "swissfranc": "CHF",
    "francs": "CHF",
    "fr": "CHF",
    "reais": "BRL",
    "real": "BRL",
    "r$": "BRL",
    "us$": "USD",
    "usdollars": "USD",
    "usdollar": "USD",
    "americandollars": "USD",
    "a$": "AUD",
    "au$": "AUD",
    "australiandollars": "AUD",
    "c$": "CAD",
    "ca$": "CAD",
    "canadiandollars": "CAD",
    "nz$": "NZD",
    "newzealanddollars": "NZD",
    "s$": "SGD",
    "sg$": "SGD",
    "singaporedollars": "SGD",
    "hk$": "HKD",
    "mx$": "MXN",
    "nt$": "TWD",
    "$": "$",
    "dollar": "$",
    "dollars": "$",
    "bucks": "$",
}

_NUMBER = r"\d[\d,.'’\u00a0\u202f ]*"
_TEXT = re.compile(
    rf"(?P<pre>[^\d\s][^\d]*?)?\s*(?P<num>{_NUMBER})\s*(?P<mag>[a-z]+\.?)?\s*(?P<post>[^\d]*?)\s*",
    re.IGNORECASE,
)


def currency_word(text: str) -> str | None:
    """The ISO code (or "$") a currency word, symbol or code names; None if it names none."""
    folded = re.sub(r"[\s.]", "", text.casefold())
    if folded in CURRENCY_WORDS:
        return CURRENCY_WORDS[folded]
    if re.fullmatch(r"[a-z]{3}", folded):
        return folded.upper()
    return None


def split(text: str) -> tuple[str, str | None] | None:
    """``text`` as (the amount in plain digits, the currency said beside it or None); None when it is
    not an amount this reader is sure of (the value's own check then judges it)."""
    found = _TEXT.fullmatch(text.strip())
    if found is None:
        return None
    pre, post = (found["pre"] or "").strip(), (found["post"] or "").strip()
    magnitude = (found["mag"] or "").rstrip(".").casefold()
    if magnitude and magnitude not in MAGNITUDES:  # "80k pounds" reads "pounds" here when no k
        if post or pre:
            return None
        post, magnitude = found["mag"], ""
    if pre and post:
        return None
    mark = pre or post
    currency = currency_word(mark) if mark else None
    if mark and currency is None:
        return None
    amount = _digits(found["num"].strip(), bool(magnitude))
    if amount is None:  # "250.000 €": the amount as written, for the caller to ask which it is
        return (found["num"].strip(), currency) if currency and not magnitude else None
    value = amount * MAGNITUDES.get(magnitude, 1)
    return (f"{value:.2f}".rstrip("0").rstrip("."), currency)


def _digits(number: str, scaled: bool) -> float | None:
    """Digits with their grouping marks (``,`` ``'`` ``’``, spaces; ``.`` only when it groups more than
    once) and a decimal point; None if ambiguous (a decimal comma, "1,5 Mio": see ``decimal_comma``)."""
    plain = re.sub(r"(?<=\d)['’\u00a0\u202f ](?=\d{3}(?!\d))", "", number)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3}){2,}", plain):  # 1.200.000: only a grouping dot repeats
        plain = plain.replace(".", "")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", plain) is None:
        return None
    if not scaled and re.fullmatch(r"\d{1,3}\.\d{3}", plain):  # 250.000: two readings
        return None
    return float(plain.replace(",", ""))


def decimal_comma(text: str) -> tuple[str, str | None] | None:
    """ "1,5 Mio. €", "2,75m": a comma before one or two digits and a multiple, read as a decimal comma:
    (the amount in digits, the currency said or None). Not read silently (``parse_amount`` refuses it):
    the caller offers this reading as the corrected call."""
    found = _TEXT.fullmatch(text.strip())
    if found is None or not re.fullmatch(r"\d+,\d{1,2}", found["num"].strip()):
        return None
    return split(text.replace(found["num"].strip(), found["num"].strip().replace(",", "."), 1))
