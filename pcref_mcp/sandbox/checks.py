"""The sandbox's checks of the values a request carries: a create's or a PUT's body (``check_body``,
which collects every problem) and a single value (the ``_VALIDATORS`` of a PATCH; also used for the
nested values of a create and of a deal registration).

Both are read from the domain: what a value holds (its kind, enum, text limit) is what the read
model says at its pointer, through the field table (:mod:`pcref_mcp.referrals.fields`); only which
values the service checks, and how it words a refusal, are said here. The recorded-service contract
tests (``tests/contract``) stay the independent check that this is what the service does.

Every refusal is an :class:`~pcref_mcp.errors.InvalidInput` whose message names the field, the value
and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pcref_mcp.errors import InvalidInput, NotEligible
from pcref_mcp.referrals.catalog import COUNTRY_NAMES, CURRENCY_NAMES
from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.fields import (
    FIELDS,
    NOTES_LIMIT,
    REFERRAL_FIELDS,
    REGISTRATION_FIELDS,
    TEXT_LIMIT,
    Held,
    WireField,
    held_at,
)
from pcref_mcp.referrals.models import SolutionType
from pcref_mcp.referrals.money import MAX_AMOUNT, wire_amount
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.sandbox.clock import format_wire, parse_wire

MAX_TEXT = TEXT_LIMIT  # the field table's limits
MAX_NOTES = NOTES_LIMIT

_COUNTRIES = frozenset(COUNTRY_NAMES)  # the domain's catalogs: the sandbox knows the same codes
_CURRENCIES = frozenset(CURRENCY_NAMES)


def normalise_keys(value: Any) -> Any:
    """Lower-case the first letter of every key, as the .NET service tolerates PascalCase input."""
    if isinstance(value, dict):
        return {
            (k[:1].lower() + k[1:] if isinstance(k, str) and not k.startswith("@") else k): normalise_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise_keys(v) for v in value]
    return value


# --- create checks: the body walked against the read model ---------------------------------------

# The values of a create (or PUT) body the service checks, by JSON pointer ("-": every entry of a
# list). What each holds (its kind, enum or text limit) is the read model's, read through the field
# table (``fields.held_at``), and every text with a limit is among them (``fields.FIELDS``): a field the
# model says more of is checked as soon as it says it.
_ENTRY_LISTS = ("/team/-", "/customerProfile/team/-", "/details/requirements/solutions/-")
BODY_VALUES: tuple[str, ...] = (
    "/type",
    "/qualification",
    "/salesStage",
    "/customerProfile/size",
    "/customerProfile/address/country",
    "/details/dealValue",
    "/details/currency",
    "/details/closingDateTime",
    *_ENTRY_LISTS,
    "/target/-/type",
    "/inviteContext/assistanceRequestCode",
    *(
        f.pointer
        for f in FIELDS
        if f.kind == "text" and not f.pointer.startswith(tuple(p + "/" for p in _ENTRY_LISTS))
    ),
)
# Lists whose entries the service takes as they come: only that they are lists is checked.
BODY_LISTS = tuple(
    f"/details/requirements/{key}/-" for key in ("industries", "products", "services", "offers", "salesPlays")
)
# Where the service takes "" as no value.
_BLANK_IS_NONE = frozenset({"/customerProfile/size", "/customerProfile/address/country", "/details/currency"})


def check_body(problems: list[str], body: dict[str, Any], *, before: dict[str, Any] | None = None) -> None:
    """Every value of ``body`` in :data:`BODY_VALUES` (and :data:`BODY_LISTS`), each as the read model
    says; with ``before`` (a PUT), values sent back as they are stored are not checked again (the
    oddities a stored referral may carry stay, as :func:`rules._validated` lets them)."""
    for pointer, check in _BODY_CHECKS.items():
        if before is not None and _unchanged(body, before, pointer):
            continue
        for where, value in _values_at(problems, body, pointer):
            if check is None or value is None or (value == "" and pointer in _BLANK_IS_NONE):
                continue
            try:
                check(where, value)
            except InvalidInput as err:
                problems.append(err.message.rstrip("."))


def _values_at(problems: list[str], body: Any, pointer: str) -> list[tuple[str, Any]]:
    """The values at ``pointer`` in ``body``, each with the name a message gives it
    (``target[0].type``); a part that is not the object or list the pointer walks through is a problem,
    said once."""
    found: list[tuple[str, Any]] = [("", body)]
    for part in pointer.strip("/").split("/"):
        deeper: list[tuple[str, Any]] = []
        for where, node in found:
            if node is None:
                continue
            shape, ok = (
                ("a list", isinstance(node, list)) if part == "-" else ("an object", isinstance(node, dict))
            )
            if not ok:
                _once(problems, f"{where} must be {shape}")
            elif part == "-":
                deeper += [(f"{where}[{i}]", entry) for i, entry in enumerate(node)]
            else:
                deeper.append((f"{where}.{part}" if where else part, node.get(part)))
        found = deeper
    return found


def _once(problems: list[str], problem: str) -> None:
    if problem not in problems:
        problems.append(problem)


def _unchanged(body: dict[str, Any], before: dict[str, Any], pointer: str) -> bool:
    whole = pointer.split("/-", 1)[0]  # a list is compared whole
    return pointer_get(body, whole) == pointer_get(before, whole)


def check_customer_name(problems: list[str], customer: Any) -> None:
    """The one value a create must carry inside customerProfile: the customer's company name."""
    name = customer.get("name") if isinstance(customer, dict) else None
    if isinstance(customer, dict) and (not isinstance(name, str) or not name.strip()):
        problems.append("customerProfile.name is required (the customer's company name)")


