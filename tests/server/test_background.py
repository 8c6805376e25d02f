"""A server with a configured store (a team server's replica) works while idle: it keeps its journal
lease, and turns in doubt the writes a replica on another host left pending when it died, without
waiting for a call."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.server.app import build_server
from pcref_mcp.store import open_store, sqlite_url
from pcref_mcp.writes import journal as journal_module
from pcref_mcp.writes.journal import Journal

pytestmark = pytest.mark.anyio

DEAD = "|".join(("replica-on-another-host", "4242", "other-boot", "77", "dead0000dead0000"))


async def test_an_idle_server_keeps_its_lease_and_settles_a_dead_replicas_writes(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "store.sqlite3")
    store = open_store(url)
    entry = await Journal(store).record_intent(
        tool="update_field",
        kind="update",
        referral_id="r-1",
        correlation_id="c",
        operations=[],
        before_image={},
        etag_before='"e1"',
    )
    store._db.execute("UPDATE writes SET owner=? WHERE id=?", (DEAD, entry))  # type: ignore[attr-defined]
    owner = journal_module._owner_of_this_process()
    await store.lease_purge(time.time() + 1)  # no lease of this process yet
    await store.lease_renew(DEAD, time.time() - 3600)
    settings = Settings(
        store_url=url, journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "s.db"
    )

    async with Client(build_server(settings)):  # the server's lifespan runs; no tool is called
        with anyio.fail_after(20):
            while (await store.journal_get(entry, actor_id=None) or {}).get("status") != "in_doubt":
                await anyio.sleep(0.05)
        assert owner in await store.leases([owner])
    await store.close()


async def test_a_server_without_a_configured_store_starts_nothing(tmp_path: Path) -> None:
    settings = Settings(journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "s.db")
    async with Client(build_server(settings)) as client:
        await client.list_tools()
    assert not (tmp_path / "journal.sqlite3").exists()  # a desktop start opens no store
