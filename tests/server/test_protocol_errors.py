"""Protocol errors a client can act on: unknown prompts, missing or unknown prompt arguments and unknown
referral:// resources are -32602 (invalid params) on both protocol eras, with no logged traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.types import INVALID_PARAMS

from tests.server.conftest import Sandbox

pytestmark = pytest.mark.anyio

ERAS = ["legacy", "auto"]


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_prompt_and_bad_arguments_are_invalid_params(
    server: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(server, mode=mode) as c:  # type: ignore[arg-type]
        prompts = {p.name: p for p in (await c.list_prompts()).prompts}
        with pytest.raises(MCPError) as unknown:
            await c.get_prompt("weekly_review")
        assert unknown.value.error.code == INVALID_PARAMS
        assert "weekly_pipeline_review" in unknown.value.error.message

        name, prompt = next((n, p) for n, p in prompts.items() if p.arguments)
        with pytest.raises(MCPError) as missing:
            await c.get_prompt(name, {})
        assert missing.value.error.code == INVALID_PARAMS
        assert prompt.arguments[0].name in missing.value.error.message  # type: ignore[index]
        assert missing.value.error.data["missing"]  # type: ignore[index]

        full = {a.name: "x" for a in prompt.arguments or []}
        with pytest.raises(MCPError) as extra:
            await c.get_prompt(name, {**full, "tone": "friendly"})
        assert extra.value.error.code == INVALID_PARAMS and "unknown tone" in extra.value.error.message
        assert (await c.get_prompt(name, full)).messages  # the right call still works
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_referral_resource_is_invalid_params_with_the_uri(
    server: Any, sandbox: Sandbox, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uri = "referral://00000000-0000-0000-0000-000000000000"
    async with Client(server, mode=mode) as c:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as raised:
            await c.read_resource(uri)
        assert raised.value.error.code == INVALID_PARAMS
        assert raised.value.error.data == {"uri": uri}
        assert "No referral" in raised.value.error.message and "/v1.0" not in raised.value.error.message
        with pytest.raises(MCPError) as catalog:
            await c.read_resource("catalog://nope")
        assert catalog.value.error.code == INVALID_PARAMS  # the same answer as for catalogs
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_unexpected_failure_tells_the_model_to_look_before_repeating_a_write(
    client: Client, sandbox: Any, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's own text stays in the server's log; the model reads what to do next, never the SDK's
    bare "Error executing tool" (a confirmed write may have been sent before the failure)."""
    from pcref_mcp.errors import StoreUnavailable
    from tests.server.conftest import call, call_error

    target = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]
    args = {"referral_id": target["id"], "changes": [{"field": "deal value", "value": 777}]}

    async def crash(plan: Any) -> Any:
        raise RuntimeError("internal detail at /srv/secret-path")

    monkeypatch.setattr(runtime.engine, "execute", crash)
    token = (await call(client, "update_field", args))["confirm_token"]
    text = await call_error(client, "update_field", {**args, "confirm_token": token})
    assert "RuntimeError" in text and "recent_changes" in text and "secret-path" not in text

    async def away(plan: Any) -> Any:
        raise StoreUnavailable("The server's PostgreSQL store stayed unreachable for 30 s.")

    monkeypatch.setattr(runtime.engine, "execute", away)
    token = (await call(client, "update_field", args))["confirm_token"]
    text = await call_error(client, "update_field", {**args, "confirm_token": token})
    assert "stayed unreachable" in text and "Nothing was sent" in text
