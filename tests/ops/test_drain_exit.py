"""A stop's exit status, with a real SIGTERM to a real process: 0 when the drain completed (the calls
in flight finished, their answers delivered), 1 when it had to give up at the drain deadline; and
``pcref-mcp team`` itself exits 0 on a clean SIGTERM (it used to die of the signal uvicorn re-raised:
143), so an orchestrator tells a clean stop from a cut-short one.

The slow calls are a stand-in app's (the drain is the subject, not the tools): it answers after the
seconds its path names, behind the real ops gate and :func:`pcref_mcp.ops.drain.serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port

SLOW_APP = textwrap.dedent(
    """
    import sys

    import anyio

    from pcref_mcp.config import Settings
    from pcref_mcp.ops.drain import serve
    from pcref_mcp.ops.gate import OpsGate
    from pcref_mcp.ops.health import Readiness


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await anyio.sleep(float(scope["path"].strip("/")))  # /2.5: answers after 2.5 s
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})


    settings = Settings(drain_seconds=float(sys.argv[2]))
    sys.exit(serve(OpsGate(app, settings, Readiness(None)), settings, host="127.0.0.1", port=int(sys.argv[1])))
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
    env.update(
        HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg")
    )
    return env


def _started(command: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60  # a bound, so a process that never answers fails the test
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def _in_flight(url: str, answers: list[object]) -> threading.Thread:
    def call() -> None:
        try:
            got = httpx.get(url, timeout=60, trust_env=False)
            answers.append((got.status_code, got.text))
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    time.sleep(0.5)  # the call has reached the app (it sleeps there)
    return thread


@pytest.mark.parametrize(
    ("drain_seconds", "call_seconds", "status", "answered"),
    [(15, 2.5, 0, True), (1, 30, 1, False)],
    ids=["drained-cleanly-exits-0", "gave-up-at-the-deadline-exits-1"],
)
def test_sigterm_exit_status_says_whether_the_drain_completed(
    tmp_path: Path, drain_seconds: float, call_seconds: float, status: int, answered: bool
) -> None:
    port, script, log = free_port(), tmp_path / "slow.py", tmp_path / "slow.log"
    script.write_text(SLOW_APP)
    proc = _started(
        [sys.executable, str(script), str(port), str(drain_seconds)],
        _env(tmp_path),
        f"http://127.0.0.1:{port}/healthz",
        log,
    )
    answers: list[object] = []
    caller = _in_flight(f"http://127.0.0.1:{port}/{call_seconds}", answers)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == status, log.read_text()
    caller.join(60)
    assert (answers == [(200, "finished")]) is answered, answers
    text = log.read_text()
    assert "stopping: draining" in text
    assert ("graceful shutdown exceeded" in text) is not answered


def test_pcref_mcp_team_exits_0_on_a_clean_sigterm(tmp_path: Path) -> None:
    """The real command (`pcref-mcp team`, whose own SIGTERM handler used to turn uvicorn's re-raised
    signal into exit status 143), idle: it drains at once and exits 0."""
    port, log = free_port(), tmp_path / "team.log"
    env = _env(tmp_path) | {
        "PCREF_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "PCREF_DRAIN_SECONDS": "10",
    }
    proc = _started(
        [sys.executable, "-m", "pcref_mcp", "team", "--stand-in", "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}/readyz",
        log,
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()
    assert "stopping: draining" in log.read_text()
