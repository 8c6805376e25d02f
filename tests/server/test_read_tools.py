"""Read tools through the in-memory MCP client: listing, search, get, resources, prompts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.server.app import build_server
from tests.server.conftest import Sandbox, call, call_error

pytestmark = pytest.mark.anyio

READ_TOOLS = {"search_referrals", "get_referral", "recent_changes", "search", "fetch"}
WRITE_TOOLS = {"update_field", "create_referral", "register_deal", "undo_change", "batch_update"}


async def test_tool_list_names_annotations_and_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name in READ_TOOLS:
        assert tools[name].annotations.read_only_hint is True
    for name in WRITE_TOOLS:
        assert tools[name].annotations.read_only_hint is False
        assert "confirm_token" in tools[name].input_schema["properties"]
        # resolved parameters never reach the model
        assert "plan" not in tools[name].input_schema["properties"]
        assert "approval" not in tools[name].input_schema["properties"]
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert "title" not in json.dumps(tool.input_schema).replace('"title":', "title")  # compacted


async def test_read_only_mode_hides_and_refuses_writes(settings: Any, runtime: Any) -> None:
    server = build_server(settings.model_copy(update={"read_only": True}), runtime=runtime)
    async with Client(server) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == READ_TOOLS
        result = await c.call_tool(
            "update_field", {"referral_id": "x", "changes": [{"field": "notes", "value": "x"}]}
        )
        assert result.is_error
        assert "Unknown tool" in result.content[0].text  # type: ignore[union-attr]


async def test_search_defaults_to_compact_rows_with_total(client: Client, sandbox: Sandbox) -> None:
    out = await call(client, "search_referrals", {})
    # a total only where the service counts all matches (the strict profile's count is per page)
    assert out.get("total") == (None if sandbox.strict else await sandbox.count())
    assert 0 < len(out["rows"]) <= 20
    row = out["rows"][0]
    assert set(row) <= {
        "id",
        "name",
        "customer",
        "status",
        "value",
        "currency",
        "closing",
        "updated",
        "direction",
    }
    assert row["name"].startswith("«") and row["name"].endswith("»")
    assert "/" in row["status"]


async def test_search_filters_run_on_the_service(client: Client, sandbox: Sandbox) -> None:
    out = await call(
        client,
        "search_referrals",
        {"filters": {"direction": "Incoming", "status": ["New"]}, "limit": 100, "fields": ["etag"]},
    )
    expected = await sandbox.find("direction eq 'Incoming' and status eq 'New'")
    assert {r["id"] for r in out["rows"]} == {r["id"] for r in expected}
    assert out["total"] == len(expected)
    assert all(r["status"].startswith("New/") and r["direction"] == "Incoming" for r in out["rows"])
    assert all(r["extra"]["etag"] for r in out["rows"])


async def test_search_value_and_date_ranges(client: Client) -> None:
    out = await call(
        client, "search_referrals", {"filters": {"min_value": 100000}, "sort": "value_asc", "limit": 50}
    )
    values = [r["value"] for r in out["rows"]]
    assert values == sorted(values) and all(v >= 100000 for v in values)
    msg = await call_error(client, "search_referrals", {"filters": {"min_value": 10, "max_value": 5}})
    assert "min_value 10" in msg


async def test_search_cursor_pages_through_everything(client: Client, sandbox: Sandbox) -> None:
    seen: list[str] = []
    args: dict[str, Any] = {"limit": 25, "sort": "created_asc"}
    for _ in range(10):
        out = await call(client, "search_referrals", args)
        seen += [r["id"] for r in out["rows"]]
        if not out.get("next_cursor"):
            break
        args = {"cursor": out["next_cursor"]}
    assert len(seen) == len(set(seen)) == await sandbox.count()


async def test_forged_cursor_is_refused(client: Client) -> None:
    msg = await call_error(client, "search_referrals", {"cursor": "aHR0cHM6Ly9ldmlsLmV4YW1wbGUvcmVmZXJyYWxz"})
    assert "cursor" in msg and "search_referrals again" in msg


async def test_search_with_injection_shaped_text_is_escaped(client: Client) -> None:
    out = await call(client, "search_referrals", {"filters": {"text": "x') or (1 eq 1"}})
    assert out["rows"] == [] and out["total"] == 0


async def test_get_referral_sections_etag_and_quoting(client: Client, sandbox: Sandbox) -> None:
    target = (await sandbox.find("direction eq 'Incoming'"))[0]
    out = await call(client, "get_referral", {"referral_id": target["id"]})
    assert out["etag"] == target["eTag"]
    doc = out["referral"]
    assert doc["name"] == f"«{target['name']}»"
    assert "team" not in doc and "team" not in doc.get("customerProfile", {})  # contacts only on request
    contacts = await call(client, "get_referral", {"referral_id": target["id"], "sections": ["contacts"]})
    assert "team" in contacts["referral"]


async def test_get_unknown_referral_names_the_id(client: Client) -> None:
    msg = await call_error(client, "get_referral", {"referral_id": "00000000-0000-0000-0000-000000000000"})
    assert "00000000-0000-0000-0000-000000000000" in msg or "not found" in msg.lower()
    assert "correlation id" in msg


async def test_connector_search_and_fetch(client: Client, sandbox: Sandbox) -> None:
    target = (await sandbox.find("direction eq 'Outgoing'"))[0]
    word = target["customerProfile"]["name"].split()[0]
    hits = await call(client, "search", {"query": word})
    assert any(h["id"] == target["id"] for h in hits["results"])
    doc = await call(client, "fetch", {"id": target["id"]})
    assert doc["url"] == f"referral://{target['id']}"
    assert json.loads(doc["text"])["id"] == target["id"]


async def test_resources_catalogs_lifecycle_fields_and_referral(client: Client, sandbox: Sandbox) -> None:
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {
        "catalog://products",
        "catalog://countries",
        "catalog://currencies",
        "pcref://lifecycle",
        "pcref://fields",
        "pcref://schema/referral",
    } <= uris
    lifecycle = json.loads((await client.read_resource("pcref://lifecycle")).contents[0].text)  # type: ignore[union-attr]
    assert lifecycle["transitions"]["Closed"] == ["Closed"]
    fields = json.loads((await client.read_resource("pcref://fields")).contents[0].text)  # type: ignore[union-attr]
    assert any(f["name"] == "deal value" and f["pointer"] == "/details/dealValue" for f in fields)
    target = (await sandbox.find("direction eq 'Incoming'"))[0]
    doc = json.loads((await client.read_resource(f"referral://{target['id']}")).contents[0].text)  # type: ignore[union-attr]
    assert doc["id"] == target["id"]


async def test_prompts_are_loaded_from_files(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert {
        "triage_incoming",
        "update_from_meeting_notes",
        "weekly_pipeline_review",
        "register_won_deal",
        "create_cosell_referral",
    } <= set(prompts)
    args = {a.name for a in prompts["update_from_meeting_notes"].arguments or []}
    assert args == {"referral", "meeting_notes"}
    got = await client.get_prompt(
        "update_from_meeting_notes", {"referral": "Contoso", "meeting_notes": "won at 120k"}
    )
    assert "won at 120k" in got.messages[0].content.text  # type: ignore[union-attr]
