"""What the model reads of the tools is true (issue 21, item 8): annotations under the MCP
specification's definitions, sibling tools that point at each other, descriptions that offer only
what the schema allows, one wording of each rule, and every catalog reachable by a tool call."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.referrals import catalog
from pcref_mcp.server.tools import UNTRUSTED
from tests.server.conftest import Sandbox, call, call_error
from tests.server.test_write_tools import _registration

pytestmark = pytest.mark.anyio

APPROVAL = "Writes only after the person approves"  # said once, on update_field
APPROVAL_AS = "Approval as update_field."  # every other write points at it


async def _tools(client: Client) -> dict[str, Any]:
    return {t.name: t for t in (await client.list_tools()).tools}


async def test_annotations_follow_the_specification(client: Client) -> None:
    """destructiveHint false means additive only (a create); idempotentHint true means a repeat has no
    further effect (no write here: an approved append lands twice, see below)."""
    tools = await _tools(client)
    for name, tool in tools.items():
        a = tool.annotations
        assert a is not None and a.open_world_hint is True, name
        if a.read_only_hint:
            assert a.idempotent_hint is True and a.destructive_hint is False, name
            continue
        assert a.idempotent_hint is False, name
        assert a.destructive_hint is (name != "create_referral"), name


async def test_the_same_approved_append_twice_lands_twice(client: Client, sandbox: Sandbox) -> None:
    """Why no write is idempotent: the same call, repeated after another write, writes again."""
    target = next(r for r in await sandbox.find("status eq 'Active'") if r["details"].get("notes"))
    for text in ("Called.", "Sent the quote.", "Called."):
        args = {"referral_id": target["id"], "changes": [{"field": "notes", "value": text, "mode": "append"}]}
        first = await call(client, "update_field", args)
        done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
        assert done["status"] == "applied"
    assert (await sandbox.get(target["id"]))["details"]["notes"].count("Called.") == 2


async def test_register_deal_lists_every_unmet_condition_at_once(client: Client, sandbox: Sandbox) -> None:
    """The referral's conditions and the registration's own rules in one refusal, none suggesting
    `changes` (which only fixes an existing registration)."""
    target = next(
        r
        for r in await sandbox.find("status eq 'Active' and type eq 'Independent'")
        if not r["consent"].get("consentToShareReferralWithMicrosoftSellers")
    )
    msg = await call_error(
        client,
        "register_deal",
        {"referral_id": target["id"], "registration": {**_registration(), "contract_value": 20000}},
    )
    assert "(1) The referral is Active/Accepted" in msg
    assert "not shared with Microsoft sellers" in msg and "Ask the person" in msg
    assert "is not on the referral" in msg
    assert "annual contract value above 25,000 USD" in msg
    assert "changes" not in msg


async def test_siblings_point_at_each_other_and_say_they_are_not_web_search(client: Client) -> None:
    tools = await _tools(client)
    text = {name: tool.description or "" for name, tool in tools.items()}
    assert "not the web" in text["search"] and "search_referrals" in text["search"]
    assert "get_referral" in text["fetch"] and "Partner Center" in text["fetch"]
    assert "named for ChatGPT" in text["search"] and "named for ChatGPT" in text["fetch"]
    assert "not `search`" in text["search_referrals"] and "not `fetch`" in text["get_referral"]


async def test_no_description_promises_what_no_tool_takes(client: Client) -> None:
    """No ETag "before changing it": the writes take none (they carry the previewed one themselves)."""
    tools = await _tools(client)
    for name, tool in tools.items():
        described = [d for _, _, d in _descriptions(tool.input_schema)] + [tool.description or ""]
        assert not any("etag" in d.lower() for d in described), name


def _descriptions(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any], str]]:
    """(path, schema, description) of every described schema inside ``schema``."""
    found: list[tuple[str, dict[str, Any], str]] = []
    if isinstance(schema, dict):
        if isinstance(schema.get("description"), str):
            found.append((path, schema, schema["description"]))
        for key, value in schema.items():
            found += _descriptions(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for value in schema:
            found += _descriptions(value, path)
    return found


def _described_enums(schema: Any) -> list[tuple[str, list[Any], str]]:
    """(path, enum, description) of every described schema that has an enum (or items with one)."""
    found = []
    for path, node, description in _descriptions(schema):
        items = node.get("items") if isinstance(node.get("items"), dict) else {}
        enum = node.get("enum") or items.get("enum")
        if enum:
            found.append((path, enum, description))
    return found


async def test_no_description_offers_a_value_its_enum_forbids(client: Client) -> None:
    """A value named in a description (quoted, or a Status/Substatus pair) is one the enum takes."""
    for name, tool in (await _tools(client)).items():
        for path, enum, description in _described_enums(tool.input_schema):
            named = re.findall(r"'([^']+)'|\"([^\"]+)\"|\b([A-Z][a-z]+/[A-Z][a-z]+)\b", description)
            for value in (next(v for v in groups if v) for groups in named):
                assert value in enum, f"{name}{path}: {value!r} is not one of {enum}"


async def test_one_wording_of_the_quote_rule_and_of_the_approval_rule(client: Client) -> None:
    tools = await _tools(client)
    for name, tool in tools.items():
        text = tool.description or ""
        assert text.count(UNTRUSTED) == 1, name  # every answer quotes others' text
        assert text.replace(UNTRUSTED, "").count("«") == 0, name  # and no other wording of it
        if tool.annotations and tool.annotations.read_only_hint:
            assert APPROVAL not in text and APPROVAL_AS not in text, name
        elif name == "update_field":
            assert APPROVAL in text, name
        else:
            assert APPROVAL_AS in text and APPROVAL not in text, name


@pytest.mark.parametrize("name", sorted(catalog.CATALOGS))
async def test_every_catalog_is_reachable_by_fetch(client: Client, name: str) -> None:
    """Several chat clients never let the model read resources: fetch serves the same documents."""
    got = await call(client, "fetch", {"id": f"catalog://{name}"})
    resource = await client.read_resource(f"catalog://{name}")
    assert json.loads(got["text"]) == json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    assert got["url"] == f"catalog://{name}"


async def test_fetch_lists_the_catalogs_and_refuses_an_unknown_one(client: Client) -> None:
    index = json.loads((await call(client, "fetch", {"id": "catalog://"}))["text"])
    assert {f"catalog://{n}" for n in catalog.CATALOGS} | {"pcref://fields"} <= set(index)
    msg = await call_error(client, "fetch", {"id": "catalog://colours"})
    assert "not a catalog" in msg and "catalog://products" in msg
    tools = await _tools(client)
    assert "catalog://" in (tools["fetch"].description or "")
    assert "fetch" in (tools["create_referral"].description or "")
