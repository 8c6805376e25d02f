"""What the service checks and decides: creating a referral, applying a PATCH, deal registrations,
expiry. Pure functions over wire documents (dicts), so the HTTP layer only moves bytes.

Every refusal is an :class:`~pcref_mcp.errors.InvalidInput` (or its ``LifecycleViolation`` and
``NotEligible`` kinds) whose message names the field, the value and what is allowed, because the
person reading it through an assistant needs to know what to change.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from pcref_mcp.errors import InvalidInput, LifecycleViolation, NotEligible
from pcref_mcp.referrals import lifecycle
from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.contract import contract_problems
from pcref_mcp.referrals.fields import (
    FIELDS,
    NOTES_LIMIT,
    REFERRAL_FIELDS,
    REGISTRATION_ADD_POINTER,
    REGISTRATION_FIELDS,
    TEXT_LIMIT,
    WireField,
)
from pcref_mcp.referrals.models import (
    AssistanceRequestCode,
    ContractTerm,
    CustomerSize,
    PricingModel,
    PrimaryDeploymentOn,
    Referral,
    ReferralQualification,
    ReferralType,
    RegistrationStatus,
    SalesStage,
    SolutionType,
    TargetType,
)
from pcref_mcp.referrals.money import MAX_AMOUNT, wire_amount
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_POINTERS
from pcref_mcp.sandbox.clock import format_wire, parse_wire

__all__ = [
    "LINK_ORIGIN",
    "MICROSOFT_ORG_ID",
    "Partner",
    "apply_patch",
    "build_referral",
    "expire_if_due",
    "is_expiry_due",
    "links_for",
    "new_etag",
    "normalise_keys",
    "replace_referral",
]

MICROSOFT_ORG_ID = "msft"
# Links are stored with this origin and rewritten to the caller's origin on the way out.
LINK_ORIGIN = "https://sandbox.invalid"
WIN_AFTER = timedelta(hours=72)
MAX_TEXT = TEXT_LIMIT  # the field table's limits
MAX_NOTES = NOTES_LIMIT

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TERMINAL_REGISTRATION = frozenset({"Approved", "Passed", "Failed", "Closed"})

try:  # the shared catalog, when present; a shape check otherwise
    from pcref_mcp.referrals import catalog as _catalog

    _COUNTRIES: frozenset[str] | None = frozenset(getattr(_catalog, "COUNTRY_NAMES", {})) or None
    _CURRENCIES: frozenset[str] | None = frozenset(getattr(_catalog, "CURRENCY_NAMES", {})) or None
except ImportError:  # pragma: no cover - catalog not written yet
    _COUNTRIES = _CURRENCIES = None


class Partner:
    """The signed-in partner organisation (who "we" are for direction and organizationId)."""

    def __init__(self, org_id: str, org_name: str, mpn_id: str) -> None:
        self.org_id, self.org_name, self.mpn_id = org_id, org_name, mpn_id


# --- public API -----------------------------------------------------------------------------------


def new_etag(now: datetime, token: str | None = None) -> str:
    """A quoted Cosmos-style ETag, ``"xxxxxxxx-0000-0100-0000-<seconds hex>0000"``."""
    token = token or secrets.token_hex(4)
    return f'"{token}-0000-0100-0000-{int(now.timestamp()) & 0xFFFFFFFF:08x}0000"'


def links_for(referral_id: str, engagement_id: str) -> dict[str, Any]:
    base = f"{LINK_ORIGIN}/v1.0/engagements/referrals"
    return {
        "relatedReferrals": {"uri": f"{base}?$filter=engagementId eq {engagement_id}", "method": "GET"},
        "self": {"uri": f"{base}/{referral_id}", "method": "GET"},
    }


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


def build_referral(
    body: Any,
    *,
    partner: Partner,
    now: datetime,
    engagement_exists: Callable[[str], bool],
) -> dict[str, Any]:
    """Validate a POST body and return the new referral document (without storing it)."""
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object describing the referral.", field="body")
    body = normalise_keys(body)
    problems: list[str] = []
    for name in ("type", "customerProfile", "consent", "details"):
        if body.get(name) in (None, "", {}):
            problems.append(f"{name} is required")
    _check_enum(problems, "type", body.get("type"), ReferralType, required=False)
    _check_enum(problems, "qualification", body.get("qualification"), ReferralQualification, required=False)
    customer = body.get("customerProfile")
    if customer is not None:
        _check_customer(problems, customer)
    consent = body.get("consent")
    _check_consent(problems, consent)
    details = body.get("details")
    if details is not None:
        _check_details(problems, details)
    for name in ("team",):
        _check_members(problems, name, body.get(name))
    _check_targets(problems, body.get("target"))
    invite = body.get("inviteContext")
    if invite is not None:
        if not isinstance(invite, dict):
            problems.append("inviteContext must be an object")
        else:
            _check_enum(
                problems,
                "inviteContext.assistanceRequestCode",
                invite.get("assistanceRequestCode"),
                AssistanceRequestCode,
            )
    _check_top_text(problems, body)
    if body.get("salesStage") is not None:
        _check_enum(problems, "salesStage", body.get("salesStage"), SalesStage)

    org_id = body.get("organizationId")
    for_microsoft = isinstance(org_id, str) and org_id.lower() == MICROSOFT_ORG_ID
    engagement_id = body.get("engagementId")
    if engagement_id not in (None, ""):
        if not isinstance(engagement_id, str) or not _GUID.match(engagement_id):
            problems.append(f"engagementId must be a GUID, not {engagement_id!r}")
        elif not engagement_exists(engagement_id.lower()):
            problems.append(
                f"engagementId {engagement_id} does not match any referral of yours; leave it out to start a new "
                "engagement, or use the engagementId of the referral you are linking to"
            )
    elif for_microsoft:
        problems.append(
            "engagementId is required for a referral to Microsoft (organizationId 'msft'): use the engagementId "
            "of your own shared referral"
        )
    if problems:
        raise _invalid("The referral cannot be created", problems)
    assert isinstance(customer, dict) and isinstance(details, dict) and isinstance(consent, dict)

    stamp = format_wire(now)
    referral_id = str(uuid.uuid4())
    engagement = (
        engagement_id.lower() if isinstance(engagement_id, str) and engagement_id else str(uuid.uuid4())
    )
    status, substatus = ("New", "Pending") if for_microsoft else ("Active", "Accepted")
    doc: dict[str, Any] = {
        "id": referral_id,
        "engagementId": engagement,
        "organizationId": MICROSOFT_ORG_ID if for_microsoft else partner.org_id,
        "organizationName": "Microsoft" if for_microsoft else partner.org_name,
        "name": body.get("name") or customer.get("name"),
        "externalReferenceId": body.get("externalReferenceId"),
        "createdDateTime": stamp,
        "updatedDateTime": stamp,
        "expirationDateTime": None,
        "acceptedDateTime": None if for_microsoft else stamp,
        "closedDateTime": None,
        "status": status,
        "substatus": substatus,
        "statusReason": body.get("statusReason"),
        "qualification": body.get("qualification") or "None",
        "type": body["type"],
        "direction": "Outgoing",
        "eTag": new_etag(now),
        "favorite": bool(body.get("favorite")) if isinstance(body.get("favorite"), bool) else False,
        "campaignId": body.get("campaignId"),
        "salesStage": body.get("salesStage"),
        "quality": "Unknown",
        "isSpam": False,
        "mpnId": partner.mpn_id,
        "referralProgram": body.get("referralProgram"),
        "dealSensitivity": body.get("dealSensitivity")
        if isinstance(body.get("dealSensitivity"), str)
        else "None",
        "createdVia": "API",
        "tags": [],
        "registrationStatus": "None",
        "target": body.get("target") or [],
        "customerProfile": customer,
        "consent": consent,
        "details": _normalise_details(details),
        "team": body.get("team") or [],
        "inviteContext": invite,
        "links": links_for(referral_id, engagement),
        "trackingInfo": body.get("trackingInfo") if isinstance(body.get("trackingInfo"), dict) else {},
        "registrations": [],
    }
    return _validated(doc, "The referral cannot be created")


# Fields a PUT may set; everything else (ids, dates, direction, quality, registrations, links…) is the
# service's own and is kept whatever the body says, as a create ignores it.
PUT_FIELDS: tuple[str, ...] = (
    "name",
    "externalReferenceId",
    "statusReason",
    "qualification",
    "type",
    "favorite",
    "campaignId",
    "salesStage",
    "referralProgram",
    "dealSensitivity",
    "target",
    "customerProfile",
    "consent",
    "details",
    "team",
    "inviteContext",
    "trackingInfo",
)


def replace_referral(doc: dict[str, Any], body: Any, *, now: datetime) -> dict[str, Any]:
    """PUT /referrals/{id} (documented, obsolete): the whole document sent back with changes.

    Writable fields present in ``body`` replace the stored ones (validated as on create); absent ones
    are kept (the documents do not say they are cleared); status/substatus follow the lifecycle.
    """
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be the referral as a JSON object.", field="body")
    body = normalise_keys(body)
    problems: list[str] = []
    if body.get("id") not in (None, doc.get("id")):
        problems.append(f"id {body.get('id')!r} does not match the referral addressed ({doc.get('id')})")
    _check_enum(problems, "type", body.get("type"), ReferralType, required=False)
    _check_enum(problems, "qualification", body.get("qualification"), ReferralQualification, required=False)
    if body.get("customerProfile") is not None:
        _check_customer(problems, body["customerProfile"])
    if body.get("details") is not None:
        _check_details(problems, body["details"])
    _check_consent(problems, body.get("consent"))
    _check_members(problems, "team", body.get("team"))
    _check_targets(problems, body.get("target"))
    _check_top_text(problems, body)
    if body.get("salesStage") is not None and body.get("salesStage") != doc.get("salesStage"):
        _check_enum(problems, "salesStage", body.get("salesStage"), SalesStage)
    if problems:
        raise _invalid("The referral cannot be replaced", problems)
    new = copy.deepcopy(doc)
    for name in PUT_FIELDS:
        if name in body:
            new[name] = _normalise_details(body[name]) if name == "details" else body[name]
    change = {
        k: body[k] for k in ("status", "substatus") if isinstance(body.get(k), str) and body[k] != doc.get(k)
    }
    stamp = format_wire(now)
    if change:
        _change_status(new, change, stamp)
    new["updatedDateTime"] = stamp
    return _validated(new, "The referral cannot be replaced", before=doc)


def apply_patch(doc: dict[str, Any], operations: Any, *, now: datetime) -> dict[str, Any]:
    """Apply a JSON-Patch array to a copy of ``doc``: all operations or none (raises on the first problem)."""
    if not isinstance(operations, list) or not operations:
        raise InvalidInput(
            "The PATCH body must be a non-empty JSON array of operations like "
            '[{"op": "replace", "path": "/status", "value": "Active"}].',
            field="body",
        )
    new = copy.deepcopy(doc)
    status_change: dict[str, Any] = {}
    registration_add: Any = None
    registration_updates: list[tuple[str, Any]] = []
    for index, raw in enumerate(operations):
        op, path, value = _operation(index, raw)
        if path == REGISTRATION_ADD_POINTER:
            if op != "add":
                raise _bad_path(index, path, f"use op 'add' with {REGISTRATION_ADD_POINTER}")
            if registration_add is not None:
                raise InvalidInput("Add only one deal registration per request.", field=path)
            registration_add = value
        elif path in REGISTRATION_POINTERS:
            registration_updates.append((path, value))
        elif path in REFERRAL_POINTERS:
            if path.endswith("/-") and op != "add":
                raise _bad_path(index, path, "'-' appends to a list and goes with op 'add'")
            if path in ("/status", "/substatus"):
                if not isinstance(value, str):
                    raise InvalidInput(
                        f"{path[1:]} must be text, not {value!r}.", field=path[1:], value=value
                    )
                status_change[path[1:]] = value
            else:
                _set(new, path, _VALIDATORS[path](path, value))
        else:
            raise _bad_path(index, path, None)
    if registration_add is not None and registration_updates:
        raise InvalidInput(
            "Create a deal registration or update one, not both in the same request.", field="path"
        )

    stamp = format_wire(now)
    if status_change:
        _change_status(new, status_change, stamp)
    if registration_add is not None:
        _add_registration(new, registration_add, now)
    if registration_updates:
        _update_registration(new, registration_updates, now)
    new["updatedDateTime"] = stamp
    return _validated(new, "The change cannot be applied", before=doc)


def is_expiry_due(doc: dict[str, Any], now: datetime) -> bool:
    if doc.get("direction") != "Incoming" or doc.get("status") != "New":
        return False
    created = parse_wire(doc.get("createdDateTime") or "")
    return created is not None and created + timedelta(days=lifecycle.EXPIRY_DAYS) <= now


def expire_if_due(doc: dict[str, Any], now: datetime) -> bool:
    """Close an unanswered incoming referral 14 days after it arrived (Closed/Expired); True if it did."""
    if not is_expiry_due(doc, now):
        return False
    created = parse_wire(doc["createdDateTime"])
    assert created is not None
    expired_at = format_wire(created + timedelta(days=lifecycle.EXPIRY_DAYS))
    doc.update(
        status="Closed",
        substatus="Expired",
        closedDateTime=expired_at,
        expirationDateTime=expired_at,
        updatedDateTime=format_wire(now),
        eTag=new_etag(now),
    )
    return True


# --- create checks --------------------------------------------------------------------------------


def _check_customer(problems: list[str], customer: Any) -> None:
    if not isinstance(customer, dict):
        problems.append("customerProfile must be an object")
        return
    name = customer.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("customerProfile.name is required (the customer's company name)")
    elif len(name) > MAX_TEXT:
        problems.append(f"customerProfile.name is longer than {MAX_TEXT} characters")
    address = customer.get("address")
    if address is not None:
        if not isinstance(address, dict):
            problems.append("customerProfile.address must be an object")
        else:
            for key, text in address.items():
                _check_text(problems, f"customerProfile.address.{key}", text, MAX_TEXT)
            _check_country(problems, "customerProfile.address.country", address.get("country"))
    size = customer.get("size")
    if size not in (None, ""):
        _check_enum(problems, "customerProfile.size", size, CustomerSize)
    _check_members(problems, "customerProfile.team", customer.get("team"))


def _check_consent(problems: list[str], consent: Any) -> None:
    if consent is None:
        return
    if not isinstance(consent, dict):
        problems.append("consent must be an object of true/false flags")
        return
    for key, flag in consent.items():
        if flag is not None and not isinstance(flag, bool):
            problems.append(f"consent.{key} must be true or false, not {flag!r}")


# The referral's own text fields (not nested), with their limits: from the field table.
_TOP_TEXT = tuple(
    (f.pointer[1:], f.limit or MAX_TEXT) for f in FIELDS if f.kind == "text" and f.pointer.count("/") == 1
)


def _check_top_text(problems: list[str], body: dict[str, Any]) -> None:
    for name, limit in _TOP_TEXT:
        _check_text(problems, name, body.get(name), limit)


def _check_details(problems: list[str], details: Any) -> None:
    if not isinstance(details, dict):
        problems.append("details must be an object")
        return
    if "dealValue" in details and details["dealValue"] is not None:
        try:
            _deal_value("details.dealValue", details["dealValue"])
        except InvalidInput as err:
            problems.append(err.message.rstrip("."))
    if details.get("currency") not in (None, ""):
        _check_currency(problems, "details.currency", details.get("currency"))
    if (
        details.get("closingDateTime") is not None
        and _datetime_or_none(details.get("closingDateTime")) is None
    ):
        problems.append(
            f"details.closingDateTime must be an ISO 8601 date and time, not {details['closingDateTime']!r}"
        )
    _check_text(problems, "details.notes", details.get("notes"), MAX_NOTES)
    requirements = details.get("requirements")
    if requirements is not None and not isinstance(requirements, dict):
        problems.append("details.requirements must be an object")
    elif isinstance(requirements, dict):
        for key in ("industries", "products", "services", "solutions", "offers", "salesPlays"):
            items = requirements.get(key)
            if items is not None and not isinstance(items, list):
                problems.append(f"details.requirements.{key} must be a list")
        for solution in requirements.get("solutions") or []:
            try:
                _solution("details.requirements.solutions", solution)
            except InvalidInput as err:
                problems.append(err.message.rstrip("."))


def _normalise_details(details: dict[str, Any]) -> dict[str, Any]:
    out = dict(details)
    if out.get("dealValue") is not None:
        out["dealValue"] = _deal_value("details.dealValue", out["dealValue"])
    if out.get("closingDateTime") is not None:
        out["closingDateTime"] = _datetime_or_none(out["closingDateTime"])
    if out.get("currency"):
        out["currency"] = str(out["currency"]).upper()
    return out


def _check_members(problems: list[str], where: str, members: Any) -> None:
    if members is None:
        return
    if not isinstance(members, list):
        problems.append(f"{where} must be a list of people")
        return
    for i, member in enumerate(members):
        try:
            _member(f"{where}[{i}]", member)
        except InvalidInput as err:
            problems.append(err.message.rstrip("."))


def _check_targets(problems: list[str], targets: Any) -> None:
    if targets is None:
        return
    if not isinstance(targets, list):
        problems.append("target must be a list of {type, id}")
        return
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            problems.append(f"target[{i}] must be an object with type and id")
            continue
        _check_enum(problems, f"target[{i}].type", target.get("type"), TargetType)
        _check_text(problems, f"target[{i}].id", target.get("id"), MAX_TEXT)


def _check_enum(problems: list[str], where: str, value: Any, enum: Any, *, required: bool = False) -> None:
    if value is None and not required:
        return
    allowed = [str(m) for m in enum]
    if value not in allowed:
        problems.append(f"{where} {value!r} is not one of: {', '.join(allowed)}")


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
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"[A-Z]{2}", value)
        or (_COUNTRIES and value not in _COUNTRIES)
    ):
        problems.append(f"{where} {value!r} is not an ISO 3166-1 alpha-2 country code such as US, GB or DE")


def _check_currency(problems: list[str], where: str, value: Any) -> None:
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"[A-Za-z]{3}", value)
        or (_CURRENCIES and value.upper() not in _CURRENCIES)
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


def _check_for(wire: WireField) -> Callable[[str, Any], Any]:
    """The sandbox's check of a PATCH value, from the field's row in the domain's field table."""
    if wire.kind == "text":
        return _text(wire.limit or MAX_TEXT)
    if wire.kind == "enum":
        return _enum(wire.enum, nullable=wire.nullable)
    return _CHECKS[wire.kind]


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "amount": _deal_value,
    "currency": _currency,
    "datetime": _datetime,
    "bool": _boolean,
    "member": _member,
    "members": _members,
    "solution": _solution,
    "solutions": _solutions,
}
_VALIDATORS = {f.pointer: _check_for(f) for f in REFERRAL_FIELDS}
_REGISTRATION_VALIDATORS = {
    f.pointer.removeprefix("/registrations/0/"): _check_for(f) for f in REGISTRATION_FIELDS
}


