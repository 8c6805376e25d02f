"""What bulk work remembers between calls: which journaled changes form a batch, and the last
state seen of each referral (so "what changed since Monday" can say what, not only which).

A small SQLite file next to the journal (``pipeline.sqlite3``, mode 0600). Every row belongs to a
principal (``pcref_mcp.identity.current()``): in team mode one person's batches and snapshots are
not another's. The journal stays the record of every write; this file only links and compares.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pcref_mcp import identity
from pcref_mcp.store.sqlite import private_file

_SCHEMA = """
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


@dataclass(frozen=True)
class Batch:
    batch_id: str
    created_at: str
    mode: str
    undo_of: str | None
    change_ids: list[int]


class PipelineStore:
    """Batches (a batch id → its journal change ids) and per-referral snapshots, per principal."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._db = self._open()

    # -- batches ----------------------------------------------------------------------------------

    def new_batch(self, mode: str, *, undo_of: str | None = None) -> str:
        """A fresh batch id (``b-`` + 8 hex), recorded before its first item is sent."""
        batch_id = "b-" + secrets.token_hex(4)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO batches (batch_id, actor_id, created_at, mode, undo_of) VALUES (?,?,?,?,?)",
                (batch_id, identity.current().id, _now(), mode, undo_of),
            )
        return batch_id

    def add_change(self, batch_id: str, change_id: int) -> None:
        """Link one journaled change to its batch, as soon as the journal has it."""
        with self._lock, self._db:
            row = self._db.execute("SELECT change_ids FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
            ids = [*json.loads(row[0]), change_id] if row else [change_id]
            self._db.execute("UPDATE batches SET change_ids=? WHERE batch_id=?", (json.dumps(ids), batch_id))

    def batch(self, batch_id: str) -> Batch | None:
        """One of the current principal's batches (None for another person's or an unknown id)."""
        with self._lock:
            row = self._db.execute(
                "SELECT batch_id, created_at, mode, undo_of, change_ids FROM batches"
                " WHERE batch_id=? AND actor_id=?",
                (batch_id.strip(), identity.current().id),
            ).fetchone()
        if row is None:
            return None
        return Batch(row[0], row[1], row[2], row[3], [int(i) for i in json.loads(row[4])])

    # -- snapshots --------------------------------------------------------------------------------

    def snapshots(self, referral_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The last fields seen of each of ``referral_ids`` (by id; missing ids were never seen)."""
        if not referral_ids:
            return {}
        out: dict[str, dict[str, Any]] = {}
        actor = identity.current().id
        with self._lock:
            for start in range(0, len(referral_ids), 500):
                chunk = referral_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT referral_id, fields FROM snapshots WHERE actor_id=? AND referral_id IN ({marks})",
                    (actor, *chunk),
                ):
                    out[row[0]] = json.loads(row[1])
        return out

    def remember(self, seen: list[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Keep ``(referral id, updated, fields)`` as the last state seen (newer replaces older)."""
        if not seen:
            return
        actor, now = identity.current().id, _now()
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO snapshots (actor_id, referral_id, seen_at, updated, fields) VALUES (?,?,?,?,?)"
                " ON CONFLICT(actor_id, referral_id) DO UPDATE SET seen_at=excluded.seen_at,"
                " updated=excluded.updated, fields=excluded.fields",
                [
                    (actor, rid, now, updated, json.dumps(fields, default=str))
                    for rid, updated, fields in seen
                ],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- private ----------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True)
            private_file(self.path)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        db.commit()
        return db


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
