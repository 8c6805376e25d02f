"""Which journal owners still run (issue 20, item 6): a process killed and left unreaped (a zombie)
does not, nor does a reused PID; a live one does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcref_mcp.writes import journal

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _owner(pid: int, start: str | None = None) -> str:
    ticks = journal._start_ticks(pid) if start is None else start
    return "|".join((socket.gethostname(), str(pid), journal._boot_id(), ticks, "another-instance"))


def _until(check: object, what: str) -> None:
    for _ in range(500):  # a bounded wait for the kernel, not a timed assertion
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError(what)


def test_a_live_process_is_alive_and_a_zombie_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        owner = _owner(child.pid)
        assert journal._owner_alive(owner)
        os.kill(child.pid, signal.SIGKILL)  # killed from outside; nobody reaps it yet
        _until(lambda: journal._state(child.pid) == "Z", "the child did not become a zombie")
        os.kill(child.pid, 0)  # the kernel still answers for it ...
        assert not journal._alive(child.pid)  # ... but it runs nothing
        assert not journal._owner_alive(owner)
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_not_the_owner() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert not journal._owner_alive(_owner(child.pid, start="1"))  # same PID, another start time
    finally:
        child.kill()
        child.wait()


def test_a_reaped_process_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = _owner(child.pid)
    child.wait()
    assert not journal._owner_alive(owner)