# --- PATCH mechanics ------------------------------------------------------------------------------


def _operation(index: int, raw: Any) -> tuple[str, str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"Operation {index} must be an object with op, path and value.", field=f"[{index}]"
        )
    raw = {(k[:1].lower() + k[1:] if isinstance(k, str) else k): v for k, v in raw.items()}
    op, path = raw.get("op"), raw.get("path")
    if not isinstance(op, str) or op.lower() not in ("add", "replace"):
        raise InvalidInput(
            f"Operation {index}: op {op!r} is not supported; the service accepts only 'add' and 'replace'.",
            field=f"[{index}].op",
            value=op,
            allowed=("add", "replace"),
        )
    if not isinstance(path, str) or not path.startswith("/"):
        raise _bad_path(index, path, None)
    if "value" not in raw:
        raise InvalidInput(f"Operation {index} ({op} {path}) has no value.", field=f"[{index}].value")
    normalised = "/".join(seg[:1].lower() + seg[1:] for seg in path.split("/"))
    return op.lower(), normalised, raw["value"]


def _bad_path(index: int, path: Any, why: str | None) -> InvalidInput:
    allowed = (*REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, *REGISTRATION_POINTERS)
    reason = why or "this path cannot be changed"
    return InvalidInput(
        f"Operation {index}: path {path!r} is not allowed ({reason}). Allowed paths: {', '.join(allowed)}.",
        field=f"[{index}].path",
        value=path,
        allowed=allowed,
    )


