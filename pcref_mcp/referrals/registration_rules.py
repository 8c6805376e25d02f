"""The deal registration rules (research notes §4), shared by both registration models: the request
model (``DealRegistrationCreate``, fields named as on the wire) and the person's input
(``NewDealRegistration``, fields named as the tool takes them).

Each rule reads the same facts and names the fields by the names table it is given, so one rule
speaks to both readers; the contract's own rules come from :mod:`pcref_mcp.referrals.contract`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pcref_mcp.referrals.contract import MIN_ANNUAL_CONTRACT_VALUE_USD, ContractFacts, contract_problems
from pcref_mcp.referrals.contract import WIRE_NAMES as CONTRACT_WIRE_NAMES
from pcref_mcp.referrals.when import parse_when

if TYPE_CHECKING:
    from pcref_mcp.referrals.write_inputs import NewDealRegistration
    from pcref_mcp.referrals.write_requests import WriteModel


@dataclass(frozen=True)
class _SolutionFacts:
    deployed_on_azure: bool
    transacted: bool
    transaction_date: datetime | None


@dataclass(frozen=True)
class _RegistrationFacts:
    contract: ContractFacts
    solutions: tuple[_SolutionFacts, ...]


# role -> the field name a person sees; "{i}" is the solution's index
_WIRE_NAMES = {
    **CONTRACT_WIRE_NAMES,
    "deployed": "solutionDetails[{i}].isDeployedOnAzure",
    "transacted": "solutionDetails[{i}].marketplaceTransactionDetails.isMarketplaceTransacted",
    "transaction_date": "solutionDetails[{i}].marketplaceTransactionDetails.marketplaceTransactionDateTime",
}
_FRIENDLY_NAMES = {
    "term": "term",
    "start": "start_date",
    "end": "end_date",
    "value": "contract_value",
    "deployed": "deployed_on_azure",
    "transacted": "marketplace_transacted",
    "transaction_date": "marketplace_transaction_date",
}


def _contract_rules(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    """The contract's own rules, from :mod:`pcref_mcp.referrals.contract` (the sandbox uses the same)."""
    return contract_problems(facts.contract, names)


def _deployed_on_azure(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    return [
        f"{names['deployed'].format(i=i)} is false: Partner Center would close the referral without a "
        "registration. Only solutions deployed on Azure can be registered for Azure IP co-sell."
        for i, solution in enumerate(facts.solutions)
        if not solution.deployed_on_azure
    ]


def _transaction_date_iff_transacted(facts: _RegistrationFacts, names: dict[str, str]) -> list[str]:
    problems = []
    for i, solution in enumerate(facts.solutions):
        date_name, flag_name = names["transaction_date"].format(i=i), names["transacted"].format(i=i)
        if solution.transacted and solution.transaction_date is None:
            problems.append(f"{date_name} is required when {flag_name} is true.")
        if not solution.transacted and solution.transaction_date is not None:
            problems.append(f"{date_name} must be empty when {flag_name} is false.")
    return problems


_REGISTRATION_RULES: tuple[Callable[[_RegistrationFacts, dict[str, str]], list[str]], ...] = (
    _contract_rules,
    _deployed_on_azure,
    _transaction_date_iff_transacted,
)


def _registration_check(facts: _RegistrationFacts, names: dict[str, str]) -> tuple[list[str], list[str]]:
    """(problems that refuse the registration, warnings to show)."""
    problems = [message for rule in _REGISTRATION_RULES for message in rule(facts, names)]
    warnings = []
    if facts.contract.currency != "USD":
        warnings.append(
            f"The contract is in {facts.contract.currency}, so the rule that the annual contract value must exceed "
            f"{MIN_ANNUAL_CONTRACT_VALUE_USD:,.0f} USD was not checked; make sure it does."
        )
    return problems, warnings


def _wire_facts(model: WriteModel) -> _RegistrationFacts:
    """The facts of a :data:`DealRegistrationCreate` (read by name: a twin has no static fields)."""
    contract: Any = getattr(model, "contract")  # noqa: B009
    return _RegistrationFacts(
        ContractFacts(
            term=contract.term,
            start=contract.start_date_time,
            end=contract.end_date_time,
            value=contract.value,
            currency=contract.currency,
        ),
        solutions=tuple(
            _SolutionFacts(
                s.is_deployed_on_azure,
                s.marketplace_transaction_details.is_marketplace_transacted,
                s.marketplace_transaction_details.marketplace_transaction_date_time,
            )
            for s in getattr(model, "solution_details")  # noqa: B009
        ),
    )


def _friendly_facts(model: NewDealRegistration) -> _RegistrationFacts:
    transacted_on = model.marketplace_transaction_date
    return _RegistrationFacts(
        ContractFacts(
            term=model.term,
            start=parse_when(model.start_date),
            end=parse_when(model.end_date) if model.end_date else None,
            value=model.contract_value,
            currency=model.contract_currency or model.currency,
        ),
        solutions=(
            _SolutionFacts(
                model.deployed_on_azure,
                model.marketplace_transacted,
                parse_when(transacted_on) if transacted_on else None,
            ),
        ),
    )
