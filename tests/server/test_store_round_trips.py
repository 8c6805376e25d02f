"""Store round trips of a confirmed write, counted at the store's interface (each method is one round
trip: one statement or one transaction). The fewest the guarantees allow, steady state:

- ``approval_redeem``: the approval's checks and its spend, one conditional update (once, across
  replicas; a refusal reads the row again, only then, to say why);
- ``journal_insert``: the intent, durable before the request is sent (nothing lost);
- ``journal_finish``: the outcome, after the answer (nothing written twice: an intent without an
  outcome turns "in doubt");
- with a shared store (team mode), ``rate_take`` before each Partner Center call (the re-read of
  the referral and the write): every replica counts the person's calls in one window.

The approval MAC keys are read once and kept (read again only for a MAC none of them verifies)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.server.runtime import Runtime
from pcref_mcp.store.base import Store
from tests.server.conftest import Sandbox, call

pytestmark = pytest.mark.anyio


def counting(store: Store) -> list[str]:
    """Every store method called from now on, by name, in order."""
    seen: list[str] = []
    for name, _ in inspect.getmembers(Store, inspect.iscoroutinefunction):
        if name.startswith("__"):
            continue
        real = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            seen.append(_name)
            return await _real(*args, **kwargs)

        setattr(store, name, counted)
    return seen


async def confirmed_write(
    client: Client, referral_id: str, value: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    args = {"referral_id": referral_id, "changes": [{"field": "notes", "value": value}]}
    preview = await call(client, "update_field", args)
    done = await call(client, "update_field", {**args, "confirm_token": preview["confirm_token"]})
    assert done["status"] == "applied", done
    return preview, done


async def _two_actives(sandbox: Sandbox) -> list[str]:
    return [r["id"] for r in await sandbox.find("status eq 'Active'")][:2]


@pytest.mark.parametrize("shared", [False, True], ids=["own store", "shared store"])
async def test_a_confirmed_write_costs_three_store_round_trips_plus_the_rate_window(
    shared: bool, runtime: Runtime, sandbox: Sandbox, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.store, "shared", shared)  # before the client (and its limiter) is built
    first, second = await _two_actives(sandbox)
    await confirmed_write(client, first, "warm-up")  # the process's first write: keys, lease, orphans
    seen = counting(runtime.store)
    args = {"referral_id": second, "changes": [{"field": "notes", "value": "counted"}]}
    preview = await call(client, "update_field", args)
    assert seen == (["rate_take"] if shared else []) + [
        "approval_insert"
    ]  # read the referral, keep the approval
    seen.clear()
    done = await call(client, "update_field", {**args, "confirm_token": preview["confirm_token"]})
    assert done["status"] == "applied", done
    rate = ["rate_take"] if shared else []
    # the re-read of the referral (its ETag), the approval, the intent, the write, the outcome
    assert seen == [*rate, "approval_redeem", "journal_insert", *rate, "journal_finish"]


async def test_a_refused_token_is_read_again_only_to_say_why_and_stays_unspent(
    runtime: Runtime, sandbox: Sandbox, client: Client
) -> None:
    first, second = await _two_actives(sandbox)
    await confirmed_write(client, first, "warm-up")
    args = {"referral_id": second, "changes": [{"field": "notes", "value": "one"}]}
    token = (await call(client, "update_field", args))["confirm_token"]
    seen = counting(runtime.store)
    other = {"referral_id": second, "changes": [{"field": "notes", "value": "two"}]}
    refused = await client.call_tool("update_field", {**other, "confirm_token": token})
    assert refused.is_error and "differ from the ones the person approved" in refused.content[0].text  # type: ignore[union-attr]
    assert "approval_redeem" in seen and "approval_get" in seen and "journal_insert" not in seen
    done = await call(client, "update_field", {**args, "confirm_token": token})
    assert done["status"] == "applied"
