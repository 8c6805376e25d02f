"""Reading Partner Center's answers: a body into a read model (tolerant; refused only when it is not
a JSON object at all, with why), the ETag from the header when the body has none, and entity tags
compared however they are dressed.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from pcref_mcp.errors import ServiceError
from pcref_mcp.referrals.models import Referral, ReferralPage

logger = logging.getLogger("pcref_mcp.partner_center")

M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], response: httpx.Response, cid: str) -> M:
    """Read a response body. The read models are tolerant (odd values are normalised or left out and
    noted, unreadable page items skipped), so this fails only for a body that is not JSON or not an
    object at all."""
    what = (
        "a referral"
        if model is Referral
        else "a page of referrals"
        if model is ReferralPage
        else model.__name__
    )
    # One parse (pydantic's JSON reader), then the models' tolerant validators read the document.
    # Measured faster than model_validate_json, which builds the same Python objects for those
    # validators from its own parsed form (bench/calls.py, hot paths (e)).
    try:
        doc = from_json(response.content)
    except ValueError:
        why = "it is not JSON"
    else:
        try:
            parsed = model.model_validate(doc)
        except ValidationError as err:
            why = _unreadable(err, doc)
        else:
            for problem in getattr(parsed, "read_problems", ()):
                logger.debug("read %s: %s (correlation id %s)", model.__name__, problem.path, cid)
            return parsed
    raise ServiceError(
        f"Partner Center sent a response that cannot be read as {what}: {why}.",
        status=response.status_code,
        correlation_id=cid,
        request_id=response.headers.get("request-id"),
    )


def _unreadable(err: ValidationError, doc: Any) -> str:
    """Why a JSON body could not be read: not an object, or values that failed."""
    if not isinstance(doc, dict):
        return f"it is {_json_kind(doc)}, not an object"
    return f"{err.error_count()} value(s) could not be read"


def _json_kind(doc: Any) -> str:
    if doc is None:
        return "null"
    if isinstance(doc, list):
        return "a list"
    if isinstance(doc, str):
        return "a string"
    return "a number" if isinstance(doc, int | float) else "a JSON value"


def _with_etag(referral: Referral, response: httpx.Response) -> Referral:
    if referral.e_tag is None and response.headers.get("etag"):
        return referral.model_copy(update={"e_tag": response.headers["etag"]})
    return referral


def _same_etag(a: str | None, b: str | None) -> bool:
    """The same entity tag, however it is dressed (weak prefix, quotes, blanks)."""
    if a is None or b is None:
        return a is b
    return _bare_etag(a) == _bare_etag(b)


def _bare_etag(tag: str) -> str:
    tag = tag.strip()
    tag = tag[2:] if tag[:2].upper() == "W/" else tag
    return tag.strip().strip('"').replace('\\"', "").strip()
