"""Start the real `pcref-mcp` as a subprocess (stdio or HTTP) against a throwaway sandbox and journal.

Shared by the end-to-end tests, the README snippet test and the `make run` test. Everything talks to
127.0.0.1 only; every process started here is stopped by its own id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin dir: where `pcref-mcp` is installed
PCREF = BIN / "pcref-mcp"
SANDBOX_SIZE = 20

__all__ = [
    "PCREF",
    "REQUIRED",
    "ROOT",
    "Running",
    "free_port",
    "http_server",
    "need_stack_tools",
    "process_env",
    "server_env",
    "stop",
]


# Under CI or `make e2e` a missing third-party tool is a failure; run by hand, a skip.
REQUIRED = bool(os.environ.get("CI") or os.environ.get("PCREF_E2E_REQUIRED"))


def need_stack_tools() -> None:
    """nginx and PostgreSQL, which the deployed stack runs (the project's set-up installs them)."""
    import pytest

    from deploy.postgres import find_binary
    from deploy.stack import nginx_binary

    missing = [
        n for n, found in (("nginx", nginx_binary()), ("PostgreSQL", find_binary("initdb"))) if not found
    ]
    if missing:
        message = f"{' and '.join(missing)} not installed (make e2e installs them as root)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Only what the server needs: a file sandbox, a journal and user dirs, all under ``tmp``.

    Given to stdio clients as-is (the SDK merges it over HOME/PATH only) and laid over a copy of
    ``os.environ`` without any ``PCREF_*`` for subprocesses started here.
    """
    env = {
        "PCREF_SANDBOX_DB": str(tmp / "sandbox.db"),
        "PCREF_JOURNAL_PATH": str(tmp / "journal.sqlite3"),
        "PCREF_SANDBOX_SIZE": str(SANDBOX_SIZE),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "data"),
        # stopped as soon as its test is done, nothing routing to it: no drain announcement to wait
        # through (deploy/stack's replicas, behind nginx, keep theirs: tests/e2e/test_operations.py)
        "PCREF_DRAIN_ANNOUNCE_SECONDS": "0",
    }
    env.update(extra)
    return env


def process_env(tmp: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
    return {**base, **server_env(tmp, **extra)}


@dataclass
class Running:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextmanager
def http_server(
    tmp: Path,
    argv: Sequence[str] | None = None,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    group: bool = False,
    timeout: float = 60.0,
) -> Iterator[Running]:
    """Run ``argv`` (default ``pcref-mcp serve --http --port P``) until it answers on 127.0.0.1:P.

    ``group`` starts it in its own session and stops the whole group (for `make run`, whose child
    is the server).
    """
    port = port or free_port()
    argv = list(argv) if argv is not None else [str(PCREF), "serve", "--http", "--port", str(port)]
    out, err = tmp / f"server-{port}.out", tmp / f"server-{port}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env if env is not None else process_env(tmp),
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            start_new_session=group,
        )
    running = Running(f"http://127.0.0.1:{port}/mcp", port, proc, out, err)
    try:
        _wait_until_answering(running, timeout)
        yield running
    finally:
        stop(proc, group=group)


def stop(proc: subprocess.Popen[bytes], *, group: bool = False) -> int:
    """Ctrl+C first (uvicorn shuts down cleanly), then kill; only this process (or its own group)."""
    if proc.poll() is None:
        _signal(proc, signal.SIGINT, group)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL, group)
            proc.wait(timeout=15)
    return int(proc.returncode)


# --- private ----------------------------------------------------------------------------------------


def _signal(proc: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, sig)  # the session we created for it: pgid == its pid
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _wait_until_answering(running: Running, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if running.proc.poll() is not None:
            raise AssertionError(
                f"server exited with {running.proc.returncode} before answering\n"
                f"stdout:\n{running.stdout}\nstderr:\n{running.stderr}"
            )
        try:
            # uvicorn binds only after the app's start-up ran, so a connection means ready.
            with socket.create_connection(("127.0.0.1", running.port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not answer within {timeout}s\nstderr:\n{running.stderr}")
        time.sleep(0.1)
