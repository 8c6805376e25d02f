"""Settling in-doubt writes: every row of the decision table, and `pcref-mcp journal --settle`."""

from __future__ import annotations

import io
import socket
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp.errors import NotFound
from pcref_mcp.writes.journal import Journal
from pcref_mcp.writes.settle import settle_in_doubt

pytestmark = pytest.mark.anyio

DEAD = "|".join((socket.gethostname(), "999999999", "boot", "1", "feedfacefeedface"))


class Service:
    """What the service answers for a referral: its ETag and document."""

    def __init__(self, docs: dict[str, tuple[str, dict[str, Any]]]) -> None:
        self.docs = docs

    async def get(self, referral_id: str) -> Any:
        if referral_id not in self.docs:
            raise NotFound("no such referral")
        etag, doc = self.docs[referral_id]

        class Current:
            e_tag = etag

            def to_wire(self) -> dict[str, Any]:
                return doc

        return Current()


async def _write(
    journal: Journal, referral: str, value: int, etag: str, *, before: int = 0, kind: str = "update"
) -> int:
    return await journal.record_intent(
        tool="update_field",
        kind=kind,
        referral_id=referral,
        correlation_id="c",
        operations=[{"op": "replace", "path": "/details/dealValue", "value": value}],
        before_image={"/details/dealValue": before},
        etag_before=etag,
    )


async def _in_doubt(journal: Journal, entry: int) -> None:
    with journal.store._lock:  # type: ignore[attr-defined]
        journal.store._db.execute("UPDATE writes SET owner=? WHERE id=?", (DEAD, entry))  # type: ignore[attr-defined]


async def test_the_decision_table(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    # r1: a later write went through with the same ETag: the in-doubt one did not land
    lost = await _write(journal, "r1", 10, '"a"')
    later = await _write(journal, "r1", 11, '"a"')
    await journal.record_outcome(later, "applied", etag_after='"b"')
    # r2: the later write found the in-doubt values in place: it landed
    landed = await _write(journal, "r2", 20, '"a"')
    after = await _write(journal, "r2", 21, '"x"', before=20)
    await journal.record_outcome(after, "applied", etag_after='"y"')
    # r3: no later write, the service still has the previewed ETag: not landed
    unchanged = await _write(journal, "r3", 30, '"a"')
    # r4: no later write, the ETag moved and the service holds the values: landed
    moved = await _write(journal, "r4", 40, '"a"')
    # r5: the ETag moved, the values differ (someone else wrote): a person must look
    other = await _write(journal, "r5", 50, '"a"')
    # r6: a create is left to a person
    create = await _write(journal, "r6", 60, '"a"', kind="create")
    for entry in (lost, landed, unchanged, moved, other, create):
        await _in_doubt(journal, entry)
    fresh = Journal(path)  # sees the dead owner's pending rows
    service = Service(
        {
            "r3": ('"a"', {"details": {"dealValue": 0}}),
            "r4": ('"b"', {"details": {"dealValue": 40}}),
            "r5": ('"b"', {"details": {"dealValue": 99}}),
        }
    )
    verdicts = {s.entry_id: s.status for s in await settle_in_doubt(fresh, service)}
    assert verdicts == {
        lost: "failed",
        landed: "applied",
        unchanged: "failed",
        moved: "applied",
        other: "in_doubt",
        create: "in_doubt",
    }
    statuses = {e.id: e.status for e in await fresh.recent(100, any_actor=True)}
    assert statuses[lost] == "failed" and statuses[landed] == "applied" and statuses[other] == "in_doubt"
    assert (await fresh.get(moved)).error.startswith("settled:")  # type: ignore[union-attr]
    assert await settle_in_doubt(fresh, service) != []  # the undecidable ones stay, asked again next time


async def test_journal_settle_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcref_mcp.cli import main

    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = await _write(journal, "no-such-referral", 1, '"a"')
    await _in_doubt(journal, entry)
    journal.close()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(path))
    monkeypatch.setenv("PCREF_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["journal", "--settle", "--json"]) == 0
    assert f"#{entry}  in doubt: the referral cannot be read any more" in err.getvalue()


class Lagging(Service):
    """The first reads of each referral come from a replica that has not seen the last write."""

    def __init__(
        self, docs: dict[str, tuple[str, dict[str, Any]]], stale: dict[str, Any], reads: int
    ) -> None:
        super().__init__(docs)
        self.stale, self.left = stale, {rid: reads for rid in stale}

    async def get(self, referral_id: str) -> Any:
        if self.left.get(referral_id, 0) > 0:
            self.left[referral_id] -= 1
            etag, doc = self.stale[referral_id]
            return await Service({referral_id: (etag, doc)}).get(referral_id)
        return await super().get(referral_id)


async def test_an_unchanged_first_read_is_not_taken_as_not_landed(tmp_path: Path) -> None:
    """Issue 20: the write landed, the first read is a replica behind it: applied, not failed."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = await _write(journal, "r1", 10, '"a"')
    await _in_doubt(journal, entry)
    service = Lagging(
        {"r1": ('"b"', {"details": {"dealValue": 10}})},
        {"r1": ('"a"', {"details": {"dealValue": 0}})},
        reads=1,
    )
    [verdict] = await settle_in_doubt(Journal(path), service)
    assert verdict.status == "applied"
