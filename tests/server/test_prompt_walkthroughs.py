"""Each prompt, followed step by step against the server, does what its title says (issue 21, item 8).

A scripted model reads the prompt as the client renders it and makes exactly the calls it names —
every `` `tool {json}` `` in the text, in order, with the prompt's ``<placeholders>`` filled in from
earlier answers or from the person's replies — then checks the outcome the title promises. A prompt
that names a tool, an argument, a field or a filter the server does not take fails here, as does one
whose steps no longer reach its goal.

Today is Monday 2026-11-02 09:00 UTC (the sandbox's clock and the server's "today" agree).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.referrals import when
from pcref_mcp.referrals.lifecycle import expires_at
from pcref_mcp.server.prompts import prompt_files
from pcref_mcp.server.tools import TOOLS
from tests.server.conftest import START, Sandbox, call
from tests.server.test_write_tools import _registration

pytestmark = pytest.mark.anyio

TOOL_NAMES = {spec.name for spec in TOOLS}
PLACEHOLDER = re.compile(r"<[^<>]+>")


@pytest.fixture(autouse=True)
def today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    assert START.weekday() == 0  # a Monday: "since monday" is the case the reconciliation must get right
    monkeypatch.setattr(when, "now", lambda: START)
    return START


def calls_in(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every `` `tool {json}` `` the prompt names, in order (the JSON must parse: a model copies it)."""
    found = []
    for code in re.findall(r"`([^`]+)`", text):
        tool, _, rest = code.partition(" ")
        if tool in TOOL_NAMES and rest.startswith("{"):
            found.append((tool, json.loads(rest)))
    return found


def fill(value: Any, answers: dict[str, Any]) -> Any:
    """The prompt's template with its placeholders filled: a whole ``"<…>"`` takes the answer as it is
    (a number, a list, true/false), a placeholder inside a longer text its text. An unknown
    placeholder fails the test: the prompt asks for something the walk-through was not told about."""
    if isinstance(value, str):
        if value in answers:
            return answers[value]
        return PLACEHOLDER.sub(lambda m: str(answers[m[0]]), value)
    if isinstance(value, dict):
        return {k: fill(v, answers) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, answers) for v in value]
    return value


