"""The write journal: every write is recorded before it is sent and its outcome after.

So nothing is lost: if the process dies between the two, the entry stays ``pending`` and the next
process to open the journal marks it ``in_doubt``, which `pcref-mcp journal` shows with the exact
look-up that settles it. The before-image of every changed field is what `undo_change` restores.
SQLite in the user's data dir, mode 0600, WAL, one short transaction per record.

Each row records who wrote it (``pcref_mcp.identity.current()``), and reading or undoing only ever
sees the current principal's own rows, so in team mode one person's changes are not another's to
list or undo. A row's ``owner`` names the process that sent it by host, PID, boot id, the PID's
start time and a random instance id, so a PID reused by a later process (a container's server is
always PID 1) is not mistaken for the one that died.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pcref_mcp import identity
from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import contacts
from pcref_mcp.referrals.untrusted import quote, quote_at

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
    owner          TEXT NOT NULL,
    summary        TEXT,
    actor_id       TEXT NOT NULL DEFAULT 'local',
    actor_name     TEXT
);
CREATE INDEX IF NOT EXISTS writes_referral ON writes(referral_id, id);
CREATE INDEX IF NOT EXISTS writes_status ON writes(status);
"""
# Columns added after the first release: (name, declaration) added to older journals on open.
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("summary", "TEXT"),
    ("actor_id", "TEXT NOT NULL DEFAULT 'local'"),
    ("actor_name", "TEXT"),
)
_INDEXES = "CREATE INDEX IF NOT EXISTS writes_actor ON writes(actor_id, id);"
# This process, as journal rows name it: unique even when the PID is reused after a restart.
_INSTANCE = secrets.token_hex(8)


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
    summary: str | None = None
    actor_id: str = "local"
    actor_name: str | None = None

    def undo_refusal(self) -> str | None:
        """Why this change cannot be undone, or None if it can (while the referral is unchanged since)."""
        if self.status != "applied":
            return f"it is {self.status.replace('_', ' ')}, so there is nothing to undo"
        if self.undone_by is not None:
            return f"it was already undone by change {self.undone_by}"
        if self.kind == "create":
            return "it created a referral, and Partner Center has no delete"
        if self.kind in ("register", "update_registration"):
            return "deal registrations cannot be withdrawn through the API"
        return None

    def shown(self) -> dict[str, Any]:
        """This entry as a person or model may see it: others' text quoted «…», and the e-mail and
        phone only of the contacts a change adds, removes or creates (names for everyone else)."""
        before = {
            pointer: quote_at(pointer, _shown_list(pointer, value, self.operations, before=True))
            for pointer, value in self.before_image.items()
        }
        operations = []
        for op in self.operations:
            op = dict(op)
            if op.get("op") == "create":
                op["body"] = quote_at("/", op.get("body"))
            else:
                path = str(op.get("path", ""))
                value = op.get("value")
                if not path.endswith("/-"):
                    value = _shown_list(path, value, [op], before=False, image=self.before_image)
                op["value"] = quote_at(path, value)
            operations.append(op)
        data = dict(self.__dict__)
        data.update(
            operations=operations,
            before_image=before,
            summary=self.summary,
            external_ref=quote(self.external_ref) if self.external_ref else None,
        )
        return data

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
        self._owner = _owner_of_this_process()
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
        summary: str | None = None,
        exclusive: bool = False,
    ) -> int:
        """Record a write about to be sent; its id is the change id.

        ``exclusive`` (creates): refused, writing nothing, while another create of the same external
        reference id is pending, in this process or any other using the journal.
        """
        actor = identity.current()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if exclusive and external_ref:
                    _refuse_second_create(self._db, external_ref)
                cur = self._db.execute(
                    "INSERT INTO writes (started_at, tool, kind, referral_id, correlation_id, operations,"
                    " before_image, etag_before, status, undo_of, external_ref, owner, summary, actor_id,"
                    " actor_name) VALUES (?,?,?,?,?,?,?,?,'pending',?,?,?,?,?,?)",
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
                        summary,
                        actor.id,
                        actor.name,
                    ),
                )
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
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

    def get(self, entry_id: int, *, any_actor: bool = False) -> JournalEntry | None:
        """One of the current principal's changes (anyone's with ``any_actor``: the admin's CLI)."""
        if not 0 < entry_id < 2**63:  # beyond SQLite's INTEGER: no such entry (not an OverflowError)
            return None
        sql, args = "SELECT * FROM writes WHERE id=?", list[Any]([entry_id])
        if not any_actor:
            sql += " AND actor_id=?"
            args.append(identity.current().id)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return _entry(row) if row else None

    def recent(
        self, limit: int = 20, *, referral_id: str | None = None, any_actor: bool = False
    ) -> list[JournalEntry]:
        """The current principal's latest changes, newest first (everyone's with ``any_actor``)."""
        where: list[str] = []
        args: list[Any] = []
        if referral_id:
            where.append("referral_id=?")
            args.append(referral_id)
        if not any_actor:
            where.append("actor_id=?")
            args.append(identity.current().id)
        sql = "SELECT * FROM writes" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, min(int(limit), 1000)))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_entry(r) for r in rows]

    def recent_create(self, external_ref: str, within_seconds: float) -> JournalEntry | None:
        """Anyone's create of ``external_ref`` that landed or may have, started in the last
        ``within_seconds``: what stops a second one when the service cannot be asked."""
        cutoff = datetime.fromtimestamp(datetime.now(UTC).timestamp() - within_seconds, UTC)
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM writes WHERE kind='create' AND external_ref=? AND started_at>=?"
                " AND status IN ('applied','partial','in_doubt') ORDER BY id DESC LIMIT 1",
                (external_ref, cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
            ).fetchone()
        return _entry(row) if row else None

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
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True)
            _private_file(self.path)
            for suffix in ("-wal", "-shm"):  # SQLite would create these through a planted link
                if self.path.with_name(self.path.name + suffix).is_symlink():
                    raise InvalidInput(
                        f"The journal's {suffix[1:]} file next to {self.path} is a symbolic link; refusing "
                        "to use it.",
                        field="journal_path",
                    )
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    _private_file(side)
        db.row_factory = sqlite3.Row
        db.executescript(_SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(writes)")}
        for name, declaration in _ADDED_COLUMNS:
            if name not in present:
                db.execute(f"ALTER TABLE writes ADD COLUMN {name} {declaration}")
        db.executescript(_INDEXES)
        db.commit()
        return db

    def _settle_orphans(self) -> None:
        """Entries left pending by a process that no longer runs are in doubt."""
        with self._lock, self._db:
            rows = self._db.execute("SELECT id, owner FROM writes WHERE status='pending'").fetchall()
            for row in rows:
                if _owner_alive(str(row["owner"])):
                    continue
                self._db.execute(
                    "UPDATE writes SET status='in_doubt', error=COALESCE(error, ?) WHERE id=?",
                    ("The process stopped before the outcome was recorded.", row["id"]),
                )


def _refuse_second_create(db: sqlite3.Connection, external_ref: str) -> None:
    row = db.execute(
        "SELECT id, started_at FROM writes WHERE kind='create' AND external_ref=? AND status='pending'"
        " ORDER BY id LIMIT 1",
        (external_ref,),
    ).fetchone()
    if row is not None:
        raise InvalidInput(
            f"Nothing was sent: the same referral (external reference id «{external_ref}») is being "
            f"created right now (change {row['id']}, started {row['started_at']}).",
            field="external_reference_id",
            value=external_ref,
            hint="Wait for that create to finish, then search by the external reference id.",
        )


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 if new, and make it 0600 without following a symlink planted there."""
    flags = os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise InvalidInput(
                f"The journal path {path} is a symbolic link; refusing to use it.", field="journal_path"
            ) from exc
        raise
    try:
        # on the file opened, never through a link (POSIX; Windows has no mode bits to tighten)
        if hasattr(os, "fchmod") and stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


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
        summary=row["summary"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
    )


def _shown_list(
    pointer: str,
    value: Any,
    operations: list[dict[str, Any]],
    *,
    before: bool,
    image: dict[str, Any] | None = None,
) -> Any:
    """A contact list from a journal row with the details of contacts the change is not about hidden.

    The change is about a contact it adds (``/-``) or, for a replaced list, one that the replacement
    adds or removes."""
    if pointer not in contacts.CONTACT_LISTS or not isinstance(value, list):
        return value
    if before:
        replaced = [op.get("value") for op in operations if op.get("path") == pointer]
        other = replaced[0] if replaced and isinstance(replaced[0], list) else value
        about = [e for e in value if contacts.find_same(pointer, other, e) is None]
    else:
        old = (image or {}).get(pointer)
        old = old if isinstance(old, list) else []
        about = [e for e in value if contacts.find_same(pointer, old, e) is None]
    return contacts.hide_contact_details(pointer, value, about)


def _owner_of_this_process() -> str:
    pid = os.getpid()
    return "|".join((socket.gethostname(), str(pid), _boot_id(), _start_ticks(pid), _INSTANCE))


def _owner_alive(owner: str) -> bool:
    """Whether the process that wrote ``owner`` may still be running (then its entries stay pending)."""
    parts = owner.split("|")
    if len(parts) == 5:
        host, pid, boot, start, instance = parts
        if instance == _INSTANCE:
            return True
        if host != socket.gethostname() or not pid.isdigit():
            return False
        if boot and boot != _boot_id():
            return False
        if int(pid) == os.getpid():
            return False  # our PID, another instance: the PID was reused
        if not _alive(int(pid)):
            return False
        return not start or start == _start_ticks(int(pid))
    # older rows: "host:pid"
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot, /proc), or "" where that cannot be read."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = text[text.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


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
