"""Deal registrations as the service decides them: adding one (every unmet condition reported
together, as ``NotEligible``), editing one while it is ActionRequired, and the contract rules of the
domain (:mod:`pcref_mcp.referrals.contract`) as the service applies them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.contract import ContractFacts, contract_problems
from pcref_mcp.referrals.models import (
    ContractTerm,
    PricingModel,
    PrimaryDeploymentOn,
    RegistrationStatus,
)
from pcref_mcp.sandbox.checks import (
    _REGISTRATION_VALIDATORS,
    _boolean,
    _currency,
    _datetime,
    _deal_value,
    _enum,
    _field,
    _invalid,
    _not_eligible,
    normalise_keys,
)
from pcref_mcp.sandbox.clock import format_wire, parse_wire
from pcref_mcp.sandbox.patching import _set

WIN_AFTER = timedelta(hours=72)
_TERMINAL_REGISTRATION = frozenset({"Approved", "Passed", "Failed", "Closed"})


# --- deal registrations ---------------------------------------------------------------------------


def _add_registration(doc: dict[str, Any], value: Any, now: datetime) -> None:
    unmet: list[str] = []
    status, substatus = doc.get("status"), doc.get("substatus")
    if (status, substatus) != ("Closed", "Won"):
        unmet.append(f"the referral must be Closed/Won (it is {status}/{substatus})")
    consent = doc.get("consent")
    if not isinstance(consent, dict):
        consent = {}
    if not (consent.get("consentToShareReferralWithMicrosoftSellers") is True or doc.get("type") == "Shared"):
        unmet.append(
            "the deal must be shared with Microsoft sellers (type Shared or "
            "consent.consentToShareReferralWithMicrosoftSellers true)"
        )
    created, closed = (
        parse_wire(doc.get("createdDateTime") or ""),
        parse_wire(doc.get("closedDateTime") or ""),
    )
    if status == "Closed" and substatus == "Won" and created and closed and closed - created < WIN_AFTER:
        unmet.append(
            "the referral must be marked Won at least 72 hours after it was created "
            f"(created {doc.get('createdDateTime')}, won {doc.get('closedDateTime')})"
        )
    for existing in doc.get("registrations") or []:
        if isinstance(existing, dict) and existing.get("status") not in ("Failed", "Closed"):
            unmet.append(f"the referral already has a deal registration (status {existing.get('status')})")
            break

    if not isinstance(value, dict):
        unmet.append("the registration must be an object with type, solutionDetails and contract")
        raise _not_eligible(unmet)
    value = normalise_keys(value)
    if value.get("type") != "AzureIPCoSell":
        unmet.append(f"type must be AzureIPCoSell (got {value.get('type')!r})")
    details = value.get("solutionDetails")
    solutions: list[dict[str, Any]] = []
    if not isinstance(details, list) or not details:
        unmet.append("solutionDetails must list at least one Azure IP co-sell eligible solution")
    else:
        for i, detail in enumerate(details):
            try:
                solutions.append(_registration_solution(f"/solutionDetails/{i}", detail))
            except InvalidInput as err:
                unmet.append(err.message.rstrip("."))
                continue
            if detail.get("isDeployedOnAzure") is False:
                unmet.append(
                    f"solution {detail.get('id')!r} is not deployed on Azure: such a deal is closed without a deal "
                    "registration"
                )
    contract = value.get("contract")
    try:
        contract = _contract("/contract", contract)
        unmet.extend(_contract_rules(contract))
    except InvalidInput as err:
        unmet.append(err.message.rstrip("."))
    if unmet:
        raise _not_eligible(unmet)

    names = {
        s.get("id"): s.get("name")
        for s in ((doc.get("details") or {}).get("requirements") or {}).get("solutions") or []
        if isinstance(s, dict)
    }
    for solution in solutions:
        if solution.get("id") in names and names[solution["id"]] and not solution.get("name"):
            solution["name"] = names[solution["id"]]
    stamp = format_wire(now)
    registration = {
        "id": str(uuid.uuid4()),
        "type": "AzureIPCoSell",
        "registrationDateTime": stamp,
        "status": "ReviewPending",
        "statusReason": None,
        "contract": contract,
        "solutionDetails": solutions,
        "statusHistory": {"reviewPendingDateTime": stamp},
    }
    doc.setdefault("registrations", [])
    if not isinstance(doc["registrations"], list):
        doc["registrations"] = []
    doc["registrations"].append(registration)
    doc["registrationStatus"] = "ReviewPending"


def _update_registration(doc: dict[str, Any], updates: list[tuple[str, Any]], now: datetime) -> None:
    registrations = doc.get("registrations") or []
    if not registrations or not isinstance(registrations[0], dict):
        raise InvalidInput(
            "The referral has no deal registration to update; create one with op 'add' on /registrations/-.",
            field="registrations",
        )
    registration = registrations[0]
    state = registration.get("status")
    if state != "ActionRequired":
        why = (
            f"it is {state}, a final state"
            if state in _TERMINAL_REGISTRATION
            else f"it is {state} (under review by Microsoft)"
        )
        raise InvalidInput(
            f"The deal registration can be edited only while it is ActionRequired; {why}.",
            field="registrations/0/status",
            value=state,
            allowed=("ActionRequired",),
        )
    for path, value in updates:
        rest = path.removeprefix("/registrations/0/")
        checked = _REGISTRATION_VALIDATORS[rest](path, value)
        if rest.startswith("solutionDetails/0/"):
            details = registration.get("solutionDetails")
            if not isinstance(details, list) or not details or not isinstance(details[0], dict):
                raise InvalidInput("The deal registration has no solution to update.", field=path)
        _set(registration, "/" + rest, checked)
    problems = _contract_rules(registration.get("contract") or {})
    for i, detail in enumerate(registration.get("solutionDetails") or []):
        try:
            _registration_solution(f"/registrations/0/solutionDetails/{i}", detail)
        except InvalidInput as err:
            problems.append(err.message.rstrip("."))
    if problems:
        raise _invalid("The deal registration change cannot be applied", problems)
    stamp = format_wire(now)
    registration["status"] = "ReviewPending"  # resubmitted for Microsoft's review
    history = registration.get("statusHistory")
    if not isinstance(history, dict):
        history = registration["statusHistory"] = {}
    history["reviewPendingDateTime"] = stamp
    doc["registrationStatus"] = "ReviewPending"


def _registration_solution(path: str, value: Any) -> dict[str, Any]:
    where = _field(path)
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object.", field=where)
    value = normalise_keys(value)
    if not isinstance(value.get("id"), str) or not value["id"]:
        raise InvalidInput(
            f"{where}.id is required (the solution's id, e.g. SOL-6115380-IPC).", field=f"{where}.id"
        )
    if value.get("value") is not None:
        value["value"] = _deal_value(f"{path}/value", value["value"])
    if value.get("currency") is not None:
        value["currency"] = _currency(f"{path}/currency", value["currency"])
    if "isDeployedOnAzure" not in value:
        raise InvalidInput(
            f"{where}.isDeployedOnAzure is required (true or false).", field=f"{where}.isDeployedOnAzure"
        )
    _boolean(f"{path}/isDeployedOnAzure", value["isDeployedOnAzure"])
    _enum(PrimaryDeploymentOn)(f"{path}/primaryDeploymentOn", value.get("primaryDeploymentOn"))
    _enum(PricingModel)(f"{path}/pricingModel", value.get("pricingModel"))
    market = value.get("marketplaceTransactionDetails")
    if market is not None:
        if not isinstance(market, dict):
            raise InvalidInput(f"{where}.marketplaceTransactionDetails must be an object.", field=where)
        transacted = market.get("isMarketplaceTransacted")
        if transacted is not None:
            _boolean(f"{path}/marketplaceTransactionDetails/isMarketplaceTransacted", transacted)
        when = _datetime(
            f"{path}/marketplaceTransactionDetails/marketplaceTransactionDateTime",
            market.get("marketplaceTransactionDateTime"),
        )
        if transacted and not when:
            raise InvalidInput(
                f"{where}.marketplaceTransactionDetails.marketplaceTransactionDateTime is required when the deal "
                "was transacted on the marketplace.",
                field=f"{where}.marketplaceTransactionDetails.marketplaceTransactionDateTime",
            )
        if when:
            market["marketplaceTransactionDateTime"] = when
    return value


def _contract(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(
            "contract is required: an object with term, value, currency and dates.", field="contract"
        )
    value = normalise_keys(value)
    _enum(ContractTerm)(f"{path}/term", value.get("term"))
    if value.get("value") is None:
        raise InvalidInput(
            "contract.value is required (total contract value, without hardware).", field="contract.value"
        )
    value["value"] = _deal_value(f"{path}/value", value["value"])
    if value.get("currency") is not None:
        value["currency"] = _currency(f"{path}/currency", value["currency"])
    for key in ("startDateTime", "endDateTime", "signDateTime"):
        if key in value:
            value[key] = _datetime(f"{path}/{key}", value[key])
    return value


def _contract_rules(contract: dict[str, Any]) -> list[str]:
    """The contract rules of the domain (:mod:`pcref_mcp.referrals.contract`), as the service applies
    them; a contract without a currency is read as USD."""
    value = contract.get("value")
    return [
        problem.rstrip(".")
        for problem in contract_problems(
            ContractFacts(
                term=contract.get("term"),
                start=parse_wire(contract.get("startDateTime") or ""),
                end=parse_wire(contract.get("endDateTime") or ""),
                value=value if isinstance(value, int | float) and not isinstance(value, bool) else None,
                currency=contract.get("currency") or "USD",
            )
        )
    ]


# Statuses a registration may hold (re-exported for the seed generator).
REGISTRATION_STATES = tuple(str(s) for s in RegistrationStatus)