class Model:
    """Plays the model: renders the prompt and makes the calls it names, as written."""

    def __init__(self, client: Client, name: str, text: str) -> None:
        self.client, self.name, self.text = client, name, text
        self.steps = calls_in(text)
        self.made: list[tuple[str, dict[str, Any]]] = []

    @classmethod
    async def read(cls, client: Client, name: str, arguments: dict[str, str] | None = None) -> Model:
        got = await client.get_prompt(name, arguments or {})
        return cls(client, name, got.messages[0].content.text)  # type: ignore[union-attr]

    def tools(self) -> list[str]:
        return [tool for tool, _ in self.steps]

    def template(self, tool: str, nth: int = 0) -> dict[str, Any]:
        named = [args for t, args in self.steps if t == tool]
        assert len(named) > nth, f"{self.name} names {tool} {len(named)} time(s), not {nth + 1}"
        return named[nth]

    async def do(self, tool: str, answers: dict[str, Any] | None = None, *, nth: int = 0) -> dict[str, Any]:
        args = fill(self.template(tool, nth), answers or {})
        self.made.append((tool, args))
        return await call(self.client, tool, args)

    async def approved(
        self, tool: str, answers: dict[str, Any] | None = None, *, nth: int = 0
    ) -> dict[str, Any]:
        """The call, its preview shown to the person, who approves: the same call with the token."""
        first = await self.do(tool, answers, nth=nth)
        assert first["status"] == "confirmation_required", first
        args = {**self.made[-1][1], "confirm_token": first["confirm_token"]}
        return await call(self.client, tool, args)

    async def csv(self, answers: dict[str, Any] | None = None, *, nth: int = 0) -> str:
        """A search_referrals step that asks for format csv: the file it answers with."""
        args = fill(self.template("search_referrals", nth), answers or {})
        assert args.get("format") == "csv", args
        result = await self.client.call_tool("search_referrals", args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        files = [getattr(c, "resource", None) for c in result.content[1:]]
        return next(r.text for r in files if r is not None and r.mime_type == "text/csv")


def test_every_prompt_has_a_walk_through() -> None:
    walked = {name.removeprefix("test_walk_") for name in globals() if name.startswith("test_walk_")}
    assert {name for name, _ in prompt_files()} == walked


async def _confirm(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    first = await call(client, tool, args)
    assert first["status"] == "confirmation_required", first
    return await call(client, tool, {**args, "confirm_token": first["confirm_token"]})


def _new(name: str, kind: str = "private", **extra: Any) -> dict[str, Any]:
    return {
        "referral": {
            "name": name,
            "customer_name": "Northwind Traders",
            "customer_country": "US",
            "customer_city": "Seattle",
            "deal_kind": kind,
            "customer_consent_to_contact": True,
            "deal_value": 90000,
            "currency": "USD",
            **extra,
        }
    }


# --- weekly_crm_reconciliation ----------------------------------------------------------------------


async def test_walk_weekly_crm_reconciliation(client: Client, sandbox: Sandbox) -> None:
    """ "since monday" said on a Monday covers the week before; a referral created here (its
    external reference id generated) is flagged as not linked to the CRM; a CRM file is imported in
    one approved batch that can be taken back."""
    last_week = await sandbox.find(
        "updatedDateTime ge 2026-10-26T00:00:00Z and updatedDateTime lt 2026-11-02T00:00:00Z"
    )
    assert last_week  # the seed moved some last week
    created = await _confirm(client, "create_referral", _new("Northwind data estate"))
    created_id = created["referral"]["id"]

    model = await Model.read(client, "weekly_crm_reconciliation", {"since": "monday"})
    assert model.tools() == [
        "recent_changes",
        "recent_changes",
        "search_referrals",
        "batch_update",
        "batch_update",
    ]
    feed = await model.do("recent_changes")
    start = re.match(r"Since (\d{4}-\d{2}-\d{2})", feed["referrals"][0])
    assert start is not None
    if start[1] == START.date().isoformat():  # the period starts today: the prompt says take the week before
        feed = await model.do("recent_changes", nth=1)
        start = re.match(r"Since (\d{4}-\d{2}-\d{2})", feed["referrals"][0])
        assert start is not None
    assert start[1] == "2026-10-26"
    moved = " ".join(feed["referrals"])
    assert all(r["id"] in moved for r in last_week)

    exported = await model.csv({"<the start date, YYYY-MM-DD>": start[1]})
    rows = list(csv.DictReader(io.StringIO(exported)))
    ids = {r["id"] for r in rows}
    assert {r["id"] for r in last_week} | {created_id} <= ids

    # "not yet linked to a CRM record", as the prompt defines it
    generated = re.search(r'generated by this server \(it starts with "([^"]+)"', model.text)
    assert generated is not None
    unlinked = {
        r["id"]
        for r in rows
        if not r["external_reference_id"] or r["external_reference_id"].startswith(generated[1])
    }
    assert created_id in unlinked
    assert (await sandbox.get(created_id))["externalReferenceId"].startswith(generated[1])

    # the CRM sends the file back with one value changed
    target = next(r for r in rows if r["id"] != created_id and r["value"] and r["status"] == "Active")
    target["value"] = "123456"
    back = io.StringIO()
    writer = csv.DictWriter(back, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    imported = await model.approved("batch_update", {"<the CRM's CSV>": back.getvalue()})
    assert imported["status"] == "applied", imported
    assert (await sandbox.get(target["id"]))["details"]["dealValue"] == 123456
    undo = await model.do("batch_update", {"<batch_id>": imported["batch_id"]}, nth=1)
    assert undo["status"] == "confirmation_required" and any("123,456" in line for line in undo["items"])


# --- triage_incoming -------------------------------------------------------------------------------


async def test_walk_triage_incoming(client: Client, sandbox: Sandbox) -> None:
    """Every new incoming referral listed with when it expires (soonest first possible), and the
    decisions made in one batch with one approval."""
    model = await Model.read(client, "triage_incoming")
    assert model.tools() == ["search_referrals", "batch_update"]  # one write call, not one per referral
    listed = await model.do("search_referrals")
    rows = listed["rows"]
    truth = await sandbox.find("direction eq 'Incoming' and status eq 'New'")
    assert {r["id"] for r in rows} == {d["id"] for d in truth} and len(rows) >= 2
    for r in rows:
        expires = expires_at(next(d for d in truth if d["id"] == r["id"]))
        assert expires is not None and r["extra"]["expires"] == expires.strftime("%Y-%m-%d")
        assert r["extra"]["expires"] >= START.date().isoformat()  # not expired yet
    soonest = sorted(rows, key=lambda r: r["extra"]["expires"])
    accept, decline = soonest[0], soonest[1]

    answers = {
        "<id to accept>": accept["id"],
        "<id to decline>": decline["id"],
        "<the reason I gave>": "Outside our segment",
    }
    done = await model.approved("batch_update", answers)
    assert done["status"] == "applied", done
    accepted, declined = await sandbox.get(accept["id"]), await sandbox.get(decline["id"])
    assert (accepted["status"], accepted["substatus"]) == ("Active", "Accepted")
    assert (declined["status"], declined["substatus"]) == ("Closed", "Declined")
    assert declined["statusReason"] == "Outside our segment"


# --- weekly_pipeline_review ------------------------------------------------------------------------


async def test_walk_weekly_pipeline_review(client: Client, sandbox: Sandbox) -> None:
    """The active pipeline by closing date, and exactly the unanswered incoming referrals that expire
    within four days, each with its date."""
    model = await Model.read(client, "weekly_pipeline_review")
    assert model.tools() == ["search_referrals", "search_referrals"]
    active = await model.do("search_referrals")
    rows = active["rows"]
    assert rows and all(r["status"].startswith("Active/") for r in rows)
    closing = [r["closing"] for r in rows if r["closing"]]
    assert closing == sorted(closing)
    assert len(rows) == len(await sandbox.find("status eq 'Active'")) or active.get("next_cursor")

    expiring = (await model.do("search_referrals", nth=1))["rows"]
    truth = [
        d
        for d in await sandbox.find("direction eq 'Incoming' and status eq 'New'")
        if (at := expires_at(d)) is not None and START <= at <= START + timedelta(days=4)
    ]
    assert {r["id"] for r in expiring} == {d["id"] for d in truth}
    assert all(r["extra"]["expires"] <= (START + timedelta(days=4)).date().isoformat() for r in expiring)


# --- create_cosell_referral ------------------------------------------------------------------------


async def test_walk_create_cosell_referral(client: Client, sandbox: Sandbox) -> None:
    """Duplicates looked for, ids taken from the catalogs by a tool call, the customer's consent asked
    (the person says no) and stated on the preview's first line, and both referrals created."""
    model = await Model.read(client, "create_cosell_referral", {"customer": "Fabrikam Retail GmbH"})
    assert model.tools() == ["search_referrals", "fetch", "fetch", "fetch", "fetch", "create_referral"]
    assert (await model.do("search_referrals"))["rows"] == []  # no duplicate

    catalogs = {}
    for nth in range(3):
        got = await model.do("fetch", nth=nth)
        catalogs[got["url"]] = json.loads(got["text"])
    product_id = catalogs["catalog://products"]["values"][0]["id"]
    code_id = next(
        v["id"] for v in catalogs["catalog://assistance_request_codes"]["values"] if v["id"] != "Unknown"
    )
    assert set(catalogs) == {
        "catalog://products",
        "catalog://industries",
        "catalog://assistance_request_codes",
    }

    template = model.template("create_referral")["referral"]
    assert template["customer_consent_to_contact"] not in (True, False)  # the person's answer, not a default
    answers = {
        "<deal name>": "Northwind analytics",
        "<country>": "US",
        "<city>": "Seattle",
        "<my answer: true or false>": False,  # the person: the customer did not agree
        "<value>": 80000,
        "<currency>": "USD",
        "<date>": "2027-03-31",
        "<product id>": product_id,
        "<code>": code_id,
        "<note for the Microsoft seller>": "Need an Azure architect for the PoC",
    }
    first = await model.do("create_referral", answers)
    assert first["status"] == "confirmation_required", first
    assert first["preview"]["summary"].endswith("their details: NO (as given in the call).")
    args = {**model.made[-1][1], "confirm_token": first["confirm_token"]}
    done = await call(client, "create_referral", args)
    assert done["status"] == "applied" and len(done["created"]) == 2, done
    stored = await sandbox.get(done["created"][0]["id"])
    assert stored["consent"]["consentToContact"] is False and stored["type"] == "Shared"


# --- register_won_deal -----------------------------------------------------------------------------


async def test_walk_register_won_deal(client: Client, sandbox: Sandbox) -> None:
    """The customer section read (where the sharing consent lives), the person asked before sharing,
    and the deal registered."""
    created = await _confirm(
        client, "create_referral", _new("Northwind IP deal", solutions=["SOL-6115380-IPC"])
    )
    rid = created["referral"]["id"]
    sandbox.clock.advance(timedelta(days=4).total_seconds())
    await sandbox.patch(
        rid,
        [
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Won"},
        ],
    )
    model = await Model.read(client, "register_won_deal", {"referral": "Northwind IP deal"})
    assert model.tools() == ["get_referral", "update_field", "register_deal"]
    read = await model.do("get_referral")
    assert read["id"] == rid  # the name was enough
    consent = read["referral"]["consent"]  # the customer section carries it
    assert consent["consentToShareReferralWithMicrosoftSellers"] is False
    assert "ask me whether the customer agreed to the deal being shared" in model.text  # asked, not assumed

    shared = await model.approved("update_field", {"<id>": rid})  # the person said yes
    assert shared["status"] == "applied", shared
    assert (await sandbox.get(rid))["consent"]["consentToShareReferralWithMicrosoftSellers"] is True

    registration = _registration()  # the person's answers
    answers = {
        "<id>": rid,
        "<SOL-…>": registration["solution_id"],
        "<solution value>": registration["solution_value"],
        "<currency>": registration["currency"],
        "<deployed on Azure: true or false>": registration["deployed_on_azure"],
        "<Customer or Partner>": registration["primary_deployment_on"],
        "<PayAsYouGo or Other>": registration["pricing_model"],
        "<sold through the marketplace: true or false>": registration["marketplace_transacted"],
        "<contract value>": registration["contract_value"],
        "<Finite or Perpetual>": registration["term"],
        "<sign date>": registration["sign_date"],
        "<start date>": registration["start_date"],
        "<end date, Finite only>": registration["end_date"],
    }
    done = await model.approved("register_deal", answers)
    assert done["status"] == "applied", done
    assert (await sandbox.get(rid))["registrations"][0]["status"] == "ReviewPending"


# --- undo_recent_change ----------------------------------------------------------------------------


async def test_walk_undo_recent_change(client: Client, sandbox: Sandbox) -> None:
    """The change found by what it changed; one that a later write blocks is explained, not undone;
    the latest is undone after approval."""
    target = (await sandbox.find("status eq 'Active' and substatus eq 'Accepted'"))[0]
    for change in ({"field": "deal value", "value": 4242}, {"field": "closing date", "value": "2027-02-26"}):
        await _confirm(client, "update_field", {"referral_id": target["id"], "changes": [change]})

    model = await Model.read(client, "undo_recent_change", {"change": "the deal value change"})
    assert model.tools() == ["recent_changes", "undo_change"]
    lines = (await model.do("recent_changes"))["changes"]
    line = next(x for x in lines if "deal value:" in x)  # what changed, field by field
    assert "4,242" in line
    assert "undo: no" in line and "undo that first" in line  # the prompt says: tell why, and stop

    latest = lines[0]
    assert "closing date:" in latest and "undo: possible" in latest
    change_id = int(re.match(r"change_id (\d+)", latest)[1])  # type: ignore[index]
    done = await model.approved("undo_change", {"<its change_id>": change_id})
    assert done["status"] == "applied", done
    assert not (await sandbox.get(target["id"]))["details"]["closingDateTime"].startswith("2027-02-26")


# --- update_from_meeting_notes ---------------------------------------------------------------------


async def test_walk_update_from_meeting_notes(client: Client, sandbox: Sandbox) -> None:
    """The referral named by its customer, the changes the notes support in one preview, the notes
    appended (not replaced), and a change_id to undo with."""
    contoso = next(r for r in await sandbox.find("id ne ''") if r["customerProfile"]["name"] == "Contoso Ltd")
    notes = "Agreed 250k USD; they sign by 2027-03-31."
    model = await Model.read(
        client, "update_from_meeting_notes", {"referral": "Contoso Ltd", "meeting_notes": notes}
    )
    assert model.tools() == ["get_referral", "update_field"]
    assert notes in model.text
    read = await model.do("get_referral")
    assert read["id"] == contoso["id"]
    answers = {
        "<id>": read["id"],
        "<value>": 250000,
        "<currency>": "USD",
        "<date>": "2027-03-31",
        "<date>: <what was agreed>": "2026-11-02: agreed 250k, signing by 2027-03-31",
    }
    first = await model.do("update_field", answers)
    assert first["status"] == "confirmation_required", first
    fields = {c["field"] for c in first["preview"]["changes"]}
    assert {"deal value", "closing date"} <= fields and any("notes" in f for f in fields)
    done = await call(client, "update_field", {**model.made[-1][1], "confirm_token": first["confirm_token"]})
    assert done["status"] == "applied" and done["change_id"], done
    stored = await sandbox.get(contoso["id"])
    assert stored["details"]["dealValue"] == 250000
    assert stored["details"]["notes"].endswith("2026-11-02: agreed 250k, signing by 2027-03-31")
    if contoso["details"].get("notes"):
        assert stored["details"]["notes"].startswith(contoso["details"]["notes"])
