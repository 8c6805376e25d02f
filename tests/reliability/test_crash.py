"""Crash safety: the real server (`python -m pcref_mcp` over stdio) is killed with SIGKILL between the
journal's intent record and the request (before_send), and between the service's answer and the
outcome record (after_send). After restart the journal shows the write in doubt, `pcref-mcp journal`
says how to check it, both SQLite databases pass PRAGMA integrity_check, and the sandbox holds the
change exactly when it was sent.

The kill happens inside the server at the exact point: the server is tests/reliability/crashing_server.py,
the real CLI with a hook on the write engine's fault-injection seam (``writes.engine.STEP_HOOKS``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.reliability.helpers import integrity, rows

pytestmark = pytest.mark.anyio


CRASHING_SERVER = Path(__file__).with_name("crashing_server.py")


def _env(tmp: Path) -> dict[str, str]:
    env = {
        "HOME": str(tmp / "home"),
        "XDG_CONFIG_HOME": str(tmp / "cfg"),
        "XDG_DATA_HOME": str(tmp / "data"),
        "PCREF_SANDBOX_DB": str(tmp / "sandbox.db"),
        "PCREF_JOURNAL_PATH": str(tmp / "journal.sqlite3"),
        "PCREF_LOG_LEVEL": "WARNING",
    }
    return env


def _server(tmp: Path, crash_at: str | None = None) -> StdioServerParameters:
    args = [str(CRASHING_SERVER), crash_at] if crash_at else ["-m", "pcref_mcp"]
    return StdioServerParameters(command=sys.executable, args=args, env=_env(tmp), cwd=str(tmp))


def _doc(tmp: Path, rid: str) -> dict[str, Any]:
    (raw,) = rows(tmp / "sandbox.db", "SELECT doc FROM referrals WHERE id = ?", (rid,))
    return dict(json.loads(raw[0]))


@pytest.mark.parametrize("point", ["before_send", "after_send"])
async def test_kill_between_journal_and_send(tmp_path: Path, point: str) -> None:
    value = 424242 if point == "before_send" else 737373
    with anyio.fail_after(60):
        async with Client(_server(tmp_path, point)) as c:  # type: ignore[arg-type]
            found = await c.call_tool(
                "search_referrals", {"filters": {"status": ["Active"], "substatus": ["Accepted"]}}
            )
            rid = found.structured_content["rows"][0]["id"]  # type: ignore[index]
            args = {"referral_id": rid, "changes": [{"field": "deal value", "value": value}]}
            preview = await c.call_tool("update_field", args)
            token = preview.structured_content["confirm_token"]  # type: ignore[index]
            before = _doc(tmp_path, rid)
            with pytest.raises(Exception):  # noqa: B017 - the server process dies mid-call
                await c.call_tool("update_field", {**args, "confirm_token": token})

    # the process died with the entry still pending
    (entry,) = rows(tmp_path / "journal.sqlite3", "SELECT * FROM writes")
    assert entry["status"] == "pending" and entry["referral_id"] == rid

    # restart: the server comes back and serves the referral as the service has it
    with anyio.fail_after(60):
        async with Client(_server(tmp_path)) as c:  # type: ignore[arg-type]
            got = await c.call_tool("get_referral", {"referral_id": rid, "sections": ["details"]})
            assert not got.is_error
    after = _doc(tmp_path, rid)
    if point == "before_send":
        assert after["eTag"] == before["eTag"] and after["details"].get("dealValue") != value
    else:
        assert after["details"]["dealValue"] == value and after["eTag"] != before["eTag"]

    # `pcref-mcp journal` settles the orphan as in doubt and tells the person how to check it
    out = subprocess.run(
        [sys.executable, "-m", "pcref_mcp", "journal"],
        env={**os.environ, **_env(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "in_doubt" in out and "how to check" in out, out
    assert f"Open referral {rid}" in out and before["eTag"] in out and entry["correlation_id"] in out
    (entry,) = rows(tmp_path / "journal.sqlite3", "SELECT * FROM writes")
    assert entry["status"] == "in_doubt" and "process stopped" in entry["error"]

    as_json = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pcref_mcp", "journal", "--json"],
            env={**os.environ, **_env(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert as_json[0]["status"] == "in_doubt"

    assert integrity(tmp_path / "journal.sqlite3") == "ok"
    assert integrity(tmp_path / "sandbox.db") == "ok"
    assert oct(os.stat(tmp_path / "journal.sqlite3").st_mode & 0o777) == oct(0o600)
