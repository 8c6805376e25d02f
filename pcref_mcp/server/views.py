"""The one place a referral becomes what the model sees.

Rows are compact (a search answer of 50 rows must stay small in the model's context), contact
details are left out unless asked for, and every piece of text that someone else wrote (names,
notes, invite notes, status reasons) is quoted as «data», so the model can tell it apart from
instructions. The tool descriptions say so; this module makes it true for every answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from pcref_mcp.referrals.lifecycle import expires_at
from pcref_mcp.referrals.untrusted import quote, quote_at, quote_fields
from pcref_mcp.server.inputs import read_as

if TYPE_CHECKING:
    from pcref_mcp.referrals.models import Referral  # the wire models: only named here

Section = Literal["overview", "customer", "details", "invite", "registrations", "contacts", "all"]
DEFAULT_SECTIONS: tuple[Section, ...] = ("overview", "customer", "details", "invite", "registrations")

# Extra row fields a caller may ask for in search_referrals(fields=...): name -> JSON pointer.
EXTRA_FIELDS: dict[str, str] = {
    "engagement_id": "/engagementId",
    "external_reference_id": "/externalReferenceId",
    "type": "/type",
    "qualification": "/qualification",
    "status_reason": "/statusReason",
    "created": "/createdDateTime",
    "country": "/customerProfile/address/country",
    "customer_size": "/customerProfile/size",
    "sales_stage": "/salesStage",
    "registration_status": "/registrationStatus",
    "invited_by": "/inviteContext/invitedBy/organizationName",
    "notes": "/details/notes",
    "etag": "/eTag",
    "expires": "/expirationDateTime",  # computed when absent: lifecycle.expires_at
}
ExtraField = Literal[
    "engagement_id",
    "external_reference_id",
    "type",
    "qualification",
    "status_reason",
    "created",
    "country",
    "customer_size",
    "sales_stage",
    "registration_status",
    "invited_by",
    "notes",
    "etag",
    "expires",
]


class ReferralRow(BaseModel):
    """A referral in one line: enough to pick it and act on it."""

    id: str
    name: str | None = Field(default=None, description="«quoted»: written by others")
    customer: str | None = Field(default=None, description="«quoted»: written by others")
    status: str = Field(description="status/substatus")
    value: float | None = None
    currency: str | None = None
    closing: str | None = Field(default=None, description="YYYY-MM-DD")
    updated: str | None = Field(default=None, description="YYYY-MM-DDTHH:MMZ")
    direction: str | None = None
    extra: dict[str, Any] | None = None


def row(referral: Referral, fields: Sequence[str] = ()) -> ReferralRow:
    details = referral.details
    customer = referral.customer_profile
    extra: dict[str, Any] | None = None
    if fields:
        wire = referral.to_wire()
        extra = {}
        for name in fields:
            if name == "expires":  # unanswered incoming only; when, not only whether
                expires = expires_at(wire)
                extra[name] = expires.strftime("%Y-%m-%d") if expires else None
                continue
            pointer = EXTRA_FIELDS[name]
            # others' text (ids they chose, notes, names) quoted by the wire key it sits under
            extra[name] = quote_at(pointer, _pointer_get(wire, pointer))
    return ReferralRow(
        id=str(referral.id),
        name=quote(referral.name),
        customer=quote(customer.name if customer else None),
        status=f"{referral.status}/{referral.substatus}",
        value=details.deal_value if details else None,
        currency=details.currency if details else None,
        closing=_date(details.closing_date_time if details else None),
        updated=_minute(referral.updated_date_time),
        direction=str(referral.direction) if referral.direction is not None else None,
        extra=extra,
    )


def detail(
    referral: Referral, sections: list[Section] | tuple[Section, ...] = DEFAULT_SECTIONS
) -> dict[str, Any]:
    """The referral's wire document cut to ``sections``, with others' text quoted."""
    wanted = set(sections)
    if "all" in wanted:
        wanted = {"overview", "customer", "details", "invite", "registrations", "contacts"}
    wire = referral.to_wire()
    wire.pop("@odata.context", None)
    wire.pop("links", None)
    out: dict[str, Any] = {}
    for key, value in wire.items():
        section = _SECTION_OF.get(key, "overview")
        if section in wanted:
            out[key] = value
    if "contacts" not in wanted:
        out.pop("team", None)
        if isinstance(out.get("customerProfile"), dict):
            out["customerProfile"] = {k: v for k, v in out["customerProfile"].items() if k != "team"}
    else:
        out["team"] = wire.get("team")
        if "customer" not in wanted:
            out["customerProfile"] = {"team": (wire.get("customerProfile") or {}).get("team")}
    out = quote_fields(out)
    if referral.read_problems:
        # Values that were not as documented: the model must know a field was normalised or left out.
        out["readProblems"] = [
            p.describe(show_values="contacts" in wanted or not _is_contact(p.path))
            for p in referral.read_problems
        ]
    return out


def respond(model: BaseModel) -> CallToolResult:
    """Structured content plus the same data as compact JSON text; empty fields left out.

    A result model with a ``read_as`` field carries how this call's arguments were read (server.inputs).
    """
    if "read_as" in type(model).model_fields and getattr(model, "read_as", None) is None:
        model = model.model_copy(update={"read_as": read_as()})
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


_SECTION_OF: dict[str, Section] = {
    "customerProfile": "customer",
    "consent": "customer",
    "details": "details",
    "target": "details",
    "inviteContext": "invite",
    "registrations": "registrations",
    "registrationStatus": "registrations",
    "team": "contacts",
}


def _is_contact(pointer: str) -> bool:
    return pointer.startswith(("/team", "/customerProfile/team"))


def _date(value: str | None) -> str | None:
    return value[:10] if value else None


def _minute(value: str | None) -> str | None:
    return f"{value[:16]}Z" if value and len(value) >= 16 else value


def _pointer_get(wire: Any, pointer: str) -> Any:
    # the PATCH rules: with the first row, not at start
    from pcref_mcp.referrals.patch_paths import pointer_get

    return pointer_get(wire, pointer)


__all__ = ["ReferralRow", "detail", "quote", "respond", "row"]
