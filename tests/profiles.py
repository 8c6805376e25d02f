"""The sandbox profile this run of the suite uses.

``make unit`` runs the sandbox-facing tests (``SANDBOX_TESTS`` in the Makefile) with
``PCREF_SANDBOX_PROFILE=lenient`` and again with ``strict``, side by side; the tests that do not depend on
the sandbox's answers run once, in one of the two. Of ``SANDBOX_TESTS``, the strict run runs only the
tests that read the profile: the lenient run records them (tests/profile_reads.py) and checks the
manifest, tests/profile_readers.txt. This module reads the profile when imported, so every test in a
module that imports it counts as reading it. Every test passes on both. A test about one profile's own
behaviour builds its sandbox with that profile explicitly (``make_config(profile=...)``, or
``@pytest.mark.parametrize("sandbox_profile", ["lenient"])`` in tests/sandbox), so it still runs in
both passes when it reads the profile otherwise, and in the lenient pass alone when it does not.
"""

from __future__ import annotations

from pcref_mcp.sandbox.config import default_profile

PROFILE = default_profile()
STRICT = PROFILE == "strict"

# What the sandbox answers to a create: 200 as the connector documents it (strict), 201 (lenient).
CREATED = 200 if STRICT else 201
