"""The value types of the write models: what one field of a request or of a person's input accepts.

Each is an ``Annotated`` type (dates and date-times, amounts, currencies, countries, e-mail
addresses, MPN ids, catalog ids) whose validators raise ``FieldProblem``, so the message names the
field pydantic reports (``write_messages``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import catalog, money
from pcref_mcp.referrals.contacts import is_email
from pcref_mcp.referrals.money import parse_amount
from pcref_mcp.referrals.problems import FieldProblem
from pcref_mcp.referrals.timestamps import REQUEST_DIGITS, format_wire
from pcref_mcp.referrals.when import parse_when

__all__ = [
    "Amount",
    "CountryCode",
    "CurrencyCode",
    "DateInput",
    "Email",
    "MpnId",
    "UtcDateTime",
    "currency_in_words",
    "parse_amount",
    "parse_when",
    "wire_datetime",
]


# --- value types ----------------------------------------------------------------------------------


def wire_datetime(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form every documented request uses."""
    return format_wire(moment, REQUEST_DIGITS)


def currency_in_words(value: Any) -> Any:
    """A currency said in words ("euros", "Swiss francs") as its code; anything else as given."""
    if isinstance(value, str):
        code = money.currency_word(value)
        if code is not None and code != "$" and len(value.strip()) != 3:
            return code
    return value


def _email(value: str) -> str:
    if not is_email(value):
        raise FieldProblem(
            lambda f: f"{f} {value!r} is not an e-mail address; use the form name@example.com."
        )
    return value


def _mpn_id(value: str) -> str:
    if not value.isdigit():
        raise FieldProblem(
            lambda f: f"{f} {value!r} is not an MPN id; use the partner's numeric id, e.g. '6193175'."
        )
    return value


def _lookup(find: Callable[..., str]) -> Callable[[str], str]:
    """Wrap a catalog lookup so its message names the field pydantic reports."""

    def check(value: str) -> str:
        try:
            return find(value)
        except InvalidInput:
            raise FieldProblem(lambda f: _message_of(find, value, f)) from None

    return check


def _message_of(find: Callable[..., str], value: str, field: str) -> str:
    try:
        find(value, field=field)
    except InvalidInput as exc:
        return exc.message
    return f"{field} {value!r} is not allowed."


def _solution_ref(value: str) -> str:
    """A marketplace solution id as given, or a category solution's canonical id."""
    if catalog.is_solution_profile_id(value):
        return value.strip()
    try:
        return catalog.SOLUTIONS.lookup(value)
    except InvalidInput:
        raise FieldProblem(
            lambda f: (
                catalog.SOLUTIONS.unknown_message(value, field=f)
                + " A marketplace solution id looks like 'SOL-6115380-IPC'."
            )
        ) from None


class CatalogId:
    """What makes ``str`` an id of one catalog: ``Annotated[str, CatalogId(catalog.PRODUCTS)]``.

    The value is looked up forgivingly (``_lookup``: any case, labels people say); the schema shows
    a small catalog inline as an enum and points at a large one's resource, so one line declares each
    catalog id type below.
    """

    def __init__(self, table: catalog.Catalog) -> None:
        self.table = table

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_lookup(self.table.lookup), handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if len(self.table) <= 12:  # small catalogs go inline; large ones point at their resource
            return {**handler(schema), "enum": list(self.table.ids())}
        return {
            **handler(schema),
            "description": f"An id from {self.table.uri}, e.g. {self.table.ids()[0]!r}.",
        }


UtcDateTime = Annotated[
    datetime, BeforeValidator(parse_when), PlainSerializer(wire_datetime, return_type=str)
]
DateInput = Annotated[date | datetime, BeforeValidator(parse_when)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(parse_amount)]
CountryCode = Annotated[str, AfterValidator(_lookup(catalog.country_code)), Field(min_length=1)]
CurrencyCode = Annotated[
    str,
    BeforeValidator(currency_in_words),
    AfterValidator(_lookup(catalog.currency_code)),
    Field(min_length=1),
]
Email = Annotated[str, AfterValidator(_email)]
MpnId = Annotated[str, AfterValidator(_mpn_id)]
ProductId = Annotated[str, CatalogId(catalog.PRODUCTS)]
ServiceId = Annotated[str, CatalogId(catalog.SERVICES)]
IndustryId = Annotated[str, CatalogId(catalog.INDUSTRIES)]
CustomerSizeId = Annotated[str, CatalogId(catalog.CUSTOMER_SIZES)]
AssistanceCode = Annotated[str, CatalogId(catalog.ASSISTANCE_REQUEST_CODES)]
TermId = Annotated[str, CatalogId(catalog.CONTRACT_TERMS)]
PricingModelId = Annotated[str, CatalogId(catalog.PRICING_MODELS)]
DeploymentId = Annotated[str, CatalogId(catalog.PRIMARY_DEPLOYMENT)]
SolutionRef = Annotated[
    str,
    AfterValidator(_solution_ref),
    Field(description="A category solution id (catalog://solutions) or a marketplace solution id (SOL-...)."),
]
