"""ISO 3166-1 countries and ISO 4217 currencies as catalogs, with the names people use on top.

The codes and names are generated from pycountry into ``iso_data`` (``make iso-data``; a test checks
the file against the installed pycountry). What we add is here: the other names people use for a
country ("UK", "Holland"), how a typed code or name is read, and the currencies a bare "$" can mean.
"""

from __future__ import annotations

import re

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import iso_data
from pcref_mcp.referrals.catalog_values import Catalog, CatalogValue, fold

__all__ = [
    "COUNTRIES",
    "COUNTRY_ALIASES",
    "COUNTRY_ALPHA3",
    "COUNTRY_NAMES",
    "CURRENCIES",
    "CURRENCY_NAMES",
    "DOLLAR_CURRENCIES",
    "country_code",
    "currency_code",
]

# alpha-2 code -> English short name
COUNTRY_NAMES: dict[str, str] = {code: name for code, (_, name) in iso_data.COUNTRIES.items()}

# alpha-3 code -> alpha-2 code ("DEU" -> DE): read as meant, it cannot mean anything else.
COUNTRY_ALPHA3: dict[str, str] = dict(sorted((a3, code) for code, (a3, _) in iso_data.COUNTRIES.items()))

# active ISO 4217 code -> name
CURRENCY_NAMES: dict[str, str] = dict(iso_data.CURRENCIES)

COUNTRIES = Catalog(
    "countries",
    "country",
    "ISO 3166-1 alpha-2 country codes (customerProfile.address.country).",
    tuple(CatalogValue(code, name) for code, name in COUNTRY_NAMES.items()),
)

# Names people use for a country that are not its ISO name (nor its code): the EU's "UK" and "EL",
# short and older names, names in the country's own language. Folded like every catalog key.
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "GB": ("UK", "Britain", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland"),
    "GR": ("EL", "Hellas"),
    "US": ("USA", "America", "United States of America", "the States"),
    "NL": ("Holland", "The Netherlands", "Nederland"),
    "DE": ("Deutschland",),
    "AT": ("Osterreich",),
    "CH": ("Schweiz", "Suisse", "Svizzera"),
    "ES": ("Espana",),
    "IT": ("Italia",),
    "BR": ("Brasil",),
    "SE": ("Sverige",),
    "NO": ("Norge",),
    "DK": ("Danmark",),
    "FI": ("Suomi",),
    "PL": ("Polska",),
    "JP": ("Nippon", "Nihon"),
    "KR": ("Korea", "Republic of Korea"),
    "RU": ("Russia",),
    "CZ": ("Czech Republic",),
    "TR": ("Turkey",),
    "VN": ("Viet Nam",),
    "AE": ("UAE", "Emirates"),
    "CI": ("Ivory Coast",),
    "SZ": ("Swaziland",),
    "MM": ("Burma",),
    "VA": ("Vatican", "Vatican City"),
    "CV": ("Cape Verde",),
    "BN": ("Brunei",),
    "FM": ("Micronesia",),
    "PS": ("Palestine",),
    "MK": ("Macedonia",),
    "CD": ("DRC", "DR Congo", "Democratic Republic of the Congo"),
    "CG": ("Republic of the Congo",),
    "MO": ("Macau",),
    "HK": ("Hong Kong SAR",),
}
COUNTRY_ALIASES: dict[str, str] = {
    fold(alias): code for code, aliases in _COUNTRY_ALIASES.items() for alias in aliases
}
CURRENCIES = Catalog(
    "currencies",
    "currency",
    "Active ISO 4217 currency codes (details.currency, registration contract and solution currency).",
    tuple(CatalogValue(code, name) for code, name in CURRENCY_NAMES.items()),
)

# ISO 4217 codes people write with a bare "$": a "$" amount is read only where one of these is meant.
DOLLAR_CURRENCIES = frozenset(
    {"USD", "AUD", "CAD", "NZD", "SGD", "HKD", "MXN", "TWD", "BRL", "CLP", "COP", "ARS"}
)


def country_code(text: str, *, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code from a code (any case), an alpha-3 code, an English country name or
    a name people commonly use instead (``COUNTRY_ALIASES``: "UK" -> GB, "Holland" -> NL)."""
    if isinstance(text, str):
        code = text.strip().upper()
        if len(code) == 2 and code in COUNTRIES:
            return code
        found = COUNTRY_ALIASES.get(fold(text))
        if found is None and len(code) == 3:
            found = COUNTRY_ALPHA3.get(code)
        if found is None and len(code) != 2:
            found = COUNTRIES.find(text)
        if found is not None:
            return found
    raise InvalidInput(
        f"{field} {text!r} is not an ISO 3166 alpha-2 code; use a two-letter code such as "
        f"{_country_example(text)!r}.",
        field=field,
        value=text,
        allowed=f"ISO 3166-1 alpha-2 codes ({COUNTRIES.uri})",
    )


def currency_code(text: str, *, field: str = "currency") -> str:
    """An ISO 4217 code from a code in any case (``usd`` -> ``USD``) or its English name."""
    if isinstance(text, str):
        code = text.strip().upper()
        if code in CURRENCIES:
            return code
        if len(code) != 3:
            found = CURRENCIES.find(text)
            if found is not None:
                return found
    raise InvalidInput(
        f"{field} {text!r} is not an ISO 4217 currency code; use a three-letter code such as "
        f"{_currency_example(text)!r}.",
        field=field,
        value=text,
        allowed=f"ISO 4217 codes ({CURRENCIES.uri})",
    )


# --- helpers --------------------------------------------------------------------------------------


def _country_example(text: object) -> str:
    if isinstance(text, str):
        code = COUNTRY_ALPHA3.get(text.strip().upper())
        if code:
            return code
        close = COUNTRIES.close_matches(text, n=1)
        if close:
            return close[0]
    return "US"


# Codes people mean most often; a typo like "US$" or "eur0" is matched against these first.
_COMMON_CURRENCIES = (
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CAD",
    "AUD",
    "INR",
    "CHF",
    "CNY",
    "BRL",
    "MXN",
    "SEK",
    "NZD",
)


def _currency_example(text: object) -> str:
    if isinstance(text, str):
        letters = re.sub(r"[^A-Z]", "", text.upper())
        for code in _COMMON_CURRENCIES:
            if len(letters) >= 2 and code.startswith(letters[:2]):
                return code
        close = CURRENCIES.close_matches(text, n=1)
        if close:
            return close[0]
    return "USD"
