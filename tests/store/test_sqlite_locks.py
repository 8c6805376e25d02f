"""Opening a second store on a database in the same process keeps the first connection's locks.

Closing any descriptor of a file drops every POSIX lock the process holds on it. The stores once
opened the database (to set 0600) and its ``-shm`` file after connecting, which silently released
SQLite's "this database is in use" lock (the DMS byte of ``-shm``); another process then took the
database for unused and reset the shared memory under the first: SIGBUS in a child of the
confirm-token race test, about one run in three on a loaded machine.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pcref_mcp.errors import ConfigError
from pcref_mcp.private_files import private_file

DMS_BYTE = 128  # SQLite's unix VFS: the dead-man-switch lock in the -shm file (UNIX_SHM_BASE + 8)

_PROBE = f"""
import fcntl, sys
with open(sys.argv[1], "r+b") as shm:
    try:
        fcntl.lockf(shm, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {DMS_BYTE})
    except OSError:
        print("held")
    else:
        print("free")
"""


def _dms(shm: Path) -> str:
    """Whether another process sees the database in use (SQLite's DMS lock held)."""
    return subprocess.run(
        [sys.executable, "-c", _PROBE, str(shm)], capture_output=True, text=True, check=True
    ).stdout.strip()


def _open(kind: str, path: Path) -> object:
    if kind == "store":
        from pcref_mcp.store.sqlite import SqliteStore

        return SqliteStore(path)
    from pcref_mcp.sandbox.store import Store

    return Store(path)


@pytest.mark.parametrize("kind", ["store", "sandbox"])
def test_a_second_connection_in_one_process_keeps_the_first_ones_locks(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "db.sqlite3"
    first = _open(kind, path)
    shm = path.with_name(path.name + "-shm")
    assert shm.exists() and _dms(shm) == "held"
    second = _open(kind, path)  # the same file again, in this process
    assert _dms(shm) == "held"  # the first connection still holds its lock: nobody resets -shm
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(shm.stat().st_mode) == 0o600
    for store in (second, first):
        closing = store.close()  # type: ignore[attr-defined]
        if closing is not None:  # the store's close is async, the sandbox's is not
            asyncio.run(closing)


def test_private_file_creates_tightens_and_refuses_links_without_opening_existing_files(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new"
    private_file(new)
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    loose = tmp_path / "loose"
    loose.write_text("kept")
    os.chmod(loose, 0o644)
    private_file(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600 and loose.read_text() == "kept"
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.chmod(victim, 0o644)
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        private_file(link)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="symbolic link"):
        private_file(dangling)
    assert not (tmp_path / "nowhere").exists() and stat.S_IMODE(victim.stat().st_mode) == 0o644
    with pytest.raises(ConfigError, match="not a regular file"):
        private_file(tmp_path)