def _check_consent(problems: list[str], consent: Any) -> None:
    if consent is None:
        return
    if not isinstance(consent, dict):
        problems.append("consent must be an object of true/false flags")
        return
    for key, flag in consent.items():
        if flag is not None and not isinstance(flag, bool):
            problems.append(f"consent.{key} must be true or false, not {flag!r}")


def _normalise_details(details: dict[str, Any]) -> dict[str, Any]:
    out = dict(details)
    if out.get("dealValue") is not None:
        out["dealValue"] = _deal_value("details.dealValue", out["dealValue"])
    if out.get("closingDateTime") is not None:
        out["closingDateTime"] = _datetime_or_none(out["closingDateTime"])
    if out.get("currency"):
        out["currency"] = str(out["currency"]).upper()
    return out


def _check_text(problems: list[str], where: str, value: Any, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(f"{where} must be text, not {value!r}")
    elif len(value) > limit:
        problems.append(f"{where} is longer than {limit} characters")


def _check_country(problems: list[str], where: str, value: Any) -> None:
    if value in (None, ""):
        return
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{2}", value) or value not in _COUNTRIES:
        problems.append(f"{where} {value!r} is not an ISO 3166-1 alpha-2 country code such as US, GB or DE")


def _check_currency(problems: list[str], where: str, value: Any) -> None:
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"[A-Za-z]{3}", value)
        or value.upper() not in _CURRENCIES
    ):
        problems.append(f"{where} {value!r} is not an ISO 4217 currency code such as USD, EUR or GBP")


# --- single-value validators (PATCH values and nested create values) -------------------------------


def _text(limit: int) -> Callable[[str, Any], Any]:
    def check(path: str, value: Any) -> Any:
        problems: list[str] = []
        _check_text(problems, _field(path), value, limit)
        if problems:
            raise InvalidInput(problems[0] + ".", field=_field(path), value=value)
        return value

    return check


def _deal_value(path: str, value: Any) -> float | int:
    number = _number(path, value)
    if number < 0:
        raise InvalidInput(
            f"{_field(path)} must not be negative (got {value!r}).", field=_field(path), value=value
        )
    return number


def _number(path: str, value: Any) -> float | int:
    value_num = wire_amount(value)
    if value_num is None:
        raise InvalidInput(
            f"{_field(path)} must be a number, not {value!r}.", field=_field(path), value=value
        )
    if abs(value_num) > MAX_AMOUNT:
        raise InvalidInput(f"{_field(path)} is too large ({value!r}).", field=_field(path), value=value)
    return value_num


def _country(path: str, value: Any) -> str:
    problems: list[str] = []
    _check_country(problems, _field(path), value)
    if problems:
        raise InvalidInput(problems[0] + ".", field=_field(path), value=value)
    return str(value)


def _currency(path: str, value: Any) -> str:
    problems: list[str] = []
    _check_currency(problems, _field(path), value)
    if problems:
        raise InvalidInput(problems[0] + ".", field=_field(path), value=value)
    return str(value).upper()


def _datetime_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    when = parse_wire(value)
    return format_wire(when) if when else None


def _datetime(path: str, value: Any) -> str | None:
    if value is None:
        return None
    stamp = _datetime_or_none(value)
    if stamp is None:
        raise InvalidInput(
            f"{_field(path)} must be an ISO 8601 date and time such as 2025-06-30T00:00:00Z, not {value!r}.",
            field=_field(path),
            value=value,
        )
    return stamp


def _boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(
            f"{_field(path)} must be true or false, not {value!r}.", field=_field(path), value=value
        )
    return value


