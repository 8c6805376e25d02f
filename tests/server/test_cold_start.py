"""A single-user stdio start loads what answering ``tools/list`` needs and nothing more.

Cold start is measured against a bare SDK server in bench/startup.py (issue 24: at most 1.2× its
time). What keeps it there is what the start does not import: the write engine, the batch planner,
the approval store, the page's tickets, the query-feature probe, the client, the store, the sandbox
and the libraries behind them load with the first call that uses them. A test of time would be
flaky; this one names the modules, so whoever brings one back to the start path learns it here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Each loads with the first call that needs it (a write, a batch, a search, a page, sign-in). The
# request models (write twins, pydantic models built from the read models) and the bodies built from
# them load with the first write or change read (referrals.write_models loads them on first use).
LOADED_ON_FIRST_USE = (
    "pcref_mcp.referrals.write_requests",
    "pcref_mcp.referrals.write_builders",
    "pcref_mcp.writes.engine",
    "pcref_mcp.writes.creates",
    "pcref_mcp.writes.batch",
    "pcref_mcp.writes.journal",
    "pcref_mcp.writes.approvals",
    "pcref_mcp.writes.page_approvals",
    "pcref_mcp.writes.pipeline_store",
    "pcref_mcp.writes.feed",
    "pcref_mcp.partner_center.capabilities",
    "pcref_mcp.partner_center.client",
    "pcref_mcp.partner_center.auth",
    "pcref_mcp.sandbox",
    "pcref_mcp.store",
    "pcref_mcp.team",
    "pcref_mcp.ops",
    "pcref_mcp.server.http",
    "msal",
    "httpx",
    "sqlite3",
    "jsonschema",
    "prometheus_client",
)

# The CLI's stdio path (cli.main → cmd_serve) up to the first tools/list answer: settings, logging,
# build_server, the Runtime its lifespan makes, the tool list; then what got loaded.
_START = """
import json, sys
import anyio
from pcref_mcp import cli
from pcref_mcp.config import load_settings
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime

settings = load_settings()
cli._configure_logging(settings.log_level, settings.log_format)
server = build_server(settings)
Runtime(settings)
tools = anyio.run(server.list_tools)
assert len(tools) == 10, [t.name for t in tools]
names = json.loads(sys.argv[1])
from pcref_mcp.referrals import catalog, iso, patch_paths
built = [p.pointer for p in (*patch_paths.REFERRAL_PATHS, *patch_paths.REGISTRATION_PATHS) if "adapter" in vars(p)]
built += [c.uri for c in (*catalog.CATALOGS.values(), iso.COUNTRIES, iso.CURRENCIES) if "_index" in vars(c)]
print(json.dumps({"loaded": sorted(n for n in names if n in sys.modules), "built": built}))
"""


def _start(tmp_path: Path, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Which of ``names`` a start has loaded (``loaded``), and which lazily built tables it has built
    (``built``: PATCH value adapters by pointer, catalog indexes by URI)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),  # no config file of the machine's
        "PCREF_SANDBOX_DB": str(tmp_path / "sandbox.db"),
        "PCREF_JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
        "PCREF_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _START, json.dumps(names)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1, done.stdout  # nothing else on stdout (the stdio wire)
    seen: dict[str, list[str]] = json.loads(done.stdout)
    return seen


def _loaded_at_start(tmp_path: Path, names: tuple[str, ...]) -> list[str]:
    return _start(tmp_path, names)["loaded"]


def test_the_stdio_start_loads_no_engine_store_client_or_heavy_library(tmp_path: Path) -> None:
    assert _loaded_at_start(tmp_path, LOADED_ON_FIRST_USE) == []


def test_the_stdio_start_builds_no_change_value_adapter_or_catalog_index(tmp_path: Path) -> None:
    """Built with the first change or look-up that needs them: a PATCH value's TypeAdapter (some hold
    the write twins) and a catalog's folded index (countries, currencies)."""
    assert _start(tmp_path, ())["built"] == []
    # the probe's names are the ones a use fills (here, in this process)
    from pcref_mcp.referrals import iso, patch_paths

    path = patch_paths.resolve("deal value")
    path.validate(1000)
    assert iso.COUNTRIES.find("Germany") == "DE"
    assert "adapter" in vars(path) and "_index" in vars(iso.COUNTRIES)


def test_the_probe_sees_what_the_start_does_load(tmp_path: Path) -> None:
    """The check above is only as good as its probe: modules the tool list needs are reported."""
    needed = ("pcref_mcp.server.tools", "pcref_mcp.referrals.write_models", "pydantic")
    assert _loaded_at_start(tmp_path, needed) == sorted(needed)
