"""SQLite storage for referrals: the whole JSON document plus the columns queries filter and sort on.

The document is the truth (it is what GET returns, byte for byte); the extracted columns exist only
so the indexes can answer filtered, sorted pages quickly, and they are rewritten from the document
on every write. One connection guarded by a lock serves every thread; each write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pcref_mcp.errors import ConfigError
from pcref_mcp.private_files import private_file

__all__ = ["COLUMNS", "Store"]

# Wire path (OData form) -> indexed column.
COLUMNS: dict[str, str] = {
    "id": "id",
    "engagementId": "engagement_id",
    "externalReferenceId": "external_reference_id",
    "organizationId": "organization_id",
    "name": "name",
    "status": "status",
    "substatus": "substatus",
    "direction": "direction",
    "type": "type",
    "qualification": "qualification",
    "createdDateTime": "created_date_time",
    "updatedDateTime": "updated_date_time",
    "customerProfile/name": "customer_name",
    "customerProfile/address/country": "country",
    "details/dealValue": "deal_value",
    "details/closingDateTime": "closing_date_time",
}

_EXTRA_COLUMNS = ("etag",)
_ALL = (*COLUMNS.values(), *_EXTRA_COLUMNS, "doc")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS referrals (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    engagement_id TEXT, external_reference_id TEXT, organization_id TEXT, name TEXT,
    status TEXT, substatus TEXT, direction TEXT, type TEXT, qualification TEXT,
    created_date_time TEXT, updated_date_time TEXT, customer_name TEXT, country TEXT,
    deal_value REAL, closing_date_time TEXT,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY,
    referral_id TEXT NOT NULL REFERENCES referrals(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS ix_created ON referrals(created_date_time, id);
CREATE INDEX IF NOT EXISTS ix_updated ON referrals(updated_date_time, id);
CREATE INDEX IF NOT EXISTS ix_status_created ON referrals(status, created_date_time, id);
CREATE INDEX IF NOT EXISTS ix_direction_created ON referrals(direction, created_date_time, id);
CREATE INDEX IF NOT EXISTS ix_status_direction_created ON referrals(status, direction, created_date_time, id);
CREATE INDEX IF NOT EXISTS ix_status_updated ON referrals(status, updated_date_time, id);
CREATE INDEX IF NOT EXISTS ix_substatus ON referrals(substatus, created_date_time);
CREATE INDEX IF NOT EXISTS ix_type ON referrals(type, created_date_time);
CREATE INDEX IF NOT EXISTS ix_qualification ON referrals(qualification, created_date_time);
CREATE INDEX IF NOT EXISTS ix_engagement ON referrals(engagement_id);
CREATE INDEX IF NOT EXISTS ix_external ON referrals(external_reference_id);
CREATE INDEX IF NOT EXISTS ix_org ON referrals(organization_id);
CREATE INDEX IF NOT EXISTS ix_name ON referrals(name, id);
CREATE INDEX IF NOT EXISTS ix_customer ON referrals(customer_name, id);
CREATE INDEX IF NOT EXISTS ix_country ON referrals(country, created_date_time);
CREATE INDEX IF NOT EXISTS ix_deal_value ON referrals(deal_value, id);
CREATE INDEX IF NOT EXISTS ix_closing ON referrals(closing_date_time, id);
CREATE INDEX IF NOT EXISTS ix_writes_referral ON writes(referral_id);
"""
_INDEX_NAMES = tuple(line.split()[5] for line in _INDEXES.strip().splitlines())

_INSERT = f"INSERT INTO referrals ({', '.join(_ALL)}) VALUES ({', '.join('?' for _ in _ALL)})"
_UPDATE = f"UPDATE referrals SET {', '.join(f'{c} = ?' for c in _ALL if c != 'id')} WHERE id = ? AND etag = ?"