def _field(path: str) -> str:
    return path.strip("/").replace("/", ".")


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip("/").split("/")
    append = parts[-1] == "-"
    if append:
        parts = parts[:-1]
    target: Any = doc
    for part in parts[:-1]:
        if isinstance(target, list):  # an index into an existing list (/registrations/0/solutionDetails/0/…)
            index = int(part) if part.isdigit() else -1
            if not 0 <= index < len(target):
                raise InvalidInput(f"{path}: there is no item {part} to change.", field=_field(path))
            if not isinstance(target[index], dict):
                target[index] = {}
            target = target[index]
            continue
        child = target.get(part)
        if not isinstance(child, dict | list):
            child = {}
            target[part] = child
        target = child
    last = parts[-1]
    if isinstance(target, list):
        index = int(last) if last.isdigit() else -1
        if not 0 <= index < len(target):
            raise InvalidInput(f"{path}: there is no item {last} to change.", field=_field(path))
        target[index] = value
    elif append:
        current = target.get(last)
        if not isinstance(current, list):
            current = []
            target[last] = current
        current.append(value)
    else:
        target[last] = value


def _change_status(doc: dict[str, Any], change: dict[str, Any], stamp: str) -> None:
    from_status, from_sub = doc.get("status"), doc.get("substatus")
    check = lifecycle.check_transition(from_status, from_sub, change.get("status"), change.get("substatus"))
    if not check.ok:
        raise LifecycleViolation(
            check.message,
            field="status",
            value=f"{change.get('status', from_status)}/{change.get('substatus', from_sub)}",
            allowed=[f"{s}/{sub}" for s, sub in check.allowed],
        )
    to_status = change.get("status", from_status)
    to_sub = change.get("substatus", from_sub)
    doc["status"], doc["substatus"] = to_status, to_sub
    if to_status == "Active" and from_status != "Active" and not doc.get("acceptedDateTime"):
        doc["acceptedDateTime"] = stamp
    if to_status == "Closed" and (from_status != "Closed" or from_sub != to_sub):
        doc["closedDateTime"] = stamp


