"""What the service checks and decides: creating a referral, applying a PATCH, deal registrations,
expiry. Pure functions over wire documents (dicts), so the HTTP layer only moves bytes.

Every refusal is an :class:`~pcref_mcp.errors.InvalidInput` (or its ``LifecycleViolation`` and
``NotEligible`` kinds) whose message names the field, the value and what is allowed, because the
person reading it through an assistant needs to know what to change.

This module is the service's decisions and the names the rest of the sandbox imports; the checks
live by job: ``checks`` (the values a request carries), ``patching`` (a JSON-Patch's mechanics and
status changes), ``registrations`` (deal registrations).
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

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import lifecycle
from pcref_mcp.referrals.contacts import is_email as is_email
from pcref_mcp.referrals.fields import REGISTRATION_ADD_POINTER
from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_POINTERS
from pcref_mcp.sandbox.checks import _REGISTRATION_VALIDATORS as _REGISTRATION_VALIDATORS
from pcref_mcp.sandbox.checks import (
    _VALIDATORS,
    _check_consent,
    _invalid,
    _normalise_details,
    check_body,
    check_customer_name,
    normalise_keys,
)
from pcref_mcp.sandbox.checks import MAX_NOTES as MAX_NOTES
from pcref_mcp.sandbox.checks import MAX_TEXT as MAX_TEXT
from pcref_mcp.sandbox.checks import _member as _member
from pcref_mcp.sandbox.clock import format_wire, parse_wire
from pcref_mcp.sandbox.patching import _bad_path, _change_status, _operation, _set
from pcref_mcp.sandbox.registrations import REGISTRATION_STATES as REGISTRATION_STATES
from pcref_mcp.sandbox.registrations import WIN_AFTER as WIN_AFTER
from pcref_mcp.sandbox.registrations import _add_registration, _update_registration

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

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


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
    customer, consent, details = body.get("customerProfile"), body.get("consent"), body.get("details")
    check_customer_name(problems, customer)
    _check_consent(problems, consent)
    check_body(problems, body)

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
        "inviteContext": body.get("inviteContext"),
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
    check_customer_name(problems, body.get("customerProfile"))
    _check_consent(problems, body.get("consent"))
    check_body(problems, body, before=doc)
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


# --- helpers --------------------------------------------------------------------------------------


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
