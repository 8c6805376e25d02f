"""Batches and feed snapshots live in the store; an old ``pipeline.sqlite3`` next to the journal (where
they were kept before) is imported into it once, on first use, and left as it was."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp import identity
from pcref_mcp.config import Settings
from pcref_mcp.server.runtime import Runtime

pytestmark = pytest.mark.anyio

ALICE = identity.Principal(id="alice")
BOB = identity.Principal(id="bob")

# The file as the previous release wrote it.
_OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id    TEXT PRIMARY KEY,
    actor_id    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    undo_of     TEXT,
    change_ids  TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS snapshots (
    actor_id    TEXT NOT NULL,
    referral_id TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    updated     TEXT,
    fields      TEXT NOT NULL,
    PRIMARY KEY (actor_id, referral_id)
);
"""


def _old_file(path: Path, batches: list[tuple[Any, ...]], snapshots: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        db.executemany("INSERT INTO batches VALUES (?,?,?,?,?,?)", batches)
        db.executemany("INSERT INTO snapshots VALUES (?,?,?,?,?)", snapshots)
    db.close()


def _runtime(tmp_path: Path) -> Runtime:
    return Runtime(Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "sandbox.db"))


async def test_an_old_pipeline_file_is_imported_once_and_left_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = tmp_path / "pipeline.sqlite3"
    _old_file(
        old,
        [
            ("b-0000aaaa", "alice", "2026-11-01T09:00:00.000Z", "update", None, "[3, 5]"),
            ("b-0000bbbb", "bob", "2026-11-01T10:00:00.000Z", "undo", "b-0000cccc", "[8]"),
        ],
        [("alice", "r-1", "2026-11-01T09:00:00.000Z", "u1", '{"/status": "Active"}')],
    )
    digest = hashlib.sha256(old.read_bytes()).hexdigest()

    first = _runtime(tmp_path)
    assert first.pipeline.legacy == old
    with caplog.at_level(logging.INFO, logger="pcref_mcp.writes"):
        with identity.acting_as(ALICE):
            batch = await first.pipeline.batch("b-0000aaaa")
            assert batch is not None and batch.change_ids == [3, 5] and batch.mode == "update"
            assert await first.pipeline.snapshots(["r-1"]) == {"r-1": {"/status": "Active"}}
            assert await first.pipeline.batch("b-0000bbbb") is None  # bob's stays bob's
        with identity.acting_as(BOB):
            undo = await first.pipeline.batch("b-0000bbbb")
            assert undo is not None and undo.undo_of == "b-0000cccc" and undo.change_ids == [8]
    said = [r.getMessage() for r in caplog.records if "imported" in r.getMessage()]
    assert len(said) == 1 and "2 batch(es) and 1 snapshot(s)" in said[0] and "left as it was" in said[0]
    assert hashlib.sha256(old.read_bytes()).hexdigest() == digest  # the file is not changed
    await first.aclose()

    # a row the old release might still add later is not imported by the next process: once is once
    with sqlite3.connect(old) as db:
        db.execute("INSERT INTO batches VALUES ('b-0000dddd','alice','2026-11-02','update',NULL,'[9]')")
    db.close()
    caplog.clear()
    second = _runtime(tmp_path)
    with caplog.at_level(logging.INFO, logger="pcref_mcp.writes"), identity.acting_as(ALICE):
        assert await second.pipeline.batch("b-0000dddd") is None
        kept = await second.pipeline.batch("b-0000aaaa")
        assert kept is not None and kept.change_ids == [3, 5]
        await second.pipeline.add_change("b-0000aaaa", 12)  # an imported batch goes on in the store
        again = await second.pipeline.batch("b-0000aaaa")
        assert again is not None and again.change_ids == [3, 5, 12]
    assert not [r for r in caplog.records if "imported" in r.getMessage()]
    await second.aclose()


async def test_a_damaged_old_file_is_reported_and_does_not_stop_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "pipeline.sqlite3").write_bytes(b"not a database" * 100)
    runtime = _runtime(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pcref_mcp.writes"), identity.acting_as(ALICE):
        batch_id = await runtime.pipeline.new_batch("update")
        await runtime.pipeline.add_change(batch_id, 1)
        batch = await runtime.pipeline.batch(batch_id)
        assert batch is not None and batch.change_ids == [1]
    assert any("were not imported" in r.getMessage() for r in caplog.records)
    await runtime.aclose()


async def test_without_an_old_file_nothing_is_imported(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    with identity.acting_as(ALICE):
        assert await runtime.pipeline.batch("b-00000000") is None
        assert await runtime.pipeline.snapshots(["r-1"]) == {}
    assert not (tmp_path / "pipeline.sqlite3").exists()  # nothing made beside the journal any more
    await runtime.aclose()
