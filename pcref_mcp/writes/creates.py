"""What a create sends, checked and shown before anyone approves it.

Partner Center refuses some bodies outright ("details is required"); those are refused here, before
a person is asked. Every field of every body a create will POST is listed for the preview (a
co-sell's two). And one create per external reference id runs at a time in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.fields import FIELDS, text_limit
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.write_models import MICROSOFT_ORG_ID
from pcref_mcp.writes.preview import FieldChange, field_name

__all__ = [
    "RECENT_CREATE_SECONDS",
    "Organization",
    "body_changes",
    "check_create_body",
    "create_lock",
    "leaves",
    "stamp_external_ref",
]


@dataclass(frozen=True)
class Organization:
    """Who "we" are: the fields the Partner Center UI sends about the partner (unknown: None)."""

    id: str | None = None
    name: str | None = None
    mpn_id: str | None = None


# Limits the service enforces on a new referral (the field table's; the sandbox reads the same): checked
# before a person is asked, so an approved create is not then refused.
_DETAILS_HINT = (
    "Add at least one of: deal_value with currency, closing_date, notes, products, services, industries "
    'or solutions, e.g. {"referral": {..., "deal_value": 50000, "currency": "USD", "closing_date": '
    '"2027-03-31"}}.'
)


def check_create_body(body: dict[str, Any]) -> None:
    """Refuse now what Partner Center refuses on POST (required parts, text lengths)."""
    problems: list[str] = []
    for part in ("type", "customerProfile", "consent"):
        if body.get(part) in (None, "", {}):
            problems.append(f"{part} is required")
    if not body.get("details"):
        raise InvalidInput(
            'Partner Center refuses a referral without details ("details is required"); nothing was sent.',
            field="details",
            hint=_DETAILS_HINT,
        )
    for pointer, limit in _TEXT_LIMITS:
        value = pointer_get(body, pointer)
        if isinstance(value, str) and len(value) > limit:
            problems.append(f"{field_name(pointer)} is longer than {limit:,} characters ({len(value):,})")
    for where in ("/team", "/customerProfile/team"):
        for member in pointer_get(body, where) or []:
            for key in ("firstName", "lastName", "title"):
                limit = text_limit(f"{where}/-/{key}")
                if len(str(member.get(key) or "")) > limit:
                    problems.append(f"a contact's {key} is longer than {limit} characters")
    if problems:
        raise InvalidInput("Partner Center would refuse this referral: " + "; ".join(problems) + ".")


_TEXT_LIMITS: tuple[tuple[str, int], ...] = tuple(
    (f.pointer, f.limit) for f in FIELDS if f.kind == "text" and f.limit and "/-" not in f.pointer
)


def body_changes(bodies: list[dict[str, Any]]) -> list[FieldChange]:
    """Every field of every body, as the person reads it; a second body's fields say which referral."""
    changes: list[FieldChange] = []
    for index, body in enumerate(bodies):
        prefix = (
            ""
            if index == 0 and len(bodies) == 1
            else ("referral 1: " if index == 0 else "Microsoft's referral: ")
        )
        if body.get("organizationId") == MICROSOFT_ORG_ID and len(bodies) == 1:
            prefix = "Microsoft's referral: "
        # consent first: it is the person's to confirm, so it must not hide among the other fields
        for pointer, value in sorted(leaves(body), key=lambda leaf: not leaf[0].startswith("/consent/")):
            changes.append(FieldChange(prefix + _create_field_name(pointer), pointer, None, value))
    return changes


def leaves(value: Any, pointer: str = "") -> list[tuple[str, Any]]:
    """(pointer, value) of every field a body sends; lists of scalars and lists of objects stay whole."""
    if isinstance(value, dict) and value and pointer.count("/") < 3:
        out: list[tuple[str, Any]] = []
        for key, inner in value.items():
            out += leaves(inner, f"{pointer}/{key}")
        return out
    return [(pointer, value)]


def _create_field_name(pointer: str) -> str:
    return _CREATE_NAMES.get(pointer) or pointer.lstrip("/").replace("/", ".")


_CREATE_NAMES: dict[str, str] = {
    "/name": "name",
    "/type": "type",
    "/qualification": "qualification",
    "/customerProfile/name": "customer",
    "/customerProfile/address/addressLine1": "customer address",
    "/customerProfile/address/city": "customer city",
    "/customerProfile/address/state": "customer state",
    "/customerProfile/address/postalCode": "customer postal code",
    "/customerProfile/address/country": "customer country",
    "/details/requirements/products": "products",
    "/details/requirements/services": "services",
    "/details/requirements/industries": "industries",
    "/details/requirements/solutions": "solutions",
    "/details/requirements/additionalRequirements": "additional requirements",
    "/inviteContext/invitedBy/organizationId": "invited by (organization id)",
    "/inviteContext/invitedBy/organizationName": "invited by",
    "/dealSensitivity": "deal sensitivity",
    "/target": "target",
    "/trackingInfo": "tracking info",
    "/attributes/objectType": "object type",
    "/customerProfile/size": "customer size",
    "/customerProfile/team": "customer contacts",
    "/consent/consentToShareReferralWithMicrosoftSellers": "shared with Microsoft sellers",
    "/consent/consentToContact": "customer consents to contact",
    "/consent/consentToToShareInfoWithOthers": "customer consents to sharing",
    "/details/dealValue": "deal value",
    "/details/currency": "currency",
    "/details/closingDateTime": "closing date",
    "/details/notes": "notes",
    "/inviteContext/notes": "help note",
    "/inviteContext/assistanceRequestCode": "help requested",
    "/externalReferenceId": "external reference id",
    "/engagementId": "engagement id",
    "/organizationId": "organization id",
    "/organizationName": "organization",
    "/team": "sales team",
    "/mpnId": "MPN id",
    "/campaignId": "campaign id",
}


# How far back the journal vouches for a create when the service refuses the look-up by external id.
RECENT_CREATE_SECONDS = 900.0
_LOCKS: dict[tuple[int, str], tuple[asyncio.Lock, list[int]]] = {}


@asynccontextmanager
async def create_lock(external_ref: str) -> AsyncIterator[None]:
    """Hold the process-wide lock of one external reference id (per event loop; dropped when idle)."""
    key = (id(asyncio.get_running_loop()), external_ref)
    lock, users = _LOCKS.setdefault(key, (asyncio.Lock(), [0]))
    users[0] += 1
    try:
        async with lock:
            yield
    finally:
        users[0] -= 1
        if users[0] == 0:
            _LOCKS.pop(key, None)


def stamp_external_ref(body: dict[str, Any]) -> str:
    """An external reference id derived from the body itself: the preview and the confirmed call
    stamp the same one, and the same referral asked for twice is caught as a duplicate."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "pcref-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]
