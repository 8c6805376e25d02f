"""referrals/iso_data.py is pycountry's data as scripts/iso_data.py renders it, and our names sit on top."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pcref_mcp.referrals import iso, iso_data
from pcref_mcp.referrals.catalog_values import fold

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("iso_data_script", ROOT / "scripts" / "iso_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_file_is_what_pycountry_generates() -> None:
    pytest.importorskip("pycountry", reason="pycountry is a dev dependency (pip install -e '.[dev]')")
    generated = _generator().render()
    on_disk = (ROOT / "pcref_mcp" / "referrals" / "iso_data.py").read_text(encoding="utf-8")
    assert on_disk == generated, "pycountry's data changed: run `make iso-data` and review the diff"


def test_every_alias_names_a_country_and_never_another_than_its_code_or_name_does() -> None:
    by_name = {fold(name): code for code, name in iso.COUNTRY_NAMES.items()}
    for alias, code in iso.COUNTRY_ALIASES.items():
        assert code in iso_data.COUNTRIES, alias
        assert by_name.get(alias, code) == code, alias
        assert iso.COUNTRY_ALPHA3.get(alias.upper(), code) == code, alias
        assert alias.upper() not in iso.COUNTRY_NAMES or alias.upper() == code, alias


def test_codes_names_and_aliases_read_as_one_code() -> None:
    assert iso.country_code("deu") == "DE" and iso.country_code("Bolivia") == "BO"
    assert iso.country_code("Holland") == "NL" and iso.country_code("Côte d'Ivoire") == "CI"
    assert iso.currency_code("eur") == "EUR" and iso.currency_code("Zimbabwe Gold") == "ZWG"
