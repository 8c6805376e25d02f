"""`pcref-mcp team`: refuses clearly when the API app is not configured; the team settings parse."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pcref_mcp.cli import main
from pcref_mcp.errors import ConfigError
from pcref_mcp.team.app import plan_for
from tests.team.conftest import base_settings


def test_team_without_an_app_registration_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("PCREF_TENANT_ID", "PCREF_CLIENT_ID", "PCREF_CLIENT_SECRET", "PCREF_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    logger = logging.getLogger("pcref_mcp")  # main() points it at this test's (soon closed) stderr
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    assert main(["team", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "PCREF_TENANT_ID" in err and "--stand-in" in err


def test_the_plan_follows_the_settings(tmp_path: Path) -> None:
    settings = base_settings(
        tmp_path,
        tenant_id="t1",
        client_id="app",
        team_allowed_tenants="t1, t2",
        team_audiences="app api://app",
        team_public_url="https://pcref.contoso.example/",
        team_proxy="false",
    )
    plan = plan_for(settings, host="0.0.0.0", port=8765)
    assert plan.resource == "https://pcref.contoso.example/mcp"
    assert plan.scope == "api://app/access_as_user"
    assert plan.tenants == ("t1", "t2") and plan.audiences == ("app", "api://app")
    assert plan.issuer == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert plan.entra_issuer == "https://login.microsoftonline.com/t1/v2.0"
    assert plan.proxy is False


def test_defaults_cover_a_single_tenant_on_loopback(tmp_path: Path) -> None:
    plan = plan_for(base_settings(tmp_path, tenant_id="t1", client_id="app"), host="127.0.0.1", port=9000)
    assert plan.resource == "http://127.0.0.1:9000/mcp"
    assert plan.audiences == ("app", "api://app", "http://127.0.0.1:9000/mcp")
    assert plan.tenants == ("t1",) and plan.proxy is True


def test_plain_http_beyond_loopback_is_refused(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, tenant_id="t", client_id="c", team_public_url="http://pcref.example")
    with pytest.raises(ConfigError, match="https"):
        plan_for(settings, host="0.0.0.0", port=8765)


@pytest.mark.parametrize("stop_with", ["SIGTERM", "SIGINT"])
def test_the_stand_in_removes_its_private_key_when_stopped(tmp_path: Path, stop_with: str) -> None:
    """`pcref-mcp team --stand-in` as a subprocess, stopped the way a service manager (SIGTERM) or a
    person (Ctrl+C) stops it once it serves: it drains and exits 0, and its TLS certificate's temporary
    directory, private key included, is gone.

    Both servers take a port from the kernel (``--port 0``, ``--stand-in-port 0``) and the test waits for
    the server's own word that it is listening: a port picked beforehand can be taken meanwhile by any
    other process on the machine, which then answers for it, and the signal reached a server still
    starting, before uvicorn's drain took the signal over (exit 143 or 130: flaky under load)."""
    import re
    import signal
    import subprocess
    import time

    from tests.e2e.servers import PCREF, process_env, stop

    temp = tmp_path / "tmp"
    temp.mkdir()
    argv = [str(PCREF), "team", "--stand-in", "--port", "0", "--stand-in-port", "0"]
    err = tmp_path / "server.err"
    with err.open("wb") as fe:
        proc = subprocess.Popen(
            argv,
            # the default announcement too (servers.py turns it off): the whole stop, as deployed
            env=process_env(tmp_path, TMPDIR=str(temp), PCREF_DRAIN_ANNOUNCE_SECONDS="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fe,
        )
    try:
        deadline = time.monotonic() + 120
        while "Uvicorn running on http://127.0.0.1:" not in err.read_text(errors="replace"):
            assert proc.poll() is None, f"the team server exited with {proc.returncode}:\n{err.read_text()}"
            assert time.monotonic() < deadline, f"the team server did not start:\n{err.read_text()}"
            time.sleep(0.05)
        cert = Path(re.search(r"\(certificate (\S+)\)", err.read_text()).group(1))  # type: ignore[union-attr]
        key_dir = cert.parent
        assert key_dir.parent == temp and (key_dir / "standin-idp-key.pem").exists()
        proc.send_signal(getattr(signal, stop_with))
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the team server did not stop on {stop_with}:\n{err.read_text()}")
    finally:
        stop(proc)
    assert code == 0, err.read_text()  # it drained cleanly (pcref_mcp.ops.drain.exit_status)
    assert not key_dir.exists()
    assert list(temp.iterdir()) == []
