"""The SQLite store: one file in the user's data dir (0600, WAL), for one person's server.

Called inline from async code: each operation is one short local transaction (microseconds), the
same cost the journal always had, and SQLite's write lock (``BEGIN IMMEDIATE``) is what makes a
token single-use and a create exclusive across the processes of one machine (stdio clients that
spawn a server per call).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import ConfigError
from pcref_mcp.private_files import private_file
from pcref_mcp.store import migrations
from pcref_mcp.store.base import BROKER_LIST_LIMIT, JOURNAL_COLUMNS, Row, Store
from pcref_mcp.store.sealing import Sealer

if TYPE_CHECKING:
    from pcref_mcp.store.base import BrokerEntry, Outcome, Seen, Snapshot

__all__ = ["SqliteStore"]

# Journal columns added after the first release: (name, declaration) added to older files on open.
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("summary", "TEXT"),
    ("actor_id", "TEXT NOT NULL DEFAULT 'local'"),
    ("actor_name", "TEXT"),
)


class SqliteStore(Store):
    dialect = "sqlite"
    shared = False

    def __init__(
        self, path: Path | None, *, secret: bytes | None = None, previous: bytes | None = None
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = self._open()
        if secret is not None:
            self._sealing = Sealer(secret, *([previous] if previous else []))

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """Close the file from sync code (the CLI, tests); what ``close`` does."""
        with self._lock:
            self._db.close()

    async def schema_version(self) -> int:
        with self._lock:
            return _version(self._db)

    def integrity_ok(self) -> bool:
        with self._lock:
            return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # -- journal ------------------------------------------------------------------------------------

    async def journal_insert(self, values: Mapping[str, Any], *, guard_ref: str | None = None) -> int | Row:
        names = [c for c in JOURNAL_COLUMNS if c in values and c != "id"]
        with self._write() as db:
            if guard_ref:
                row = db.execute(
                    "SELECT id, started_at FROM writes WHERE kind='create' AND external_ref=? AND "
                    "status='pending' ORDER BY id LIMIT 1",
                    (guard_ref,),
                ).fetchone()
                if row is not None:
                    return dict(row)
            cur = db.execute(
                f"INSERT INTO writes ({','.join(names)}) VALUES ({','.join('?' * len(names))})",
                [values[n] for n in names],
            )
            return int(cur.lastrowid or 0)

    async def journal_finish(self, entry_id: int, outcome: Outcome) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE writes SET status=?, finished_at=?, etag_after=?, error=?,"
                " referral_id=COALESCE(?, referral_id) WHERE id=?",
                (*outcome, entry_id),
            )
            if outcome.status == "applied":
                row = db.execute("SELECT undo_of FROM writes WHERE id=?", (entry_id,)).fetchone()
                if row and row[0] is not None:
                    db.execute("UPDATE writes SET undone_by=? WHERE id=?", (entry_id, row[0]))

    async def journal_get(self, entry_id: int, *, actor_id: str | None) -> Row | None:
        sql, args = "SELECT * FROM writes WHERE id=?", list[Any]([entry_id])
        if actor_id is not None:
            sql += " AND actor_id=?"
            args.append(actor_id)
        return self._one(sql, args)

    async def _sealed_rows(self) -> list[tuple[str, tuple[str, ...], str, bytes]]:
        with self._lock:
            caches = self._db.execute("SELECT person, sealed FROM token_caches").fetchall()
            broker = self._db.execute("SELECT kind, key, sealed FROM broker").fetchall()
        return [("token_caches", (r[0],), r[0], bytes(r[1])) for r in caches] + [
            ("broker", (r[0], r[1]), f"broker/{r[0]}/{r[1]}", bytes(r[2])) for r in broker
        ]

    async def _replace_sealed(self, table: str, key: tuple[str, ...], old: bytes, new: bytes) -> bool:
        where = "person=?" if table == "token_caches" else "kind=? AND key=?"
        with self._write() as db:
            changed = db.execute(
                f"UPDATE {table} SET sealed=? WHERE {where} AND sealed=?", (new, *key, old)
            ).rowcount
        return bool(changed)

    async def _seen_upsert(self, seen: Seen) -> bool:
        with self._write() as db:
            row = db.execute(
                "SELECT issued FROM seen WHERE person=? AND client_id=?", (seen.person, seen.client_id)
            ).fetchone()
            db.execute(
                "INSERT INTO seen (person, client_id, name, client_name, last_seen, issued) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (person, client_id) DO UPDATE SET name=COALESCE(excluded.name, seen.name), "
                "client_name=COALESCE(excluded.client_name, seen.client_name), "
                "last_seen=MAX(seen.last_seen, excluded.last_seen), issued=MAX(seen.issued, excluded.issued)",
                seen,
            )
        return row is None or seen.issued > float(row[0])

    async def journal_recent_create(self, external_ref: str, since: str) -> Row | None:
        return self._one(
            "SELECT * FROM writes WHERE kind='create' AND external_ref=? AND started_at>=?"
            " AND status IN ('applied','partial','in_doubt') ORDER BY id DESC LIMIT 1",
            (external_ref, since),
        )

    async def journal_mark_in_doubt(self, ids: Sequence[int], error: str) -> None:
        with self._write() as db:
            for entry_id in ids:
                db.execute(
                    "UPDATE writes SET status='in_doubt', error=COALESCE(error, ?) WHERE id=? AND status='pending'",
                    (error, entry_id),
                )

    async def journal_settle(self, entry_id: int, status: str, note: str, finished_at: str) -> bool:
        with self._write() as db:
            cur = db.execute(
                "UPDATE writes SET status=?, error=?, finished_at=COALESCE(finished_at, ?) "
                "WHERE id=? AND status='in_doubt'",
                (status, note, finished_at, entry_id),
            )
            return cur.rowcount == 1

    # -- process leases -----------------------------------------------------------------------------

    async def lease_renew(self, owner: str, now: float) -> None:
        self._keep_later("leases", "owner", "renewed", owner, now)

    async def leases(self, owners: Sequence[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        unique = list(dict.fromkeys(owners))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT owner, renewed FROM leases WHERE owner IN ({marks})", chunk
                ):
                    out[row[0]] = float(row[1])
        return out

    async def lease_purge(self, before: float) -> int:
        with self._write() as db:
            return int(db.execute("DELETE FROM leases WHERE renewed < ?", (before,)).rowcount)

    async def lease_release(self, owner: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM leases WHERE owner=?", (owner,))

    # -- batches ------------------------------------------------------------------------------------

    async def batch_insert(self, values: Mapping[str, Any]) -> None:
        with self._write() as db:
            _insert_batch(db, values)

    async def batch_add_change(self, batch_id: str, change_id: int) -> bool:
        with self._write() as db:  # one statement under the write lock: no append is lost
            db.execute(
                "UPDATE batches SET change_ids=json_insert(change_ids, '$[#]', ?) WHERE batch_id=? AND NOT "
                "EXISTS (SELECT 1 FROM json_each(batches.change_ids) WHERE value=?)",
                (int(change_id), batch_id, int(change_id)),
            )
            return db.execute("SELECT 1 FROM batches WHERE batch_id=?", (batch_id,)).fetchone() is not None

    async def batch_get(self, batch_id: str, *, actor_id: str) -> Row | None:
        row = self._one("SELECT * FROM batches WHERE batch_id=? AND actor_id=?", (batch_id, actor_id))
        if row is not None:
            row["change_ids"] = [int(i) for i in json.loads(row["change_ids"])]
        return row

    # -- snapshots ----------------------------------------------------------------------------------

    async def snapshots_get(self, actor_id: str, referral_ids: Sequence[str]) -> list[Row]:
        out: list[Row] = []
        with self._lock:
            for start in range(0, len(referral_ids), 500):
                chunk = list(referral_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                out.extend(
                    dict(r)
                    for r in self._db.execute(
                        "SELECT referral_id, seen_at, updated, fields FROM snapshots"
                        f" WHERE actor_id=? AND referral_id IN ({marks})",
                        (actor_id, *chunk),
                    )
                )
        return out

    async def _snapshots_upsert(self, snapshots: Sequence[Snapshot]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO snapshots (actor_id, referral_id, seen_at, updated, fields) VALUES (?,?,?,?,?)"
                " ON CONFLICT(actor_id, referral_id) DO UPDATE SET seen_at=excluded.seen_at,"
                " updated=excluded.updated, fields=excluded.fields",
                snapshots,
            )

    # -- one-time imports ---------------------------------------------------------------------------

    async def _import_rows(
        self, name: str, at: str, batches: Sequence[Mapping[str, Any]], snapshots: Sequence[Snapshot]
    ) -> bool:
        with self._write() as db:
            if (
                db.execute(
                    "INSERT OR IGNORE INTO imports (name, imported_at) VALUES (?, ?)", (name, at)
                ).rowcount
                == 0
            ):
                return False
            for batch in batches:
                _insert_batch(db, batch)
            db.executemany(
                "INSERT OR IGNORE INTO snapshots (actor_id, referral_id, seen_at, updated, fields)"
                " VALUES (?,?,?,?,?)",
                snapshots,
            )
            return True

    # -- approvals ----------------------------------------------------------------------------------

    async def approval_open(self, claims: Mapping[str, str], channel: str, now: float) -> str | None:
        row = self._one(
            "SELECT ref FROM approvals WHERE owner=? AND tool=? AND plan=? AND etag=? AND channel=? "
            "AND spent IS NULL AND expires>=? AND ref IS NOT NULL ORDER BY issued DESC LIMIT 1",
            (claims["owner"], claims["tool"], claims["plan"], claims["etag"], channel, now),
        )
        return str(row["ref"]) if row else None

    async def approval_insert(self, values: Mapping[str, Any]) -> None:
        names = list(values)
        with self._write() as db:
            db.execute(
                f"INSERT INTO approvals ({','.join(names)}) VALUES ({','.join('?' * len(names))})",
                [int(v) if isinstance(v, bool) else v for v in values.values()],
            )

    async def approval_get(self, approval_id: str) -> Row | None:
        row = self._one("SELECT * FROM approvals WHERE id=?", (approval_id,))
        if row is not None:
            row["fallback"] = bool(row["fallback"])
        return row

    async def approval_redeem(self, approval_id: str, claims: Mapping[str, str], now: float) -> Row | None:
        with self._write() as db:
            cur = db.execute(
                "UPDATE approvals SET spent=? WHERE id=? AND spent IS NULL AND expires>=? "
                "AND owner=? AND tool=? AND plan=? AND etag=? RETURNING *",
                (now, approval_id, now, claims["owner"], claims["tool"], claims["plan"], claims["etag"]),
            )
            found = cur.fetchone()
            row = dict(found) if found is not None else None
        if row is not None:
            row["fallback"] = bool(row["fallback"])
        return row

    async def approval_purge(self, before: float) -> int:
        with self._write() as db:
            return int(db.execute("DELETE FROM approvals WHERE expires < ?", (before,)).rowcount)

    # -- keys ---------------------------------------------------------------------------------------

    async def keys(self, purpose: str) -> list[tuple[float, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT created, secret FROM store_keys WHERE purpose=? ORDER BY created DESC", (purpose,)
            ).fetchall()
        return [(float(r[0]), bytes(r[1])) for r in rows]

    async def add_key(self, purpose: str, created: float, secret: bytes) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO store_keys (purpose, created, secret) VALUES (?,?,?)",
                (purpose, created, secret),
            )

    async def drop_key(self, purpose: str, created: float) -> None:
        with self._write() as db:
            db.execute("DELETE FROM store_keys WHERE purpose=? AND created=?", (purpose, created))

    # -- rate limits --------------------------------------------------------------------------------

    async def rate_take(self, bucket: str, calls: int, window: float, now: float) -> float:
        with self._write() as db:
            pause = db.execute("SELECT until FROM rate_pauses WHERE bucket=?", (bucket,)).fetchone()
            if pause is not None and pause[0] > now:
                return float(pause[0] - now)
            db.execute("DELETE FROM rate_events WHERE bucket=? AND at<=?", (bucket, now - window))
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(at) FROM rate_events WHERE bucket=?", (bucket,)
            ).fetchone()
            if count < calls:
                db.execute("INSERT INTO rate_events (bucket, at) VALUES (?, ?)", (bucket, now))
                return 0.0
            return max(0.001, float(oldest + window - now))

    async def rate_pause(self, bucket: str, until: float) -> None:
        self._keep_later("rate_pauses", "bucket", "until", bucket, until)

    # -- token caches -------------------------------------------------------------------------------

    async def token_delete(self, person: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM token_caches WHERE person=?", (person,))

    async def _token_get_sealed(self, person: str) -> bytes | None:
        row = self._one("SELECT sealed FROM token_caches WHERE person=?", (person,))
        return bytes(row["sealed"]) if row else None

    async def _token_put_sealed(self, person: str, sealed: bytes, now: float) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO token_caches (person, sealed, updated) VALUES (?,?,?) ON CONFLICT(person) "
                "DO UPDATE SET sealed=excluded.sealed, updated=excluded.updated",
                (person, sealed, now),
            )

    # -- OAuth broker state -------------------------------------------------------------------------

    async def broker_drop(
        self, kind: str, *, client_id: str | None = None, subject: str | None = None
    ) -> int:
        where, args = _owner_filter(kind, client_id, subject)
        with self._write() as db:
            return int(db.execute(f"DELETE FROM broker WHERE {where}", args).rowcount)

    async def broker_purge(self, now: float) -> int:
        with self._write() as db:
            return int(db.execute("DELETE FROM broker WHERE expires <= ?", (now,)).rowcount)

    async def broker_count(self, kind: str, now: float) -> int:
        row = self._one(
            "SELECT COUNT(*) AS n FROM broker WHERE kind=? AND (expires IS NULL OR expires > ?)", (kind, now)
        )
        return int(row["n"]) if row else 0

    async def broker_evict(self, kind: str, keep: int, now: float) -> int:
        with self._write() as db:
            gone = db.execute("DELETE FROM broker WHERE kind=? AND expires <= ?", (kind, now)).rowcount
            gone += db.execute(
                "DELETE FROM broker WHERE kind=? AND key IN (SELECT key FROM broker WHERE kind=? "
                "ORDER BY expires IS NULL DESC, expires DESC LIMIT -1 OFFSET ?)",
                (kind, kind, max(0, keep)),
            ).rowcount
            return int(gone)

    async def _broker_list_sealed(
        self, kind: str, now: float, client_id: str | None, subject: str | None
    ) -> list[tuple[str, bytes]]:
        where, args = _owner_filter(kind, client_id, subject)
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, sealed FROM broker WHERE {where} AND (expires IS NULL OR expires > ?) "
                "ORDER BY expires IS NULL DESC, expires DESC LIMIT ?",
                [*args, now, BROKER_LIST_LIMIT],
            ).fetchall()
        return [(str(r["key"]), bytes(r["sealed"])) for r in rows]

    async def _broker_put_sealed(self, entry: BrokerEntry) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO broker (kind, key, sealed, expires, client_id, subject) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(kind, key) DO UPDATE SET sealed=excluded.sealed, expires=excluded.expires, "
                "client_id=excluded.client_id, subject=excluded.subject",
                entry,
            )

    async def _broker_get_sealed(self, kind: str, digest: str, now: float) -> bytes | None:
        row = self._one(
            "SELECT sealed FROM broker WHERE kind=? AND key=? AND (expires IS NULL OR expires > ?)",
            (kind, digest, now),
        )
        return bytes(row["sealed"]) if row else None

    async def _broker_take_sealed(self, kind: str, digest: str, now: float) -> bytes | None:
        # read and delete in one write transaction: the file's write lock lets exactly one process
        # find it (no DELETE … RETURNING: that needs SQLite 3.35)
        with self._write() as db:
            row = db.execute(
                "SELECT sealed, expires FROM broker WHERE kind=? AND key=?", (kind, digest)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM broker WHERE kind=? AND key=?", (kind, digest))
        if row["expires"] is not None and row["expires"] <= now:
            return None
        return bytes(row["sealed"])

    # -- private ------------------------------------------------------------------------------------

    @staticmethod
    def _mark(n: int) -> str:
        return "?"

    async def _select(self, sql: str, *args: Any) -> list[Row]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [dict(r) for r in rows]

    def _one(self, sql: str, args: Sequence[Any]) -> Row | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    def _keep_later(self, table: str, key_column: str, column: str, key: str, at: float) -> None:
        """``at`` into ``table.column`` for ``key``, never moving it back (a lease renewed, a pause
        set, late by a slow caller)."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO {table} ({key_column}, {column}) VALUES (?, ?) ON CONFLICT({key_column}) "
                f"DO UPDATE SET {column}=MAX({column}, excluded.{column})",
                (key, at),
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (:func:`_immediate`) under this object's lock."""
        with self._lock, _immediate(self._db):
            yield self._db

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True)
            for suffix in ("-wal", "-shm"):  # SQLite would create these through a planted link
                if self.path.with_name(self.path.name + suffix).is_symlink():
                    raise ConfigError(
                        f"The {suffix[1:]} file next to {self.path} is a symbolic link; refusing to use it."
                    )
            private_file(self.path)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0, isolation_level=None)
            _busy_retry(lambda: db.execute("PRAGMA journal_mode=WAL"))  # may be refused while another opens
            db.execute("PRAGMA synchronous=FULL")
            # SQLite gives the -wal and -shm files the database's own mode (0600); they are not
            # opened here: closing a descriptor would drop this connection's locks (private_files)
        db.row_factory = sqlite3.Row
        _migrate(db)
        return db


