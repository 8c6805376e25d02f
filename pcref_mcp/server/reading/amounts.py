"""Amounts as people write them: a currency in the string ("250k EUR", "€250k"), a dot that may group
thousands ("250.000"), a decimal comma ("1,5 Mio. €"), and "$" (which names several currencies): read
against the currency the call gives, or the one stored (``_stored_currency``), else the person's choice."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pcref_mcp.errors import PcrefError
from pcref_mcp.referrals import catalog, money, patch_paths
from pcref_mcp.server.reading.reader import Choice, Reading, _Reader
from pcref_mcp.server.reading.words import _brief, _fold


def _money(
    reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, given: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    """A deal value with its currency in one string ("250,000 EUR", "€250k"), when no currency is given."""
    if path.registration and path.pointer.endswith("/value") and isinstance(item.get("value"), str):
        said = _split_money(item["value"])
        if said is not None:  # the registration's own currency, checked against it (_stored_currency)
            item["value"] = _marked(item["value"], said[0], said[1])
        return []
    split = _split_money(item.get("value")) if path.pointer == "/details/dealValue" else None
    if split is None:
        return []
    if "/details/currency" in given:  # the mark may only repeat the currency given
        if _same_currency(split[1], given["/details/currency"]):
            reader.note(f"{at}.value {_brief(item['value'])} read as {split[0]} (in the currency given)")
            item["value"] = split[0]
        else:
            reader.problems.append(
                _currency_conflict(f"{at}.value", item["value"], split[1], given["/details/currency"])
            )
            if split[1] != "$" and isinstance(given["/details/currency"], str):
                item["value"] = split[0]  # the amount stands; the currency is the person's to choose
                reader.currency_choice = (split[1], given["/details/currency"].strip().upper())
        return []
    if split[1] == "$":  # which dollar? the referral's own, or the person's choice (_stored_currency)
        item["value"] = _marked(item["value"], split[0], "$")
        return []
    item["value"], currency = split
    given["/details/currency"] = currency
    reader.note(f"{at}.value {_brief(split[0])} {currency} read as deal value and currency")
    return [{"field": "currency", "value": currency}]


_GROUPED = re.compile(r"\s*(\d{1,3})\.(\d{3})\s*")


def _grouping(reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str) -> None:
    """``"250.000"``: a dot that groups thousands (250000) or a decimal point (250)? The person says."""
    value = item.get("value")
    found = (
        _GROUPED.fullmatch(value) if isinstance(value, str) and path.pointer.endswith("/dealValue") else None
    )
    if found is None or not isinstance(value, str):
        return
    item["value"] = _grouping_choice(reader, value, f"{at}.value")


def _decimal_comma(reader: _Reader, value: Any, at: str) -> Any:
    """ "1,5 Mio. €": refused (a comma is no decimal point everywhere), with the decimal-comma reading as
    the corrected call (money.decimal_comma)."""
    read = money.decimal_comma(value) if isinstance(value, str) else None
    if read is None:
        return value
    amount = read[0] if read[1] is None else f"{read[0]} {read[1]}"
    reader.problems.append(
        f"{at} {value!r} is not an unambiguous amount; read with a decimal comma it is {amount}"
    )
    reader.fixed += 1
    return amount


def _grouping_choice(reader: _Reader, value: str, at: str) -> Choice:
    found = _GROUPED.fullmatch(value)
    assert found is not None
    grouped, decimal = int(found[1] + found[2]), float(f"{found[1]}.{found[2]}")
    reader.problems.append(
        f"{at} {value!r} can be read two ways: {grouped:,} (the dot groups thousands) or {decimal:g} "
        "(the dot is a decimal point)"
    )
    return Choice([(f"If {grouped:,}", grouped), (f"If {decimal:g}", decimal)])


def _split_money(value: Any) -> tuple[str, str] | None:
    """``"250,000 EUR"``, ``"€250k"``, ``"80k pounds"``, ``"CHF 1'200'000"`` -> (the amount in digits,
    the currency code); a bare ``"$250k"`` -> (amount, "$"); None when no currency is said
    (``referrals.money`` reads them; a bare "$" names many: catalog.DOLLAR_CURRENCIES)."""
    read = money.split(value) if isinstance(value, str) else None
    if read is None or read[1] is None:
        return None
    return read[0], read[1]


def _currency_conflict(where: str, value: Any, mark: str, given: Any) -> str:
    """Two currencies for one amount: named as such, for the person to settle."""
    said = "a dollar currency" if mark == "$" else mark
    return (
        f"Currency conflict: {where} {_brief(value)} is in {said} and the currency given is {_brief(given)}: they disagree"
        + ("; ask the person which currency, then send the amount in digits with it" if mark == "$" else "")
    )


def _same_currency(code: str, given: Any) -> bool:
    """The mark on an amount agrees with the currency given beside it ("$" with any dollar)."""
    have = given.strip().upper() if isinstance(given, str) else None
    return have is not None and (have == code or (code == "$" and have in catalog.DOLLAR_CURRENCIES))


def _deal_value_currency(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A deal value with its currency in one string ("250k EUR"): value and currency, when currency is unset."""
    key = next((k for k in data if _fold(k) in ("dealvalue", "value", "amount", "dealamount")), None)
    if key is not None:
        data[key] = _decimal_comma(reader, data[key], f"{where}.{key}")
    split = _split_money(data.get(key)) if key else None
    if key is not None and split is not None and _GROUPED.fullmatch(split[0]):
        data[key] = _grouping_choice(reader, split[0], f"{where}.{key}") if split[1] != "$" else data[key]
        if split[1] != "$" and not any(_fold(k) == "currency" for k in data):
            data["currency"] = split[1]
        return data
    if key is None or split is None:
        return data
    given = next((data[k] for k in data if _fold(k) == "currency"), None)
    if given is not None:  # the mark may only repeat the currency given
        if _same_currency(split[1], given):
            reader.note(f"{where}.{key} {_brief(data[key])} read as {split[0]} (in the currency given)")
            data[key] = split[0]
        else:
            reader.problems.append(_currency_conflict(f"{where}.{key}", data[key], split[1], given))
    elif split[1] != "$":
        data[key], data["currency"] = split
        reader.note(f"{where}.{key} read as deal_value {split[0]} and currency {split[1]}")
    else:  # which dollar? the person says; each reading is the amount with its code
        reader.problems.append(f"{where}.{key} {_brief(data[key])}: '$' names several currencies")
        data[key] = _dollar_choice(split[0])
    return data


