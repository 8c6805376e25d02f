"""Every body the client sends is checked against the connector's published request schemas first.

The write models are derived from the domain's field knowledge; this check is independent of them
(``jsonschema`` over the bundled definitions). A body that drifts from the published contract is
refused in plain words and never leaves the client: the sandbox sees no request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center import PartnerCenterClient, StaticTokenProvider
from pcref_mcp.partner_center.wire_contract import check_request, published_schemas
from pcref_mcp.referrals import catalog
from pcref_mcp.referrals.models import PatchOperation
from pcref_mcp.referrals.patch_paths import (
    REFERRAL_PATHS,
    REFERRAL_POINTERS,
    REGISTRATION_PATHS,
    REGISTRATION_POINTERS,
)
from pcref_mcp.referrals.write_models import (
    NewDealRegistration,
    NewReferral,
    ReferralCreate,
    microsoft_referral_body,
    partner_referral_body,
)
from pcref_mcp.sandbox import SandboxConfig, create_app

pytestmark = pytest.mark.anyio
REFERENCE = Path("/work/shared/reference/partner-center-referrals-connector.swagger.json")
NEW = NewReferral(
    name="Contoso supply chain",
    customer_name="Contoso",
    customer_country="US",
    customer_city="Redmond",
    customer_size="10to50employees",
    customer_contacts=[{"first_name": "Sue", "last_name": "Smith", "email": "sue@contoso.example"}],
    deal_kind="co_sell",
    assistance_request_code="GeneralOrOther",
    help_notes="A proof of concept, please.",
    deal_value=250_000,
    currency="USD",
    closing_date="2026-11-27",
    products=["Azure"],
    industries=[catalog.INDUSTRIES.ids()[0]],
    solutions=["SOL-6115380-IPC"],
    team=[{"first_name": "John", "last_name": "Doe", "email": "john@fabrikam.example"}],
    customer_consent_to_contact=True,
)


class DriftedCreate(ReferralCreate):
    """A derived model that has drifted: it allows a field the service never documented."""

    customer_tier: str | None = None


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.sent = inner, []  # type: list[httpx.Request]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[PartnerCenterClient, Recording]]:
    app = create_app(SandboxConfig(seed_size=3))
    wire = Recording(httpx.ASGITransport(app=app))
    client = PartnerCenterClient(
        "http://sandbox.test/v1.0/engagements/", StaticTokenProvider("t"), transport=wire
    )
    async with client:
        yield client, wire


async def test_a_drifted_create_is_refused_and_never_sent(rig: tuple[PartnerCenterClient, Recording]) -> None:
    client, wire = rig
    body = DriftedCreate.model_validate({**partner_referral_body(NEW).model_dump(), "customer_tier": "Gold"})
    with pytest.raises(InvalidInput) as refused:
        await client.create(body)
    assert wire.sent == []
    assert refused.value.field == "customerTier"
    assert "customerTier is not a field the contract knows" in refused.value.message
    assert "nothing was sent" in refused.value.message


async def test_a_patch_value_of_the_wrong_type_is_refused_and_never_sent(
    rig: tuple[PartnerCenterClient, Recording],
) -> None:
    client, wire = rig
    [referral] = (await client.list_page()).value[:1]
    wire.sent.clear()
    ops = [PatchOperation(op="replace", path="/details/dealValue", value={"amount": 1})]
    with pytest.raises(InvalidInput) as refused:
        await client.patch(str(referral.id), ops, etag=referral.e_tag)
    assert wire.sent == []
    assert "details.dealValue must be a number" in refused.value.message


async def test_an_unlisted_path_and_an_odd_registration_are_refused(
    rig: tuple[PartnerCenterClient, Recording],
) -> None:
    client, wire = rig
    [referral] = (await client.list_page()).value[:1]
    wire.sent.clear()
    with pytest.raises(InvalidInput) as refused:
        await client.patch(
            str(referral.id), [PatchOperation(op="replace", path="/name", value="x")], etag="e"
        )
    assert "path must be one of: /campaignId" in refused.value.message
    registration = (
        NewDealRegistration(
            solution_id="SOL-6115380-IPC",
            solution_value=120_000,
            currency="USD",
            deployed_on_azure=True,
            primary_deployment_on="Customer",
            pricing_model="Other",
            contract_value=600_000,
            term="Perpetual",
            sign_date="2025-01-01",
            start_date="2025-01-01",
        )
        .to_wire()
        .to_wire()
    )
    registration["contract"]["discount"] = 5
    with pytest.raises(InvalidInput) as refused:
        await client.create_deal_registration(str(referral.id), registration, etag="e")
    assert refused.value.field == "contract.discount"
    assert "contract.discount is not a field the contract knows" in refused.value.message
    assert wire.sent == []


def test_every_body_the_models_build_is_within_the_contract() -> None:
    check_request(
        "POST", "/v1.0/engagements/referrals", partner_referral_body(NEW, mpn_id="6193175").to_wire()
    )
    check_request("POST", "/v1.0/engagements/referrals", microsoft_referral_body(NEW).to_wire())
    fixture = Path(__file__).parents[1] / "fixtures" / "reference" / "referral_create_request.json"
    check_request("POST", "/v1.0/engagements/referrals", json.loads(fixture.read_text()))
    samples: dict[str, Any] = {
        "/details/dealValue": 1000.0,
        "/details/closingDateTime": "2026-11-27T00:00:00Z",
        "/status": "Closed",
        "/substatus": "Won",
        "/salesStage": "Develop",
        "/consent/consentToShareReferralWithMicrosoftSellers": True,
        "/details/currency": "USD",
    }
    member = {"firstName": "Jane", "lastName": "Doe", "email": "jane@contoso.example", "title": "CTO"}
    solution = {"id": "SOL-6115380-IPC", "type": "Name"}
    for path in REFERRAL_PATHS:
        if path.pointer in samples:
            value = samples[path.pointer]
        elif "team" in path.pointer:
            value = member if path.pointer.endswith("/-") else [member]
        elif "solutions" in path.pointer:
            value = solution if path.pointer.endswith("/-") else [solution]
        else:
            value = "text"
        check_request("PATCH", "/x", [{"op": path.op, "path": path.pointer, "value": path.validate(value)}])
    check_request("PATCH", "/x", [{"op": "replace", "path": "/statusReason", "value": None}])
    for path in REGISTRATION_PATHS:
        assert (
            path.pointer
            in published_schemas()["published"]["UpdateDealRegistration"]["items"]["properties"]["path"][
                "enum"
            ]
        )


def test_the_message_is_plain_words() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_request("POST", "/v1.0/engagements/referrals", {"type": 3, "customerProfile": {"size": []}})
    message = refused.value.message
    assert "type must be text." in message and "customerProfile.size must be text." in message
    for raw in ("jsonschema", "Failed validating", "additionalProperties", "'type'", "instance"):
        assert raw not in message


def test_jsonschema_is_imported_at_the_first_send_not_at_start() -> None:
    code = (
        "import sys, pcref_mcp.cli, pcref_mcp.server.app, pcref_mcp.partner_center.client; "
        "assert 'jsonschema' not in sys.modules, 'imported at start'; "
        "from pcref_mcp.partner_center.wire_contract import check_request; "
        "check_request('PATCH', '/x', [{'op': 'replace', 'path': '/status', 'value': 'Active'}]); "
        "assert 'jsonschema' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


@pytest.mark.skipif(not REFERENCE.exists(), reason="the connector definition is not at hand")
def test_the_bundled_schemas_are_the_published_ones() -> None:
    definitions = json.loads(REFERENCE.read_text())["definitions"]
    prefix = "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3."
    for name, schema in published_schemas()["published"].items():
        assert schema == definitions[prefix + name], name
    for pointer, addition in published_schemas()["additions"]["Referral"].items():
        assert addition["source"], pointer


def test_tables_cover_the_service_allow_lists_exactly() -> None:
    """The field table (referrals/patch_paths, derived from referrals/fields) against the connector's published allow-lists (bundled verbatim)."""
    published = published_schemas()["published"]
    referral = published["UpdateReferralDetails"]["items"]["properties"]["path"]["enum"]
    registration = published["UpdateDealRegistration"]["items"]["properties"]["path"]["enum"]
    assert sorted(p.pointer for p in REFERRAL_PATHS) == sorted(REFERRAL_POINTERS) == sorted(referral)
    assert (
        sorted(p.pointer for p in REGISTRATION_PATHS) == sorted(REGISTRATION_POINTERS) == sorted(registration)
    )
