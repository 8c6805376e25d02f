"""The person's input models: a new deal (``NewReferral``) and a deal registration
(``NewDealRegistration``) in flat, snake_case fields a model fills in for a tool.

Rules across fields are tables of small functions, each returning the sentence a person reads.
``NewDealRegistration.to_wire`` gives its request model; a referral's request bodies are built by
:mod:`pcref_mcp.referrals.write_builders`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pcref_mcp.referrals import catalog
from pcref_mcp.referrals.problems import RuleError
from pcref_mcp.referrals.registration_rules import _FRIENDLY_NAMES, _friendly_facts, _registration_check
from pcref_mcp.referrals.wire_values import ContractTerm, PricingModel, PrimaryDeploymentOn, ReferralType
from pcref_mcp.referrals.write_values import (
    Amount,
    AssistanceCode,
    CountryCode,
    CurrencyCode,
    CustomerSizeId,
    DateInput,
    DeploymentId,
    Email,
    IndustryId,
    PricingModelId,
    ProductId,
    ServiceId,
    SolutionRef,
    TermId,
    parse_when,
)

if TYPE_CHECKING:  # the request models (write twins) are built with the first write: write_models
    from pcref_mcp.referrals.write_requests import WriteModel

__all__ = ["DEAL_KINDS", "Contact", "DealKind", "DealKindRule", "NewDealRegistration", "NewReferral"]


class DealKind(StrEnum):
    """How a new deal involves Microsoft ("Create a referral", deal types)."""

    PRIVATE = "private"
    PARTNER_LED = "partner_led"
    CO_SELL = "co_sell"


@dataclass(frozen=True)
class DealKindRule:
    referral_type: ReferralType
    share_with_microsoft_sellers: bool
    help_from_microsoft: bool
    meaning: str


DEAL_KINDS: dict[DealKind, DealKindRule] = {
    DealKind.PRIVATE: DealKindRule(
        ReferralType.INDEPENDENT, False, False, "not shared with Microsoft sellers, no help needed"
    ),
    DealKind.PARTNER_LED: DealKindRule(
        ReferralType.SHARED, True, False, "shared with Microsoft sellers, no help needed"
    ),
    DealKind.CO_SELL: DealKindRule(
        ReferralType.SHARED,
        True,
        True,
        "shared with Microsoft sellers and help requested: a second, linked referral for Microsoft",
    ),
}


class FriendlyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Contact(FriendlyModel):
    """A person: a customer contact or a member of the sales team."""

    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    email: Email | None = None
    phone: str | None = None

    def to_member(self) -> WriteModel:
        from pcref_mcp.referrals.write_requests import MemberIn

        return MemberIn(
            first_name=self.first_name, last_name=self.last_name, email=self.email, phone_number=self.phone
        )


class NewReferral(FriendlyModel):
    """A new deal in plain fields; deal_kind decides who sees it."""

    name: str = Field(min_length=1)
    customer_name: str = Field(min_length=1)
    customer_country: CountryCode = Field(description="ISO 3166 alpha-2, e.g. US")
    customer_city: str = Field(min_length=1)
    customer_address_line1: str | None = None
    customer_state: str | None = None
    customer_postal_code: str | None = None
    customer_size: CustomerSizeId | None = None
    customer_contacts: list[Contact] = Field(default_factory=list)
    customer_consent_to_contact: bool = Field(
        description="Never assumed: ask the person if the customer agreed to be contacted and to sharing "
        "their details."
    )
    deal_kind: DealKind = Field(
        description="private: only you; partner_led: shared with Microsoft sellers; co_sell: shared and "
        "asking Microsoft for help."
    )
    deal_value: Amount | None = None
    currency: CurrencyCode | None = Field(default=None, description="ISO 4217 code of deal_value, e.g. USD.")
    closing_date: DateInput | None = Field(
        default=None, description="Expected close: a date (2026-11-27) or a UTC date-time."
    )
    notes: str | None = Field(default=None, description="Notes about the customer's need.")
    products: list[ProductId] = Field(default_factory=list, description="Ids: catalog://products.")
    services: list[ServiceId] = Field(default_factory=list)
    industries: list[IndustryId] = Field(default_factory=list, description="Ids: catalog://industries.")
    solutions: list[SolutionRef] = Field(
        default_factory=list, description="Category solution ids or your marketplace solution ids (SOL-...)."
    )
    assistance_request_code: AssistanceCode | None = Field(
        default=None, description="co_sell only: the help wanted from Microsoft."
    )
    help_notes: str | None = Field(default=None, description="co_sell only: a note to the Microsoft seller.")
    external_reference_id: str | None = Field(default=None, description="Your CRM id for this deal.")
    campaign_id: str | None = None
    team: list[Contact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> NewReferral:
        problems = [message for rule in _NEW_REFERRAL_RULES if (message := rule(self))]
        if problems:
            raise RuleError(" ".join(problems))
        return self


def _co_sell_needs_code(new: NewReferral) -> str | None:
    if new.deal_kind is DealKind.CO_SELL and new.assistance_request_code is None:
        codes = ", ".join(repr(code) for code in catalog.ASSISTANCE_REQUEST_CODES.ids())
        return (
            "deal_kind 'co_sell' needs assistance_request_code (the help you want from Microsoft); "
            f"use one of: {codes}."
        )
    return None


def _co_sell_needs_notes(new: NewReferral) -> str | None:
    if new.deal_kind is DealKind.CO_SELL and not new.help_notes:
        return "deal_kind 'co_sell' needs help_notes: a short note telling the Microsoft seller what help you need."
    return None


def _code_only_for_co_sell(new: NewReferral) -> str | None:
    if new.deal_kind is not DealKind.CO_SELL and new.assistance_request_code is not None:
        return (
            f"assistance_request_code {new.assistance_request_code!r} is only for deal_kind 'co_sell' "
            f"(help requested from Microsoft); remove it or set deal_kind to 'co_sell'."
        )
    return None


def _notes_only_for_co_sell(new: NewReferral) -> str | None:
    if new.deal_kind is not DealKind.CO_SELL and new.help_notes:
        return (
            f"help_notes is only for deal_kind 'co_sell' (help requested from Microsoft); remove it or set "
            f"deal_kind to 'co_sell'. Use notes for {new.deal_kind.value} deals."
        )
    return None


def _value_needs_currency(new: NewReferral) -> str | None:
    if new.deal_value is not None and new.currency is None:
        return f"currency is required with deal_value {new.deal_value:g}; use an ISO 4217 code such as 'USD'."
    return None


_NEW_REFERRAL_RULES: tuple[Callable[[NewReferral], str | None], ...] = (
    _co_sell_needs_code,
    _co_sell_needs_notes,
    _code_only_for_co_sell,
    _notes_only_for_co_sell,
    _value_needs_currency,
)


# --- friendly input: NewDealRegistration ----------------------------------------------------------


class NewDealRegistration(FriendlyModel):
    """A deal registration in plain fields."""

    solution_id: str = Field(
        min_length=1, description="Your Azure IP co-sell solution id, e.g. SOL-6115380-IPC."
    )
    solution_value: Amount
    currency: CurrencyCode = Field(description="ISO 4217 code of solution_value, e.g. USD.")
    deployed_on_azure: bool = Field(description="The solution is deployed on Azure (required to register).")
    primary_deployment_on: DeploymentId = Field(description="Whose Azure tenant runs the solution.")
    pricing_model: PricingModelId
    marketplace_transacted: bool = Field(
        default=False, description="Sold through the commercial marketplace."
    )
    marketplace_transaction_date: DateInput | None = Field(
        default=None, description="When it was transacted; required if marketplace_transacted."
    )
    contract_value: Amount = Field(description="Total contract value, hardware excluded.")
    contract_currency: CurrencyCode | None = Field(default=None, description="Defaults to currency.")
    term: TermId = Field(description="Finite (needs end_date) or Perpetual (no end_date).")
    sign_date: DateInput
    start_date: DateInput
    end_date: DateInput | None = Field(default=None, description="Date a Finite contract ends.")

    # The rules across fields are not a validator: the planner reports them together with the
    # referral's unmet conditions, every one in a single refusal (issue 21).
    def problems(self) -> list[str]:
        """What Partner Center would refuse in this registration (empty when none)."""
        return _registration_check(_friendly_facts(self), _FRIENDLY_NAMES)[0]

    def warnings(self) -> list[str]:
        return _registration_check(_friendly_facts(self), _FRIENDLY_NAMES)[1]

    def to_wire(self) -> WriteModel:
        from pcref_mcp.referrals.write_requests import (
            ContractIn,
            DealRegistrationCreate,
            MarketplaceTransactionIn,
            SolutionDetailIn,
        )

        transacted_on = self.marketplace_transaction_date
        return DealRegistrationCreate(
            solution_details=[
                SolutionDetailIn(
                    id=self.solution_id,
                    currency=self.currency,
                    value=self.solution_value,
                    is_deployed_on_azure=self.deployed_on_azure,
                    primary_deployment_on=PrimaryDeploymentOn(self.primary_deployment_on),
                    pricing_model=PricingModel(self.pricing_model),
                    marketplace_transaction_details=MarketplaceTransactionIn(
                        is_marketplace_transacted=self.marketplace_transacted,
                        marketplace_transaction_date_time=parse_when(transacted_on)
                        if transacted_on
                        else None,
                    ),
                )
            ],
            contract=ContractIn(
                currency=self.contract_currency or self.currency,
                value=self.contract_value,
                term=ContractTerm(self.term),
                sign_date_time=parse_when(self.sign_date),
                start_date_time=parse_when(self.start_date),
                end_date_time=parse_when(self.end_date) if self.end_date else None,
            ),
        )
