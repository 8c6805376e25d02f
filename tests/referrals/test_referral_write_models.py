"""Every value rule of the write models, with the exact sentence a person reads."""

from __future__ import annotations

from typing import Any

import pytest

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.untrusted import quote, unwrap
from pcref_mcp.referrals.write_models import (
    ENGAGEMENT_ID_PLACEHOLDER,
    DealKind,
    DealRegistrationCreate,
    NewDealRegistration,
    NewReferral,
    ReferralCreate,
    microsoft_referral_body,
    parse_or_raise,
    parse_when,
    partner_referral_body,
    with_engagement_id,
)

CO_SELL: dict[str, Any] = {
    "name": "Contoso ERP",
    "customer_name": "Contoso Ltd",
    "customer_country": "us",
    "customer_city": "Redmond",
    "customer_contacts": [{"first_name": "Sue", "last_name": "Smith", "email": "sue@contoso.com"}],
    "deal_kind": "co_sell",
    "customer_consent_to_contact": True,
    "deal_value": "120k",
    "currency": "usd",
    "closing_date": "2026-11-27",
    "products": ["dynamics 365 enterprise"],
    "industries": ["manufacturing"],
    "solutions": ["SOL-8163-XCJ", "devops"],
    "assistance_request_code": "ProofOfConceptOrDemo",
    "help_notes": "Please join the demo.",
}
REGISTRATION: dict[str, Any] = {
    "solution_id": "SOL-6115380-IPC",
    "solution_value": 120000,
    "currency": "USD",
    "deployed_on_azure": True,
    "primary_deployment_on": "customer",
    "pricing_model": "other",
    "contract_value": "150,000",
    "term": "finite",
    "sign_date": "2024-10-01",
    "start_date": "2024-10-01",
    "end_date": "2027-09-30",
}


