"""The team stack's process care (issue 20, item 6): a child killed from outside is reaped (never
left a zombie that looks alive to the journal), a port taken between pick and bind is told apart
from other failures, and ports can be given instead of picked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy.stack import PortTaken, Stack, _wait_http
from pcref_mcp.writes import journal

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _until(check: object, what: str) -> None:
    for _ in range(1000):  # a bounded wait for another thread and the kernel, not a timed assertion
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError(what)


def test_a_replica_killed_from_outside_is_reaped(tmp_path: Path) -> None:
    stack = Stack(tmp_path, replicas=1, store="sqlite")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    stack._replicas[0] = child
    stack._stopping.clear()
    reaper = threading.Thread(target=stack._reap, daemon=True)
    reaper.start()
    try:
        assert stack.replica_running(0)
        os.kill(child.pid, signal.SIGKILL)  # not through the stack: nobody waits for it
        _until(lambda: stack.reaped, "the killed replica was not reaped")
        assert stack.reaped == [("replica-0", child.pid, -signal.SIGKILL)]
        assert journal._state(child.pid) != "Z" and not journal._alive(child.pid)
        assert not stack.replica_running(0)
    finally:
        stack._stopping.set()
        reaper.join(5)
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_port_taken_is_told_apart_from_another_failure(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    taken = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; print('[Errno 98] error while attempting to bind: address already in use'); sys.exit(1)",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    taken.wait()
    with pytest.raises(PortTaken):
        _wait_http("http://127.0.0.1:9/mcp", taken, log)
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit(3)"], stdout=(tmp_path / "y.log").open("wb")
    )
    other.wait()
    with pytest.raises(RuntimeError) as info:
        _wait_http("http://127.0.0.1:9/mcp", other, tmp_path / "y.log")
    assert not isinstance(info.value, PortTaken)


def test_ports_can_be_given(tmp_path: Path) -> None:
    stack = Stack(tmp_path, replicas=3, port=18800, port_base=18900)
    assert (
        stack.sandbox_port == 18900 and stack.replica_ports == [18902, 18903, 18904] and stack.port == 18800
    )
