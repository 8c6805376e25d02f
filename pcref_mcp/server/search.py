"""search_referrals: filters a person would use, translated to one server-side OData query.

Never fetch-all-then-filter: the service filters, sorts and pages (100 per page at most). The cursor
handed to the model is signed, so a model cannot point the client (and its bearer token) at another
host or forge a query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals.models import (
    Referral,
    ReferralDirection,
    ReferralQualification,
    ReferralStatus,
    ReferralSubstatus,
    ReferralType,
)

if TYPE_CHECKING:
    from pcref_mcp.server.runtime import Runtime

Sort = Literal[
    "updated_desc",
    "updated_asc",
    "created_desc",
    "created_asc",
    "closing_asc",
    "closing_desc",
    "value_desc",
    "value_asc",
]
SORTS: dict[str, tuple[str, str]] = {
    "updated_desc": ("updatedDateTime", "desc"),
    "updated_asc": ("updatedDateTime", "asc"),
    "created_desc": ("createdDateTime", "desc"),
    "created_asc": ("createdDateTime", "asc"),
    "closing_asc": ("details/closingDateTime", "asc"),
    "closing_desc": ("details/closingDateTime", "desc"),
    "value_desc": ("details/dealValue", "desc"),
    "value_asc": ("details/dealValue", "asc"),
}

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Filters(BaseModel):
    """All given filters must match (AND); a list matches any of its values."""

    model_config = ConfigDict(extra="forbid")

    status: list[ReferralStatus] | None = None
    substatus: list[ReferralSubstatus] | None = None
    direction: ReferralDirection | None = None
    type: ReferralType | None = None
    qualification: ReferralQualification | None = None
    name_contains: Text | None = None
    customer_contains: Text | None = None
    text: Text | None = Field(default=None, description="In name, customer or notes")
    engagement_id: Text | None = None
    external_reference_id: Text | None = None
    country: Annotated[str, Field(pattern="^[A-Za-z]{2}$")] | None = None
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    closing_from: date | None = None
    closing_to: date | None = None
    min_value: Annotated[float, Field(ge=0)] | None = None
    max_value: Annotated[float, Field(ge=0)] | None = None


@dataclass
class Page:
    referrals: list[Referral]
    total: int | None
    next_cursor: str | None
    note: str | None = None


async def run(runtime: Runtime, filters: Filters, sort: str, limit: int, cursor: str | None) -> Page:
    """One page of matches. The cursor resumes either the service's own nextLink (followed verbatim)
    or, where the service treats $top as a total and gives none, the same query with $skip."""
    client = runtime.client
    signer = _CursorSigner(runtime.cursor_key)
    if cursor:
        state = signer.open(cursor)
        if "link" in state:
            page = await client.list_page(next_link=state["link"])
            query = None
        else:
            query = odata.Query(
                filter=odata.Expr(state["filter"]) if state.get("filter") else None,
                orderby=state["orderby"],
                top=state["top"],
                skip=state["skip"],
                count=True,
            )
            page = await client.list_page(query)
    else:
        field, direction = SORTS[sort]
        expr = to_filter(filters)
        query = odata.Query(filter=expr, orderby=[f"{field} {direction}"], top=limit, skip=0, count=True)
        page = await client.list_page(query)
    rows = list(page.value[: query.top if query and query.top else len(page.value)])
    next_cursor = None
    if page.odata_next_link:
        next_cursor = signer.seal({"link": page.odata_next_link})
    elif query is not None and query.top and page.odata_count is not None:
        offset = (query.skip or 0) + len(rows)
        if rows and offset < page.odata_count:
            next_cursor = signer.seal(
                {
                    "filter": str(query.filter) if query.filter else None,
                    "orderby": [
                        str(o) if isinstance(o, str) else f"{o.path} {o.direction}" for o in query.orderby
                    ],
                    "top": query.top,
                    "skip": offset,
                }
            )
    return Page(referrals=rows, total=page.odata_count, next_cursor=next_cursor, note=page.note)


def to_filter(filters: Filters) -> odata.Expr | None:
    """The OData $filter for these filters (escaped by the builder), or None for "everything"."""
    parts: list[odata.Expr] = []
    for path, values in (("status", filters.status), ("substatus", filters.substatus)):
        if values:
            parts.append(
                odata.or_(*(odata.eq(path, str(v)) for v in values))
                if len(values) > 1
                else odata.eq(path, str(values[0]))
            )
    for path, value in (
        ("direction", filters.direction),
        ("type", filters.type),
        ("qualification", filters.qualification),
        ("engagementId", filters.engagement_id),
        ("externalReferenceId", filters.external_reference_id),
    ):
        if value is not None:
            parts.append(odata.eq(path, str(value)))
    if filters.country:
        parts.append(odata.eq("customerProfile/address/country", filters.country.upper()))
    if filters.name_contains:
        parts.append(odata.contains("name", filters.name_contains))
    if filters.customer_contains:
        parts.append(odata.contains("customerProfile/name", filters.customer_contains))
    if filters.text:
        parts.append(
            odata.or_(
                odata.contains("name", filters.text),
                odata.contains("customerProfile/name", filters.text),
                odata.contains("details/notes", filters.text),
            )
        )
    for path, start, end in (
        ("createdDateTime", filters.created_from, filters.created_to),
        ("updatedDateTime", filters.updated_from, filters.updated_to),
        ("details/closingDateTime", filters.closing_from, filters.closing_to),
    ):
        if start and end and start > end:
            raise InvalidInput(f"The date range for {path} ends ({end}) before it starts ({start}).")
        if start:
            parts.append(odata.ge(path, datetime.combine(start, time.min)))
        if end:
            parts.append(odata.lt(path, datetime.combine(end + timedelta(days=1), time.min)))
    if (
        filters.min_value is not None
        and filters.max_value is not None
        and filters.min_value > filters.max_value
    ):
        raise InvalidInput(f"min_value {filters.min_value} is above max_value {filters.max_value}.")
    if filters.min_value is not None:
        parts.append(odata.ge("details/dealValue", filters.min_value))
    if filters.max_value is not None:
        parts.append(odata.le("details/dealValue", filters.max_value))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else odata.and_(*parts)


class _CursorSigner:
    """Seals the service's nextLink into an opaque cursor only this server session can open."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, state: dict[str, Any]) -> str:
        raw = json.dumps(state, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def open(self, cursor: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            blob = b""
        mac, raw = blob[:12], blob[12:]
        if len(blob) <= 12 or not hmac.compare_digest(
            mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        ):
            raise InvalidInput(
                "This cursor is not one this server handed out (or it belongs to an earlier session).",
                field="cursor",
                hint="Run search_referrals again without cursor to start from the first page.",
            )
        state: dict[str, Any] = json.loads(raw)
        return state
