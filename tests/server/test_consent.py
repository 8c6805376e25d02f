"""Customer consent is never assumed (issue 21, item 8): a create must carry the person's answer,
a refusal asks for it without answering it, and the preview states it on its first line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from tests.server.conftest import Sandbox, call, call_error

pytestmark = pytest.mark.anyio

KEY = "customer_consent_to_contact"
ASKED = {
    "name": "Fabrikam data platform",
    "customer_name": "Fabrikam Retail GmbH",
    "customer_country": "DE",
    "customer_city": "Berlin",
    "deal_kind": "partner_led",
    "deal_value": 250000,
    "currency": "EUR",
    "notes": "Migration of the analytics estate",
}


def _calls(text: str) -> list[dict[str, Any]]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("create_referral {", at)) != -1:
        args, _ = decoder.raw_decode(text, at + len("create_referral "))
        found.append(args)
        at += 1
    return found


async def test_a_create_without_consent_is_refused_with_one_call_per_answer(
    client: Client, sandbox: Sandbox
) -> None:
    before = await sandbox.count()
    msg = await call_error(client, "create_referral", {"referral": ASKED})
    assert KEY in msg and "ask the person whether the customer agreed" in msg and "nothing was sent" in msg
    calls = _calls(msg)
    assert [c["referral"][KEY] for c in calls] == [True, False]  # each answer offered, none chosen
    for suggested in calls:  # the caller's own values, all of them, plus the answer
        assert {k: v for k, v in suggested["referral"].items() if k != KEY} == ASKED
    assert await sandbox.count() == before


async def test_contact_details_are_not_echoed_so_the_model_is_told_to_resend_with_the_answer(
    client: Client,
) -> None:
    contact = {"first_name": "Ana", "last_name": "Weber", "email": "ana.weber@fabrikam.example"}
    msg = await call_error(client, "create_referral", {"referral": {**ASKED, "customer_contacts": [contact]}})
    assert KEY in msg and "ask the person" in msg.lower() and "resend the same call with their answer" in msg
    assert _calls(msg) == [] and "ana.weber" not in msg


@pytest.mark.parametrize(("consent", "said"), [(True, "YES"), (False, "NO")])
async def test_the_preview_states_the_consent_first(client: Client, consent: bool, said: str) -> None:
    out = await call(client, "create_referral", {"referral": {**ASKED, KEY: consent}})
    preview = out["preview"]
    assert preview["summary"].endswith(
        f"Customer agreed to be contacted and to sharing their details: {said} (as given in the call)."
    )
    first = [c["field"] for c in preview["changes"][:3]]
    assert set(first) == {
        "customer consents to sharing",
        "customer consents to contact",
        "shared with Microsoft sellers",
    }
    assert all(c["after"] is consent for c in preview["changes"][:3] if c["field"].startswith("customer"))


async def test_the_schema_requires_consent_and_offers_no_default(client: Client) -> None:
    tool = next(t for t in (await client.list_tools()).tools if t.name == "create_referral")
    referral = tool.input_schema["properties"]["referral"]
    referral = tool.input_schema.get("$defs", {}).get("NewReferral", referral)
    assert KEY in referral["required"]
    assert "default" not in referral["properties"][KEY]
