"""Versioned schema migrations for both dialects, run when a store opens.

Each migration is (version, statements). A store records the versions applied in
``schema_migrations``; opening runs those above the highest recorded one, in order, in one
transaction each (PostgreSQL: under an advisory lock, so replicas starting together migrate once).
Never edit a released migration: add the next one.
"""

from __future__ import annotations

__all__ = ["POSTGRES", "SQLITE", "latest"]

# SQLite: version 1 is the journal as it was before the store existed (older files may have it
# already, possibly without the columns added later: the SQLite store adds those itself).
SQLITE: tuple[tuple[int, str], ...] = (
    (
        1,
        """
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
        """,
    ),
    (
        2,
        """
        CREATE INDEX IF NOT EXISTS writes_actor ON writes(actor_id, id);
        CREATE TABLE IF NOT EXISTS approvals (
            id        TEXT PRIMARY KEY,
            ref       TEXT,
            owner     TEXT NOT NULL,
            tool      TEXT NOT NULL,
            plan      TEXT NOT NULL,
            etag      TEXT NOT NULL,
            channel   TEXT NOT NULL,
            fallback  INTEGER NOT NULL DEFAULT 0,
            snapshot  TEXT NOT NULL,
            issued    REAL NOT NULL,
            expires   REAL NOT NULL,
            spent     REAL
        );
        CREATE INDEX IF NOT EXISTS approvals_open ON approvals(owner, tool, plan, etag, channel);
        CREATE TABLE IF NOT EXISTS store_keys (
            purpose   TEXT NOT NULL,
            created   REAL NOT NULL,
            secret    BLOB NOT NULL,
            PRIMARY KEY (purpose, created)
        );
        CREATE TABLE IF NOT EXISTS rate_events (bucket TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX IF NOT EXISTS rate_events_bucket ON rate_events(bucket, at);
        CREATE TABLE IF NOT EXISTS rate_pauses (bucket TEXT PRIMARY KEY, until REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS token_caches (
            person    TEXT PRIMARY KEY,
            sealed    BLOB NOT NULL,
            updated   REAL NOT NULL
        );
        """,
    ),
    # The OAuth proxy's broker state (registered clients, sign-ins in progress, one-time codes,
    # refresh handles): keys are SHA-256 digests, values sealed; see Store.broker_put.
    (
        3,
        """
        CREATE TABLE IF NOT EXISTS broker (
            kind      TEXT NOT NULL,
            key       TEXT NOT NULL,
            sealed    BLOB NOT NULL,
            expires   REAL,
            client_id TEXT,
            subject   TEXT,
            PRIMARY KEY (kind, key)
        );
        CREATE INDEX IF NOT EXISTS broker_expires ON broker(kind, expires);
        CREATE INDEX IF NOT EXISTS broker_owner ON broker(kind, client_id, subject);
        """,
    ),
    # -- version 4: batches, feed snapshots, process leases (shared by every replica) --------------
    (
        4,
        """
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
        CREATE TABLE IF NOT EXISTS leases (owner TEXT PRIMARY KEY, renewed REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS imports (name TEXT PRIMARY KEY, imported_at TEXT NOT NULL);
        """,
    ),
    # -- version 5: the audit's request id and approval path of each write (issue 23) -------------
    (
        5,
        """
        ALTER TABLE writes ADD COLUMN request_id TEXT;
        ALTER TABLE writes ADD COLUMN approval_path TEXT;
        CREATE INDEX IF NOT EXISTS writes_started ON writes(started_at);
        """,
    ),
    # -- version 6: who was seen, when, with which client (issue 23: `pcref-mcp admin people`) --------
    (
        6,
        """
        CREATE TABLE IF NOT EXISTS seen (
            person      TEXT NOT NULL,
            client_id   TEXT NOT NULL,
            name        TEXT,
            client_name TEXT,
            last_seen   REAL NOT NULL,
            issued      REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (person, client_id)
        );
        """,
    ),
)

