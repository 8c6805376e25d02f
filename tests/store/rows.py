"""Rows the store tests write: a journal intent as ``Journal.record_intent`` takes it."""

from __future__ import annotations

from typing import Any


def intent(**kw: Any) -> dict[str, Any]:
    """An update of one referral's deal value (1 → 2); ``kw`` overrides any argument."""
    args: dict[str, Any] = dict(
        tool="update_field",
        kind="update",
        referral_id="r-1",
        correlation_id="cid",
        operations=[{"op": "replace", "path": "/details/dealValue", "value": 2}],
        before_image={"/details/dealValue": 1},
        etag_before='"e1"',
    )
    args.update(kw)
    return args
