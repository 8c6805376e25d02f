"""Tool schemas are derived from the models, never written by hand: change a model, the schema changes."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.tools import Tool
from pydantic import Field

from pcref_mcp.referrals.write_models import NewDealRegistration, NewReferral
from pcref_mcp.server import search as searching
from pcref_mcp.server.app import _compact_tool_schemas
from pcref_mcp.server.tools import TOOLS, CreateResult, WriteResult

pytestmark = pytest.mark.anyio


def _aliases(model: Any) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


async def test_tool_inputs_mirror_their_models(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    create = tools["create_referral"].input_schema["properties"]["referral"]
    assert set(create["properties"]) == _aliases(NewReferral)
    register = tools["register_deal"].input_schema["properties"]["registration"]
    assert set(register["properties"]) == _aliases(NewDealRegistration)
    search = tools["search_referrals"].input_schema["properties"]["filters"]
    assert set(search["properties"]) == _aliases(searching.Filters)
    for name in ("update_field", "create_referral", "register_deal", "undo_change"):
        # read_as is in every answer that has something to say, but left out of the published schema
        result = CreateResult if name == "create_referral" else WriteResult
        assert set(tools[name].output_schema["properties"]) == set(result.model_fields) - {"read_as"}


class NewReferralPlus(NewReferral):
    """The create model with one more field, as a future change to the domain would add it."""

    partner_role: str | None = Field(default=None, description="Services co-sell partner role")


async def test_changing_a_model_changes_the_tool_schema() -> None:
    async def create_referral(referral: NewReferralPlus) -> WriteResult:  # same shape as the real tool
        raise AssertionError("never called")

    tool = Tool.from_function(create_referral)
    _compact_tool_schemas([tool])
    server: MCPServer[Any] = MCPServer("probe", tools=[tool])
    tool = (await server.list_tools())[0]
    props = tool.input_schema["properties"]["referral"]["properties"]
    assert props["partner_role"]["description"] == "Services co-sell partner role"
    assert set(props) == _aliases(NewReferral) | {"partner_role"}


def test_every_tool_is_declared_once() -> None:
    names = [spec.name for spec in TOOLS]
    assert len(names) == len(set(names))
