"""docs/live-readiness.md names everything the client can send: it cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from pcref_mcp.doctor import WRITE_LOOKUPS
from pcref_mcp.partner_center.capabilities import DOCUMENTED, FEATURES
from pcref_mcp.referrals.patch_paths import REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, REGISTRATION_POINTERS
from pcref_mcp.referrals.write_models import ReferralCreate

DOC = (Path(__file__).resolve().parents[1] / "docs" / "live-readiness.md").read_text(encoding="utf-8")


def test_every_patch_path_is_listed() -> None:
    for pointer in (*REFERRAL_POINTERS, REGISTRATION_ADD_POINTER, *REGISTRATION_POINTERS):
        assert f"`{pointer}`" in DOC, pointer


def test_every_query_feature_and_write_look_up_is_listed() -> None:
    rows = [line for line in DOC.splitlines() if line.startswith("|")]
    for name in (*FEATURES, *DOCUMENTED, *WRITE_LOOKUPS):
        if name in ("top",):
            assert "`$top`" in DOC
            continue
        if name == "next_link":
            assert "`@odata.nextLink`" in DOC
            continue
        assert any(f"`{name}`" in row for row in rows), name


def test_every_create_field_is_listed() -> None:
    for name, info in ReferralCreate.model_fields.items():
        assert f"`{info.alias or name}`" in DOC, name


def test_each_row_says_documented_or_discovered() -> None:
    table_rows = [line for line in DOC.splitlines() if line.startswith("| `") and ("sent by" not in line)]
    assert table_rows
    for line in table_rows:
        if "read as" in DOC and line.count("|") == 4:  # the reading table: what comes back
            continue
        assert "documented" in line or "discovered" in line or "%20" in line, line
