"""The sandbox profile this run of the suite uses, and markers for tests that hold in only one.

CI runs the whole suite twice (``make unit``): ``PCREF_SANDBOX_PROFILE=lenient`` then ``strict``. Every
test passes on both unless it is about a behaviour only one profile has, and then it says so here.
"""

from __future__ import annotations

import pytest

from pcref_mcp.sandbox.config import default_profile

PROFILE = default_profile()
STRICT = PROFILE == "strict"

lenient_only = pytest.mark.skipif(
    STRICT, reason="lenient sandbox profile only (strict behaves as documented)"
)
strict_only = pytest.mark.skipif(
    not STRICT, reason="strict sandbox profile only (PCREF_SANDBOX_PROFILE=strict)"
)

# What the sandbox answers to a create: 200 as the connector documents it (strict), 201 (lenient).
CREATED = 200 if STRICT else 201
