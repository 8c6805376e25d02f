"""The storage contract, run over SQLite and over PostgreSQL alike (``new_store``: two calls give two
replicas, or a restart, over one database): journal, exclusive creates, orphans in doubt and their
settlement, rate-limit windows shared by replicas, sealed token caches, migrations."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from pcref_mcp import identity
from pcref_mcp.errors import ConfigError, InvalidInput
from pcref_mcp.store import open_store, sqlite_url
from pcref_mcp.store.migrations import POSTGRES, SQLITE, latest
from pcref_mcp.store.sealing import Sealer
from pcref_mcp.writes.journal import Journal

pytestmark = pytest.mark.anyio

ADA = identity.Principal(id="oid-ada", name="ada@partner.example")
BOB = identity.Principal(id="oid-bob", name="bob@partner.example")


def _intent(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        tool="update_field",
        kind="update",
        referral_id="r-1",
        correlation_id="cid",
        operations=[{"op": "replace", "path": "/details/dealValue", "value": 2}],
        before_image={"/details/dealValue": 1},
        etag_before='"e1"',
    )
    args.update(kw)
    return args


async def test_migrations_run_once_and_reopening_keeps_the_data(new_store: Any) -> None:
    first = new_store()
    journal = Journal(first)
    entry = await journal.record_intent(**_intent())
    expected = latest(SQLITE if first.dialect == "sqlite" else POSTGRES)
    assert await first.schema_version() == expected
    await first.close()
    again = new_store()  # a restart (or a second replica starting): nothing migrates twice
    assert await again.schema_version() == expected
    got = await Journal(again).get(entry)
    assert got is not None and got.status == "pending" and got.operations[0]["value"] == 2
    await again.close()


async def test_journal_records_outcomes_undo_links_and_keeps_people_apart(new_store: Any) -> None:
    store = new_store()
    journal = Journal(store)
    with identity.acting_as(ADA):
        change = await journal.record_intent(**_intent())
        await journal.record_outcome(change, "applied", etag_after='"e2"')
        undo = await journal.record_intent(**_intent(kind="undo", undo_of=change, etag_before='"e2"'))
        await journal.record_outcome(undo, "applied", etag_after='"e3"')
        entry = await journal.get(change)
        assert entry is not None and entry.undone_by == undo and entry.etag_after == '"e2"'
        assert entry.actor_name == ADA.name
        assert [e.id for e in await journal.recent()] == [undo, change]
    with identity.acting_as(BOB):
        assert await journal.get(change) is None
        assert await journal.recent() == []
    assert {e.id for e in await journal.recent(any_actor=True)} == {change, undo}
    assert await journal.get(2**70) is None
    await store.close()


async def test_a_second_pending_create_is_refused_on_every_replica(new_store: Any) -> None:
    one, two = new_store(), new_store()
    a, b = Journal(one), Journal(two)
    create = _intent(kind="create", tool="create_referral", referral_id=None, external_ref="crm-1")
    first = await a.record_intent(**create, exclusive=True)
    with pytest.raises(InvalidInput, match="being created right now"):
        await b.record_intent(**create, exclusive=True)
    await a.record_outcome(first, "applied", referral_id="r-9")
    assert (await b.recent_create("crm-1", 60)) is not None  # landed: what stops a duplicate later
    second = await b.record_intent(**create, exclusive=True)  # settled: the next one may go
    assert second > first
    await one.close()
    await two.close()


async def test_pending_writes_of_a_dead_process_turn_in_doubt_and_are_settled(new_store: Any) -> None:
    store = new_store()
    journal = Journal(store)
    entry = await journal.record_intent(**_intent())
    dead = "|".join((socket.gethostname(), "999999999", "boot", "1", "feedfacefeedface"))
    await _set_owner(store, entry, dead)
    other = new_store()
    fresh = Journal(other)  # another process (a replica restarting) looks at pending rows first
    got = await fresh.get(entry)
    assert got is not None and got.status == "in_doubt" and "stopped" in (got.error or "")
    assert "ETag" in got.how_to_check()
    assert await fresh.settle(entry, "failed", "the ETag is unchanged: it did not land")
    assert not await fresh.settle(entry, "applied", "twice")  # settled once only
    settled = await fresh.get(entry)
    assert settled is not None and settled.status == "failed" and "did not land" in (settled.error or "")
    await store.close()
    await other.close()


async def test_a_live_process_keeps_its_entry_pending(new_store: Any) -> None:
    store = new_store()
    entry = await Journal(store).record_intent(**_intent())
    other = new_store()
    got = await Journal(other).get(entry)  # the writing process (this one) is alive
    assert got is not None and got.status == "pending"
    await store.close()
    await other.close()


async def test_rate_limit_windows_are_shared_by_replicas_and_kept_per_person(new_store: Any) -> None:
    one, two = new_store(), new_store()
    now = 1_800_000_000.0
    taken = [await (one if i % 2 else two).rate_take("pc:ada", 5, 60.0, now + i * 0.01) for i in range(5)]
    assert taken == [0.0] * 5
    wait = await one.rate_take("pc:ada", 5, 60.0, now + 1)
    assert 58.9 < wait <= 60.0  # the sixth call in the window waits for the first to age out
    assert await two.rate_take("pc:bob", 5, 60.0, now + 1) == 0.0  # bob has his own window
    assert await two.rate_take("pc:ada", 5, 60.0, now + 60.5) == 0.0  # the window moved on
    await one.rate_pause("pc:bob", now + 30)  # Retry-After seen by one replica holds the other
    assert 28.9 < await two.rate_take("pc:bob", 5, 60.0, now + 1) <= 29.0
    await one.close()
    await two.close()


async def test_replicas_racing_for_one_window_never_exceed_it(new_store: Any) -> None:
    replicas = [new_store() for _ in range(4)]
    now = 1_800_000_000.0
    granted: list[float] = []

    async def take(store: Any) -> None:
        for _ in range(10):
            if await store.rate_take("pc:race", 17, 60.0, now) == 0.0:
                granted.append(now)

    async with anyio.create_task_group() as tg:
        for store in replicas:
            tg.start_soon(take, store)
    assert len(granted) == 17
    for store in replicas:
        await store.close()


async def test_token_caches_are_sealed_per_person(new_store: Any) -> None:
    one, two = new_store(), new_store()
    cache = b'{"RefreshToken": {"k": {"secret": "refresh-token-of-ada"}}}'
    await one.token_put(ADA.id, cache)
    assert await two.token_get(ADA.id) == cache  # another replica opens it
    assert await two.token_get(BOB.id) is None
    sealed = await one._token_get_sealed(ADA.id)
    assert sealed is not None and b"refresh-token-of-ada" not in sealed
    await one._token_put_sealed(BOB.id, sealed, 0.0)  # ada's row copied to bob does not open
    with pytest.raises(ConfigError, match="does not open"):
        await two.token_get(BOB.id)
    await one.token_delete(ADA.id)
    assert await two.token_get(ADA.id) is None
    await one.close()
    await two.close()


def test_sealing_rotates_and_refuses_a_wrong_key() -> None:
    old, new = Sealer(b"old-key" * 5), Sealer(b"new-key" * 5, b"old-key" * 5)
    sealed = old.seal(b"secret", bound_to="p")
    assert new.open(sealed, bound_to="p") == b"secret"
    with pytest.raises(ConfigError):
        Sealer(b"other" * 8).open(sealed, bound_to="p")


async def test_a_postgres_store_survives_a_restart_of_the_database(
    postgres_cluster: Any, postgres_url: str
) -> None:
    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, secret=b"k" * 32, retry_seconds=30.0)
    journal = Journal(store)
    first = await journal.record_intent(**_intent())
    await anyio.to_thread.run_sync(postgres_cluster.restart)  # every pooled connection is cut
    second = await journal.record_intent(**_intent())  # a fresh connection, once the database is back
    await journal.record_outcome(first, "applied", etag_after='"e2"')
    assert second > first
    assert [e.id for e in await journal.recent()] == [second, first]
    await store.close()


def test_store_urls_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PCREF_STORE_KEY"):
        open_store("postgresql://pcref@127.0.0.1:1/x")
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store("mysql://x")
    store = open_store(sqlite_url(tmp_path / "s.sqlite3"))
    assert store.dialect == "sqlite" and (tmp_path / "s.sqlite3").exists()
    assert os.stat(tmp_path / "s.sqlite3").st_mode & 0o777 == 0o600


async def test_an_unreachable_postgres_is_a_clear_error() -> None:
    from deploy.postgres import free_port
    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(f"postgresql://pcref@127.0.0.1:{free_port()}/x", secret=b"k" * 32)
    with pytest.raises(ConfigError, match="Cannot reach the PostgreSQL store"):
        await store.start()


async def _set_owner(store: Any, entry: int, owner: str) -> None:
    if store.dialect == "sqlite":
        with store._lock:
            store._db.execute("UPDATE writes SET owner=? WHERE id=?", (owner, entry))
    else:
        await store._run(lambda c: c.execute("UPDATE writes SET owner=$1 WHERE id=$2", owner, entry))
