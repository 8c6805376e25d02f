"""HTTP error responses -> :mod:`pcref_mcp.errors`.

The referrals API has been seen with three error bodies (research notes, section 5), and nobody has
published which one it uses today, so all are read:

* Partner API: ``{"error": {"code", "message", "target", "innerError": {"code", "message"}}}``
* classic Partner Center: ``{"code", "description", "data": [...], "source"}``
* throttling: ``{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}``

The resulting message carries the service's own words and code plus what the person can do; it
never carries the request body or any header but the ids support needs.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from pcref_mcp.errors import (
    AuthenticationRequired,
    PermissionDenied,
    ResourceModified,
    ServiceError,
    Throttled,
    error_for_status,
)

__all__ = ["ServiceErrorBody", "error_from_response", "parse_error_body", "parse_retry_after"]

_MAX_MESSAGE = 600  # the service allows 1024; keep tool output readable
_STALE_CODES = frozenset({"resourcemodified", "preconditionfailed"})


@dataclass(frozen=True)
class ServiceErrorBody:
    """What the service said, whichever shape it used."""

    code: str | None = None
    message: str | None = None
    target: str | None = None
    inner_code: str | None = None
    inner_message: str | None = None


def error_from_response(
    response: httpx.Response, correlation_id: str | None, *, app_only: bool = False
) -> ServiceError:
    """The typed error for an HTTP error response (status >= 400)."""
    status = response.status_code
    body = parse_error_body(response)
    cls = error_for_status(status)
    if status == 409 and _STALE_CODES & {(body.code or "").lower(), (body.inner_code or "").lower()}:
        cls = ResourceModified  # the Partner API says "changed since you read it" with 409 too
    reason = response.reason_phrase or "error"
    text = f"Partner Center answered {status} {reason}"
    said = body.message or body.inner_message
    if said:
        text += f": {_clip(said)}"
    code = body.code or body.inner_code
    if code and code not in text:
        text += f" [{code}]"
    if not text.endswith((".", "!", "?")):
        text += "."

    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "correlation_id": correlation_id,
        "request_id": response.headers.get("request-id") or response.headers.get("ms-requestid"),
        "target": body.target,
    }
    hint = _hint(cls, code, app_only)
    if hint is not None:
        kwargs["hint"] = hint
    if cls is Throttled:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and said:
            match = re.search(r"(\d+(?:\.\d+)?)\s*seconds?", said)
            retry_after = float(match.group(1)) if match else None
        return Throttled(text, retry_after=retry_after, **kwargs)
    return cls(text, **kwargs)


def parse_error_body(response: httpx.Response) -> ServiceErrorBody:
    """Read any of the known error shapes; anything else (HTML, empty) yields an empty body."""
    try:
        doc = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return ServiceErrorBody()
    if not isinstance(doc, dict):
        return ServiceErrorBody()
    err = doc.get("error")
    if isinstance(err, dict):
        inner = err.get("innerError") or err.get("innererror") or {}
        inner = inner if isinstance(inner, dict) else {}
        return ServiceErrorBody(
            code=_text(err.get("code")),
            message=_text(err.get("message")),
            target=_text(err.get("target")),
            inner_code=_text(inner.get("code")),
            inner_message=_text(inner.get("message")),
        )
    if isinstance(err, str):  # OAuth-style {"error": "...", "error_description": "..."}
        return ServiceErrorBody(code=err, message=_text(doc.get("error_description")))
    return ServiceErrorBody(
        code=_text(doc.get("code")),
        message=_text(doc.get("description")) or _text(doc.get("message")),
        target=_text(doc.get("source")),
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --- private helpers ------------------------------------------------------------------------------


def _hint(cls: type[ServiceError], code: str | None, app_only: bool) -> str | None:
    if app_only and cls in (AuthenticationRequired, PermissionDenied):
        return (
            "Partner Center Referrals accepts only delegated (app + user) tokens; this session uses an "
            "app-only token. Set PCREF_AUTH_MODE=delegated and run `pcref-mcp login` as a user with the "
            "Referrals Admin or Referrals User role."
        )
    if cls is PermissionDenied and code and code.lower() == "insufficient_claims":
        return (
            "A Conditional Access policy needs more from this sign-in (for example MFA). Run "
            "`pcref-mcp login` again; the user also needs the Referrals Admin or Referrals User role."
        )
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):  # OData v4 sometimes sends {"lang": "en-US", "value": "..."}
        value = value.get("value")
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