# --- deal registrations ---------------------------------------------------------------------------


def _add_registration(doc: dict[str, Any], value: Any, now: datetime) -> None:
    unmet: list[str] = []
    status, substatus = doc.get("status"), doc.get("substatus")
    if (status, substatus) != ("Closed", "Won"):
        unmet.append(f"the referral must be Closed/Won (it is {status}/{substatus})")
    consent = doc.get("consent")
    if not isinstance(consent, dict):
        consent = {}
    if not (consent.get("consentToShareReferralWithMicrosoftSellers") is True or doc.get("type") == "Shared"):
        unmet.append(
            "the deal must be shared with Microsoft sellers (type Shared or "
            "consent.consentToShareReferralWithMicrosoftSellers true)"
        )
    created, closed = (
        parse_wire(doc.get("createdDateTime") or ""),
        parse_wire(doc.get("closedDateTime") or ""),
    )
    if status == "Closed" and substatus == "Won" and created and closed and closed - created < WIN_AFTER:
        unmet.append(
            "the referral must be marked Won at least 72 hours after it was created "
            f"(created {doc.get('createdDateTime')}, won {doc.get('closedDateTime')})"
        )
    for existing in doc.get("registrations") or []:
        if isinstance(existing, dict) and existing.get("status") not in ("Failed", "Closed"):
            unmet.append(f"the referral already has a deal registration (status {existing.get('status')})")
            break

    if not isinstance(value, dict):
        unmet.append("the registration must be an object with type, solutionDetails and contract")
        raise _not_eligible(unmet)
    value = normalise_keys(value)
    if value.get("type") != "AzureIPCoSell":
        unmet.append(f"type must be AzureIPCoSell (got {value.get('type')!r})")
    details = value.get("solutionDetails")
    solutions: list[dict[str, Any]] = []
    if not isinstance(details, list) or not details:
        unmet.append("solutionDetails must list at least one Azure IP co-sell eligible solution")
    else:
        for i, detail in enumerate(details):
            try:
                solutions.append(_registration_solution(f"/solutionDetails/{i}", detail))
            except InvalidInput as err:
                unmet.append(err.message.rstrip("."))
                continue
            if detail.get("isDeployedOnAzure") is False:
                unmet.append(
                    f"solution {detail.get('id')!r} is not deployed on Azure: such a deal is closed without a deal "
                    "registration"
                )
    contract = value.get("contract")
    try:
        contract = _contract("/contract", contract)
        unmet.extend(_contract_rules(contract))
    except InvalidInput as err:
        unmet.append(err.message.rstrip("."))
    if unmet:
        raise _not_eligible(unmet)

    names = {
        s.get("id"): s.get("name")
        for s in ((doc.get("details") or {}).get("requirements") or {}).get("solutions") or []
        if isinstance(s, dict)
    }
    for solution in solutions:
        if solution.get("id") in names and names[solution["id"]] and not solution.get("name"):
            solution["name"] = names[solution["id"]]
    stamp = format_wire(now)
    registration = {
        "id": str(uuid.uuid4()),
        "type": "AzureIPCoSell",
        "registrationDateTime": stamp,
        "status": "ReviewPending",
        "statusReason": None,
        "contract": contract,
        "solutionDetails": solutions,
        "statusHistory": {"reviewPendingDateTime": stamp},
    }
    doc.setdefault("registrations", [])
    if not isinstance(doc["registrations"], list):
        doc["registrations"] = []
    doc["registrations"].append(registration)
    doc["registrationStatus"] = "ReviewPending"


