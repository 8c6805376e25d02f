"""``pcref-mcp audit``: the journal as JSON lines with stable fields; who, when, tool, referral,
fields, approval path, outcome, batch id and request id; contact details redacted as in previews;
filtered by time and person; paged out of the store, so every row comes out once, in order."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.workload import Workload
from pcref_mcp.errors import InvalidInput
from pcref_mcp.identity import Principal, acting_as
from pcref_mcp.ops.audit import FIELDS, SCHEMA, audit_lines, parse_moment, write_audit
from pcref_mcp.store import open_store
from pcref_mcp.writes.journal import Journal

pytestmark = pytest.mark.anyio

ADA = Principal(id="oid-ada", name="ada@contoso.example", tenant="t")
BOB = Principal(id="oid-bob", name="bob@contoso.example", tenant="t")
KEPT = {"firstName": "Kim", "lastName": "Kept", "email": "kim@fabrikam.example", "phoneNumber": "+1 555 0100"}
ADDED = {"firstName": "Nia", "lastName": "New", "email": "nia@fabrikam.example", "phoneNumber": "+1 555 0199"}


async def _lines(store: Any, **filters: Any) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in audit_lines(store, **filters)]


async def _write(journal: Journal, who: Principal, **overrides: Any) -> int:
    values: dict[str, Any] = dict(
        tool="update_field",
        kind="update",
        referral_id="r-1",
        correlation_id="corr-1",
        operations=[{"op": "replace", "path": "/details/dealValue", "value": 5}],
        before_image={"/details/dealValue": 4},
        etag_before='"1"',
    )
    values.update(overrides)
    with acting_as(who):
        change = await journal.record_intent(**values)
    await journal.record_outcome(change, "applied", etag_after='"2"', referral_id=values["referral_id"])
    return change


async def test_every_record_has_every_field_in_order_and_hides_the_contacts_a_change_is_not_about(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    journal = Journal(store)
    team = await _write(
        journal,
        ADA,
        operations=[{"op": "replace", "path": "/team", "value": [KEPT, ADDED]}],
        before_image={"/team": [KEPT]},
        summary="Sales team [batch b-42 #1]",
    )
    [line] = await _lines(store)
    assert list(line) == list(FIELDS) and line["schema"] == SCHEMA
    assert line["change_id"] == team and line["person_id"] == "oid-ada" and line["person"] == ADA.name
    assert line["fields"] == ["/team"] and line["outcome"] == "applied" and line["batch_id"] == "b-42"
    assert line["approval"] is None and line["request_id"] is None  # journaled outside any request
    text = json.dumps(line)
    assert "kim@fabrikam.example" not in text and "555 0100" not in text  # not what the change is about
    assert "nia@fabrikam.example" in text  # the contact it adds: shown, as the preview showed it
    assert "«" not in text  # a record, not a display: nothing quoted
    await store.close()


async def test_filters_by_person_and_time_and_pages_through_every_row_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    journal = Journal(store)
    ids = [await _write(journal, ADA if n % 2 == 0 else BOB) for n in range(7)]
    everything = await _lines(store, page=2)  # four pages of two
    assert [line["change_id"] for line in everything] == ids
    adas = await _lines(store, person="oid-ada", page=2)
    assert [line["change_id"] for line in adas] == ids[0::2]
    assert [line["change_id"] for line in await _lines(store, person="BOB@contoso.example", page=2)] == ids[
        1::2
    ]
    middle = everything[3]["at"]
    assert [line["change_id"] for line in await _lines(store, since=middle)] == [
        line["change_id"] for line in everything if line["at"] >= middle
    ]
    assert [line["change_id"] for line in await _lines(store, until=middle)] == [
        line["change_id"] for line in everything if line["at"] < middle
    ]
    assert await _lines(store, person="nobody") == []
    out = io.StringIO()
    assert await write_audit(store, out) == 7 and len(out.getvalue().splitlines()) == 7
    await store.close()


def test_times_are_read_as_iso_dates_or_spans_back_from_now() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert parse_moment("2026-12-01") == "2026-12-01T00:00:00.000Z"
    assert parse_moment("2026-12-01T09:30:00+01:00") == "2026-12-01T08:30:00.000Z"
    assert parse_moment("24h", now=now) == "2026-12-06T12:00:00.000Z"
    assert parse_moment("7d", now=now) == "2026-11-30T12:00:00.000Z"
    assert parse_moment(None) is None
    with pytest.raises(InvalidInput):
        parse_moment("last tuesday")


async def test_a_write_over_http_records_its_approval_path_and_request_id(serve: Any) -> None:
    served = serve()
    client = Workload(f"{served.base}/mcp", "unused")
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        found = await client.call(http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 1})
        args = {"referral_id": found["rows"][0]["id"], "changes": [{"field": "deal value", "value": 4242}]}
        preview = await client.call(http, "update_field", args)
        body = {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {
                "name": "update_field",
                "arguments": {**args, "confirm_token": preview["confirm_token"]},
            },
        }
        headers = {**client._headers_of(0), "X-Request-Id": "req-audit-0001"}
        answer = await http.post(f"{served.base}/mcp", json=body, headers=headers)
        assert '"applied"' in answer.text or "applied" in answer.text, answer.text[:300]
    [line] = await _lines(served.runtime.store)
    assert line["approval"] == "token" and line["request_id"] == "req-audit-0001"
    assert line["outcome"] == "applied" and line["fields"] == ["/details/dealValue"]


def test_the_cli_streams_json_lines_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    from pcref_mcp.cli import main

    path = tmp_path / "journal.sqlite3"

    async def seed() -> None:
        store = open_store(f"sqlite:///{path}")
        await _write(Journal(store), ADA)
        await store.close()

    anyio.run(seed)
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(path))
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "--person", "oid-ada", "--since", "2000-01-01", "-o", str(out)]) == 0
    [line] = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["person_id"] == "oid-ada" and list(line) == list(FIELDS)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert main(["audit", "--since", "yesterday-ish"]) == 2  # a time it cannot read: said, not guessed
