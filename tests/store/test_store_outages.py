"""When the store goes away under a running server (a PostgreSQL restart, a broken pooled connection):
retried where that is safe, a clear error where it is not, and an outcome that cannot be recorded
after a write was sent is kept and recorded later, never turned into an error for the person."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pcref_mcp.errors import StoreUnavailable
from pcref_mcp.store.sqlite import SqliteStore
from pcref_mcp.writes.journal import Journal
from tests.store.rows import intent as _intent

pytestmark = pytest.mark.anyio


async def test_a_connection_a_restart_left_broken_is_dropped_and_the_operation_retried(
    postgres_url: str,
) -> None:
    """asyncpg reports a connection cut while idle in the pool as an InternalClientError ("another
    operation is in progress") on its next use: that connection is terminated, the next one works."""
    from asyncpg.exceptions import _base

    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, secret=b"k" * 32, retry_seconds=10.0)
    await store.start()
    used: list[Any] = []

    async def op(conn: Any) -> int:
        used.append(conn.get_server_pid())
        if len(used) == 1:
            raise _base.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
        return int(await conn.fetchval("SELECT 7"))

    assert await store._run(op) == 7
    # the broken one was terminated, not handed out again (the pool holds one idle connection)
    assert len(used) == 2 and used[0] != used[1]
    await store.close()


async def test_a_store_that_stays_away_is_a_clear_error_not_a_crash(postgres_url: str) -> None:
    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, secret=b"k" * 32, retry_seconds=0.3)
    await store.start()
    tries = 0

    async def op(conn: Any) -> None:
        nonlocal tries
        tries += 1
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(StoreUnavailable) as caught:
        await store._run(op)
    assert tries >= 2
    assert "Nothing was sent" in str(caught.value) and "Connection reset" not in str(caught.value)
    # a statement error is not a lost connection: raised at once, not retried
    tries = 0

    async def bad(conn: Any) -> None:
        nonlocal tries
        tries += 1
        await conn.execute("SELECT * FROM no_such_table")

    import asyncpg

    with pytest.raises(asyncpg.UndefinedTableError):
        await store._run(bad)
    assert tries == 1
    await store.close()


async def test_a_database_restart_during_a_burst_of_journal_writes_loses_none(
    postgres_cluster: Any, postgres_url: str
) -> None:
    """Many writers with pooled connections in every state while the database restarts: each intent
    and each outcome lands exactly once (the CI fault run once caught an idle connection broken)."""
    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, secret=b"k" * 32, retry_seconds=30.0, pool_size=6)
    # connected and migrated first: the restart is to hit the writes (on a loaded machine a first
    # start, migrating a fresh database, outlasted the 0.1 s below and the restart cut it instead)
    await store.start()
    journal = Journal(store)
    ids: list[int] = []

    async def writer() -> None:
        for _ in range(15):
            entry = await journal.record_intent(**_intent())
            await journal.record_outcome(entry, "applied", etag_after='"e2"')
            ids.append(entry)
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(writer)
        await anyio.sleep(0.1)
        await anyio.to_thread.run_sync(postgres_cluster.restart)
    entries = await journal.recent(1000, any_actor=True)
    assert len(ids) == len(set(ids)) == 90
    assert sorted(e.id for e in entries) == sorted(ids)
    assert {e.status for e in entries} == {"applied"}
    await store.close()


async def test_an_outcome_the_store_cannot_take_is_kept_and_recorded_on_next_use(tmp_path: Any) -> None:
    store = SqliteStore(tmp_path / "j.sqlite3")
    journal = Journal(store)
    entry = await journal.record_intent(**_intent())
    real_finish = store.journal_finish

    async def away(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("The store is away.")

    store.journal_finish = away  # type: ignore[method-assign]
    await journal.record_outcome(entry, "applied", etag_after='"e2"')  # the write happened: no error
    with pytest.raises(StoreUnavailable):  # still away: the next use says so, and keeps the outcome
        await journal.recent(10)
    store.journal_finish = real_finish  # type: ignore[method-assign]
    [found] = await journal.recent(10)  # back: recorded before anything else is read
    assert (found.id, found.status, found.etag_after) == (entry, "applied", '"e2"')
    # another process over the same store sees it too, and never took the entry for an orphan
    [seen] = await Journal(SqliteStore(tmp_path / "j.sqlite3")).recent(10)
    assert seen.status == "applied"