def _update_registration(doc: dict[str, Any], updates: list[tuple[str, Any]], now: datetime) -> None:
    registrations = doc.get("registrations") or []
    if not registrations or not isinstance(registrations[0], dict):
        raise InvalidInput(
            "The referral has no deal registration to update; create one with op 'add' on /registrations/-.",
            field="registrations",
        )
    registration = registrations[0]
    state = registration.get("status")
    if state != "ActionRequired":
        why = (
            f"it is {state}, a final state"
            if state in _TERMINAL_REGISTRATION
            else f"it is {state} (under review by Microsoft)"
        )
        raise InvalidInput(
            f"The deal registration can be edited only while it is ActionRequired; {why}.",
            field="registrations/0/status",
            value=state,
            allowed=("ActionRequired",),
        )
    for path, value in updates:
        rest = path.removeprefix("/registrations/0/")
        checked = _REGISTRATION_VALIDATORS[rest](path, value)
        if rest.startswith("solutionDetails/0/"):
            details = registration.get("solutionDetails")
            if not isinstance(details, list) or not details or not isinstance(details[0], dict):
                raise InvalidInput("The deal registration has no solution to update.", field=path)
        _set(registration, "/" + rest, checked)
    problems = _contract_rules(registration.get("contract") or {})
    for i, detail in enumerate(registration.get("solutionDetails") or []):
        try:
            _registration_solution(f"/registrations/0/solutionDetails/{i}", detail)
        except InvalidInput as err:
            problems.append(err.message.rstrip("."))
    if problems:
        raise _invalid("The deal registration change cannot be applied", problems)
    stamp = format_wire(now)
    registration["status"] = "ReviewPending"  # resubmitted for Microsoft's review
    history = registration.get("statusHistory")
    if not isinstance(history, dict):
        history = registration["statusHistory"] = {}
    history["reviewPendingDateTime"] = stamp
    doc["registrationStatus"] = "ReviewPending"


