"""A partner seller's day, driven the way an assistant would drive it, checked against the stored state.

Triage three incoming referrals, accept one, close one as lost with a reason, update value and
closing date on another, create a co-sell referral with Microsoft, mark a deal won and register
it. Every write goes through preview + confirm token; afterwards the sandbox's stored referrals
and the journal (also through `pcref-mcp journal`) must show exactly those changes.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.cli import main as cli_main
from pcref_mcp.server.runtime import Runtime
from tests.server.conftest import Sandbox, call

pytestmark = pytest.mark.anyio


async def approved(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Preview, 'show it to the person', confirm with the token."""
    preview = await call(client, tool, args)
    assert preview["status"] == "confirmation_required", preview
    assert preview["preview"]["summary"]
    done = await call(client, tool, {**args, "confirm_token": preview["confirm_token"]})
    assert done["status"] == "applied", done
    return done


async def test_a_day_in_the_pipeline(
    client: Client, sandbox: Sandbox, runtime: Runtime, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes_before = len(await runtime.journal.recent(1000))

    # 1. Triage: the three oldest new incoming referrals.
    triage = await call(
        client,
        "search_referrals",
        {
            "filters": {"direction": "Incoming", "status": ["New"]},
            "sort": "created_asc",
            "limit": 3,
            "fields": ["invited_by", "notes"],
        },
    )
    assert len(triage["rows"]) == 3
    first, second, third = (row["id"] for row in triage["rows"])
    for rid in (first, second, third):
        detail = await call(
            client, "get_referral", {"referral_id": rid, "sections": ["overview", "details", "invite"]}
        )
        assert detail["referral"]["status"] == "New"

    # 2. Accept the first.
    await approved(
        client,
        "update_field",
        {
            "referral_id": first,
            "changes": [{"field": "status", "value": "Active"}, {"field": "substatus", "value": "Accepted"}],
        },
    )

    # 3. Close the second as lost, with a reason.
    await approved(
        client,
        "update_field",
        {
            "referral_id": second,
            "changes": [
                {"field": "status", "value": "Closed"},
                {"field": "substatus", "value": "Lost"},
                {"field": "reason", "value": "Customer postponed the project to next fiscal year"},
            ],
        },
    )

    # 4. Update value and closing date on the accepted one ("120k, closing Friday").
    await approved(
        client,
        "update_field",
        {
            "referral_id": first,
            "changes": [
                {"field": "deal value", "value": "120k"},
                {"field": "closing date", "value": "2026-11-06"},
            ],
        },
    )

    # 5. Create a co-sell referral with Microsoft.
    cosell = await approved(
        client,
        "create_referral",
        {
            "referral": {
                "name": "Contoso analytics modernisation",
                "customer_name": "Contoso Pharmaceuticals",
                "customer_country": "US",
                "customer_city": "Seattle",
                "customer_size": "1001to5000employees",
                "deal_kind": "co_sell",
                "customer_consent_to_contact": True,
                "deal_value": 300000,
                "currency": "USD",
                "closing_date": "2027-02-26",
                "products": ["Azure"],
                "industries": ["Healthcare"],
                "assistance_request_code": "CustomerTechnicalArchitecture",
                "help_notes": "Looking for an Azure data architect for the design workshop.",
                "customer_contacts": [
                    {"first_name": "Dana", "last_name": "Lee", "email": "dana.lee@contoso.example"}
                ],
            }
        },
    )
    assert len(cosell["created"]) == 2

    # 6. Mark the Tailspin Toys deal won, then register it.
    found = await call(
        client,
        "search_referrals",
        {
            "filters": {"customer_contains": "Tailspin", "status": ["Active"], "direction": "Outgoing"},
            "limit": 5,
        },
    )
    won_id = found["rows"][0]["id"]
    await approved(
        client,
        "update_field",
        {
            "referral_id": won_id,
            "changes": [
                {"field": "status", "value": "Closed"},
                {"field": "substatus", "value": "Won"},
                {"field": "status reason", "value": "Signed a three-year agreement"},
            ],
        },
    )
    registered = await approved(
        client,
        "register_deal",
        {
            "referral_id": won_id,
            "registration": {
                "solution_id": "SOL-6115380-IPC",
                "solution_value": 120000,
                "currency": "USD",
                "deployed_on_azure": True,
                "primary_deployment_on": "Customer",
                "pricing_model": "PayAsYouGo",
                "contract_value": 150000,
                "contract_currency": "USD",
                "term": "Finite",
                "sign_date": "2026-11-01",
                "start_date": "2026-11-01",
                "end_date": "2029-10-31",
            },
        },
    )
    assert registered["referral"]["id"] == won_id

    # --- the stored state ---------------------------------------------------------------------------
    accepted = await sandbox.get(first)
    assert (accepted["status"], accepted["substatus"]) == ("Active", "Accepted")
    assert accepted["details"]["dealValue"] == 120000
    assert accepted["details"]["closingDateTime"].startswith("2026-11-06")
    lost = await sandbox.get(second)
    assert (lost["status"], lost["substatus"]) == ("Closed", "Lost")
    assert lost["statusReason"] == "Customer postponed the project to next fiscal year"
    untouched = await sandbox.get(third)
    assert untouched["status"] == "New"
    partner, microsoft = [await sandbox.get(r["id"]) for r in cosell["created"]]
    assert partner["engagementId"] == microsoft["engagementId"]
    assert microsoft["inviteContext"]["assistanceRequestCode"] == "CustomerTechnicalArchitecture"
    assert len(await sandbox.find(f"engagementId eq '{partner['engagementId']}'")) == 2
    won = await sandbox.get(won_id)
    assert (won["status"], won["substatus"]) == ("Closed", "Won")
    assert won["registrations"][0]["status"] == "ReviewPending"
    assert won["registrations"][0]["contract"]["value"] == 150000

    # --- the journal, as the person reads it -----------------------------------------------------------
    entries = await runtime.journal.recent(1000)
    assert len(entries) - writes_before == 6
    assert all(e.status == "applied" for e in entries[:6])
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(settings.journal_path))
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["journal", "--json", "--limit", "10"]) == 0
    listed = json.loads(out.getvalue())
    assert [e["tool"] for e in listed[:6]] == [
        "register_deal",
        "update_field",
        "create_referral",
        "update_field",
        "update_field",
        "update_field",
    ]
    assert all(e["correlation_id"] for e in listed)