POSTGRES: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE writes (
            id             BIGSERIAL PRIMARY KEY,
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
            undo_of        BIGINT REFERENCES writes(id),
            undone_by      BIGINT REFERENCES writes(id),
            external_ref   TEXT,
            owner          TEXT NOT NULL,
            summary        TEXT,
            actor_id       TEXT NOT NULL DEFAULT 'local',
            actor_name     TEXT,
            nonce          TEXT UNIQUE
        );
        CREATE INDEX writes_referral ON writes(referral_id, id);
        CREATE INDEX writes_status ON writes(status);
        CREATE INDEX writes_actor ON writes(actor_id, id);
        CREATE UNIQUE INDEX writes_one_pending_create ON writes(external_ref)
            WHERE kind = 'create' AND status = 'pending';
        CREATE TABLE approvals (
            id        TEXT PRIMARY KEY,
            ref       TEXT,
            owner     TEXT NOT NULL,
            tool      TEXT NOT NULL,
            plan      TEXT NOT NULL,
            etag      TEXT NOT NULL,
            channel   TEXT NOT NULL,
            fallback  BOOLEAN NOT NULL DEFAULT FALSE,
            snapshot  TEXT NOT NULL,
            issued    DOUBLE PRECISION NOT NULL,
            expires   DOUBLE PRECISION NOT NULL,
            spent     DOUBLE PRECISION,
            spent_by  TEXT
        );
        CREATE INDEX approvals_open ON approvals(owner, tool, plan, etag, channel);
        CREATE TABLE store_keys (
            purpose   TEXT NOT NULL,
            created   DOUBLE PRECISION NOT NULL,
            secret    BYTEA NOT NULL,
            PRIMARY KEY (purpose, created)
        );
        CREATE TABLE rate_events (bucket TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
        CREATE INDEX rate_events_bucket ON rate_events(bucket, at);
        CREATE TABLE rate_pauses (bucket TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL);
        CREATE TABLE token_caches (
            person    TEXT PRIMARY KEY,
            sealed    BYTEA NOT NULL,
            updated   DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    # The OAuth proxy's broker state; ``taken`` marks a row one caller took (a retried take of the
    # same attempt still gets it), purged with the expired rows.
    (
        2,
        """
        CREATE TABLE broker (
            kind      TEXT NOT NULL,
            key       TEXT NOT NULL,
            sealed    BYTEA NOT NULL,
            expires   DOUBLE PRECISION,
            client_id TEXT,
            subject   TEXT,
            taken     TEXT,
            PRIMARY KEY (kind, key)
        );
        CREATE INDEX broker_expires ON broker(kind, expires);
        CREATE INDEX broker_owner ON broker(kind, client_id, subject);
        """,
    ),
    # -- version 3: batches, feed snapshots, process leases (shared by every replica) --------------
    (
        3,
        """
        CREATE TABLE batches (
            batch_id    TEXT PRIMARY KEY,
            actor_id    TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            mode        TEXT NOT NULL,
            undo_of     TEXT,
            change_ids  BIGINT[] NOT NULL DEFAULT '{}'
        );
        CREATE TABLE snapshots (
            actor_id    TEXT NOT NULL,
            referral_id TEXT NOT NULL,
            seen_at     TEXT NOT NULL,
            updated     TEXT,
            fields      TEXT NOT NULL,
            PRIMARY KEY (actor_id, referral_id)
        );
        CREATE TABLE leases (owner TEXT PRIMARY KEY, renewed DOUBLE PRECISION NOT NULL);
        CREATE TABLE imports (name TEXT PRIMARY KEY, imported_at TEXT NOT NULL);
        """,
    ),
    # -- version 4: the audit's request id and approval path of each write (issue 23) -------------
    (
        4,
        """
        ALTER TABLE writes ADD COLUMN request_id TEXT;
        ALTER TABLE writes ADD COLUMN approval_path TEXT;
        CREATE INDEX writes_started ON writes(started_at);
        """,
    ),
    # -- version 5: who was seen, when, with which client (issue 23: `pcref-mcp admin people`) --------
    (
        5,
        """
        CREATE TABLE seen (
            person      TEXT NOT NULL,
            client_id   TEXT NOT NULL,
            name        TEXT,
            client_name TEXT,
            last_seen   DOUBLE PRECISION NOT NULL,
            issued      DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (person, client_id)
        );
        """,
    ),
)


def latest(migrations: tuple[tuple[int, str], ...]) -> int:
    return migrations[-1][0]