def _registration_solution(path: str, value: Any) -> dict[str, Any]:
    where = _field(path)
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object.", field=where)
    value = normalise_keys(value)
    if not isinstance(value.get("id"), str) or not value["id"]:
        raise InvalidInput(
            f"{where}.id is required (the solution's id, e.g. SOL-6115380-IPC).", field=f"{where}.id"
        )
    if value.get("value") is not None:
        value["value"] = _deal_value(f"{path}/value", value["value"])
    if value.get("currency") is not None:
        value["currency"] = _currency(f"{path}/currency", value["currency"])
    if "isDeployedOnAzure" not in value:
        raise InvalidInput(
            f"{where}.isDeployedOnAzure is required (true or false).", field=f"{where}.isDeployedOnAzure"
        )
    _boolean(f"{path}/isDeployedOnAzure", value["isDeployedOnAzure"])
    _enum(PrimaryDeploymentOn)(f"{path}/primaryDeploymentOn", value.get("primaryDeploymentOn"))
    _enum(PricingModel)(f"{path}/pricingModel", value.get("pricingModel"))
    market = value.get("marketplaceTransactionDetails")
    if market is not None:
        if not isinstance(market, dict):
            raise InvalidInput(f"{where}.marketplaceTransactionDetails must be an object.", field=where)
        transacted = market.get("isMarketplaceTransacted")
        if transacted is not None:
            _boolean(f"{path}/marketplaceTransactionDetails/isMarketplaceTransacted", transacted)
        when = _datetime(
            f"{path}/marketplaceTransactionDetails/marketplaceTransactionDateTime",
            market.get("marketplaceTransactionDateTime"),
        )
        if transacted and not when:
            raise InvalidInput(
                f"{where}.marketplaceTransactionDetails.marketplaceTransactionDateTime is required when the deal "
                "was transacted on the marketplace.",
                field=f"{where}.marketplaceTransactionDetails.marketplaceTransactionDateTime",
            )
        if when:
            market["marketplaceTransactionDateTime"] = when
    return value


