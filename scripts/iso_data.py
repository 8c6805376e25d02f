"""Regenerate pcref_mcp/referrals/iso_data.py from pycountry (a dev dependency): ``make iso-data``.

The package does not depend on pycountry at run time: the stdio start would import it (and its 23 MB
of data and translations would ship) for 430 short rows. tests/referrals/test_iso_data.py checks the
file against the installed pycountry, so an upgrade that changes the data fails until this is run.
Our own names for countries ("UK", "Holland") stay in referrals/iso.py, not here.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "pcref_mcp" / "referrals" / "iso_data.py"


def render() -> str:
    import pycountry

    countries = sorted(pycountry.countries, key=lambda c: c.alpha_2)
    currencies = sorted(pycountry.currencies, key=lambda c: c.alpha_3)
    lines = [
        f'"""ISO 3166-1 countries and ISO 4217 currencies, generated from pycountry {version("pycountry")}',
        "by scripts/iso_data.py (``make iso-data``): do not edit by hand. Our own names for countries are in",
        'referrals/iso.py."""',
        "",
        "from __future__ import annotations",
        "",
        f'PYCOUNTRY_VERSION = "{version("pycountry")}"',
        "",
        "# alpha-2 code -> (alpha-3 code, English short name: the common name where ISO has one)",
        "COUNTRIES: dict[str, tuple[str, str]] = {",
        *(f"    {q(c.alpha_2)}: ({q(c.alpha_3)}, {q(common_name(c))})," for c in countries),
        "}",
        "",
        "# active ISO 4217 code -> English name",
        "CURRENCIES: dict[str, str] = {",
        *(f"    {q(c.alpha_3)}: {q(c.name)}," for c in currencies),
        "}",
        "",
    ]
    return "\n".join(lines)


def q(text: str) -> str:
    """A string literal as ruff formats it (double quotes)."""
    return json.dumps(text, ensure_ascii=False)


def common_name(country: object) -> str:
    """The name people use and type: "Bolivia", not "Bolivia, Plurinational State of"."""
    return str(getattr(country, "common_name", None) or country.name)  # type: ignore[attr-defined]


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.read_text(encoding="utf-8") == text else 1)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
