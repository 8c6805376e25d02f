"""The journal under a restart, another person, a planted symlink (issues 11.10, 16.8, 16.10, 16.11),
and recent_changes: "undo what you just did" from a new conversation."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp import identity
from pcref_mcp.errors import InvalidInput
from pcref_mcp.store.migrations import SQLITE
from pcref_mcp.writes import journal as journal_module
from pcref_mcp.writes.journal import Journal
from tests.store.rows import intent

_V1_SCHEMA = SQLITE[0][1].replace("\n        ", "\n")

pytestmark = pytest.mark.anyio

ALICE = identity.Principal(id="oid-alice", name="alice@partner.example")
BOB = identity.Principal(id="oid-bob", name="bob@partner.example")


async def _intent(journal: Journal, **kw: Any) -> int:
    return await journal.record_intent(
        **intent(
            **{
                "operations": [{"op": "replace", "path": "/details/dealValue", "value": 1}],
                "before_image": {"/details/dealValue": 0},
                **kw,
            }
        )
    )


def _set_owner(path: Path, entry_id: int, owner: str) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE writes SET owner=? WHERE id=?", (owner, entry_id))


async def _status(path: Path, entry_id: int) -> str:
    j = Journal(path)
    try:
        entry = await j.get(entry_id, any_actor=True)
        assert entry is not None
        return entry.status
    finally:
        j.close()


# --- 16.8: process owner survives PID reuse --------------------------------------------------------------


def _owner(pid: int, start: str, instance: str = "0123456789abcdef") -> str:
    return "|".join((socket.gethostname(), str(pid), journal_module._boot_id(), start, instance))


async def test_pending_entry_of_an_earlier_process_with_our_pid_is_in_doubt(tmp_path: Path) -> None:
    """A container's server is PID 1 after every restart: same host and PID, another process."""
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    entry = await _intent(j)
    j.close()
    _set_owner(path, entry, _owner(os.getpid(), journal_module._start_ticks(os.getpid())))
    assert await _status(path, entry) == "in_doubt"


async def test_legacy_owner_with_our_pid_is_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    entry = await _intent(j)
    j.close()
    _set_owner(path, entry, f"{socket.gethostname()}:{os.getpid()}")
    assert await _status(path, entry) == "in_doubt"


async def test_live_process_keeps_its_entry_pending_until_it_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    entry = await _intent(j)
    reused = await _intent(j)
    j.close()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = journal_module._start_ticks(child.pid)
        _set_owner(path, entry, _owner(child.pid, start))
        # same PID, but a different start time: the PID now belongs to another process
        _set_owner(path, reused, _owner(child.pid, str(int(start or "0") + 1) if start else "1"))
        assert await _status(path, entry) == "pending"
        if start:  # /proc available (Linux): a reused PID is told apart
            assert await _status(path, reused) == "in_doubt"
    finally:
        child.kill()  # the process this test started, by its id
        child.wait()
    assert await _status(path, entry) == "in_doubt"


async def test_our_own_pending_entry_stays_pending(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    entry = await _intent(j)
    assert await _status(path, entry) == "pending"  # a second Journal in this same process
    j.close()


# --- 16.10: files private, no symlink followed --------------------------------------------------------------


async def test_journal_and_sandbox_files_are_private(tmp_path: Path) -> None:
    from pcref_mcp.sandbox.store import Store

    jpath = tmp_path / "new-dir" / "journal.sqlite3"
    j = Journal(jpath)
    await _intent(j)
    spath = tmp_path / "sandbox-dir" / "sandbox.db"
    store = Store(spath)
    store.stats() if hasattr(store, "stats") else None
    for directory in (jpath.parent, spath.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for db in (jpath, spath):
        for suffix in ("", "-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            if side.exists():
                assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    j.close()


def test_existing_world_readable_journal_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_journal_refuses_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file")
    os.chmod(victim, 0o644)
    link = tmp_path / "journal.sqlite3"
    link.symlink_to(victim)
    with pytest.raises(InvalidInput, match="symbolic link"):
        Journal(link)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert victim.read_text() == "someone else's file"


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_planted_wal_or_shm_link_is_refused(tmp_path: Path, suffix: str) -> None:
    from pcref_mcp.sandbox.store import Store

    victim = tmp_path / "victim"
    for name in ("journal.sqlite3", "sandbox.db"):
        (tmp_path / (name + suffix)).symlink_to(victim)
    with pytest.raises(InvalidInput, match="symbolic link"):
        Journal(tmp_path / "journal.sqlite3")
    with pytest.raises(OSError, match="safely"):
        Store(tmp_path / "sandbox.db")
    assert not victim.exists()


def test_sandbox_store_refuses_a_planted_symlink(tmp_path: Path) -> None:
    from pcref_mcp.sandbox.store import Store

    victim = tmp_path / "victim.db"
    victim.write_text("x")
    os.chmod(victim, 0o644)
    link = tmp_path / "sandbox.db"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="safely"):
        Store(link)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


# --- 11.10 + team mode: who wrote it, and only one's own --------------------------------------------------


async def test_rows_record_their_actor_and_are_read_only_by_them(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    with identity.acting_as(ALICE):
        mine = await _intent(j, summary="Update referral r-1")
        entry = await j.get(mine)
        assert entry is not None and (entry.actor_id, entry.actor_name) == (ALICE.id, ALICE.name)
        assert [e.id for e in await j.recent()] == [mine]
    with identity.acting_as(BOB):
        assert await j.get(mine) is None
        assert await j.recent() == []
        assert await j.recent(referral_id="r-1") == []
    local = await _intent(j)
    assert [e.id for e in await j.recent()] == [local]  # the local user sees only theirs
    assert {e.id for e in await j.recent(any_actor=True)} == {mine, local}
    j.close()


async def test_older_journal_gains_actor_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            _V1_SCHEMA.replace(",\n    summary        TEXT", "")
            .replace(",\n    actor_id       TEXT NOT NULL DEFAULT 'local'", "")
            .replace(",\n    actor_name     TEXT", "")
        )
        db.execute(
            "INSERT INTO writes (started_at, tool, kind, correlation_id, operations, before_image, status, owner)"
            " VALUES ('2026-01-01T00:00:00Z','update_field','update','c','[]','{}','applied','h:1')"
        )
    j = Journal(path)
    (entry,) = await j.recent()
    assert entry.actor_id == "local" and entry.summary is None
    j.close()


# --- 16.11 ------------------------------------------------------------------------------------------------


async def test_shown_entry_hides_kept_contacts_and_shows_replaced_ones(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    before = [
        {"firstName": "Kept", "lastName": "One", "email": "kept@x.example", "phoneNumber": "1"},
        {"firstName": "Gone", "lastName": "Two", "email": "gone@x.example"},
    ]
    after = [before[0], {"firstName": "New", "lastName": "Three", "email": "new@x.example"}]
    entry_id = await _intent(
        j,
        operations=[{"op": "replace", "path": "/team", "value": after}],
        before_image={"/team": before},
    )
    entry = await j.get(entry_id)
    assert entry is not None
    text = json.dumps(entry.shown(), ensure_ascii=False)
    assert "kept@x.example" not in text and '"1"' not in text
    assert "gone@x.example" in text and "new@x.example" in text  # the change is about them
    assert "«Kept»" in text  # names of others, quoted
    j.close()
