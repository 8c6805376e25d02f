"""The sandbox profile this run of the suite uses.

``make unit`` runs the whole suite with ``PCREF_SANDBOX_PROFILE=lenient`` and, side by side, the
sandbox-facing tests (``STRICT_TESTS`` in the Makefile) with ``strict``. Every test passes on both. A test about one profile's own behaviour builds its sandbox with that profile
explicitly (``make_config(profile=...)``, or ``@pytest.mark.parametrize("sandbox_profile", ["lenient"])``
in tests/sandbox), so it still runs in both passes.
"""

from __future__ import annotations

from pcref_mcp.sandbox.config import default_profile

PROFILE = default_profile()
STRICT = PROFILE == "strict"

# What the sandbox answers to a create: 200 as the connector documents it (strict), 201 (lenient).
CREATED = 200 if STRICT else 201
