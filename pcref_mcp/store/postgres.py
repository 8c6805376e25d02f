"""The PostgreSQL store: shared state for a team deployment of several replicas.

Driver: asyncpg (async, binary protocol, a connection pool, maintained by MagicStack; psycopg 3
would do too, but asyncpg is the faster and smaller of the two for a server that only ever runs
async). Every single-use or exclusive step is one statement or one transaction: a confirm token is
spent by ``UPDATE … WHERE spent IS NULL``, a second pending create of one external reference is
refused by a partial unique index, a rate-limit bucket is taken under a transaction-scoped advisory
lock, a change id is appended to its batch by one ``UPDATE`` (the row lock orders replicas appending
at once), a one-time code or refresh handle is taken by ``UPDATE … WHERE taken IS NULL RETURNING``.

PostgreSQL can restart under us. Every operation is retried on a lost connection for up to
``retry_seconds``, and each is safe to retry: inserts carry a nonce (a retried journal insert finds
its own row), spending a token and taking a broker entry are idempotent for the same attempt, the rest are idempotent or (a
rate-limit take) merely conservative.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from pcref_mcp.errors import ConfigError, StoreUnavailable
from pcref_mcp.store import migrations
from pcref_mcp.store.base import BROKER_LIST_LIMIT, JOURNAL_COLUMNS, Row, Store
from pcref_mcp.store.sealing import Sealer

if TYPE_CHECKING:
    from pcref_mcp.store.base import BrokerEntry, Outcome, Seen, Snapshot

__all__ = ["PostgresStore"]

T = TypeVar("T")
log = logging.getLogger("pcref_mcp.store")
_MIGRATION_LOCK = 0x70637266  # "pcrf": one advisory lock id for migrations


class PostgresStore(Store):
    dialect = "postgresql"
    shared = True

    def __init__(
        self,
        url: str,
        *,
        secret: bytes,
        previous: bytes | None = None,
        pool_size: int = 10,
        retry_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self._pool: Any = None
        self._pool_size = pool_size
        self._retry_seconds = retry_seconds
        self._sealing = Sealer(secret, *([previous] if previous else []))  # previous: rotation's grace
        self._start_lock = anyio.Lock()

    async def start(self) -> None:
        async with self._start_lock:
            if self._pool is not None:
                return
            import asyncpg

            try:
                pool = await asyncpg.create_pool(
                    self.url, min_size=1, max_size=self._pool_size, command_timeout=30
                )
            except (OSError, asyncpg.PostgresError) as exc:
                raise ConfigError(
                    f"Cannot reach the PostgreSQL store ({type(exc).__name__}); check PCREF_STORE_URL."
                ) from None
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                have = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                for version, script in migrations.POSTGRES:
                    if version > have:
                        await conn.execute(script)
                        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        return int(await self._run(lambda c: c.fetchval("SELECT MAX(version) FROM schema_migrations")))

    # -- journal ------------------------------------------------------------------------------------

    async def journal_insert(self, values: Mapping[str, Any], *, guard_ref: str | None = None) -> int | Row:
        import asyncpg

        names = [c for c in JOURNAL_COLUMNS if c in values and c != "id"] + ["nonce"]
        args = [values[n] for n in names[:-1]] + [secrets.token_hex(12)]
        marks = ",".join(f"${i}" for i in range(1, len(names) + 1))
        insert = (
            f"INSERT INTO writes ({','.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT (nonce) DO NOTHING RETURNING id"
        )

        async def attempt(conn: Any) -> int | Row:
            mine = await conn.fetchval("SELECT id FROM writes WHERE nonce=$1", args[-1])
            if mine is not None:  # a retry after a commit whose answer was lost
                return int(mine)
            try:
                async with conn.transaction():  # a savepoint: the refusal leaves the rest usable
                    return int(await conn.fetchval(insert, *args))
            except asyncpg.UniqueViolationError:
                if not guard_ref:
                    raise
            row = await conn.fetchrow(
                "SELECT id, started_at FROM writes WHERE kind='create' AND external_ref=$1 "
                "AND status='pending' ORDER BY id LIMIT 1",
                guard_ref,
            )
            return dict(row) if row is not None else {"id": 0, "started_at": "just now"}

        return await self._transaction(attempt)

    async def journal_finish(self, entry_id: int, outcome: Outcome) -> None:
        async def finish(conn: Any) -> None:
            undo_of = await conn.fetchval(
                "UPDATE writes SET status=$1, finished_at=$2, etag_after=$3, error=$4,"
                " referral_id=COALESCE($5, referral_id) WHERE id=$6 RETURNING undo_of",
                *outcome,
                entry_id,
            )
            if outcome.status == "applied" and undo_of is not None:
                await conn.execute("UPDATE writes SET undone_by=$1 WHERE id=$2", entry_id, undo_of)

        await self._transaction(finish)

    async def journal_get(self, entry_id: int, *, actor_id: str | None) -> Row | None:
        if actor_id is None:
            return await self._row("SELECT * FROM writes WHERE id=$1", entry_id)
        return await self._row("SELECT * FROM writes WHERE id=$1 AND actor_id=$2", entry_id, actor_id)

    async def _sealed_rows(self) -> list[tuple[str, tuple[str, ...], str, bytes]]:
        caches = await self._run(lambda c: c.fetch("SELECT person, sealed FROM token_caches"))
        broker = await self._run(
            lambda c: c.fetch("SELECT kind, key, sealed FROM broker WHERE taken IS NULL")
        )
        return [("token_caches", (r["person"],), r["person"], bytes(r["sealed"])) for r in caches] + [
            ("broker", (r["kind"], r["key"]), f"broker/{r['kind']}/{r['key']}", bytes(r["sealed"]))
            for r in broker
        ]

    async def _replace_sealed(self, table: str, key: tuple[str, ...], old: bytes, new: bytes) -> bool:
        if table == "token_caches":
            sql = "UPDATE token_caches SET sealed=$1 WHERE person=$2 AND sealed=$3"
            args: tuple[Any, ...] = (new, key[0], old)
        else:
            sql = "UPDATE broker SET sealed=$1 WHERE kind=$2 AND key=$3 AND sealed=$4"
            args = (new, key[0], key[1], old)
        status = await self._run(lambda c: c.execute(sql, *args))
        return str(status).endswith(" 1")

    async def _seen_upsert(self, seen: Seen) -> bool:
        async def touch(conn: Any) -> bool:
            added = await conn.execute(
                "INSERT INTO seen (person, client_id, name, client_name, last_seen, issued) "
                "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (person, client_id) DO NOTHING",
                *seen,
            )
            if _count(added):
                return True
            # the row lock makes the second of two replicas with the same new token see it raised
            raised = await conn.execute(
                "UPDATE seen SET issued=$3 WHERE person=$1 AND client_id=$2 AND issued < $3",
                seen.person,
                seen.client_id,
                seen.issued,
            )
            await conn.execute(
                "UPDATE seen SET name=COALESCE($3, name), client_name=COALESCE($4, client_name), "
                "last_seen=GREATEST(last_seen, $5) WHERE person=$1 AND client_id=$2",
                seen.person,
                seen.client_id,
                seen.name,
                seen.client_name,
                seen.last_seen,
            )
            return bool(_count(raised))

        return await self._transaction(touch)

    async def journal_recent_create(self, external_ref: str, since: str) -> Row | None:
        return await self._row(
            "SELECT * FROM writes WHERE kind='create' AND external_ref=$1 AND started_at>=$2"
            " AND status IN ('applied','partial','in_doubt') ORDER BY id DESC LIMIT 1",
            external_ref,
            since,
        )

    async def journal_mark_in_doubt(self, ids: Sequence[int], error: str) -> None:
        if ids:
            await self._run(
                lambda c: c.execute(
                    "UPDATE writes SET status='in_doubt', error=COALESCE(error, $1) "
                    "WHERE id = ANY($2::bigint[]) AND status='pending'",
                    error,
                    list(ids),
                )
            )

    async def journal_settle(self, entry_id: int, status: str, note: str, finished_at: str) -> bool:
        done = await self._run(
            lambda c: c.execute(
                "UPDATE writes SET status=$1, error=$2, finished_at=COALESCE(finished_at, $3) "
                "WHERE id=$4 AND status='in_doubt'",
                status,
                note,
                finished_at,
                entry_id,
            )
        )
        return bool(str(done).endswith(" 1"))

    # -- process leases -----------------------------------------------------------------------------

    async def clock(self) -> float:
        return float(
            await self._run(lambda c: c.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8"))
        )

    async def lease_renew(self, owner: str, now: float) -> None:
        await self._keep_later("leases", "owner", "renewed", owner, now)

    async def leases(self, owners: Sequence[str]) -> dict[str, float]:
        if not owners:
            return {}
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT owner, renewed FROM leases WHERE owner = ANY($1::text[])", list(dict.fromkeys(owners))
            )
        )
        return {r["owner"]: float(r["renewed"]) for r in rows}

    async def lease_purge(self, before: float) -> int:
        done = await self._run(lambda c: c.execute("DELETE FROM leases WHERE renewed < $1", before))
        return _count(done)

    async def lease_release(self, owner: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM leases WHERE owner=$1", owner))

    # -- batches ------------------------------------------------------------------------------------

    async def batch_insert(self, values: Mapping[str, Any]) -> None:
        await self._run(lambda c: _insert_batch(c, values))

    async def batch_add_change(self, batch_id: str, change_id: int) -> bool:
        # one statement: the row lock serialises appends; the guard makes a retry after a lost answer
        # harmless (the UPDATE runs whether or not the SELECT reads it)
        found = await self._run(
            lambda c: c.fetchval(
                "WITH appended AS (UPDATE batches SET change_ids=array_append(change_ids, $2::bigint) "
                "WHERE batch_id=$1 AND NOT ($2::bigint = ANY(change_ids)) RETURNING 1) "
                "SELECT EXISTS (SELECT 1 FROM batches WHERE batch_id=$1)",
                batch_id,
                int(change_id),
            )
        )
        return bool(found)

    async def batch_get(self, batch_id: str, *, actor_id: str) -> Row | None:
        row = await self._run(
            lambda c: c.fetchrow(
                "SELECT * FROM batches WHERE batch_id=$1 AND actor_id=$2", batch_id, actor_id
            )
        )
        if row is None:
            return None
        data = dict(row)
        data["change_ids"] = [int(i) for i in data["change_ids"]]
        return data

    # -- snapshots ----------------------------------------------------------------------------------

    async def snapshots_get(self, actor_id: str, referral_ids: Sequence[str]) -> list[Row]:
        if not referral_ids:
            return []
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT referral_id, seen_at, updated, fields FROM snapshots "
                "WHERE actor_id=$1 AND referral_id = ANY($2::text[])",
                actor_id,
                list(referral_ids),
            )
        )
        return [dict(r) for r in rows]

    async def _snapshots_upsert(self, snapshots: Sequence[Snapshot]) -> None:
        await self._run(
            lambda c: c.executemany(
                "INSERT INTO snapshots (actor_id, referral_id, seen_at, updated, fields) VALUES ($1,$2,$3,$4,$5)"
                " ON CONFLICT (actor_id, referral_id) DO UPDATE SET seen_at=excluded.seen_at,"
                " updated=excluded.updated, fields=excluded.fields",
                snapshots,
            )
        )

    # -- one-time imports ---------------------------------------------------------------------------

    async def _import_rows(
        self, name: str, at: str, batches: Sequence[Mapping[str, Any]], snapshots: Sequence[Snapshot]
    ) -> bool:
        async def attempt(conn: Any) -> bool:
            done = await conn.execute(
                "INSERT INTO imports (name, imported_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", name, at
            )
            if not str(done).endswith(" 1"):
                return False
            for batch in batches:
                await _insert_batch(conn, batch)
            if snapshots:
                await conn.executemany(
                    "INSERT INTO snapshots (actor_id, referral_id, seen_at, updated, fields)"
                    " VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
                    snapshots,
                )
            return True

        return await self._transaction(attempt)

    # -- approvals ----------------------------------------------------------------------------------

    async def approval_open(self, claims: Mapping[str, str], channel: str, now: float) -> str | None:
        return await self._run(
            lambda c: c.fetchval(
                "SELECT ref FROM approvals WHERE owner=$1 AND tool=$2 AND plan=$3 AND etag=$4 AND channel=$5 "
                "AND spent IS NULL AND expires>=$6 AND ref IS NOT NULL ORDER BY issued DESC LIMIT 1",
                claims["owner"],
                claims["tool"],
                claims["plan"],
                claims["etag"],
                channel,
                now,
            )
        )

    async def approval_insert(self, values: Mapping[str, Any]) -> None:
        names = list(values)
        marks = ",".join(f"${i}" for i in range(1, len(names) + 1))
        sql = f"INSERT INTO approvals ({','.join(names)}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
        await self._run(lambda c: c.execute(sql, *values.values()))

    async def approval_get(self, approval_id: str) -> Row | None:
        row = await self._row("SELECT * FROM approvals WHERE id=$1", approval_id)
        if row is not None:
            row.pop("spent_by", None)
        return row

    async def approval_redeem(self, approval_id: str, claims: Mapping[str, str], now: float) -> Row | None:
        attempt = secrets.token_hex(8)  # a retry of this same spend still wins
        row = await self._row(
            "UPDATE approvals SET spent=$2, spent_by=$3 WHERE id=$1 AND (spent IS NULL OR spent_by=$3) "
            "AND expires>=$2 AND owner=$4 AND tool=$5 AND plan=$6 AND etag=$7 RETURNING *",
            approval_id,
            now,
            attempt,
            claims["owner"],
            claims["tool"],
            claims["plan"],
            claims["etag"],
        )
        if row is not None:
            row.pop("spent_by", None)
        return row

    async def approval_purge(self, before: float) -> int:
        done = await self._run(lambda c: c.execute("DELETE FROM approvals WHERE expires < $1", before))
        return _count(done)

    # -- keys ---------------------------------------------------------------------------------------

    async def keys(self, purpose: str) -> list[tuple[float, bytes]]:
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT created, secret FROM store_keys WHERE purpose=$1 ORDER BY created DESC", purpose
            )
        )
        return [(float(r["created"]), bytes(r["secret"])) for r in rows]

    async def add_key(self, purpose: str, created: float, secret: bytes) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO store_keys (purpose, created, secret) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
                purpose,
                created,
                secret,
            )
        )

    async def drop_key(self, purpose: str, created: float) -> None:
        await self._run(
            lambda c: c.execute("DELETE FROM store_keys WHERE purpose=$1 AND created=$2", purpose, created)
        )

    # -- rate limits --------------------------------------------------------------------------------

    async def rate_take(self, bucket: str, calls: int, window: float, now: float) -> float:
        async def attempt(conn: Any) -> float:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "rate:" + bucket)
            until = await conn.fetchval("SELECT until FROM rate_pauses WHERE bucket=$1", bucket)
            if until is not None and until > now:
                return float(until - now)
            await conn.execute("DELETE FROM rate_events WHERE bucket=$1 AND at<=$2", bucket, now - window)
            row = await conn.fetchrow(
                "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM rate_events WHERE bucket=$1", bucket
            )
            if row["n"] < calls:
                await conn.execute("INSERT INTO rate_events (bucket, at) VALUES ($1, $2)", bucket, now)
                return 0.0
            return max(0.001, float(row["oldest"] + window - now))

        return await self._transaction(attempt)

    async def rate_pause(self, bucket: str, until: float) -> None:
        await self._keep_later("rate_pauses", "bucket", "until", bucket, until)

    # -- token caches -------------------------------------------------------------------------------

    async def token_delete(self, person: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM token_caches WHERE person=$1", person))

    async def _token_get_sealed(self, person: str) -> bytes | None:
        value = await self._run(
            lambda c: c.fetchval("SELECT sealed FROM token_caches WHERE person=$1", person)
        )
        return bytes(value) if value is not None else None

    async def _token_put_sealed(self, person: str, sealed: bytes, now: float) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO token_caches (person, sealed, updated) VALUES ($1,$2,$3) ON CONFLICT (person) "
                "DO UPDATE SET sealed=excluded.sealed, updated=excluded.updated",
                person,
                sealed,
                now,
            )
        )

    # -- OAuth broker state -------------------------------------------------------------------------

    async def broker_drop(
        self, kind: str, *, client_id: str | None = None, subject: str | None = None
    ) -> int:
        if client_id is None and subject is None:
            raise ValueError("broker_drop needs a client_id or a subject")
        done = await self._run(
            lambda c: c.execute(
                "DELETE FROM broker WHERE kind=$1 AND ($2::text IS NULL OR client_id=$2) "
                "AND ($3::text IS NULL OR subject=$3)",
                kind,
                client_id,
                subject,
            )
        )
        return _count(done)

    async def broker_purge(self, now: float) -> int:
        done = await self._run(
            lambda c: c.execute("DELETE FROM broker WHERE expires <= $1 OR taken IS NOT NULL", now)
        )
        return _count(done)

    async def broker_count(self, kind: str, now: float) -> int:
        return int(
            await self._run(
                lambda c: c.fetchval(
                    "SELECT COUNT(*) FROM broker WHERE kind=$1 AND taken IS NULL "
                    "AND (expires IS NULL OR expires > $2)",
                    kind,
                    now,
                )
            )
        )

    async def broker_evict(self, kind: str, keep: int, now: float) -> int:
        done = await self._run(
            lambda c: c.execute(
                "DELETE FROM broker WHERE kind=$1 AND (expires <= $2 OR taken IS NOT NULL OR key IN ("
                "SELECT key FROM broker WHERE kind=$1 AND taken IS NULL AND (expires IS NULL OR expires > $2) "
                "ORDER BY expires DESC NULLS FIRST OFFSET $3))",
                kind,
                now,
                max(0, keep),
            )
        )
        return _count(done)

    async def _broker_list_sealed(
        self, kind: str, now: float, client_id: str | None, subject: str | None
    ) -> list[tuple[str, bytes]]:
        if client_id is None and subject is None:
            raise ValueError("broker_list needs a client_id or a subject")
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT key, sealed FROM broker WHERE kind=$1 AND ($2::text IS NULL OR client_id=$2) "
                "AND ($3::text IS NULL OR subject=$3) AND taken IS NULL AND (expires IS NULL OR expires > $4) "
                "ORDER BY expires DESC NULLS FIRST LIMIT $5",
                kind,
                client_id,
                subject,
                now,
                BROKER_LIST_LIMIT,
            )
        )
        return [(str(r["key"]), bytes(r["sealed"])) for r in rows]

    async def _broker_put_sealed(self, entry: BrokerEntry) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO broker (kind, key, sealed, expires, client_id, subject) VALUES ($1,$2,$3,$4,$5,$6) "
                "ON CONFLICT (kind, key) DO UPDATE SET sealed=excluded.sealed, expires=excluded.expires, "
                "client_id=excluded.client_id, subject=excluded.subject, taken=NULL",
                *entry,
            )
        )

    async def _broker_get_sealed(self, kind: str, digest: str, now: float) -> bytes | None:
        value = await self._run(
            lambda c: c.fetchval(
                "SELECT sealed FROM broker WHERE kind=$1 AND key=$2 AND taken IS NULL "
                "AND (expires IS NULL OR expires > $3)",
                kind,
                digest,
                now,
            )
        )
        return bytes(value) if value is not None else None

    async def _broker_take_sealed(self, kind: str, digest: str, now: float) -> bytes | None:
        # one conditional UPDATE: of racing replicas exactly one marks it; marking rather than
        # deleting lets a retry of this same attempt (the commit's answer lost in a restart) still
        # win instead of losing the code; broker_purge deletes taken rows
        attempt = secrets.token_hex(8)
        value = await self._run(
            lambda c: c.fetchval(
                "UPDATE broker SET taken=$3 WHERE kind=$1 AND key=$2 AND (taken IS NULL OR taken=$3) "
                "AND (expires IS NULL OR expires > $4) RETURNING sealed",
                kind,
                digest,
                attempt,
                now,
            )
        )
        return bytes(value) if value is not None else None

    # -- private ------------------------------------------------------------------------------------

    @staticmethod
    def _mark(n: int) -> str:
        return f"${n}"

    async def _select(self, sql: str, *args: Any) -> list[Row]:
        rows = await self._run(lambda c: c.fetch(sql, *args))
        return [_row_dict(r) for r in rows]

    async def _row(self, sql: str, *args: Any) -> Row | None:
        row = await self._run(lambda c: c.fetchrow(sql, *args))
        return _row_dict(row) if row is not None else None

    async def _keep_later(self, table: str, key_column: str, column: str, key: str, at: float) -> None:
        """``at`` into ``table.column`` for ``key``, never moving it back (a lease renewed, a pause
        set, late by a slow replica)."""
        await self._run(
            lambda c: c.execute(
                f"INSERT INTO {table} ({key_column}, {column}) VALUES ($1, $2) ON CONFLICT ({key_column}) "
                f"DO UPDATE SET {column}=GREATEST({table}.{column}, excluded.{column})",
                key,
                at,
            )
        )

    async def _transaction(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op`` in one transaction on a pooled connection, the whole transaction retried as
        :meth:`_run` retries."""

        async def attempt(conn: Any) -> T:
            async with conn.transaction():
                return await op(conn)

        return await self._run(attempt)

    async def _run(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``op`` on a pooled connection, again on a fresh one while the database is unreachable
        (a restart), for up to ``retry_seconds``; then :class:`StoreUnavailable`.

        A restart also leaves idle pooled connections broken in ways asyncpg reports variously (a
        reset socket, "another operation is in progress"); such a connection is terminated, so the
        pool replaces it instead of handing it out again.
        """
        if self._pool is None:
            await self.start()
        lost = _lost_connection_errors()
        deadline = anyio.current_time() + self._retry_seconds
        delay = 0.05
        while True:
            try:
                async with self._pool.acquire() as conn:
                    try:
                        return await op(conn)
                    except lost:
                        conn.terminate()
                        raise
            except lost as exc:
                if anyio.current_time() >= deadline:
                    log.warning("the PostgreSQL store is unreachable (%s); giving up", type(exc).__name__)
                    raise StoreUnavailable(
                        f"The server's PostgreSQL store stayed unreachable for {self._retry_seconds:g} s."
                    ) from None
                log.info("the PostgreSQL store connection was lost (%s); retrying", type(exc).__name__)
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)


@functools.cache
def _lost_connection_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the connection (not the statement) failed: retrying on another is safe."""
    import asyncpg

    return (
        OSError,
        asyncpg.PostgresConnectionError,  # incl. ConnectionDoesNotExist, ConnectionFailure
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
        asyncpg.InternalClientError,  # a protocol state left behind by a connection cut mid-way
    )


async def _insert_batch(conn: Any, values: Mapping[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO batches (batch_id, actor_id, created_at, mode, undo_of, change_ids)"
        " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (batch_id) DO NOTHING",
        values["batch_id"],
        values["actor_id"],
        values["created_at"],
        values["mode"],
        values.get("undo_of"),
        [int(i) for i in values.get("change_ids") or ()],
    )


def _count(status: Any) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(str(status).rsplit(" ", 1)[-1] or 0)


def _row_dict(row: Any) -> Row:
    """A row as a dict, without the retry nonce journal rows carry (the store's own)."""
    data = dict(row)
    data.pop("nonce", None)
    return data
