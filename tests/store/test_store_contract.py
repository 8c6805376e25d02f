"""The storage contract, run over SQLite and over PostgreSQL alike (``new_store``: two calls give two
replicas, or a restart, over one database): journal, exclusive creates, orphans in doubt and their
settlement, rate-limit windows shared by replicas, sealed token caches, migrations, batches and feed
snapshots shared by replicas, and the process leases that settle a dead replica's writes from any host."""

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
from tests.store.rows import intent as _intent

pytestmark = pytest.mark.anyio

ADA = identity.Principal(id="oid-ada", name="ada@partner.example")
BOB = identity.Principal(id="oid-bob", name="bob@partner.example")


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


# --- batches, feed snapshots, one-time imports ----------------------------------------------------------


def _batch(batch_id: str = "b-1", actor: str = ADA.id, **kw: Any) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "actor_id": actor,
        "created_at": "2026-11-02T09:00:00.000Z",
        "mode": "update",
    } | kw


async def test_batches_are_shared_by_replicas_and_kept_per_person(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.batch_insert(_batch(undo_of="b-0"))
    await one.batch_insert(_batch(mode="import"))  # inserting it again (a retry) changes nothing
    assert await one.batch_add_change("b-1", 7)
    assert await two.batch_add_change("b-1", 9)  # another replica appends to the same batch
    assert await two.batch_add_change("b-1", 7)  # a retried append is not added twice
    assert not await two.batch_add_change("b-unknown", 3)
    got = await two.batch_get("b-1", actor_id=ADA.id)
    assert got is not None and got["change_ids"] == [7, 9]
    assert (got["mode"], got["undo_of"], got["created_at"]) == ("update", "b-0", "2026-11-02T09:00:00.000Z")
    assert await two.batch_get("b-1", actor_id=BOB.id) is None  # bob does not see ada's batch
    assert await one.batch_get("b-unknown", actor_id=ADA.id) is None
    await one.close()
    await two.close()


async def test_replicas_appending_to_one_batch_at_once_lose_no_change(new_store: Any) -> None:
    """Four replicas (each its own store, connection and thread) append 50 change ids each to one
    batch, interleaved: every id is there once, each replica's in the order it appended them."""
    from concurrent.futures import ThreadPoolExecutor

    first = new_store()
    await first.batch_insert(_batch("b-race"))

    def replica(ids: list[int]) -> None:
        async def append() -> None:
            store = new_store()
            try:
                for change_id in ids:
                    assert await store.batch_add_change("b-race", change_id)
            finally:
                await store.close()

        anyio.run(append)

    shares = [list(range(k, 200, 4)) for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(replica, share) for share in shares]
        await anyio.to_thread.run_sync(lambda: [f.result() for f in futures])
    got = await first.batch_get("b-race", actor_id=ADA.id)
    assert got is not None and sorted(got["change_ids"]) == list(range(200))
    for share in shares:
        assert [i for i in got["change_ids"] if i in share] == share
    await first.close()


async def test_feed_snapshots_are_shared_by_replicas_and_kept_per_person(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.snapshots_put(ADA.id, "2026-11-02T09:00:00Z", [("r-1", "u1", '{"a": 1}'), ("r-2", None, "{}")])
    await two.snapshots_put(ADA.id, "2026-11-03T09:00:00Z", [("r-1", "u2", '{"a": 2}')])  # newer replaces
    await one.snapshots_put(BOB.id, "2026-11-03T09:00:00Z", [])
    got = {r["referral_id"]: r for r in await one.snapshots_get(ADA.id, ["r-1", "r-2", "r-3"])}
    assert set(got) == {"r-1", "r-2"}
    assert (got["r-1"]["fields"], got["r-1"]["updated"], got["r-1"]["seen_at"]) == (
        '{"a": 2}',
        "u2",
        "2026-11-03T09:00:00Z",
    )
    assert got["r-2"]["updated"] is None
    assert await two.snapshots_get(BOB.id, ["r-1"]) == []  # bob has seen nothing
    assert await two.snapshots_get(ADA.id, []) == []
    many = [f"r-{i}" for i in range(1200)]  # more ids than one statement binds on SQLite
    await two.snapshots_put(ADA.id, "2026-11-04T09:00:00Z", [(rid, None, "{}") for rid in many])
    assert len(await one.snapshots_get(ADA.id, many)) == 1200
    await one.close()
    await two.close()


async def test_an_import_runs_once_across_replicas_and_keeps_what_the_store_has(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.snapshots_put(ADA.id, "2026-11-09T00:00:00Z", [("r-1", "new", '{"kept": true}')])
    await one.batch_insert(_batch("b-kept"))
    batches = [_batch("b-old", change_ids=[3, 4]), _batch("b-kept", mode="import", change_ids=[1])]
    snapshots = [
        {
            "actor_id": ADA.id,
            "referral_id": r,
            "seen_at": "2026-11-01T00:00:00Z",
            "updated": "old",
            "fields": "{}",
        }
        for r in ("r-1", "r-2")
    ]
    assert await one.import_once("pipeline.sqlite3:/x", "now", batches=batches, snapshots=snapshots)
    assert not await two.import_once("pipeline.sqlite3:/x", "now", batches=[_batch("b-again")], snapshots=[])
    old = await two.batch_get("b-old", actor_id=ADA.id)
    assert old is not None and old["change_ids"] == [3, 4]
    kept = await two.batch_get("b-kept", actor_id=ADA.id)
    assert kept is not None and kept["mode"] == "update" and kept["change_ids"] == []
    assert await two.batch_get("b-again", actor_id=ADA.id) is None  # the second import did nothing
    assert await two.batch_add_change("b-old", 5)  # an imported batch takes new changes
    rows = {r["referral_id"]: r["updated"] for r in await two.snapshots_get(ADA.id, ["r-1", "r-2"])}
    assert rows == {"r-1": "new", "r-2": "old"}
    await one.close()
    await two.close()


async def test_a_batch_made_through_one_replica_is_found_through_another(new_store: Any) -> None:
    from pcref_mcp.writes.pipeline_store import PipelineStore

    one, two = new_store(), new_store()
    with identity.acting_as(ADA):
        batch_id = await PipelineStore(one).new_batch("update")
        await PipelineStore(one).add_change(batch_id, 11)
        await PipelineStore(two).add_change(batch_id, 12)
        await PipelineStore(one).remember([("r-1", "u", {"/status": "Active"})])
        batch = await PipelineStore(two).batch(f" {batch_id} ")
        assert batch is not None and batch.change_ids == [11, 12] and batch.mode == "update"
        assert await PipelineStore(two).snapshots(["r-1", "r-2"]) == {"r-1": {"/status": "Active"}}
    with identity.acting_as(BOB):
        assert await PipelineStore(two).batch(batch_id) is None
        assert await PipelineStore(two).snapshots(["r-1"]) == {}
    await one.close()
    await two.close()


# --- process leases: pending writes of a dead replica on another host ------------------------------------


async def test_leases_are_renewed_read_by_any_replica_and_purged(new_store: Any) -> None:
    one, two = new_store(), new_store()
    await one.lease_renew("host-a|1|b|1|i1", 1000.0)
    await two.lease_renew("host-a|1|b|1|i1", 990.0)  # a late, older renewal does not move it back
    await two.lease_renew("host-b|2|b|1|i2", 500.0)
    assert await two.leases(["host-a|1|b|1|i1", "host-b|2|b|1|i2", "host-c|3|b|1|i3"]) == {
        "host-a|1|b|1|i1": 1000.0,
        "host-b|2|b|1|i2": 500.0,
    }
    assert await one.leases([]) == {}
    assert await one.lease_purge(600.0) == 1
    assert await two.leases(["host-a|1|b|1|i1", "host-b|2|b|1|i2"]) == {"host-a|1|b|1|i1": 1000.0}
    await one.close()
    await two.close()


def _elsewhere(instance: str) -> str:
    """A journal owner on another host (a replica this process cannot ask by PID)."""
    return "|".join(("replica-on-another-host", "4242", "other-boot", "77", instance))


async def test_another_hosts_write_turns_in_doubt_once_its_lease_expires(new_store: Any) -> None:
    import time

    store = new_store()
    writer = Journal(store)
    expired, fresh, never = [await writer.record_intent(**_intent(referral_id=f"r-{i}")) for i in range(3)]
    await _set_owner(store, expired, _elsewhere("dead0000dead0000"))
    await _set_owner(store, fresh, _elsewhere("live0000live0000"))
    await _set_owner(store, never, _elsewhere("noleasenolease00"))  # e.g. a replica from before leases
    await store.lease_renew(_elsewhere("dead0000dead0000"), time.time() - 61)
    await store.lease_renew(_elsewhere("live0000live0000"), time.time() - 5)
    other = new_store()
    looker = Journal(other)  # a replica on this host looks (on any call)
    got = {e.id: e for e in await looker.recent(10, any_actor=True)}
    assert got[expired].status == "in_doubt" and "stopped" in (got[expired].error or "")
    assert got[fresh].status == "pending"  # its replica is alive: still sending
    assert got[never].status == "pending"  # no lease, but it started just now
    await _set_started(store, never, "2026-01-01T00:00:00.000Z")
    again = Journal(other)  # the next look (a fresh journal: no wait for the next round)
    got = {e.id: e for e in await again.recent(10, any_actor=True)}
    assert got[never].status == "in_doubt" and got[fresh].status == "pending"
    # marking is conditional: a settled entry is not turned in doubt again by a late look
    assert await again.settle(expired, "failed", "the ETag is unchanged")
    await other.journal_mark_in_doubt([expired, fresh], "late")
    after = await again.get(expired, any_actor=True)
    assert after is not None and after.status == "failed"
    await store.close()
    await other.close()


async def test_a_journal_renews_its_lease_on_use_and_in_the_background(new_store: Any) -> None:
    import time

    from pcref_mcp.writes import journal as journal_module

    store = new_store()
    journal = Journal(store, lease_seconds=0.6)  # renewed every 0.1 s
    owner = journal_module._owner_of_this_process()
    await journal.record_intent(**_intent())
    assert owner in await store.leases([owner])  # a write is never pending without its lease
    dead = await journal.record_intent(**_intent(referral_id="r-2"))
    await _set_owner(store, dead, _elsewhere("gone0000gone0000"))
    await store.lease_renew(_elsewhere("gone0000gone0000"), time.time() - 10)
    watcher = Journal(store, lease_seconds=0.6)
    before = (await store.leases([owner]))[owner]
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.keep_lease)  # an idle replica: no call, and it still settles
            while (await store.journal_get(dead, actor_id=None) or {}).get("status") != "in_doubt":
                await anyio.sleep(0.05)
            while (await store.leases([owner]))[owner] <= before:
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    await store.close()


async def _set_started(store: Any, entry: int, started: str) -> None:
    if store.dialect == "sqlite":
        with store._lock:
            store._db.execute("UPDATE writes SET started_at=? WHERE id=?", (started, entry))
    else:
        await store._run(lambda c: c.execute("UPDATE writes SET started_at=$1 WHERE id=$2", started, entry))


async def test_a_replica_whose_clock_is_behind_keeps_its_lease(new_store: Any, monkeypatch: Any) -> None:
    """Leases are stamped and compared by the store's clock: a replica on a host five minutes behind
    does not look dead to its siblings while it is still sending."""
    import time
    from types import SimpleNamespace

    from pcref_mcp.writes import journal as journal_module

    store = new_store()
    skewed = Journal(store)
    monkeypatch.setattr(skewed, "_owner", _elsewhere("skew0000skew0000"))  # a replica on another host
    monkeypatch.setattr(
        journal_module, "time", SimpleNamespace(time=lambda: time.time() - 300, monotonic=time.monotonic)
    )
    entry = await skewed.record_intent(**_intent())  # renews its lease first, then writes
    monkeypatch.undo()
    looker = Journal(new_store())
    found = await looker.get(entry, any_actor=True)
    assert found is not None and found.status == "pending"
    await looker.store.close()
    await store.close()


async def test_who_was_seen_last_and_a_new_token_is_new_on_exactly_one_replica(new_store: Any) -> None:
    """``seen_touch``: last seen only moves forward, names are kept when not given again, and of
    many replicas touching with the same new token at once exactly one learns it is new."""
    one, two = new_store(), new_store()
    assert await one.seen_touch("oid-ada", "", name="ada@x", client_name=None, now=100.0) is False  # no token
    assert await two.seen_touch("oid-ada", "", name=None, client_name=None, now=50.0) is False  # older
    assert await one.seen_touch("oid-ada", "c-1", name="ada@x", client_name="VS Code", now=90.0, issued=80.0)
    assert not await two.seen_touch("oid-ada", "c-1", name=None, client_name=None, now=95.0, issued=80.0)
    assert not await two.seen_touch("oid-ada", "c-1", name=None, client_name=None, now=96.0, issued=70.0)
    await one.seen_touch("oid-bob", "", name="bob@x", client_name=None, now=120.0)
    rows = await two.seen_list()
    assert [(r["person"], r["client_id"], r["name"], r["client_name"], r["last_seen"]) for r in rows] == [
        ("oid-bob", "", "bob@x", None, 120.0),
        ("oid-ada", "", "ada@x", None, 100.0),
        ("oid-ada", "c-1", "ada@x", "VS Code", 96.0),
    ]
    news: list[bool] = []

    async def touch(store: Any, issued: float) -> None:
        news.append(
            await store.seen_touch("oid-cy", "c-2", name=None, client_name=None, now=issued, issued=issued)
        )

    for issued in (200.0, 300.0):  # the first token of a person anywhere, then a newer one
        async with anyio.create_task_group() as tasks:
            for store in (one, two) * 4:
                tasks.start_soon(touch, store, issued)
    assert news.count(True) == 2, news
    await one.close()
    await two.close()


async def test_an_approval_is_redeemed_in_one_round_trip_once_and_only_for_its_claims(new_store: Any) -> None:
    """approval_redeem: the checks and the spend as one conditional update; a refusal changes nothing."""
    one, two = new_store(), new_store()  # two replicas
    claims = {"owner": "ada", "tool": "update_field", "plan": "p1", "etag": "e1"}
    await one.approval_insert(
        {
            **claims,
            "id": "a1",
            "ref": None,
            "channel": "token",
            "fallback": False,
            "snapshot": "{}",
            "issued": 100.0,
            "expires": 200.0,
        }
    )
    for other in ({"owner": "bob"}, {"tool": "register_deal"}, {"plan": "p2"}, {"etag": "e2"}):
        assert await two.approval_redeem("a1", {**claims, **other}, 150.0) is None
    assert await one.approval_redeem("a1", claims, 200.5) is None  # expired
    assert await one.approval_redeem("nope", claims, 150.0) is None
    row = await two.approval_get("a1")
    assert row is not None and row["spent"] is None  # every refusal left it unspent

    won = await two.approval_redeem("a1", claims, 150.0)
    assert won is not None and won["spent"] == 150.0 and won["plan"] == "p1" and won["fallback"] is False
    assert "spent_by" not in won
    assert await one.approval_redeem("a1", claims, 151.0) is None  # once, whichever replica asks
    await one.close()
    await two.close()
