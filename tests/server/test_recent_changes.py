"""recent_changes: "undo what you just did" from a new conversation, one person's changes only
(issue 11.10, team mode); `pcref-mcp journal` without others' contact details (issue 16.11)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import pytest
from mcp import Client

from pcref_mcp import identity
from tests.server.conftest import Sandbox, call, call_error

pytestmark = pytest.mark.anyio

ALICE = identity.Principal(id="oid-alice", name="alice@partner.example")
BOB = identity.Principal(id="oid-bob", name="bob@partner.example")


async def test_recent_changes_from_a_new_conversation_and_per_person(server: Any, sandbox: Sandbox) -> None:
    target = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]
    args = {"referral_id": target["id"], "changes": [{"field": "deal value", "value": 4242}]}
    with identity.acting_as(ALICE):
        async with Client(server) as c:
            first = await call(c, "update_field", args)
            done = await call(c, "update_field", {**args, "confirm_token": first["confirm_token"]})
            assert done["status"] == "applied"
    change = done["change_id"]

    with identity.acting_as(BOB):  # another person sees none of it, and cannot undo it
        async with Client(server) as c:
            assert (await call(c, "recent_changes", {}))["changes"] == []
            msg = await call_error(c, "undo_change", {"change_id": change})
            assert f"no journaled change {change}" in msg

    with identity.acting_as(ALICE):  # a new conversation: find the change, undo it
        async with Client(server) as c:
            lines = (await call(c, "recent_changes", {}))["changes"]
            assert lines[0].startswith(f"change_id {change} · ")
            assert "applied" in lines[0] and "undo: possible" in lines[0] and target["id"] in lines[0]
            name = target["name"]
            assert f"«{name}»" in lines[0]
            undo = await call(c, "undo_change", {"change_id": change})
            again = await call(
                c, "undo_change", {"change_id": change, "confirm_token": undo["confirm_token"]}
            )
            assert again["status"] == "applied"
            lines = (await call(c, "recent_changes", {}))["changes"]
            assert f"undo: no, it was already undone by change {again['change_id']}" in lines[1]
    assert (await sandbox.get(target["id"]))["details"].get("dealValue") == target["details"].get("dealValue")


async def test_each_line_says_what_changed_and_whether_undo_is_possible_now(
    client: Client, sandbox: Sandbox
) -> None:
    """Issue 21: four updates must not read alike, and a later own write makes the earlier one's undo
    impossible until it is undone itself."""
    target = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]
    ids = []
    for change in ({"field": "deal value", "value": 4242}, {"field": "closing date", "value": "2027-02-26"}):
        args = {"referral_id": target["id"], "changes": [change]}
        first = await call(client, "update_field", args)
        done = await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
        ids.append(done["change_id"])
    newer, older = (await call(client, "recent_changes", {}))["changes"][:2]
    assert newer.startswith(f"change_id {ids[1]} ") and "closing date:" in newer and "2027-02-26" in newer
    assert "undo: possible" in newer
    assert "deal value:" in older and "4,242" in older
    assert f"undo: no, change {ids[1]} changed this referral after it (undo that first)" in older


async def test_recent_changes_says_why_a_create_cannot_be_undone(client: Client) -> None:
    new = {
        "referral": {
            "name": "Recent create",
            "customer_name": "Contoso",
            "customer_country": "US",
            "customer_city": "Redmond",
            "deal_kind": "private",
            "customer_consent_to_contact": True,
            "notes": "n",
        }
    }
    first = await call(client, "create_referral", new)
    await call(client, "create_referral", {**new, "confirm_token": first["confirm_token"]})
    line = (await call(client, "recent_changes", {}))["changes"][0]
    assert "«Recent create»" in line and "undo: no, it created a referral" in line


# --- 16.11: `pcref-mcp journal` shows others' contact details nowhere -----------------------------------------


async def test_journal_cli_shows_names_not_other_contacts_details(
    client: Client, sandbox: Sandbox, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pcref_mcp.cli import main as cli_main

    target = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]
    existing = [m["email"] for m in (await sandbox.get(target["id"]))["team"] if m.get("email")]
    replaced = [
        {"first_name": "Kept", "last_name": "Nobody", "email": "kept@partner.example"},
    ]
    member = {"first_name": "Zed", "last_name": "Ng", "email": "zed@partner.example"}
    args = {"referral_id": target["id"], "changes": [{"field": "add sales team member", "value": member}]}
    first = await call(client, "update_field", args)
    await call(client, "update_field", {**args, "confirm_token": first["confirm_token"]})
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(settings.journal_path))
    for argv in (["journal"], ["journal", "--json"], ["journal", "--all"]):
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli_main(argv) == 0
        text = out.getvalue()
        assert "zed@partner.example" in text, argv  # the contact this change is about
        for email in existing:
            assert email not in text, (argv, email)
        assert replaced[0]["email"] not in text
    listed = json.loads(_run_json(cli_main))
    assert listed[0]["summary"].startswith("Update referral")


def _run_json(cli_main: Any) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        cli_main(["journal", "--json"])
    return out.getvalue()
