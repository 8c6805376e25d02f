"""Request bodies shared by the sandbox tests."""

from __future__ import annotations

import copy
from typing import Any

NEW_REFERRAL: dict[str, Any] = {
    "name": "Contoso supply chain (pcref-mcp contract test)",
    "type": "Independent",
    "qualification": "SalesQualified",
    "externalReferenceId": "pcref-contract-test",
    "customerProfile": {
        "name": "Contoso Customer Inc",
        "address": {
            "addressLine1": "One Microsoft Way",
            "city": "Redmond",
            "state": "WA",
            "postalCode": "98052",
            "country": "US",
        },
        "size": "10to50employees",
        "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue.smith@contoso.example"}],
    },
    "consent": {"consentToToShareInfoWithOthers": True, "consentToContact": True},
    "details": {
        "notes": "Customer wants Dynamics 365 for their supply chain.",
        "dealValue": 50000,
        "currency": "USD",
        "closingDateTime": "2025-11-14T00:00:00Z",
        "requirements": {"products": [{"id": "Dynamics365Enterprise"}]},
    },
    "team": [{"firstName": "John", "lastName": "Doe", "email": "john.doe@fabrikam.example"}],
}

REGISTRATION: dict[str, Any] = {
    "type": "AzureIPCoSell",
    "solutionDetails": [
        {
            "id": "SOL-6115380-IPC",
            "currency": "USD",
            "value": 120000,
            "isDeployedOnAzure": True,
            "primaryDeploymentOn": "Customer",
            "pricingModel": "Other",
            "marketplaceTransactionDetails": {"isMarketplaceTransacted": False},
        }
    ],
    "contract": {
        "currency": "USD",
        "value": 150000,
        "term": "Finite",
        "signDateTime": "2024-10-01T00:00:00Z",
        "startDateTime": "2024-10-01T00:00:00Z",
        "endDateTime": "2027-09-30T00:00:00Z",
    },
}


def new_referral(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(NEW_REFERRAL)
    body.update(changes)
    return body


def registration(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REGISTRATION)
    body.update(changes)
    return body


def assert_error(response: Any, status: int, code: str = "invalidRequest", *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    error = body["error"]
    assert error["code"] == code
    assert error["target"] == "referral"
    assert set(error["innerError"]) >= {"code", "message"}
    for fragment in fragments:
        assert fragment in error["message"], (fragment, error["message"])
    return error
