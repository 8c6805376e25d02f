"""The store on disk: WAL, persistence across restarts, indexes used by the page queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcref_mcp.sandbox import SandboxConfig, create_app, default_db_path
from pcref_mcp.sandbox.odata import compile_filter, compile_orderby
from tests.sandbox.conftest import make_config


def test_file_database_persists_and_reset_reseeds(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "sandbox.db"
    state = create_app(make_config(db_path=db, seed_size=20)).state.sandbox
    assert state.store.count() == 20
    assert state.store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert state.store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    state.store.clear()
    state.store.close()
    kept = create_app(make_config(db_path=db, seed_size=20)).state.sandbox
    assert kept.store.count() == 0  # an existing database is kept as it is
    kept.store.close()
    fresh = create_app(make_config(db_path=db, seed_size=20, reset=True)).state.sandbox
    assert fresh.store.count() == 20
    assert fresh.store.integrity_check() == "ok"


@pytest.mark.parametrize(
    "flt,order",
    [
        ("status eq 'Active' and direction eq 'Incoming'", "createdDateTime desc"),
        ("status eq 'New'", "updatedDateTime desc"),
        ("engagementId eq 37ef26aa-1d15-4533-9f93-a69bd33ab1e5", "createdDateTime desc"),
    ],
)
def test_page_queries_use_indexes(flt: str, order: str) -> None:
    state = create_app(make_config(seed_size=200)).state.sandbox
    where, params = compile_filter(flt)
    plan = " ".join(state.store.explain(where, params, compile_orderby(order)))
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "SCAN referrals" not in plan.replace("USING INDEX", "") or "INDEX" in plan


def test_default_db_path_respects_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "pcref-mcp" / "sandbox.db"


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        SandboxConfig(seed_size=-1)
    with pytest.raises(ValueError):
        SandboxConfig(page_cap=0)
