"""create_referral's model hooks: the customer's consent (asked, never assumed), the help a co-sell asks
Microsoft for (catalog words, or the person's choice), a deal value with its currency, and a person given
as one name."""

from __future__ import annotations

import re
from typing import Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import catalog
from pcref_mcp.referrals.write_models import NewReferral
from pcref_mcp.server.reading.amounts import _deal_value_currency
from pcref_mcp.server.reading.fields import _fields
from pcref_mcp.server.reading.reader import Choice, _Reader
from pcref_mcp.server.reading.words import SYNONYMS, _at, _brief, _fold, _snake

# Words around a catalog value that add nothing ("architecture help" -> architecture).
_CATALOG_FILLER = frozenset(
    {"help", "with", "support", "need", "needed", "needs", "please", "request", "on", "for"}
)


def _catalog_words(reader: _Reader, value: str, table: Any, where: str) -> str:
    """A catalog value said with words around it: the value, said; else as given (its check judges)."""
    try:
        table.lookup(value)
        return value
    except InvalidInput:
        pass
    core = " ".join(w for w in re.split(r"\s+", value.strip()) if w.casefold() not in _CATALOG_FILLER)
    try:
        found = str(table.lookup(core))
    except InvalidInput:
        return value
    reader.note(f"{where} {_brief(value)} read as {found!r}")
    return found


def _new_referral_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """The customer's consent, asked for when absent; the help a co-sell asks Microsoft for, chosen by the
    person when absent; a deal value with its currency in one string."""
    _ask_consent(reader, data, where)
    _cosell_help(reader, data, where)
    return _deal_value_currency(reader, data, where)


def _cosell_help(reader: _Reader, data: dict[str, Any], where: str) -> None:
    """Assistance words read against the catalog; a co-sell referral without the help wanted from
    Microsoft: the person chooses it, one call per code."""
    kinds = {_fold(k) for k in ("deal_kind", *SYNONYMS["deal_kind"])}
    kind = next((v for k, v in data.items() if _fold(k) in kinds and isinstance(v, str)), None)
    codes = {_fold(k) for k in ("assistance_request_code", *SYNONYMS["assistance_request_code"])}
    code_key = next((k for k in data if _fold(k) in codes), None)
    if code_key is not None and isinstance(data[code_key], str):
        data[code_key] = _catalog_words(
            reader, data[code_key], catalog.ASSISTANCE_REQUEST_CODES, f"{where}.{code_key}"
        )
    if kind is not None and _fold(kind) == "cosell" and code_key is None:
        schema = NewReferral.model_json_schema()["properties"]["assistance_request_code"]
        allowed: list[str] = next((a["enum"] for a in schema.get("anyOf", [schema]) if "enum" in a), [])
        reader.problems.append(
            f"{where}.deal_kind co_sell asks Microsoft for help, which needs assistance_request_code (the help "
            "wanted; help_notes may say more to the Microsoft seller)"
        )
        data["assistance_request_code"] = Choice([(f"If {code}", code) for code in allowed])


# The consent a new referral carries, and what the person is asked: the model never answers it.
CONSENT_KEY = "customer_consent_to_contact"


CONSENT_QUESTION = "whether the customer agreed to be contacted and to sharing their details"


def _ask_consent(reader: _Reader, data: dict[str, Any], where: str) -> None:
    """No consent in the call: refused, with one call per answer (each the caller's own call), so the
    model must ask the person; consent is never filled in for them."""
    probe, fields = (
        _Reader(reader.tool),
        _fields(NewReferral),
    )  # which key means it; values are read once, later
    if any(v is not None and probe.place(k, v, fields, where) == CONSENT_KEY for k, v in data.items()):
        return
    data[CONSENT_KEY] = Choice([("If the customer agreed", True), ("If the customer did not agree", False)])
    reader.problems.append(
        f"{_at(where, CONSENT_KEY)} is missing: consent is never assumed; ask the person {CONSENT_QUESTION}"
    )


def _contact_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A person given as one ``name`` ("Jane Doe") -> first_name and last_name."""
    full = next((k for k in data if _fold(k) in ("name", "fullname", "displayname")), None)
    if (
        full is not None
        and isinstance(data[full], str)
        and not {"first_name", "last_name"} & set(map(_snake, data))
    ):
        parts = data[full].split()
        if len(parts) >= 2:
            data.pop(full)
            data["first_name"], data["last_name"] = parts[0], " ".join(parts[1:])
            reader.note(
                f"{where}.{full} {data['first_name']} {data['last_name']!r} read as first_name and last_name"
            )
    return data