def message(model: type, data: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_or_raise(model, data)
    return caught.value.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"customer_country": "Untied States"},
            "customer_country 'Untied States' is not an ISO 3166 alpha-2 code; use a two-letter code such as 'US'.",
        ),
        (
            {"currency": "US$"},
            "currency 'US$' is not an ISO 4217 currency code; use a three-letter code such as 'USD'.",
        ),
        ({"deal_value": -5}, "deal_value -5 is too small; use a number of at least 0."),
        (
            {"deal_value": "1,5"},
            "deal_value '1,5' is not an unambiguous amount; use digits such as 120000, 120,000 or 120k.",
        ),
        (
            {
                "customer_contacts": [
                    {"first_name": "Sue", "last_name": "Smith", "email": "sue(at)contoso.com"}
                ]
            },
            "customer_contacts[0].email 'sue(at)contoso.com' is not an e-mail address; use the form "
            "name@example.com.",
        ),
        (
            {"closing_date": "2026-11-27T10:00:00"},
            "closing_date '2026-11-27T10:00:00' has no time zone; add 'Z' for UTC (e.g. '2026-11-27T10:00:00Z') "
            "or give just the date.",
        ),
        (
            {"closing_date": "next spring"},
            "closing_date 'next spring' is not a date; use YYYY-MM-DD or a UTC date-time such as "
            "'2026-11-27T10:00:00Z'.",
        ),
        (
            {"products": ["Azure", "Dynamics 356"]},
            "products[1] 'Dynamics 356' is not a known product; did you mean 'Dynamics365Business' or "
            "'Dynamics365Enterprise'? All values: catalog://products.",
        ),
        (
            {"services": ["Plumbing"]},
            "services[0] 'Plumbing' is not a known service; use one of: 'ConsultingAndProfessional', "
            "'CustomSolution(ISV)', 'DeploymentOrMigration', 'Hardware', 'Integration', 'IPServices(ISV)', "
            "'LearningAndCertification', 'Licensing', 'ManagedServices', 'ProjectServices'.",
        ),
        (
            {"industries": ["Mining"]},
            "industries[0] 'Mining' is not a known industry; see catalog://industries for the 14 allowed values.",
        ),
        (
            {"solutions": ["Quantum"]},
            "solutions[0] 'Quantum' is not a known category solution; see catalog://solutions for the 48 allowed "
            "values. A marketplace solution id looks like 'SOL-6115380-IPC'.",
        ),
        (
            {"customer_size": "1to50employees"},
            "customer_size '1to50employees' is an older customer size the service no longer accepts; use one of: "
            "'1to9employees', '10to50employees', '51to250employees', '251to1000employees', '1001to5000employees', "
            "'5001to10000employees', '10001to20000employees', 'Morethan20000employees'.",
        ),
        (
            {"assistance_request_code": "Unknown"},
            "assistance_request_code 'Unknown' is not a known assistance request code; use one of: "
            "'GeneralOrOther', 'CustomerTechnicalArchitecture', 'ProofOfConceptOrDemo', 'QuotesOrLicensing', "
            "'PostSalesCustomerSuccess', 'WorkloadSpecificValueProposition'.",
        ),
        (
            {"deal_kind": "cosell"},
            "deal_kind 'cosell' is not allowed; use one of: 'private', 'partner_led' or 'co_sell'.",
        ),
        (
            {"assistance_request_code": None, "help_notes": None},
            "deal_kind 'co_sell' needs assistance_request_code (the help you want from Microsoft); use one of: "
            "'GeneralOrOther', 'CustomerTechnicalArchitecture', 'ProofOfConceptOrDemo', 'QuotesOrLicensing', "
            "'PostSalesCustomerSuccess', 'WorkloadSpecificValueProposition'. deal_kind 'co_sell' needs "
            "help_notes: a short note telling the Microsoft seller what help you need.",
        ),
        (
            {"deal_kind": "partner_led", "help_notes": None},
            "assistance_request_code 'ProofOfConceptOrDemo' is only for deal_kind 'co_sell' (help requested from "
            "Microsoft); remove it or set deal_kind to 'co_sell'.",
        ),
        (
            {"deal_kind": "private", "assistance_request_code": None},
            "help_notes is only for deal_kind 'co_sell' (help requested from Microsoft); remove it or set "
            "deal_kind to 'co_sell'. Use notes for private deals.",
        ),
        (
            {"currency": None},
            "currency is required with deal_value 120000; use an ISO 4217 code such as 'USD'.",
        ),
        ({"name": ""}, "name must not be empty."),
        (
            {"colour": "blue"},
            "colour is not a known field; allowed fields: name, customer_name, customer_country, "
            "customer_city, customer_address_line1, customer_state, customer_postal_code, customer_size, "
            "customer_contacts, customer_consent_to_contact, deal_kind, deal_value, currency, closing_date, notes, "
            "products, services, industries, solutions, assistance_request_code, help_notes, external_reference_id, "
            "campaign_id, team.",
        ),
    ],
)
def test_new_referral_rule_messages(change: dict[str, Any], expected: str) -> None:
    assert message(NewReferral, {**CO_SELL, **change}) == expected


def test_missing_fields_are_named() -> None:
    data = {k: v for k, v in CO_SELL.items() if k not in {"customer_name", "deal_kind"}}
    assert message(NewReferral, data) == "customer_name is required. deal_kind is required."


def test_invalid_input_carries_field_and_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_or_raise(NewReferral, {**CO_SELL, "customer_country": "XYZ"})
    assert caught.value.field == "customer_country" and caught.value.value == "XYZ"


