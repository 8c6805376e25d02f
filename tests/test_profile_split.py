"""`make unit` runs the tests the sandbox profile can change under both profiles and the rest once. What
runs once must be unable to see the profile: tests/referrals tests the domain alone, which never imports
the sandbox (tests/test_layers.py), so its tests import only the domain and read no profile. A domain
test that starts reaching the sandbox, a server or the profile fails here: then it belongs in one of
the Makefile's SANDBOX_TESTS directories (or tests/referrals goes back into that list)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_layers import imported_parts

ROOT = Path(__file__).resolve().parents[1]
ONCE = ROOT / "tests" / "referrals"
DOMAIN = {"referrals", "errors"}


def sandbox_tests() -> list[str]:
    """The Makefile's list of directories run under both profiles."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^SANDBOX_TESTS := (.*)$", makefile, re.M)
    assert match, "the Makefile names the tests run under both profiles in SANDBOX_TESTS"
    return match.group(1).split()


def test_the_domain_tests_run_once_and_reach_only_the_domain() -> None:
    assert "tests/referrals" not in sandbox_tests()
    for path in ONCE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert imported_parts(path) <= DOMAIN, (path.name, imported_parts(path) - DOMAIN)
        assert not re.search(
            r"\btests\.(profiles|sandbox|server|client|e2e)\b|PCREF_SANDBOX_PROFILE", text
        ), path


def test_every_directory_run_twice_exists() -> None:
    for directory in sandbox_tests():
        assert (ROOT / directory).is_dir(), directory
