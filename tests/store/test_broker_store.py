"""The OAuth broker's state in the store, over SQLite and PostgreSQL alike (``new_store``: two calls
give two replicas over one database): one-time takes with exactly one winner across replicas, expiry
enforced by the query, revocation by client and by person, keys digested and values sealed at rest."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pcref_mcp.store.base import BrokerEntry, broker_digest

pytestmark = pytest.mark.anyio

NOW = 1_900_000_000.0
UPSTREAM = b'{"upstream": "entra-refresh-token-of-ada"}'


async def _raw_rows(store: Any) -> list[dict[str, Any]]:
    """The broker table as it lies on disk."""
    if store.dialect == "sqlite":
        with store._lock:
            rows = store._db.execute("SELECT * FROM broker").fetchall()
        return [dict(r) for r in rows]
    rows = await store._run(lambda c: c.fetch("SELECT * FROM broker"))
    return [dict(r) for r in rows]


async def test_a_value_put_on_one_replica_is_read_on_another(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.broker_put("client", "client-1", b'{"client_name": "x"}', expires=None)
    assert await two.broker_get("client", "client-1", NOW) == b'{"client_name": "x"}'
    assert await two.broker_get("client", "client-2", NOW) is None
    assert await two.broker_get("pending", "client-1", NOW) is None  # kinds are apart
    await one.broker_put("client", "client-1", b"replaced", expires=None)
    assert await two.broker_get("client", "client-1", NOW) == b"replaced"
    assert await two.broker_count("client", NOW) == 1
    await one.close()
    await two.close()


async def test_a_take_is_won_by_exactly_one_of_two_racing_replicas(new_store: Any) -> None:
    one, two = new_store(), new_store()
    for round_ in range(20):
        await one.broker_put("code", f"code-{round_}", b"issued", expires=NOW + 300)
    won: list[tuple[int, str]] = []

    async def race(store: Any, name: str, round_: int) -> None:
        if await store.broker_take("code", f"code-{round_}", NOW) is not None:
            won.append((round_, name))

    async with anyio.create_task_group() as tg:
        for round_ in range(20):
            tg.start_soon(race, one, "one", round_)
            tg.start_soon(race, two, "two", round_)
    assert sorted(r for r, _ in won) == list(range(20))  # every code taken, each exactly once
    assert await one.broker_get("code", "code-0", NOW) is None
    assert await two.broker_take("code", "code-0", NOW) is None
    assert await two.broker_count("code", NOW) == 0
    await one.close()
    await two.close()


async def test_expiry_is_enforced_by_the_query_and_purged(new_store: Any) -> None:
    store = new_store()
    await store.broker_put("pending", "state-old", b"a", expires=NOW + 10)
    await store.broker_put("pending", "state-new", b"b", expires=NOW + 600)
    await store.broker_put("client", "forever", b"c", expires=None)
    assert await store.broker_get("pending", "state-old", NOW) == b"a"
    later = NOW + 11
    assert await store.broker_get("pending", "state-old", later) is None
    assert await store.broker_take("pending", "state-old", later) is None  # an expired take wins nothing
    assert await store.broker_count("pending", later) == 1
    assert await store.broker_take("pending", "state-new", later) == b"b"
    await store.broker_put("code", "code-1", b"d", expires=NOW + 5)
    await store.broker_purge(later)
    assert {r["kind"] for r in await _raw_rows(store)} == {"client"}  # expired and taken rows are gone
    assert await store.broker_get("client", "forever", NOW + 10**8) == b"c"
    await store.close()


async def test_revocation_drops_by_client_and_by_person(new_store: Any) -> None:
    one, two = new_store(), new_store()
    for handle, client, person in [
        ("h1", "c1", "ada"),
        ("h2", "c1", "ada"),
        ("h3", "c1", "bob"),
        ("h4", "c2", "ada"),
    ]:
        await one.broker_put("refresh", handle, b"x", expires=NOW + 100, client_id=client, subject=person)
    await one.broker_put("code", "k1", b"x", expires=NOW + 100, client_id="c1", subject="ada")
    assert await two.broker_drop("refresh", client_id="c1", subject="ada") == 2
    assert [await two.broker_get("refresh", h, NOW) for h in ("h1", "h2", "h3", "h4")] == [
        None,
        None,
        b"x",
        b"x",
    ]
    assert await one.broker_get("code", "k1", NOW) == b"x"  # another kind is untouched
    assert await two.broker_drop("refresh", subject="ada") == 1
    assert await two.broker_drop("refresh", client_id="c1") == 1
    assert await one.broker_count("refresh", NOW) == 0
    with pytest.raises(ValueError, match="client_id or a subject"):
        await one.broker_drop("refresh")  # never "everything" by omission
    await one.close()
    await two.close()


async def test_keys_are_digested_and_values_sealed_at_rest(new_store: Any) -> None:
    store = new_store()
    await store.broker_put(
        "refresh", "handle-of-ada", UPSTREAM, expires=NOW + 100, client_id="c1", subject="ada"
    )
    (row,) = await _raw_rows(store)
    assert row["key"] == broker_digest("handle-of-ada") and "handle-of-ada" not in repr(row)
    assert b"entra-refresh-token-of-ada" not in bytes(row["sealed"])
    assert (row["client_id"], row["subject"]) == ("c1", "ada")
    # a sealed value copied under another key does not open: it reads as absent, not as that value
    await store._broker_put_sealed(
        BrokerEntry("refresh", broker_digest("handle-of-eve"), bytes(row["sealed"]), NOW + 100, "c1", "eve")
    )
    assert await store.broker_get("refresh", "handle-of-eve", NOW) is None
    assert await store.broker_take("refresh", "handle-of-eve", NOW) is None
    assert await store.broker_get("refresh", "handle-of-ada", NOW) == UPSTREAM
    await store.close()


async def test_a_postgres_take_retried_after_a_lost_answer_still_wins(postgres_url: str) -> None:
    """The take committed but its answer was lost (the connection died): the store's retry of the
    same attempt gets the value instead of losing the code; any other caller still gets nothing."""
    from contextlib import asynccontextmanager

    from pcref_mcp.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, secret=b"k" * 32, retry_seconds=5.0)
    await store.broker_put("code", "code-1", b"issued", expires=NOW + 300)
    pool, lost = store._pool, []

    class LosesTheFirstAnswer:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        async def fetchval(self, *args: Any) -> Any:
            value = await self.conn.fetchval(*args)  # committed...
            if not lost:
                lost.append(value)
                raise ConnectionResetError("connection lost")  # ...but the answer never arrives
            return value

        def terminate(self) -> None:  # the store drops a connection it lost
            self.conn.terminate()

    class Pool:
        @asynccontextmanager
        async def acquire(self) -> Any:
            async with pool.acquire() as conn:
                yield LosesTheFirstAnswer(conn)

    store._pool = Pool()
    assert await store.broker_take("code", "code-1", NOW) == b"issued"
    assert lost  # the first answer was indeed lost, and the retry still won
    store._pool = pool
    assert await store.broker_take("code", "code-1", NOW) is None  # a different take: already taken
    await store.close()


async def test_evicting_keeps_the_newest_entries_of_a_kind_and_no_other_kind(new_store: Any) -> None:
    one, two = new_store(), new_store()
    for i in range(10):  # each a second later than the one before: 0 is the oldest
        await one.broker_put("client-new", f"junk-{i}", b"junk", expires=NOW + 3600 + i)
    await one.broker_put("client-new", "gone-by", b"expired", expires=NOW - 1)
    await one.broker_put("client", "in-use", b"kept", expires=NOW + 10)  # another kind: untouched
    assert await two.broker_evict("client-new", 3, NOW) == 8  # 7 oldest + the expired one
    assert await one.broker_count("client-new", NOW) == 3
    assert [await one.broker_get("client-new", f"junk-{i}", NOW) for i in (6, 7, 8, 9)] == [
        None,
        b"junk",
        b"junk",
        b"junk",
    ]
    assert await one.broker_get("client", "in-use", NOW) == b"kept"
    assert await two.broker_evict("client-new", 3, NOW) == 0  # at the bound: nothing more goes
    assert await one.broker_evict("client-new", 0, NOW) == 3
    assert await one.broker_count("client-new", NOW) == 0
    await one.close()
    await two.close()


async def test_listing_finds_a_persons_entries_on_any_replica(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.broker_put("consent", "ada|c1", b"c1", expires=None, client_id="c1", subject="ada")
    await one.broker_put("consent", "ada|c2", b"c2", expires=NOW + 60, client_id="c2", subject="ada")
    await one.broker_put("consent", "ada|c3", b"c3", expires=NOW - 60, client_id="c3", subject="ada")
    await one.broker_put("consent", "bob|c1", b"bob", expires=None, client_id="c1", subject="bob")
    await one.broker_put("refresh", "h", b"other kind", expires=None, client_id="c1", subject="ada")
    assert sorted(await two.broker_list("consent", NOW, subject="ada")) == [b"c1", b"c2"]
    assert await two.broker_list("consent", NOW, subject="ada", client_id="c2") == [b"c2"]
    assert await two.broker_list("consent", NOW, subject="eve") == []
    await one.broker_take("consent", "ada|c1", NOW)  # taken: not listed
    assert await two.broker_list("consent", NOW, subject="ada") == [b"c2"]
    with pytest.raises(ValueError):
        await two.broker_list("consent", NOW)
    await one.close()
    await two.close()
