"""What bulk work remembers between calls: which journaled changes form a batch, and the last
state seen of each referral (so "what changed since Monday" can say what, not only which).

Kept in the store (:mod:`pcref_mcp.store`) with the journal, so a batch previewed and applied on one
replica of a team server is undone on any other, and a person's change feed compares with the same
snapshots whichever replica answers. Every row belongs to a principal
(``pcref_mcp.identity.current()``): in team mode one person's batches and snapshots are not
another's. The journal stays the record of every write; this only links and compares.

Before the store held them they lived in a SQLite file of their own next to the journal
(``pipeline.sqlite3``); when that file exists its rows are imported once into the store (once per
store, across every replica) and the file is left as it was.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from pcref_mcp import identity
from pcref_mcp.writes.journal import stamp

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store

log = logging.getLogger("pcref_mcp.writes")

#: The file batches and snapshots were kept in before the store held them (next to the journal).
LEGACY_FILE = "pipeline.sqlite3"


@dataclass(frozen=True)
class Batch:
    batch_id: str
    created_at: str
    mode: str
    undo_of: str | None
    change_ids: list[int]


class PipelineStore:
    """Batches (a batch id → its journal change ids) and per-referral snapshots, per principal.

    ``PipelineStore(store)`` shares the journal's store; ``PipelineStore(path)`` keeps a SQLite file
    of its own (``None``: in memory, for tests). ``legacy`` names an old ``pipeline.sqlite3`` whose
    rows are imported on first use.
    """

    def __init__(self, where: Store | Path | str | None, *, legacy: Path | None = None) -> None:
        from pcref_mcp.store import open_store  # not at import: a stdio start does not load the store

        self.store: Store = open_store(where)
        self.legacy = legacy
        self._imported = legacy is None
        self._import_lock = anyio.Lock()

    # -- batches ----------------------------------------------------------------------------------

    async def new_batch(self, mode: str, *, undo_of: str | None = None) -> str:
        """A fresh batch id (``b-`` + 8 hex), recorded before its first item is sent."""
        await self._import_legacy()
        batch_id = "b-" + secrets.token_hex(4)
        await self.store.batch_insert(
            {
                "batch_id": batch_id,
                "actor_id": identity.current().id,
                "created_at": stamp(),
                "mode": mode,
                "undo_of": undo_of,
            }
        )
        return batch_id

    async def add_change(self, batch_id: str, change_id: int) -> None:
        """Link one journaled change to its batch, as soon as the journal has it (one atomic append in
        the store: another replica appending to the same batch loses nothing)."""
        await self.store.batch_add_change(batch_id, change_id)

    async def batch(self, batch_id: str) -> Batch | None:
        """One of the current principal's batches (None for another person's or an unknown id)."""
        await self._import_legacy()
        row = await self.store.batch_get(batch_id.strip(), actor_id=identity.current().id)
        if row is None:
            return None
        return Batch(row["batch_id"], row["created_at"], row["mode"], row["undo_of"], list(row["change_ids"]))

    # -- snapshots --------------------------------------------------------------------------------

    async def snapshots(self, referral_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The last fields seen of each of ``referral_ids`` (by id; missing ids were never seen)."""
        if not referral_ids:
            return {}
        await self._import_legacy()
        rows = await self.store.snapshots_get(identity.current().id, referral_ids)
        return {str(r["referral_id"]): json.loads(r["fields"]) for r in rows}

    async def remember(self, seen: list[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Keep ``(referral id, updated, fields)`` as the last state seen (newer replaces older)."""
        if not seen:
            return
        await self._import_legacy()
        await self.store.snapshots_put(
            identity.current().id,
            stamp(),
            [(rid, updated, json.dumps(fields, default=str)) for rid, updated, fields in seen],
        )

    # -- private ----------------------------------------------------------------------------------

    async def _import_legacy(self) -> None:
        """The old file's rows into the store, once (first use; a store that has them says so)."""
        if self._imported:
            return
        async with self._import_lock:
            if self._imported:
                return
            path = self.legacy
            if path is None or not path.is_file():
                self._imported = True
                return
            try:
                batches, snapshots = await anyio.to_thread.run_sync(_read_legacy, path)
            except sqlite3.Error as exc:
                self._imported = True
                log.warning("could not read %s (%s); its batches and snapshots were not imported", path, exc)
                return
            name = f"{LEGACY_FILE}:{path.resolve()}"
            imported = await self.store.import_once(name, stamp(), batches=batches, snapshots=snapshots)
            self._imported = True  # a store that cannot be reached is asked again on the next call
            if imported:
                log.info(
                    "imported %d batch(es) and %d snapshot(s) from %s into the store; the file is no "
                    "longer used and is left as it was (delete it when you no longer need it)",
                    len(batches),
                    len(snapshots),
                    path,
                )


def _read_legacy(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every row of an old ``pipeline.sqlite3``, read only (the file is not changed)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        batches = [
            {**dict(r), "change_ids": [int(i) for i in json.loads(r["change_ids"] or "[]")]}
            for r in (
                db.execute("SELECT batch_id, actor_id, created_at, mode, undo_of, change_ids FROM batches")
                if "batches" in tables
                else ()
            )
        ]
        snapshots = [
            dict(r)
            for r in (
                db.execute("SELECT actor_id, referral_id, seen_at, updated, fields FROM snapshots")
                if "snapshots" in tables
                else ()
            )
        ]
    finally:
        db.close()
    return batches, snapshots
