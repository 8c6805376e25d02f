"""The words a model may use for a field (``SYNONYMS``), and how text is folded for matching and echoed
back (masked, cut short) in notes, refusals and corrected calls."""

from __future__ import annotations

import json
import re
from typing import Any

# Other words for a field, by field name; used in any model that has that field (and only one
# field claiming the word). camelCase, case, spaces and singular/plural are derived, not listed.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # tool arguments
    "referral_id": ("id", "referral", "engagement_referral_id"),
    "id": ("referral_id", "url", "uri", "referral"),
    "change_id": ("id", "journal_id", "change"),
    "limit": ("top", "max", "max_results", "page_size", "per_page"),
    "cursor": ("next_cursor", "page_token", "next_page_token", "continuation_token", "next"),
    "query": ("q", "text", "search", "keyword", "keywords"),
    "format": ("export", "output", "output_format", "file_format", "as"),
    "since": (
        "from",
        "after",
        "start",
        "since_date",
        "start_date",
        "from_date",
        "changed_since",
        "period",
        "window",
        "timeframe",
        "time_range",
    ),
    "status": ("outcome", "result", "state"),
    "confirm_token": ("token", "confirmation_token", "confirmation"),
    "changes": ("updates", "edits", "patch", "patches", "operations"),
    "items": ("updates", "referrals", "rows", "records", "entries"),
    # change items
    "field": ("path", "name", "field_name", "key", "attribute", "property", "pointer"),
    "value": ("new_value", "to", "set_to", "new", "val"),
    # search filters
    "text": ("query", "q", "search", "keyword", "keywords", "contains"),
    "name_contains": ("name", "referral_name"),
    "customer_contains": ("customer", "customer_name", "company", "account"),
    "min_value": (
        "min_deal_value",
        "value_from",
        "min_amount",
        "minimum_value",
        "min_deal_size",
        "min_size",
        "value_over",
        "value_above",
        "over",
        "above",
        "at_least",
        "more_than",
        "greater_than",
    ),
    "max_value": (
        "max_deal_value",
        "value_to",
        "max_amount",
        "maximum_value",
        "max_deal_size",
        "max_size",
        "value_under",
        "value_below",
        "under",
        "below",
        "at_most",
        "less_than",
    ),
    "closing_from": ("closing_after", "closes_after", "close_after", "closing_since"),
    "closing_to": (
        "closing_before",
        "closes_before",
        "close_before",
        "closing_by",
        "closes_by",
        "due_before",
    ),
    "updated_from": ("updated_since", "updated_after", "modified_since", "modified_after", "changed_after"),
    "updated_to": ("updated_before", "modified_before", "changed_before"),
    "created_from": ("created_since", "created_after"),
    "created_to": ("created_before",),
    # a new referral
    "deal_value": ("value", "amount", "deal_amount", "deal_size", "estimated_value"),
    "closing_date": ("close_date", "expected_close_date", "closing_date_time", "close_by", "expected_close"),
    "customer_name": ("customer", "company", "company_name", "account", "account_name"),
    "customer_country": ("country", "country_code"),
    "customer_city": ("city",),
    "customer_state": ("state", "province"),
    "customer_postal_code": ("postal_code", "zip", "zip_code", "postcode"),
    "customer_address_line1": ("address", "address_line1", "street", "street_address"),
    "customer_size": ("size", "company_size"),
    "customer_contacts": ("contacts", "customer_team", "customer_contact"),
    "customer_consent_to_contact": ("consent_to_contact", "customer_consent", "consent"),
    "deal_kind": ("kind", "deal_type", "referral_kind", "type", "referral_type", "sharing"),
    "help_notes": ("help_note", "help", "invite_notes", "note_to_microsoft", "help_text"),
    "assistance_request_code": ("assistance_code", "help_code", "assistance", "assistance_request"),
    "external_reference_id": ("external_id", "crm_id", "reference_id"),
    "team": ("sales_team", "team_members"),
    "notes": ("note", "description"),
    # people
    "phone": ("phone_number", "telephone", "mobile", "tel"),
    "phone_number": ("phone", "telephone", "mobile", "tel"),
    "email": ("e_mail", "mail", "email_address"),
    "first_name": ("given_name", "firstname", "first"),
    "last_name": ("family_name", "surname", "lastname", "last"),
    # a deal registration
    "solution_id": ("solution",),
    "solution_value": ("solution_amount",),
    "contract_value": ("contract_amount", "total_contract_value"),
    "contract_currency": (),
    "sign_date": ("signed_date", "signature_date", "contract_sign_date", "sign_date_time"),
    "start_date": ("contract_start_date", "contract_start", "start_date_time"),
    "end_date": ("contract_end_date", "contract_end", "end_date_time"),
    "term": ("contract_term",),
    "deployed_on_azure": ("is_deployed_on_azure", "azure_deployed", "on_azure"),
    "primary_deployment_on": ("primary_deployment", "deployment"),
    "marketplace_transacted": ("is_marketplace_transacted", "transacted_in_marketplace", "transacted"),
    "marketplace_transaction_date": ("transaction_date", "marketplace_transaction_date_time"),
}


_SECRET_ARGUMENTS = frozenset({"confirm_token", "cursor"})


def _fold(text: str) -> str:
    return re.sub(r"[\s_\-/.]", "", text).casefold()


def _snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text.strip())
    return re.sub(r"[\s\-]+", "_", text).casefold()


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _brief(value: Any) -> str:
    """A value for a note or a message: short, and without anyone's e-mail or phone number."""
    text = json.dumps(_shown(value), ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _shown(value: Any, key: str | None = None) -> Any:
    """A value echoed back (a corrected call, a note): tokens and contact details masked, text cut short.

    Messages are logged as well as returned, and the brief allows no contact details in logs.
    """
    if value and key is not None and (key in _SECRET_ARGUMENTS or _fold(key) in _CONTACT_KEYS):
        return f"<{key} as given>"
    if isinstance(value, dict):
        return {k: _shown(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "…"
    return value


# Keys whose values are contact details (folded): never echoed in a message.
_CONTACT_KEYS = frozenset(
    _fold(k) for k in (*SYNONYMS["phone"], *SYNONYMS["email"], "phone", "email", "phone_number")
)
