"""The sandbox profile this run of the suite uses.

CI runs the whole suite twice (``make unit``): ``PCREF_SANDBOX_PROFILE=lenient`` then ``strict``. Every
test passes on both. A test about one profile's own behaviour builds its sandbox with that profile
explicitly (``make_config(profile=...)``, or ``@pytest.mark.parametrize("sandbox_profile", ["lenient"])``
in tests/sandbox), so it still runs in both passes.
"""

from __future__ import annotations

from pcref_mcp.sandbox.config import default_profile

PROFILE = default_profile()
STRICT = PROFILE == "strict"

# What the sandbox answers to a create: 200 as the connector documents it (strict), 201 (lenient).
CREATED = 200 if STRICT else 201