def _enum(enum: Any, nullable: bool = False) -> Callable[[str, Any], Any]:
    def check(path: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        allowed = [str(m) for m in enum]
        if value not in allowed:
            raise InvalidInput(
                f"{_field(path)} {value!r} is not one of: {', '.join(allowed)}.",
                field=_field(path),
                value=value,
                allowed=allowed,
            )
        return value

    return check


def _member(path: str, value: Any) -> dict[str, Any]:
    where = _field(path)
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a person object with firstName, lastName, email.", field=where)
    value = normalise_keys(value)
    for key in ("firstName", "lastName", "phoneNumber", "email", "title"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidInput(f"{where}.{key} must be text, not {value[key]!r}.", field=f"{where}.{key}")
        if isinstance(value.get(key), str) and len(value[key]) > MAX_TEXT:
            raise InvalidInput(f"{where}.{key} is longer than {MAX_TEXT} characters.", field=f"{where}.{key}")
    email = value.get("email")
    if email not in (None, "") and not is_email(email):
        raise InvalidInput(f"{where}.email {email!r} is not a valid email address.", field=f"{where}.email")
    if not any(value.get(k) for k in ("email", "firstName", "lastName")):
        raise InvalidInput(f"{where} needs at least an email or a name.", field=where)
    preference = value.get("contactPreference")
    if preference is not None and not isinstance(preference, dict):
        raise InvalidInput(
            f"{where}.contactPreference must be an object.", field=f"{where}.contactPreference"
        )
    return value


def _members(path: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidInput(f"{_field(path)} must be a list of people.", field=_field(path), value=value)
    return [_member(f"{path}/{i}", m) for i, m in enumerate(value)]


def _solution(path: str, value: Any) -> dict[str, Any]:
    where = _field(path)
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a solution object with id, name, type.", field=where)
    value = normalise_keys(value)
    for key in ("id", "name", "publisherName", "solutionType"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidInput(f"{where}.{key} must be text, not {value[key]!r}.", field=f"{where}.{key}")
    if not value.get("id") and not value.get("name"):
        raise InvalidInput(f"{where} needs an id or a name.", field=where)
    if value.get("type") is not None:
        _enum(SolutionType)(f"{path}/type", value["type"])
    for key in ("price", "quantity"):
        if value.get(key) is not None:
            value[key] = _deal_value(f"{path}/{key}", value[key])
    if value.get("currency") not in (None, ""):
        value["currency"] = _currency(f"{path}/currency", value["currency"])
    if value.get("closingDateTime") is not None:
        value["closingDateTime"] = _datetime(f"{path}/closingDateTime", value["closingDateTime"])
    return value


def _solutions(path: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidInput(f"{_field(path)} must be a list of solutions.", field=_field(path), value=value)
    return [_solution(f"{path}/{i}", s) for i, s in enumerate(value)]


def _check_for(wire: WireField | Held) -> Callable[[str, Any], Any]:
    """The sandbox's check of a value, from what the read model says it holds (a row of the domain's
    field table, or ``held_at`` a pointer)."""
    if wire.kind == "text":
        return _text(wire.limit or MAX_TEXT)
    if wire.kind == "enum":
        return _enum(wire.enum, nullable=isinstance(wire, WireField) and wire.nullable)
    return _CHECKS[wire.kind]


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "amount": _deal_value,
    "currency": _currency,
    "country": _country,
    "datetime": _datetime,
    "bool": _boolean,
    "member": _member,
    "members": _members,
    "solution": _solution,
    "solutions": _solutions,
}
_VALIDATORS = {f.pointer: _check_for(f) for f in REFERRAL_FIELDS}
_BODY_CHECKS: dict[str, Callable[[str, Any], Any] | None] = {
    **{pointer: _check_for(held_at(pointer)) for pointer in BODY_VALUES},
    **dict.fromkeys(BODY_LISTS),
}
_REGISTRATION_VALIDATORS = {
    f.pointer.removeprefix("/registrations/0/"): _check_for(f) for f in REGISTRATION_FIELDS
}


def _field(path: str) -> str:
    return path.strip("/").replace("/", ".")


def _invalid(prefix: str, problems: list[str]) -> InvalidInput:
    first = problems[0].split(" ", 1)[0] if problems else None
    return InvalidInput(f"{prefix}: {'; '.join(problems)}.", field=first)


def _not_eligible(unmet: list[str]) -> NotEligible:
    return NotEligible(
        "The deal registration cannot be created: " + "; ".join(unmet) + ".",
        unmet=unmet,
    )