def test_co_sell_makes_two_linked_bodies() -> None:
    new = parse_or_raise(NewReferral, CO_SELL)
    partner = partner_referral_body(new).to_wire()
    assert partner == {
        "name": "Contoso ERP",
        "qualification": "SalesQualified",
        "type": "Shared",
        "customerProfile": {
            "name": "Contoso Ltd",
            "address": {"city": "Redmond", "country": "US"},
            "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue@contoso.com"}],
        },
        "consent": {
            "consentToToShareInfoWithOthers": True,
            "consentToContact": True,
            "consentToShareReferralWithMicrosoftSellers": True,
        },
        "details": {
            "dealValue": 120000.0,
            "currency": "USD",
            "closingDateTime": "2026-11-27T00:00:00Z",
            "requirements": {
                "industries": [{"id": "Manufacturing"}],
                "products": [{"id": "Dynamics365Enterprise"}],
                "solutions": [{"id": "SOL-8163-XCJ", "type": "Name"}, {"id": "DevOps", "type": "Category"}],
            },
        },
        "attributes": {"objectType": "Referral"},
    }
    assert partner_referral_body(new, mpn_id="6193175").to_wire()["mpnId"] == "6193175"
    microsoft = microsoft_referral_body(new, "eng-1", "partner-org", "Fabrikam").to_wire()
    assert microsoft["engagementId"] == "eng-1"
    assert microsoft["organizationId"] == "msft"
    # seed 003 step 2 (today's form): no target, none of the partner's solutions, no external id
    assert microsoft["target"] == []
    assert microsoft["details"]["requirements"]["solutions"] == []
    assert microsoft["details"]["requirements"]["additionalRequirements"] == {"iot": {}, "attributes": []}
    assert microsoft["details"]["notes"] == "Please join the demo."
    assert "externalReferenceId" not in microsoft
    assert microsoft["team"] == [] and microsoft["dealSensitivity"] == "None"
    assert microsoft["attributes"] == {"objectType": "Referral"} and microsoft["trackingInfo"] == {}
    assert microsoft["inviteContext"] == {
        "notes": "Please join the demo.",
        "assistanceRequestCode": "ProofOfConceptOrDemo",
        "invitedBy": {"organizationId": "partner-org", "organizationName": "Fabrikam"},
    }
    assert microsoft["customerProfile"] == partner["customerProfile"]
    ReferralCreate.model_validate(microsoft)  # the wire body is itself valid


def test_microsoft_template_is_filled_in_one_place_only() -> None:
    new = parse_or_raise(NewReferral, CO_SELL)
    template = microsoft_referral_body(new).to_wire()
    assert template["engagementId"] == ENGAGEMENT_ID_PLACEHOLDER
    filled = with_engagement_id(template, "2f1e0c1a-0000-4000-8000-000000000001")
    assert filled == {**template, "engagementId": "2f1e0c1a-0000-4000-8000-000000000001"}
    assert template["engagementId"] == ENGAGEMENT_ID_PLACEHOLDER  # the approved template is untouched
    with pytest.raises(InvalidInput, match="no engagementId placeholder"):
        with_engagement_id(filled, "another")
    with pytest.raises(InvalidInput, match="empty"):
        with_engagement_id(template, "")


def test_microsoft_body_matches_seed_003_step_2_keys() -> None:
    """Every top-level part the documented step-2 request sends, we send (where we have the value)."""
    import json
    from pathlib import Path

    seed = json.loads(
        (
            Path(__file__).parents[1] / "fixtures/reference/referral_cosell_step2_microsoft_request.json"
        ).read_text()
    )
    ours = microsoft_referral_body(parse_or_raise(NewReferral, CO_SELL), "eng-1", "org", "Org").to_wire()
    assert set(seed) - set(ours) == set()
    assert set(seed["inviteContext"]) <= set(ours["inviteContext"])


@pytest.mark.parametrize(
    ("kind", "referral_type", "shared"),
    [("private", "Independent", False), ("partner_led", "Shared", True)],
)
def test_deal_kinds_without_help(kind: str, referral_type: str, shared: bool) -> None:
    data = {**CO_SELL, "deal_kind": kind, "assistance_request_code": None, "help_notes": None}
    new = parse_or_raise(NewReferral, data)
    body = partner_referral_body(new).to_wire()
    assert body["type"] == referral_type
    assert body["consent"]["consentToShareReferralWithMicrosoftSellers"] is shared
    assert "inviteContext" not in body
    with pytest.raises(InvalidInput, match="only 'co_sell' creates a Microsoft referral"):
        microsoft_referral_body(new, "eng-1", None, None)
    assert DealKind(kind) is new.deal_kind


def test_referral_create_requires_its_four_parts() -> None:
    assert message(ReferralCreate, {"name": "x"}) == (
        "type is required. customerProfile is required. consent is required. details is required."
    )