def _migrate(db: sqlite3.Connection) -> None:
    """Run pending migrations; a file already at the latest version is only read (no write lock, so
    processes opening it together do not queue behind each other)."""
    try:
        if _version(db) >= migrations.latest(migrations.SQLITE):
            return
    except sqlite3.OperationalError:  # no schema_migrations table yet
        pass
    with _immediate(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        have = _version(db)
        for version, script in migrations.SQLITE:
            if version <= have:
                continue
            for statement in _statements(script):
                db.execute(statement)
            if version == 1:  # a journal from before the store may lack later columns
                present = {row[1] for row in db.execute("PRAGMA table_info(writes)")}
                for name, declaration in _ADDED_COLUMNS:
                    if name not in present:
                        db.execute(f"ALTER TABLE writes ADD COLUMN {name} {declaration}")
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))", (version,)
            )


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error): the database's write lock makes
    each step atomic across the processes sharing the file."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _insert_batch(db: sqlite3.Connection, values: Mapping[str, Any]) -> None:
    db.execute(
        "INSERT OR IGNORE INTO batches (batch_id, actor_id, created_at, mode, undo_of, change_ids)"
        " VALUES (?,?,?,?,?,?)",
        (
            values["batch_id"],
            values["actor_id"],
            values["created_at"],
            values["mode"],
            values.get("undo_of"),
            json.dumps([int(i) for i in values.get("change_ids") or ()]),
        ),
    )


def _owner_filter(kind: str, client_id: str | None, subject: str | None) -> tuple[str, list[Any]]:
    if client_id is None and subject is None:
        raise ValueError("broker_drop needs a client_id or a subject")
    where, args = ["kind=?"], [kind]
    for column, value in (("client_id", client_id), ("subject", subject)):
        if value is not None:
            where.append(f"{column}=?")
            args.append(value)
    return " AND ".join(where), args


def _busy_retry(step: Callable[[], object], seconds: float = 10.0) -> None:
    """SQLite answers some statements (changing the journal mode) "database is locked" at once,
    without waiting for the busy timeout: try again for a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