# The dollars offered when "$" names no currency the call or the referral settles.
_DOLLARS_OFFERED = ("USD", "CAD", "AUD", "NZD")


def _dollar_choice(amount: str) -> Choice:
    return Choice([(f"If {code}", f"{amount} {code}") for code in _DOLLARS_OFFERED])


class _Dollars(str):
    """An amount said with a currency the call cannot settle: "$" beside a deal value (the referral's
    own dollar currency settles it, in the planner: patch_paths.read_dollars; else the person), or any
    currency beside a registration amount (it must be the registration's own). ``_stored_currency``
    checks it against what is stored."""

    amount: str
    currency: str


def _marked(value: str, amount: str, currency: str) -> _Dollars:
    out = _Dollars(value)
    out.amount, out.currency = amount, currency
    return out


# Where a marked amount's currency is stored, per tool: the referral's deal currency, the registration's
# contract currency.
_STORED_CURRENCY: dict[str, Callable[[Any], str | None]] = {
    "update_field": lambda r: r.details.currency if r.details else None,
    "register_deal": lambda r: (
        r.registrations[0].contract.currency if r.registrations and r.registrations[0].contract else None
    ),
}


async def _stored_currency(tool: str, reading: Reading, context: Any) -> None:
    """A marked amount (``_Dollars``) read against the currency stored: the same (or "$" beside a dollar)
    is the amount, said; "$" beside another currency is the person's choice of dollar; another code is
    a conflict for the person to settle."""
    from pcref_mcp.server.confirmation import runtime_of

    changes = reading.arguments.get("changes")
    marked = [c for c in changes or [] if isinstance(c, dict) and isinstance(c.get("value"), _Dollars)]
    if (
        not marked
        or not isinstance(reading.arguments.get("referral_id"), str)
        or tool not in _STORED_CURRENCY
    ):
        return
    try:
        referral = await runtime_of(context).client.get(reading.arguments["referral_id"])
    except PcrefError:
        return  # the planner says what is wrong with the referral
    stored = _STORED_CURRENCY[tool](referral)
    for change in marked:
        said = change["value"]
        if said.currency == stored or (said.currency == "$" and stored in catalog.DOLLAR_CURRENCIES):
            if tool != "update_field" or said.currency != "$":  # update_field reads "$" in the planner
                change["value"] = said.amount
                reading.notes.append(
                    f"{change.get('field')} {_brief(str(said))} read as {said.amount} {stored}"
                )
            continue
        if said.currency == "$":
            reading.problems.append(
                f"{change.get('field')} {_brief(str(said))}: '$' names several currencies and the referral is in "
                f"{stored or 'no currency'}"
            )
            change["value"] = _dollar_choice(said.amount)
        else:
            reading.problems.append(
                _currency_conflict(
                    str(change.get("field")), str(said), said.currency, stored or "no currency"
                )
                + "; ask the person which currency is right"
            )