def test_referral_create_substatus_must_fit_status() -> None:
    body = partner_referral_body(parse_or_raise(NewReferral, CO_SELL)).to_wire()
    assert message(ReferralCreate, {**body, "status": "New", "substatus": "Won"}) == (
        "substatus 'Won' does not belong to status 'New'; with New use one of: Pending, Received."
    )


def test_referral_create_refuses_unknown_wire_fields() -> None:
    body = partner_referral_body(parse_or_raise(NewReferral, CO_SELL)).to_wire()
    assert message(ReferralCreate, {**body, "Substatus": "Won"}) == (
        "Substatus is not a known field; allowed fields: " + ", ".join(ReferralCreate.model_fields) + "."
    )


def test_category_solution_on_the_wire_is_checked() -> None:
    body = partner_referral_body(parse_or_raise(NewReferral, CO_SELL)).to_wire()
    body["details"]["requirements"]["solutions"] = [{"id": "Quantum", "type": "Category"}]
    assert message(ReferralCreate, body) == (
        "details.requirements.solutions[0] 'Quantum' is not a known category solution; see catalog://solutions "
        "for the 48 allowed values."
    )


# --- deal registration ----------------------------------------------------------------------------


def test_new_deal_registration_to_wire() -> None:
    wire = parse_or_raise(NewDealRegistration, REGISTRATION).to_wire().to_wire()
    assert wire == {
        "type": "AzureIPCoSell",
        "solutionDetails": [
            {
                "id": "SOL-6115380-IPC",
                "currency": "USD",
                "value": 120000.0,
                "isDeployedOnAzure": True,
                "primaryDeploymentOn": "Customer",
                "pricingModel": "Other",
                "marketplaceTransactionDetails": {"isMarketplaceTransacted": False},
            }
        ],
        "contract": {
            "currency": "USD",
            "value": 150000.0,
            "term": "Finite",
            "signDateTime": "2024-10-01T00:00:00Z",
            "startDateTime": "2024-10-01T00:00:00Z",
            "endDateTime": "2027-09-30T00:00:00Z",
        },
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"end_date": None}, "end_date is required when term is 'Finite'; give the date the contract ends."),
        ({"end_date": "2024-09-01"}, "end_date 2024-09-01 must be after start_date 2024-10-01."),
        (
            {"term": "Perpetual", "contract_value": 600000},
            "end_date must be empty when term is 'Perpetual' (a perpetual contract has no end date); remove it or "
            "use 'Finite'.",
        ),
        (
            {"marketplace_transacted": True},
            "marketplace_transaction_date is required when marketplace_transacted is true.",
        ),
        (
            {"marketplace_transaction_date": "2024-10-02"},
            "marketplace_transaction_date must be empty when marketplace_transacted is false.",
        ),
        ({"contract_value": -1}, "contract_value -1 is too small; use a number of at least 0."),
        (
            {"contract_value": 60000},
            "contract_value 60,000 USD is 20,032 USD a year; Azure IP co-sell registration needs an annual "
            "contract value above 25,000 USD (from start to end date).",
        ),
        (
            {"term": "Perpetual", "end_date": None, "contract_value": 150000},
            "contract_value 150,000 USD is 25,000 USD a year; Azure IP co-sell registration needs an annual "
            "contract value above 25,000 USD (spread over 6 years).",
        ),
        (
            {"end_date": "2025-03-31", "contract_value": 20000},
            "contract_value 20,000 USD is 20,000 USD a year; Azure IP co-sell registration needs an annual "
            "contract value above 25,000 USD (from start to end date).",
        ),
        (
            {"deployed_on_azure": False},
            "deployed_on_azure is false: Partner Center would close the referral without a registration. Only "
            "solutions deployed on Azure can be registered for Azure IP co-sell.",
        ),
        (
            {"term": "forever"},
            "term 'forever' is not a known contract term; use one of: 'Finite', 'Perpetual'.",
        ),
        (
            {"pricing_model": "monthly"},
            "pricing_model 'monthly' is not a known pricing model; use one of: 'PayAsYouGo', 'Other'.",
        ),
        (
            {"currency": "dollars"},
            "currency 'dollars' is not an ISO 4217 currency code; use a three-letter code such as 'USD'.",
        ),
    ],
)
def test_new_deal_registration_rule_messages(change: dict[str, Any], expected: str) -> None:
    """A value a field cannot take is refused when read; a rule across fields is a problem the
    planner reports with the referral's unmet conditions (all at once)."""
    try:
        new = parse_or_raise(NewDealRegistration, {**REGISTRATION, **change})
    except InvalidInput as exc:
        assert exc.message == expected
    else:
        assert " ".join(new.problems()) == expected


