"""HTTP error responses -> :mod:`pcref_mcp.errors`.

The referrals API has been seen with three error bodies (research notes, section 5), and nobody has
published which one it uses today, so all are read:

* Partner API: ``{"error": {"code", "message", "target", "innerError": {"code", "message"}}}``
* classic Partner Center: ``{"code", "description", "data": [...], "source"}``
* throttling: ``{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}``

An OData error's ``details[]`` entries are kept (up to :data:`_MAX_DETAILS`), and a body that is plain
text (a gateway's or proxy's own words) is kept too, trimmed. HTML pages are not shown (they say
nothing a person can act on and may hold anything). The service's words are others' text: they are
quoted («…») wherever they reach the model. The resulting message carries them, the code and what
the person can do; it never carries the request body or any header but the ids support needs.
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
from pcref_mcp.referrals.untrusted import quote

__all__ = ["ServiceErrorBody", "error_from_response", "parse_error_body", "parse_retry_after"]

_MAX_MESSAGE = 600  # the service allows 1024; keep tool output readable
_MAX_PLAIN = 300  # a plain-text body: a gateway's sentence, not a page
_MAX_DETAILS = 5
_STALE_CODES = frozenset({"resourcemodified", "preconditionfailed"})


@dataclass(frozen=True)
class ServiceErrorBody:
    """What the service said, whichever shape it used."""

    code: str | None = None
    message: str | None = None
    target: str | None = None
    inner_code: str | None = None
    inner_message: str | None = None
    details: tuple[str, ...] = ()  # OData error.details[]: "target: message [code]" each
    plain: str | None = None  # a body that is plain text, not JSON
    html: bool = False  # an HTML page (not shown)


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
        text += f": {quote(_clip(said))}"
    elif body.plain:
        text += f", in plain text: {quote(_clip(body.plain, _MAX_PLAIN))}"
    elif body.html:
        text += " with an HTML page (not shown)"
    code = body.code or body.inner_code
    if code and code not in text:
        text += f" [{code}]"
    if body.inner_message and body.message and body.inner_message != body.message:
        text += f" (inner error{f' {body.inner_code}' if body.inner_code else ''}: {quote(_clip(body.inner_message))})"
    if body.details:
        shown = [quote(_clip(d, _MAX_PLAIN)) or "" for d in body.details[:_MAX_DETAILS]]
        more = len(body.details) - len(shown)
        text += "; details: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
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
    """Read any of the known error shapes; plain text is kept as ``plain``; HTML and empty bodies
    yield an empty body (``html`` says which)."""
    try:
        doc = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return _not_json(response)
    if isinstance(doc, str):  # a JSON string: plain text in quotes
        return ServiceErrorBody(plain=_text(doc))
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
            details=_details(err.get("details")),
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


def _clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _not_json(response: httpx.Response) -> ServiceErrorBody:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = response.content.decode("utf-8", errors="replace").strip()
    if not raw:
        return ServiceErrorBody()
    looks_html = raw[:1] == "<" or "html" in kind or "xml" in kind
    if looks_html:
        return ServiceErrorBody(html=True)
    return ServiceErrorBody(plain=raw)


def _details(value: Any) -> tuple[str, ...]:
    """OData ``error.details``: each ``{code, message, target}`` as "target: message [code]"."""
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if not isinstance(item, dict):
            continue
        message, code, target = _text(item.get("message")), _text(item.get("code")), _text(item.get("target"))
        if not (message or code):
            continue
        text = f"{target}: " if target else ""
        text += message or ""
        if code:
            text += f" [{code}]" if message else code
        out.append(text.strip())
    return tuple(out)
