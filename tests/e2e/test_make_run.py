"""The README's first command, `make run`, started as printed: it serves Streamable HTTP on 127.0.0.1
against the sandbox, prints how to connect (stderr; stdout stays empty), a client connects and lists
the tools, and Ctrl+C stops it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client

from tests.e2e.servers import ROOT, free_port, http_server, process_env

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

# When the suite itself runs under make, the outer make's flags must not leak into ours.
OUTER_MAKE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OUTER_MAKE} | extra


def test_make_runs_exactly_the_http_server() -> None:
    """What `make run` executes once set up: the venv's console script, HTTP, no other options."""
    dry = subprocess.run(
        ["make", "-s", "-n", "run"], cwd=ROOT, env=_env(), capture_output=True, text=True, check=True
    )
    assert dry.stdout.strip().splitlines()[-1] == ".venv/bin/pcref-mcp serve --http"


@pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "pcref-mcp").exists(), reason="no .venv here (make run makes it)"
)
@pytest.mark.anyio
async def test_make_run_serves_http_and_prints_how_to_connect(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in process_env(tmp_path, PCREF_HTTP_PORT=str(port)).items() if k not in OUTER_MAKE}
    with http_server(tmp_path, ["make", "-s", "run"], port=port, env=env, group=True) as running:
        assert running.url == f"http://127.0.0.1:{port}/mcp"
        async with Client(running.url, read_timeout_seconds=60) as client:
            names = {t.name for t in (await client.list_tools()).tools}
        assert {"search_referrals", "get_referral", "update_field", "create_referral"} <= names
    assert running.proc.returncode is not None
    assert running.stdout == ""
    help_text = running.stderr
    assert f"Streamable HTTP at http://127.0.0.1:{port}/mcp" in help_text
    assert "embedded sandbox" in help_text
    assert (
        f"npx @modelcontextprotocol/inspector --cli http://127.0.0.1:{port}/mcp --transport http" in help_text
    )
    assert '"type": "http"' in help_text  # the VS Code snippet
