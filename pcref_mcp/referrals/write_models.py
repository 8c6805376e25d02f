"""Strict models for what pcref-mcp sends: a new referral and a new deal registration.

Two layers. The *wire* models (``ReferralCreate``, ``DealRegistrationCreate``) are exactly the
request bodies of "Create a referral" and "Create a referral deal registration": camelCase on the
wire, unknown fields refused, every value checked. The *friendly* models (``NewReferral``,
``NewDealRegistration``) are flat, snake_case inputs a model fills in for a tool; they turn into
wire bodies with ``partner_referral_body`` / ``microsoft_referral_body`` / ``to_wire``.

Every rule speaks to a person: the field, the value given and what is allowed. Pydantic's own
errors are rewritten by ``validation_message``; ``parse_or_raise`` raises ``InvalidInput`` with it.

This module is the one name the rest of pcref_mcp imports them by; each job lives in its own module:

* ``write_messages``: pydantic's errors as sentences (``validation_message``, ``parse_or_raise``);
* ``write_values``: the value types of a field (dates, amounts, currencies, catalog ids);
  ``when.parse_when`` reads a date as written;
* ``write_requests``: the request models, write twins of the read models (``twin``);
* ``registration_rules``: the deal registration rules both registration models share;
* ``write_inputs``: the person's input models (``NewReferral``, ``NewDealRegistration``);
* ``write_builders``: a new referral's request bodies (``partner_referral_body`` and the rest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.contract import MIN_ANNUAL_CONTRACT_VALUE_USD, PERPETUAL_YEARS, annual_contract_value
from pcref_mcp.referrals.problems import FieldProblem
from pcref_mcp.referrals.write_inputs import (
    DEAL_KINDS,
    Contact,
    DealKind,
    DealKindRule,
    NewDealRegistration,
    NewReferral,
)
from pcref_mcp.referrals.write_messages import parse_or_raise, validation_message
from pcref_mcp.referrals.write_values import (
    Amount,
    CurrencyCode,
    UtcDateTime,
    currency_in_words,
    parse_amount,
    parse_when,
    wire_datetime,
)

if TYPE_CHECKING:
    from pcref_mcp.referrals.write_builders import (
        ENGAGEMENT_ID_PLACEHOLDER,
        MICROSOFT_ORG_ID,
        consent_line,
        microsoft_referral_body,
        partner_referral_body,
        with_engagement_id,
    )
    from pcref_mcp.referrals.write_requests import (
        ContractIn,
        DealRegistrationCreate,
        MemberIn,
        ReferralCreate,
        SolutionTagIn,
        WriteModel,
        list_of,
        twin,
    )

# The request models (write twins, each a pydantic model built from its read model) and the bodies
# built from them load with the first of their names asked for here, not at import: a server that
# only reads, or has not written yet, never builds them (issue 24: cold start).
_LOADED_ON_FIRST_USE = ("pcref_mcp.referrals.write_requests", "pcref_mcp.referrals.write_builders")


def __getattr__(name: str) -> Any:
    """One of ``__all__`` not imported above: from the modules loaded on first use."""
    if name in __all__:
        for module in map(importlib.import_module, _LOADED_ON_FIRST_USE):
            if hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value  # asked once
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEAL_KINDS",
    "ENGAGEMENT_ID_PLACEHOLDER",
    "MICROSOFT_ORG_ID",
    "MIN_ANNUAL_CONTRACT_VALUE_USD",
    "PERPETUAL_YEARS",
    "Amount",
    "Contact",
    "ContractIn",
    "CurrencyCode",
    "DealKind",
    "DealKindRule",
    "DealRegistrationCreate",
    "FieldProblem",
    "MemberIn",
    "NewDealRegistration",
    "NewReferral",
    "ReferralCreate",
    "SolutionTagIn",
    "UtcDateTime",
    "WriteModel",
    "annual_contract_value",
    "consent_line",
    "currency_in_words",
    "is_email",
    "list_of",
    "microsoft_referral_body",
    "parse_amount",
    "parse_or_raise",
    "parse_when",
    "partner_referral_body",
    "twin",
    "validation_message",
    "wire_datetime",
    "with_engagement_id",
]