class Store:
    """Referral documents in SQLite. Methods take and return wire JSON (dicts or raw text)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            if not path.parent.exists():
                path.parent.mkdir(mode=0o700, parents=True)
            try:
                private_file(path)
            except ConfigError as exc:
                raise OSError(f"Cannot open the sandbox database {path} safely: {exc}") from None
            for suffix in ("-wal", "-shm"):  # SQLite would create these through a planted link
                if path.with_name(path.name + suffix).is_symlink():
                    raise OSError(
                        f"Cannot open the sandbox database {path} safely: its {suffix[1:]} file is a link."
                    )
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA foreign_keys = ON")
        if path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            # SQLite gives -wal and -shm the database's mode (0600); never opened here, which would
            # drop this connection's locks (pcref_mcp.private_files)
        self._db.execute("PRAGMA cache_size = -65536")
        # one transaction: a new file's tables and indexes are written (and the WAL committed) once
        self._db.executescript(f"BEGIN;{_SCHEMA}{_INDEXES}COMMIT;")

    # --- reads ------------------------------------------------------------------------------------

    def get_raw(self, referral_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM referrals WHERE id = ?", (referral_id,)).fetchone()
        return row[0] if row else None

    def get(self, referral_id: str) -> dict[str, Any] | None:
        raw = self.get_raw(referral_id)
        return json.loads(raw) if raw is not None else None

    def query(
        self, where: str, params: Sequence[Any], order_by: str, limit: int, offset: int = 0
    ) -> list[str]:
        """Raw documents of one page. ``where``/``order_by`` come from :mod:`.odata` (no values inside)."""
        sql = f"SELECT doc FROM referrals WHERE {where} ORDER BY {order_by} LIMIT ? OFFSET ?"
        with self._lock:
            return [r[0] for r in self._db.execute(sql, (*params, limit, offset))]

    def count(self, where: str = "1", params: Sequence[Any] = ()) -> int:
        with self._lock:
            return int(
                self._db.execute(f"SELECT count(*) FROM referrals WHERE {where}", tuple(params)).fetchone()[0]
            )

    def ids_where(self, where: str, params: Sequence[Any]) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(f"SELECT id FROM referrals WHERE {where}", tuple(params))]

    def explain(self, where: str, params: Sequence[Any], order_by: str) -> list[str]:
        """The query plan for a page (tests and the benchmark check indexes are used)."""
        sql = f"EXPLAIN QUERY PLAN SELECT doc FROM referrals WHERE {where} ORDER BY {order_by} LIMIT 100"
        with self._lock:
            return [r[-1] for r in self._db.execute(sql, tuple(params))]

    def writes_by_kind(self) -> dict[str, int]:
        """Client writes (create, patch) and service writes (expire) applied since the last reset."""
        with self._lock:
            rows = self._db.execute("SELECT kind, count(*) FROM writes GROUP BY kind ORDER BY kind")
            return {kind: int(n) for kind, n in rows}

    def writes_for(self, referral_id: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind FROM writes WHERE referral_id = ? ORDER BY seq", (referral_id,)
            )
            return [r[0] for r in rows]

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def iter_docs(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM referrals ORDER BY seq").fetchall()
        for (raw,) in rows:
            yield json.loads(raw)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # --- writes -----------------------------------------------------------------------------------

    def insert(self, doc: dict[str, Any], *, at: str, kind: str = "create") -> None:
        with self._transaction() as db:
            db.execute(_INSERT, _row(doc))
            db.execute("INSERT INTO writes (referral_id, kind, at) VALUES (?, ?, ?)", (doc["id"], kind, at))

    def replace(self, doc: dict[str, Any], *, expected_etag: str, at: str, kind: str = "patch") -> bool:
        """Write ``doc`` only if the stored ETag is still ``expected_etag`` (False: someone else won)."""
        row = _row(doc)
        with self._transaction() as db:
            cur = db.execute(_UPDATE, (*row[1:], row[0], expected_etag))
            if cur.rowcount != 1:
                return False
            db.execute("INSERT INTO writes (referral_id, kind, at) VALUES (?, ?, ?)", (doc["id"], kind, at))
            return True

    def bulk_insert(self, docs: Iterable[dict[str, Any]]) -> int:
        """Seed many documents in one transaction (no write log: seeding is not a client write).

        The indexes are dropped and rebuilt around the load: building them once is several times
        faster than maintaining them row by row.
        """
        with self._transaction() as db:
            for name in _INDEX_NAMES:
                if name != "ix_writes_referral":
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            cur = db.executemany(_INSERT, (_row(d) for d in docs))
            count = cur.rowcount
            for statement in _INDEXES.strip().splitlines():
                db.execute(statement)
        with self._lock:
            self._db.execute("ANALYZE")
        return count

    def copy_from(self, other: Store) -> None:
        """Make this database a page-for-page copy of ``other`` (SQLite's backup API): every table,
        index and planner statistic, replacing what was here (:mod:`.templates` seeds this way)."""
        with self._lock, other._lock:
            other._db.backup(self._db)

    def clear(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM writes")
            db.execute("DELETE FROM referrals")

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def _row(doc: dict[str, Any]) -> tuple[Any, ...]:
    customer = _obj(doc.get("customerProfile"))
    address = _obj(customer.get("address"))
    details = _obj(doc.get("details"))
    deal_value = details.get("dealValue")
    if isinstance(deal_value, bool) or not isinstance(deal_value, int | float):
        deal_value = None
    values = (
        doc["id"],
        doc.get("engagementId"),
        doc.get("externalReferenceId"),
        doc.get("organizationId"),
        doc.get("name"),
        doc.get("status"),
        doc.get("substatus"),
        doc.get("direction"),
        doc.get("type"),
        doc.get("qualification"),
        doc.get("createdDateTime"),
        doc.get("updatedDateTime"),
        customer.get("name"),
        address.get("country"),
        deal_value,
        details.get("closingDateTime"),
        doc["eTag"],
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
    )
    return values


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
