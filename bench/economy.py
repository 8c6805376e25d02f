"""Answer economy: what a search answer costs the model's context, next to the raw API JSON.

A default ``search_referrals`` row vs the same referral as the service returns it (``GET
/referrals/{id}`` body), and a 50-row answer (structured content + text content) vs the raw
50-referral page the service returns for the same query.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import mcp_session, progress, wire_bytes


def run(size: int = 200, rows: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pcref-bench-economy-") as tmp:
        return asyncio.run(_run(Path(tmp), size, rows))


async def _run(tmp: Path, size: int, rows: int) -> dict[str, Any]:
    import httpx

    async with mcp_session(tmp, size=size) as (client, _runtime, app):
        result = await client.call_tool("search_referrals", {"limit": rows})
        assert not result.is_error, result
        structured = result.structured_content or {}
        text = "".join(getattr(c, "text", "") for c in result.content)
        answer_rows = structured["rows"]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://sandbox.local/v1.0/engagements/",
            headers={"Authorization": "Bearer bench"},
        ) as raw:
            raw_docs = []
            for r in answer_rows:
                response = await raw.get(f"referrals/{r['id']}")
                response.raise_for_status()
                raw_docs.append(len(response.content))
            page = await raw.get(
                "referrals", params={"$orderby": "updatedDateTime desc", "$top": str(rows), "$count": "true"}
            )
            page.raise_for_status()
            raw_page_bytes = len(page.content)
        row_bytes = [wire_bytes(r) for r in answer_rows]
        per_row_ratio = [d / b for d, b in zip(raw_docs, row_bytes, strict=True)]
        first = {"row_bytes": row_bytes[0], "raw_bytes": raw_docs[0], "ratio": raw_docs[0] / row_bytes[0]}
        answer = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        progress(f"answer economy: {len(answer_rows)} rows measured")
        return {
            "first_row": first,
            "median_row_bytes": statistics.median(row_bytes),
            "median_raw_bytes": statistics.median(raw_docs),
            "median_ratio": statistics.median(per_row_ratio),
            "min_ratio": min(per_row_ratio),
            "rows": len(answer_rows),
            "answer_structured_bytes": wire_bytes(structured),
            "answer_text_bytes": len(text.encode()),
            "answer_total_bytes": wire_bytes(answer),
            "raw_page_bytes": raw_page_bytes,
            "example_row": answer_rows[0],
        }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1, ensure_ascii=False), file=sys.stdout)
