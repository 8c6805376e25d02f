"""A seed copied from the kept in-memory template is the seed generated afresh, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pcref_mcp.sandbox import ManualClock, SandboxConfig, SystemClock, create_app, templates
from pcref_mcp.sandbox.rules import Partner
from pcref_mcp.sandbox.store import Store

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
PARTNER = Partner("4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "Fabrikam Sandbox Partner", "6193175")


def everything(store: Store) -> list[object]:
    """Every row of every table (planner statistics included) and the schema, in storage order."""
    db = store._db
    schema = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    rows: list[object] = [schema]
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        rows.append((table, db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()))
    return rows


@pytest.mark.parametrize("real_world", [False, True])
def test_a_kept_seed_is_the_generated_seed_byte_for_byte(tmp_path: Path, real_world: bool) -> None:
    def seeded(keep: bool, name: str) -> tuple[Store, int]:
        store = Store(tmp_path / name)
        n = templates.seed_store(
            store, 45, seed=7, now=NOW, partner=PARTNER, real_world=real_world, keep=keep
        )
        return store, n

    generated, n_generated = seeded(False, "generated.db")
    first, n_first = seeded(True, "first.db")  # generates the template and copies it
    second, n_second = seeded(True, "second.db")  # copies the kept template
    assert n_generated == n_first == n_second == generated.count() == second.count() == 45
    assert everything(first) == everything(generated)
    assert everything(second) == everything(generated)
    assert second._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert second.integrity_check() == "ok"
    # a copy is the copier's own: writing to it leaves the template (and the next copy) as seeded
    doc = second.get(next(iter(second.ids_where("1", ()))))
    assert doc is not None
    second.replace({**doc, "name": "changed"}, expected_etag=doc["eTag"], at="now", kind="patch")
    third, _ = seeded(True, "third.db")
    assert everything(third) == everything(generated)
    assert everything(second) != everything(generated)


def test_the_kept_seed_depends_on_every_input() -> None:
    def raw(**changes: object) -> list[str]:
        args: dict[str, object] = {
            "size": 40,
            "seed": 1,
            "now": NOW,
            "partner": PARTNER,
            "real_world": False,
            **changes,
        }
        store = Store(None)
        templates.seed_store(
            store,
            args.pop("size"),  # type: ignore[arg-type]
            keep=True,
            **args,  # type: ignore[arg-type]
        )
        return [d for (d,) in store._db.execute("SELECT doc FROM referrals ORDER BY seq")]

    base = raw()
    assert raw() == base
    assert len(raw(size=39)) == 39
    for changed in (
        raw(seed=2),
        raw(now=NOW + timedelta(seconds=1)),
        raw(partner=Partner(PARTNER.org_id, "Another Partner", PARTNER.mpn_id)),
        raw(real_world=True),
    ):
        assert changed != base


def test_only_a_manual_clock_keeps_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "_kept", type(templates._kept)())
    create_app(SandboxConfig(db_path=tmp_path / "a.db", seed_size=5, clock=SystemClock(), rate_limit=0))
    assert not templates._kept  # a running clock never seeds the same data twice
    state = create_app(
        SandboxConfig(db_path=tmp_path / "b.db", seed_size=5, clock=ManualClock(NOW), rate_limit=0)
    ).state.sandbox
    assert len(templates._kept) == 1
    assert state.store.get_meta("seeded") == "5:42"  # recorded after the copy replaced the meta table
    assert state.reset(size=3) == 3 and state.store.count() == 3
    assert state.store.get_meta("seeded") == "3:42"
    for size in range(templates.KEEP + 2):
        state.reset(size=size)
    assert len(templates._kept) == templates.KEEP  # the least recently used are dropped
    monkeypatch.setattr(templates, "MAX_KEPT_SIZE", 6)
    templates._kept.clear()
    assert state.reset(size=7) == 7 and state.store.count() == 7
    assert not templates._kept  # too large to keep
    assert state.reset(size=6) == 6 and len(templates._kept) == 1
