"""A throwaway PostgreSQL cluster in a directory of its own (initdb, pg_ctl), on loopback.

PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` user (else
``nobody``) through ``runuser``, in a directory that user owns. Authentication is ``trust`` on
127.0.0.1 only: this is the recipe's and the tests' cluster, not a production one (there, point
``PCREF_STORE_URL`` at your managed PostgreSQL with a password or client certificate).

A process initdb's one data directory and copies it for every cluster it starts: the tests and the
benchmarks start several, and a copy costs a fifth of initdb's CPU second.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["Postgres", "find_binary", "free_port"]

USER = "pcref"


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else in the distribution's versioned directory (Debian's postgresql-NN)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    """A free port on 127.0.0.1 *below* the kernel's ephemeral range.

    The stack picks its ports seconds before the processes bind them (the replicas' settings and
    nginx's upstreams name them). A port from ``bind(0)`` is in the ephemeral range, which the kernel
    also hands to every outgoing connection on the machine meanwhile, so it may be taken by then;
    ports below that range are never handed out that way.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(max(1024, low - 12_000), low - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # crowded: any free port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """``start()``, ``restart()``, ``stop()``; ``url(db)``; ``create_database(name)``."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="pcref-pg-"))
        self.port = port or free_port()
        self.data = self.root / "data"
        self._as = _run_as_owner_of(self.root)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        for name in ("initdb", "pg_ctl", "postgres"):
            if find_binary(name) is None:
                raise FileNotFoundError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
        if not (self.data / "PG_VERSION").exists():
            self._run(["cp", "-a", str(_template()), str(self.data)])
        self._ctl("start", "-w", "-t", "60", "-l", str(self.root / "postgres.log"), "-o", self._options())

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self) -> None:
        """Stop (fast: open connections are cut) and start again on the same port and data."""
        self._ctl(
            "restart",
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            self._options(),
        )

    def create_database(self, name: str) -> str:
        psql = find_binary("psql")
        if psql is None:
            raise FileNotFoundError("psql is not installed")
        subprocess.run(
            [
                psql,
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                "postgres",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("PostgreSQL did not start")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def _ctl(self, *args: str) -> None:
        self._run([find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), *args])

    def _run(self, command: list[str]) -> None:
        _run(self._as, command, self.root / "postgres.log")


_template_data: Path | None = None
_template_lock = threading.Lock()


def _template() -> Path:
    """This process's initdb'd data directory, never started, which every cluster copies (removed
    when the process exits)."""
    global _template_data
    with _template_lock:
        if _template_data is None or not (_template_data / "PG_VERSION").exists():
            root = Path(tempfile.mkdtemp(prefix="pcref-pg-template-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            data = root / "data"
            initdb = find_binary("initdb") or "initdb"
            command = [initdb, "-D", str(data), "-U", USER, "-A", "trust", "--no-sync"]
            _run(_run_as_owner_of(root), command, root / "initdb.log")
            _template_data = data
        return _template_data


def _run(run_as: list[str], command: list[str], log: Path) -> None:
    result = subprocess.run(
        [*run_as, *command], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}\n{tail}")


def _run_as_owner_of(root: Path) -> list[str]:
    """The prefix that runs PostgreSQL's programs as the user who owns ``root``: as root (postgres
    will not run as root) an unprivileged user, given ``root``; otherwise nothing."""
    if os.geteuid() != 0:
        return []
    user = _unprivileged_user()
    info = pwd.getpwnam(user)
    os.chown(root, info.pw_uid, info.pw_gid)
    root.chmod(0o700)
    return ["runuser", "-u", user, "--"]


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user (postgres or nobody) to run PostgreSQL as")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