def test_non_usd_contract_is_a_warning_not_a_refusal() -> None:
    new = parse_or_raise(
        NewDealRegistration, {**REGISTRATION, "contract_currency": "EUR", "contract_value": 1000}
    )
    assert new.warnings() == [
        "The contract is in EUR, so the rule that the annual contract value must exceed 25,000 USD was not "
        "checked; make sure it does."
    ]
    assert new.to_wire().warnings() == new.warnings()


def test_wire_registration_messages_name_wire_fields() -> None:
    wire = parse_or_raise(NewDealRegistration, REGISTRATION).to_wire().to_wire()
    wire["contract"].pop("endDateTime")
    wire["solutionDetails"][0]["marketplaceTransactionDetails"]["isMarketplaceTransacted"] = True
    assert message(DealRegistrationCreate, wire) == (
        "contract.endDateTime is required when contract.term is 'Finite'; give the date the contract ends. "
        "solutionDetails[0].marketplaceTransactionDetails.marketplaceTransactionDateTime is required when "
        "solutionDetails[0].marketplaceTransactionDetails.isMarketplaceTransacted is true."
    )
    assert message(DealRegistrationCreate, {**wire, "solutionDetails": []}).startswith(
        "solutionDetails needs at least 1 item(s)."
    )
    assert message(DealRegistrationCreate, {**wire, "type": "Other"}).startswith(
        "type 'Other' is not allowed; use one of: 'AzureIPCoSell'."
    )


@pytest.mark.parametrize(
    ("given", "code"), [("UK", "GB"), ("Germany", "DE"), ("USA", "US"), ("holland", "NL")]
)
def test_create_reads_country_names_and_aliases(given: str, code: str) -> None:
    new = parse_or_raise(NewReferral, {**CO_SELL, "customer_country": given})
    assert partner_referral_body(new).to_wire()["customerProfile"]["address"]["country"] == code


# --- our quote marks never round-trip into data --------------------------------------------------


def test_unwrap_undoes_our_quoting_only() -> None:
    assert unwrap("«Tailspin Toys»") == "Tailspin Toys"
    assert unwrap(" «‹Tailspin Toys›» ") == "Tailspin Toys"  # quoted twice, copied back
    assert unwrap(str(quote("Contoso"))) == "Contoso"
    for text in ("Contoso", "«a» and «b»", "«»", "«open", "a «b»"):
        assert unwrap(text) is None


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("March 31, 2027", "2027-03-31"),
        ("31 March 2027", "2027-03-31"),
        ("31st of Mar, 2027", "2027-03-31"),
        ("31-Mar-2027", "2027-03-31"),
        ("Sept 3rd, 2027", "2027-09-03"),
        ("31/12/2027", "2027-12-31"),
        ("12/31/2027", "2027-12-31"),
        ("05.05.2027", "2027-05-05"),
    ],
)
def test_a_date_written_so_it_reads_one_way_only_is_that_date(written: str, day: str) -> None:
    assert parse_when(written).date().isoformat() == day


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("03/04/2027", "can be read two ways (2027-03-04 or 2027-04-03)"),
        ("31/02/2027", "is not a calendar date"),
        ("Smarch 3, 2027", "is not a date"),
        ("3/4/27", "is not a date"),
    ],
)
def test_a_date_two_readers_would_read_differently_is_refused(written: str, says: str) -> None:
    assert f"closing_date {written!r} {says}" in message(NewReferral, {**CO_SELL, "closing_date": written})
