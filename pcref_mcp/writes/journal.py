"""The write journal: every write is recorded before it is sent and its outcome after.

So nothing is lost: if the process dies between the two, the entry stays ``pending`` and the next
process to open the journal marks it ``in_doubt``, which `pcref-mcp journal` shows with the exact
look-up that settles it. The before-image of every changed field is what `undo_change` restores.
SQLite in the user's data dir, mode 0600, WAL, one short transaction per record.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Status = Literal["pending", "applied", "failed", "in_doubt", "partial"]
STATUSES: tuple[str, ...] = ("pending", "applied", "failed", "in_doubt", "partial")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    tool           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    referral_id    TEXT,
    correlation_id TEXT NOT NULL,
    operations     TEXT NOT NULL,
    before_image   TEXT NOT NULL,
    etag_before    TEXT,
    etag_after     TEXT,
    status         TEXT NOT NULL CHECK (status IN ('pending','applied','failed','in_doubt','partial')),
    error          TEXT,
    undo_of        INTEGER REFERENCES writes(id),
    undone_by      INTEGER REFERENCES writes(id),
    external_ref   TEXT,
    owner          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS writes_referral ON writes(referral_id, id);
CREATE INDEX IF NOT EXISTS writes_status ON writes(status);
"""


@dataclass(frozen=True)
class JournalEntry:
    id: int
    started_at: str
    finished_at: str | None
    tool: str
    kind: str
    referral_id: str | None
    correlation_id: str
    operations: list[dict[str, Any]]
    before_image: dict[str, Any]
    etag_before: str | None
    etag_after: str | None
    status: str
    error: str | None
    undo_of: int | None
    undone_by: int | None
    external_ref: str | None

    def how_to_check(self) -> str:
        """What the person can do to settle an in-doubt or failed entry."""
        if self.status not in ("in_doubt", "pending", "partial"):
            return ""
        if self.kind == "create" and self.external_ref:
            return (
                f"Search referrals with external reference id {self.external_ref!r}: if one exists the "
                "create landed; if none does, it did not and can be made again."
            )
        if self.referral_id:
            return (
                f"Open referral {self.referral_id} and compare its fields with the operations above; "
                f"if its ETag is still {self.etag_before} the change did not land."
            )
        return "Check the referral in Partner Center before retrying."


class Journal:
    """Append-mostly log of writes; safe across threads and across processes (SQLite locking)."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._db = self._open()
        self._settle_orphans()

    # -- recording --------------------------------------------------------------------------------

    def record_intent(
        self,
        *,
        tool: str,
        kind: str,
        referral_id: str | None,
        correlation_id: str,
        operations: list[dict[str, Any]],
        before_image: dict[str, Any],
        etag_before: str | None,
        undo_of: int | None = None,
        external_ref: str | None = None,
    ) -> int:
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO writes (started_at, tool, kind, referral_id, correlation_id, operations,"
                " before_image, etag_before, status, undo_of, external_ref, owner)"
                " VALUES (?,?,?,?,?,?,?,?,'pending',?,?,?)",
                (
                    _now(),
                    tool,
                    kind,
                    referral_id,
                    correlation_id,
                    json.dumps(operations, default=str),
                    json.dumps(before_image, default=str),
                    etag_before,
                    undo_of,
                    external_ref,
                    self._owner,
                ),
            )
            return int(cur.lastrowid or 0)

    def record_outcome(
        self,
        entry_id: int,
        status: Status,
        *,
        referral_id: str | None = None,
        etag_after: str | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE writes SET status=?, finished_at=?, etag_after=?, error=?,"
                " referral_id=COALESCE(?, referral_id) WHERE id=?",
                (status, _now(), etag_after, error, referral_id, entry_id),
            )
            if status == "applied":
                row = self._db.execute("SELECT undo_of FROM writes WHERE id=?", (entry_id,)).fetchone()
                if row and row[0] is not None:
                    self._db.execute("UPDATE writes SET undone_by=? WHERE id=?", (entry_id, row[0]))

    # -- reading ----------------------------------------------------------------------------------

    def get(self, entry_id: int) -> JournalEntry | None:
        if not 0 < entry_id < 2**63:  # beyond SQLite's INTEGER: no such entry (not an OverflowError)
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM writes WHERE id=?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def recent(self, limit: int = 20, *, referral_id: str | None = None) -> list[JournalEntry]:
        sql, args = "SELECT * FROM writes", list[Any]()
        if referral_id:
            sql += " WHERE referral_id=?"
            args.append(referral_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, min(int(limit), 1000)))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_entry(r) for r in rows]

    def integrity_ok(self) -> bool:
        with self._lock:
            return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- private ----------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.path, 0o600)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        db.executescript(_SCHEMA)
        return db

    def _settle_orphans(self) -> None:
        """Entries left pending by a process that no longer runs are in doubt."""
        host = socket.gethostname()
        with self._lock, self._db:
            rows = self._db.execute("SELECT id, owner FROM writes WHERE status='pending'").fetchall()
            for row in rows:
                owner_host, _, pid = str(row["owner"]).rpartition(":")
                if owner_host == host and pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
                    continue
                if row["owner"] == self._owner:
                    continue
                self._db.execute(
                    "UPDATE writes SET status='in_doubt', error=COALESCE(error, ?) WHERE id=?",
                    ("The process stopped before the outcome was recorded.", row["id"]),
                )


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        tool=row["tool"],
        kind=row["kind"],
        referral_id=row["referral_id"],
        correlation_id=row["correlation_id"],
        operations=json.loads(row["operations"]),
        before_image=json.loads(row["before_image"]),
        etag_before=row["etag_before"],
        etag_after=row["etag_after"],
        status=row["status"],
        error=row["error"],
        undo_of=row["undo_of"],
        undone_by=row["undone_by"],
        external_ref=row["external_ref"],
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
