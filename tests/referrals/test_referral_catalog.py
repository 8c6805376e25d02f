"""Catalog data and forgiving lookups."""

from __future__ import annotations

import pytest

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.catalog import (
    CATALOGS,
    COUNTRIES,
    CURRENCIES,
    PLAYS_BY_AREA,
    country_code,
    currency_code,
    is_solution_profile_id,
    lookup,
)
from pcref_mcp.referrals.models import AssistanceRequestCode, CustomerSize


def test_people_type_names_we_send_ids() -> None:
    assert lookup("products", "dynamics 365 enterprise") == "Dynamics365Enterprise"
    assert lookup("industries", "retail and consumer goods") == "Retail & Consumer Goods"
    assert lookup("industries", "retail & consumer goods") == "Retail & Consumer Goods"
    assert lookup("services", "custom solution isv") == "CustomSolution(ISV)"
    assert lookup("customer_sizes", "10 to 50 employees") == "10to50employees"


def test_unknown_value_names_close_matches() -> None:
    with pytest.raises(InvalidInput) as caught:
        lookup("products", "Dynamics 356", field="products")
    assert caught.value.message == (
        "products 'Dynamics 356' is not a known product; did you mean 'Dynamics365Business' or "
        "'Dynamics365Enterprise'? All values: catalog://products."
    )


def test_iso_tables_are_complete() -> None:
    assert len(COUNTRIES) == 249 and COUNTRIES.label("DE") == "Germany"
    assert "USD" in CURRENCIES and "EUR" in CURRENCIES and len(CURRENCIES) >= 170
    assert country_code("united states") == "US" and country_code("gb") == "GB"
    assert currency_code("usd") == "USD" and currency_code("Euro") == "EUR"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("UK", "GB"),
        ("uk", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("USA", "US"),
        ("United States of America", "US"),
        ("DEU", "DE"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("Holland", "NL"),
        ("EL", "GR"),
        ("Turkey", "TR"),
        ("Turkiye", "TR"),
        ("Türkiye", "TR"),
        ("cote d'ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Korea", "KR"),
        ("UAE", "AE"),
        ("fra", "FR"),
    ],
)
def test_country_aliases_alpha3_and_names_are_read_as_meant(text: str, code: str) -> None:
    assert country_code(text) == code


@pytest.mark.parametrize(("text", "example"), [("Germny", "DE"), ("zz", "US"), ("Untied Kingdom", "GB")])
def test_country_message_suggests_the_two_letter_code(text: str, example: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        country_code(text, field="customer_country")
    assert caught.value.message == (
        f"customer_country {text!r} is not an ISO 3166 alpha-2 code; use a two-letter code such as {example!r}."
    )


def test_catalogs_match_the_model_enums() -> None:
    current = set(CATALOGS["customer_sizes"].ids())
    legacy = {v.id for v in CATALOGS["customer_sizes"].legacy}
    assert current | legacy == {s.value for s in CustomerSize}
    assert set(CATALOGS["assistance_request_codes"].ids()) == {c.value for c in AssistanceRequestCode} - {
        "Unknown"
    }


def test_every_catalog_is_a_resource_without_ambiguous_spellings() -> None:
    for name, table in CATALOGS.items():
        resource = table.as_resource()
        assert resource["name"] == name and resource["values"] and table.uri.startswith("catalog://")
        for value in table.values:
            assert table.lookup(value.id) == value.id


def test_solution_plays_by_area() -> None:
    assert len(PLAYS_BY_AREA) == 7 and sum(map(len, PLAYS_BY_AREA.values())) == 30
    play = next(v for v in CATALOGS["solution_plays"].values if v.id == "Build and Modernize AI Apps")
    assert play.parents == ("Data and AI", "Digital and Application Innovation")


def test_solution_profile_ids() -> None:
    assert is_solution_profile_id("SOL-6115380-IPC")
    assert is_solution_profile_id("d84be20e-6710-42f5-a009-5e72a9ad50bf")
    assert not is_solution_profile_id("DevOps")


def test_words_people_use_for_an_assistance_code_read_as_that_code() -> None:
    codes = CATALOGS["assistance_request_codes"]
    assert codes.lookup("Other") == codes.lookup("general") == "GeneralOrOther"
    assert codes.lookup("POC") == codes.lookup("demo") == "ProofOfConceptOrDemo"
    assert codes.lookup("licensing") == "QuotesOrLicensing"
    with pytest.raises(InvalidInput):  # an alias never makes an unknown word acceptable
        codes.lookup("Marketing")