def _contract(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(
            "contract is required: an object with term, value, currency and dates.", field="contract"
        )
    value = normalise_keys(value)
    _enum(ContractTerm)(f"{path}/term", value.get("term"))
    if value.get("value") is None:
        raise InvalidInput(
            "contract.value is required (total contract value, without hardware).", field="contract.value"
        )
    value["value"] = _deal_value(f"{path}/value", value["value"])
    if value.get("currency") is not None:
        value["currency"] = _currency(f"{path}/currency", value["currency"])
    for key in ("startDateTime", "endDateTime", "signDateTime"):
        if key in value:
            value[key] = _datetime(f"{path}/{key}", value[key])
    return value


def _contract_rules(contract: dict[str, Any]) -> list[str]:
    """The contract rules of the domain (:mod:`pcref_mcp.referrals.contract`), as the service applies
    them; a contract without a currency is read as USD."""
    value = contract.get("value")
    return [
        problem.rstrip(".")
        for problem in contract_problems(
            term=contract.get("term"),
            start=parse_wire(contract.get("startDateTime") or ""),
            end=parse_wire(contract.get("endDateTime") or ""),
            value=value if isinstance(value, int | float) and not isinstance(value, bool) else None,
            currency=contract.get("currency") or "USD",
        )
    ]


# --- helpers --------------------------------------------------------------------------------------


def _invalid(prefix: str, problems: list[str]) -> InvalidInput:
    first = problems[0].split(" ", 1)[0] if problems else None
    return InvalidInput(f"{prefix}: {'; '.join(problems)}.", field=first)


def _not_eligible(unmet: list[str]) -> NotEligible:
    return NotEligible(
        "The deal registration cannot be created: " + "; ".join(unmet) + ".",
        unmet=unmet,
    )


def _validated(doc: dict[str, Any], prefix: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Last line of defence: what is stored must read back into the Referral model as documented.

    Real-world oddities already in ``before`` (the strict profile seeds some, like a numeric mpnId)
    stay; a write may not add new ones.
    """
    try:
        read = Referral.model_validate(doc)
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
        raise _invalid(prefix, problems) from None
    known = {(p.path, p.sent) for p in Referral.model_validate(before).read_problems} if before else set()
    new = [str(p) for p in read.read_problems if (p.path, p.sent) not in known]
    if new:  # the tolerant reader would have had to guess: not a document this service writes
        raise _invalid(prefix, new[:5])
    return doc


# Statuses a registration may hold (re-exported for the seed generator).
REGISTRATION_STATES = tuple(str(s) for s in RegistrationStatus)
