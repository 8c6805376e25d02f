"""Cold start imports only what answering ``tools/list`` needs (issue #24: start-up ≤ 1.2× a bare SDK server).

The server is spawned over stdio exactly as a desktop client spawns it (``python -m pcref_mcp``, through
tests/startup_probe.py, which notes who imports each ``pcref_mcp`` module); once it has answered
``tools/list`` it is asked which of our modules it has loaded. Every one must be in ``ALLOWED``, and
none of bench/startup.py's ``HEAVY`` modules may be loaded. A new import that drags call-time code
(the argument reader, the search planner, the PATCH rules, writes, the journal) into start-up fails
here, naming the module and the line that imported it: import it where the call needs it instead, or,
if start-up truly needs it, add it to ``ALLOWED`` and say why in the commit. No timing: the speed
itself is measured by ``python -m bench.startup``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.startup import HEAVY, PROTOCOL

PROBE = Path(__file__).with_name("startup_probe.py")

# What serving over stdio loads before the first tools/list is answered: the CLI and the settings, the
# server and its tool declarations, the models their schemas are derived from (with the wire's enums, not
# the wire models), and what the lifespan starts (the runtime, the approval page's policy). Not the
# operator's commands (pcref_mcp.ops): with no arguments the CLI builds no parser (cli._arguments).
ALLOWED = frozenset(
    {
        "pcref_mcp",
        "pcref_mcp.calls",
        "pcref_mcp.cli",
        "pcref_mcp.config",
        "pcref_mcp.errors",
        "pcref_mcp.identity",
        "pcref_mcp.metrics",
        "pcref_mcp.referrals",
        "pcref_mcp.referrals.catalog",
        "pcref_mcp.referrals.catalog_values",
        "pcref_mcp.referrals.contacts",
        "pcref_mcp.referrals.contract",
        "pcref_mcp.referrals.edits",
        "pcref_mcp.referrals.iso",
        "pcref_mcp.referrals.iso_data",
        "pcref_mcp.referrals.lifecycle",
        "pcref_mcp.referrals.money",
        "pcref_mcp.referrals.problems",
        "pcref_mcp.referrals.registration_rules",
        "pcref_mcp.referrals.schemas",
        "pcref_mcp.referrals.timestamps",
        "pcref_mcp.referrals.untrusted",
        "pcref_mcp.referrals.when",
        "pcref_mcp.referrals.wire_values",
        "pcref_mcp.referrals.write_inputs",
        "pcref_mcp.referrals.write_messages",
        "pcref_mcp.referrals.write_models",
        "pcref_mcp.referrals.write_values",
        "pcref_mcp.server",
        "pcref_mcp.server.app",
        "pcref_mcp.server.approval_page",
        "pcref_mcp.server.bulk",
        "pcref_mcp.server.confirmation",
        "pcref_mcp.server.inputs",
        "pcref_mcp.server.pages",
        "pcref_mcp.server.prompts",
        "pcref_mcp.server.resources",
        "pcref_mcp.server.runtime",
        "pcref_mcp.server.sdk_adapter",
        "pcref_mcp.server.search",
        "pcref_mcp.server.search.filters",
        "pcref_mcp.server.tools",
        "pcref_mcp.server.views",
        "pcref_mcp.writes",
        "pcref_mcp.writes.preview",
    }
)

# Call-time code named outright, so a failure says plainly what must not load at start.
CALL_TIME = (
    "pcref_mcp.server.reading",
    "pcref_mcp.server.search.conditions",
    "pcref_mcp.server.search.answer",
    "pcref_mcp.referrals.patch_paths",
    "pcref_mcp.referrals.models",  # the tolerant wire models (their enums are referrals.wire_values)
    "pcref_mcp.referrals.fields",
    "pcref_mcp.referrals.tolerant",
    "pcref_mcp.partner_center.odata",
    "pcref_mcp.writes.engine",
    "pcref_mcp.server.exchange",
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``{module: importer}`` for every pcref_mcp module loaded once tools/list is answered."""
    tmp = tmp_path_factory.mktemp("startup-imports")
    out = tmp / "loaded.json"
    env = {
        **os.environ,
        "PCREF_SANDBOX_DB": str(tmp / "sandbox.db"),
        "PCREF_JOURNAL_PATH": str(tmp / "journal.sqlite3"),
        "PCREF_LOG_LEVEL": "WARNING",
    }
    env.pop("PCREF_STORE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, str(PROBE), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp,
    )
    try:
        _send(proc, _request(1, "initialize", protocolVersion=PROTOCOL, capabilities={}, clientInfo=_CLIENT))
        _answer(proc, 1)
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, _request(2, "tools/list"))
        assert _answer(proc, 2)["result"]["tools"], "tools/list answered no tools"
        proc.send_signal(signal.SIGUSR1)  # the probe writes what is loaded now
        deadline = time.monotonic() + 60
        while not out.exists():
            assert proc.poll() is None, "the server exited before saying what it had loaded"
            assert time.monotonic() < deadline, "the probe never wrote what it had loaded"
            time.sleep(0.02)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result: dict[str, str] = json.loads(out.read_text())
    return result


def test_start_up_loads_only_the_allowed_modules(loaded: dict[str, str]) -> None:
    unexpected = {m: who for m, who in loaded.items() if m not in ALLOWED}
    assert not unexpected, (
        "start-up (stdio, up to tools/list) imported modules outside ALLOWED:\n"
        + "\n".join(f"  {m}  (imported by {who})" for m, who in sorted(unexpected.items()))
    )


def test_start_up_loads_no_call_time_or_heavy_module(loaded: dict[str, str]) -> None:
    offending = [m for m in (*CALL_TIME, *HEAVY) if m in loaded or any(k.startswith(m + ".") for k in loaded)]
    assert not offending, (
        ", ".join(f"{m} (imported by {loaded.get(m, '?')})" for m in offending) + " loaded at start-up"
    )


def test_the_probe_sees_the_server_s_own_modules(loaded: dict[str, str]) -> None:
    """The probe itself works: it saw the tools module and who imported it (else the checks above
    would pass on an empty list)."""
    assert loaded.get("pcref_mcp.server.tools", "").startswith("pcref_mcp.server.app:")
    assert "pcref_mcp.cli" in loaded


_CLIENT = {"name": "pcref-startup-imports", "version": "1"}


def _request(request_id: int, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _send(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            assert proc.stderr is not None
            raise AssertionError(
                f"server exited before answering {request_id}: {proc.stderr.read()[-2000:]!r}"
            )
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            assert "error" not in message, message
            return message
