"""The write journal: every write is recorded before it is sent and its outcome after.

So nothing is lost: if the process dies between the two, the entry stays ``pending`` until another
process using the journal notices and marks it ``in_doubt``, which `pcref-mcp journal` shows with
the exact look-up that settles it (and `settle_in_doubt` decides from the service). The
before-image of every changed field is what `undo_change` restores.
Kept in the store (:mod:`pcref_mcp.store`): SQLite in the user's data dir by default, PostgreSQL
shared by the replicas of a team server; one short transaction per record.

Each row records who wrote it (``pcref_mcp.identity.current()``), and reading or undoing only ever
sees the current principal's own rows, so in team mode one person's changes are not another's to
list or undo. A row's ``owner`` names the process that sent it by host, PID, boot id, the PID's
start time and a random instance id, so a PID reused by a later process (a container's server is
always PID 1) is not mistaken for the one that died.

Whether that process still runs: on this host its PID says so at once; on any other host (replicas
sharing a PostgreSQL store) its **lease** does. Each process renews a lease row in the store (on use,
and every sixth of the lease from a server's background task, :meth:`Journal.keep_lease`); a pending
row whose owner's lease is older than ``lease_seconds`` (60 s; ``PCREF_JOURNAL_LEASE_SECONDS``) is in
doubt, whichever replica looks first. Marking is conditional (only while still pending), so two
replicas doing it at once change nothing twice, and an outcome recorded late still replaces it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from pcref_mcp import calls, identity, metrics
from pcref_mcp.errors import ConfigError, InvalidInput, StoreUnavailable
from pcref_mcp.referrals import contacts
from pcref_mcp.referrals.untrusted import quote, quote_at

if TYPE_CHECKING:
    from pcref_mcp.store.base import Outcome, Store

Status = Literal["pending", "applied", "failed", "in_doubt", "partial"]
STATUSES: tuple[str, ...] = ("pending", "applied", "failed", "in_doubt", "partial")

log = logging.getLogger("pcref_mcp.journal")

SETTLE_EVERY = 30.0  # seconds between looks for pending entries of processes that died
LEASE_SECONDS = 60.0  # a process whose lease is older is gone: its pending entries are in doubt
# This process, as journal rows name it: unique even when the PID is reused after a restart.
_INSTANCE = secrets.token_hex(8)


@dataclass(frozen=True)
class JournalEntry:
    id: int
    started_at: str
    finished_at: str | None
    tool: str
    kind: str
    referral_id: str | None
    correlation_id: str
    operations: list[dict[str, Any]]
    before_image: dict[str, Any]
    etag_before: str | None
    etag_after: str | None
    status: str
    error: str | None
    undo_of: int | None
    undone_by: int | None
    external_ref: str | None
    summary: str | None = None
    actor_id: str = "local"
    actor_name: str | None = None
    request_id: str | None = None
    approval_path: str | None = None

    def undo_refusal(self) -> str | None:
        """Why this change cannot be undone, or None if it can (while the referral is unchanged since)."""
        if self.status != "applied":
            return f"it is {self.status.replace('_', ' ')}, so there is nothing to undo"
        if self.undone_by is not None:
            return f"it was already undone by change {self.undone_by}"
        if self.kind == "create":
            return "it created a referral, and Partner Center has no delete"
        if self.kind in ("register", "update_registration"):
            return "deal registrations cannot be withdrawn through the API"
        return None

    def shown(self) -> dict[str, Any]:
        """This entry as a person or model may see it: others' text quoted «…», and the e-mail and
        phone only of the contacts a change adds, removes or creates (names for everyone else)."""
        before = {
            pointer: quote_at(pointer, _shown_list(pointer, value, self.operations, before=True))
            for pointer, value in self.before_image.items()
        }
        operations = []
        for op in self.operations:
            op = dict(op)
            if op.get("op") == "create":
                op["body"] = quote_at("/", op.get("body"))
            else:
                path = str(op.get("path", ""))
                value = op.get("value")
                if not path.endswith("/-"):
                    value = _shown_list(path, value, [op], before=False, image=self.before_image)
                op["value"] = quote_at(path, value)
            operations.append(op)
        data = dict(self.__dict__)
        for operator_only in ("request_id", "approval_path"):  # the audit's, not the model's
            data.pop(operator_only, None)
        data.update(
            operations=operations,
            before_image=before,
            summary=self.summary,
            external_ref=quote(self.external_ref) if self.external_ref else None,
        )
        return data

    def redacted(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(operations, before image) with contact details hidden exactly as :meth:`shown` hides
        them, but nothing quoted: the audit's record (pcref_mcp.ops.audit)."""
        before = {
            pointer: _shown_list(pointer, value, self.operations, before=True)
            for pointer, value in self.before_image.items()
        }
        operations = []
        for op in self.operations:
            op = dict(op)
            path = str(op.get("path", ""))
            if op.get("op") != "create" and not path.endswith("/-"):
                op["value"] = _shown_list(path, op.get("value"), [op], before=False, image=self.before_image)
            operations.append(op)
        return operations, before

    def how_to_check(self) -> str:
        """What the person can do to settle an in-doubt or failed entry."""
        if self.status not in ("in_doubt", "pending", "partial"):
            return ""
        if self.kind == "create" and self.external_ref:
            return (
                f"Search referrals with external reference id {self.external_ref!r}: if one exists the "
                "create landed; if none does, it did not and can be made again."
            )
        if self.referral_id:
            return (
                f"Open referral {self.referral_id} and compare its fields with the operations above; "
                f"if its ETag is still {self.etag_before} the change did not land."
            )
        return "Check the referral in Partner Center before retrying."


class Journal:
    """Append-mostly log of writes over a :class:`~pcref_mcp.store.Store` (SQLite or PostgreSQL).

    ``Journal(path)`` keeps it in a SQLite file of its own (the single-user default);
    ``Journal(store)`` shares the store with the approvals, rate limits and token caches.
    """

    def __init__(self, where: Path | str | Store | None, *, lease_seconds: float = LEASE_SECONDS) -> None:
        from pcref_mcp.store import open_store  # not at import: a stdio start does not load the store

        try:
            self.store = open_store(where)
        except ConfigError as exc:
            raise InvalidInput(str(exc), field="journal_path") from None
        self.path: Path | None = getattr(self.store, "path", None)
        self.lease_seconds = lease_seconds
        self._owner = _owner_of_this_process()
        self._settled_at: float | None = None
        self._unrecorded: dict[int, Outcome] = {}  # outcomes the store could not take yet
        self._renewed_at: float | None = None

    # -- recording --------------------------------------------------------------------------------

    async def record_intent(
        self,
        *,
        tool: str,
        kind: str,
        referral_id: str | None,
        correlation_id: str,
        operations: list[dict[str, Any]],
        before_image: dict[str, Any],
        etag_before: str | None,
        undo_of: int | None = None,
        external_ref: str | None = None,
        summary: str | None = None,
        exclusive: bool = False,
    ) -> int:
        """Record a write about to be sent; its id is the change id.

        ``exclusive`` (creates): refused, writing nothing, while another create of the same external
        reference id is pending, in this process or any other using the journal.
        """
        await self._settle_orphans()
        await self._renew_if_due()  # before the row: another host sees a live owner
        actor = identity.current()
        values = {
            "started_at": stamp(),
            "tool": tool,
            "kind": kind,
            "referral_id": referral_id,
            "correlation_id": correlation_id,
            "operations": json.dumps(operations, default=str),
            "before_image": json.dumps(before_image, default=str),
            "etag_before": etag_before,
            "status": "pending",
            "undo_of": undo_of,
            "external_ref": external_ref,
            "owner": self._owner,
            "summary": summary,
            "actor_id": actor.id,
            "actor_name": actor.name,
            "request_id": calls.request_id(),
            "approval_path": calls.approval_path(),
        }
        with metrics.timed("pcref_store_seconds", op="journal_intent"):
            result = await self.store.journal_insert(values, guard_ref=external_ref if exclusive else None)
        if isinstance(result, dict):
            raise _second_create(external_ref or "", result)
        metrics.count("pcref_writes_started", kind=kind)
        return result

    async def record_outcome(
        self,
        entry_id: int,
        status: Status,
        *,
        referral_id: str | None = None,
        etag_after: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record what became of a write. The write has already happened (or not) at the service, so
        a store that is unreachable now must not turn that into an error for the person: the outcome
        is kept in this process and recorded on the journal's next use (until then the entry stays
        pending under this live process; if the process dies first, it is settled as in doubt)."""
        from pcref_mcp.store.base import Outcome  # loaded with the store this journal opened

        outcome = Outcome(status, stamp(), etag_after=etag_after, error=error, referral_id=referral_id)
        metrics.count("pcref_writes", outcome=status)
        log.info(
            "write %s %s",
            entry_id,
            status,
            extra={"event": "write", "change_id": entry_id, "outcome": status},
        )
        try:
            with metrics.timed("pcref_store_seconds", op="journal_outcome"):
                await self.store.journal_finish(entry_id, outcome)
        except StoreUnavailable:
            log.warning(
                "change %s: its outcome (%s) will be recorded when the store is back", entry_id, status
            )
            self._unrecorded[entry_id] = outcome

    async def release(self) -> int:
        """A clean stop: outcomes kept while the store was away recorded, and every write of this
        process still pending marked in doubt (it will not learn their outcome now; only while still
        pending), so ``settle_in_doubt`` decides them at once instead of after the lease runs out;
        then its lease is released (nothing of it is pending any more). How many were marked."""
        if self._unrecorded:
            await self._record_kept_outcomes()
        mine = [int(r["id"]) for r in await self.store.journal_pending() if str(r["owner"]) == self._owner]
        if mine:
            await self.store.journal_mark_in_doubt(
                mine, "The server stopped before the outcome was recorded."
            )
            metrics.count("pcref_writes_in_doubt_marked", len(mine))
            log.warning("stopping with %d write(s) in flight: marked in doubt for settle_in_doubt", len(mine))
        await self.store.lease_release(self._owner)
        return len(mine)

    async def _record_kept_outcomes(self) -> None:
        for entry_id, outcome in list(self._unrecorded.items()):
            await self.store.journal_finish(entry_id, outcome)  # StoreUnavailable: kept, raised
            del self._unrecorded[entry_id]

    async def settle(self, entry_id: int, status: Literal["applied", "failed"], how: str) -> bool:
        """Settle an in-doubt entry after checking the service (see :meth:`JournalEntry.how_to_check`);
        False when it was no longer in doubt."""
        return await self.store.journal_settle(entry_id, status, f"settled: {how}", stamp())

    # -- this process's lease ---------------------------------------------------------------------

    async def renew_lease(self) -> None:
        """Tell every replica this process is alive (its pending writes are still being sent)."""
        await self.store.lease_renew(self._owner, await self.store.clock())
        self._renewed_at = time.monotonic()

    async def keep_lease(self) -> None:
        """Until cancelled: renew the lease every sixth of ``lease_seconds`` and look for the pending
        writes of processes that died, so an idle replica settles a dead sibling's too. A store that
        cannot be reached is logged and tried again on the next round."""
        while True:
            try:
                await self.renew_lease()
                await self._settle_orphans()
            except Exception as exc:  # keep going: the next round may reach the store
                log.warning("journal lease not renewed (%s); trying again", type(exc).__name__)
            await anyio.sleep(self.lease_seconds / 6)

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, entry_id: int, *, any_actor: bool = False) -> JournalEntry | None:
        """One of the current principal's changes (anyone's with ``any_actor``: the admin's CLI)."""
        if not 0 < entry_id < 2**63:  # beyond a 64-bit INTEGER: no such entry (not an OverflowError)
            return None
        await self._settle_orphans()
        row = await self.store.journal_get(entry_id, actor_id=None if any_actor else identity.current().id)
        return _entry(row) if row else None

    async def recent(
        self, limit: int = 20, *, referral_id: str | None = None, any_actor: bool = False
    ) -> list[JournalEntry]:
        """The current principal's latest changes, newest first (everyone's with ``any_actor``)."""
        await self._settle_orphans()
        rows = await self.store.journal_recent(
            max(1, min(int(limit), 1000)),
            referral_id=referral_id,
            actor_id=None if any_actor else identity.current().id,
        )
        return [_entry(r) for r in rows]

    async def recent_create(self, external_ref: str, within_seconds: float) -> JournalEntry | None:
        """Anyone's create of ``external_ref`` that landed or may have, started in the last
        ``within_seconds``: what stops a second one when the service cannot be asked."""
        cutoff = datetime.fromtimestamp(datetime.now(UTC).timestamp() - within_seconds, UTC)
        row = await self.store.journal_recent_create(external_ref, stamp(cutoff))
        return _entry(row) if row else None

    def integrity_ok(self) -> bool:
        return self.store.integrity_ok()

    async def aclose(self) -> None:
        await self.store.close()

    def close(self) -> None:
        """Close a journal's own SQLite file (sync, for the CLI and tests)."""
        self.store.close_now()

    # -- private ----------------------------------------------------------------------------------

    async def _renew_if_due(self) -> None:
        if self._renewed_at is None or time.monotonic() - self._renewed_at >= self.lease_seconds / 6:
            await self.renew_lease()

    async def _settle_orphans(self) -> None:
        """Entries left pending by a process that no longer runs are in doubt (checked on first use and
        again every :data:`SETTLE_EVERY` seconds, so a replica notices a sibling that died).

        This host's processes are checked by PID (a killed one is noticed at once); another host's by
        their lease in the store, so a replica that died on one host is settled from any other.
        """
        if self._unrecorded:
            await self._record_kept_outcomes()
        now = time.monotonic()
        if self._settled_at is not None and now - self._settled_at < SETTLE_EVERY:
            return
        self._settled_at = now
        pending = await self.store.journal_pending()
        elsewhere = {str(r["owner"]) for r in pending if not _same_host(str(r["owner"]))}
        leases = await self.store.leases(sorted(elsewhere)) if elsewhere else {}
        expired = await self.store.clock() - self.lease_seconds  # the clock every lease was stamped by
        gone = [
            int(row["id"])
            for row in pending
            if (
                _lease_expired(row, leases, expired)
                if str(row["owner"]) in elsewhere
                else not _owner_alive(str(row["owner"]))
            )
        ]
        if gone:
            await self.store.journal_mark_in_doubt(
                gone, "The process stopped before the outcome was recorded."
            )
            metrics.count("pcref_writes_in_doubt_marked", len(gone))
        # leases long expired belong to processes long gone (a process that comes back renews its own)
        await self.store.lease_purge(expired - 100 * self.lease_seconds)


def _second_create(external_ref: str, row: dict[str, Any]) -> InvalidInput:
    return InvalidInput(
        f"Nothing was sent: the same referral (external reference id «{external_ref}») is being "
        f"created right now (change {row['id']}, started {row['started_at']}).",
        field="external_reference_id",
        value=external_ref,
        hint="Wait for that create to finish, then search by the external reference id.",
    )


def _lease_expired(row: Mapping[str, Any], leases: Mapping[str, float], expired: float) -> bool:
    """Whether another host's process that wrote ``row`` is gone: its lease is older than ``expired``
    (epoch seconds); without a lease (a process from before leases, or one whose lease was purged),
    when the row itself started before then."""
    renewed = leases.get(str(row["owner"]))
    if renewed is not None:
        return renewed < expired
    try:
        started = datetime.fromisoformat(str(row["started_at"]).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return started < expired


def _same_host(owner: str) -> bool:
    host = owner.split("|", 1)[0] if "|" in owner else owner.rpartition(":")[0]
    return host == socket.gethostname()


def entry_of(row: Mapping[str, Any]) -> JournalEntry:
    """A journal row from the store as an entry (the audit export reads rows itself)."""
    return _entry(row)


_JSON_COLUMNS = ("operations", "before_image")  # kept as JSON text in the row


def _entry(row: Mapping[str, Any]) -> JournalEntry:
    """The entry's fields from the row's columns of the same names; a column added after the
    first release (its field has a default) may be missing from a row."""
    values = {
        f.name: row[f.name] if f.default is MISSING else row.get(f.name, f.default)
        for f in fields(JournalEntry)
    }
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name])
    return JournalEntry(**values)


def _shown_list(
    pointer: str,
    value: Any,
    operations: list[dict[str, Any]],
    *,
    before: bool,
    image: dict[str, Any] | None = None,
) -> Any:
    """A contact list from a journal row with the details of contacts the change is not about hidden.

    The change is about a contact it adds (``/-``) or, for a replaced list, one that the replacement
    adds or removes."""
    if pointer not in contacts.CONTACT_LISTS or not isinstance(value, list):
        return value
    if before:
        replaced = [op.get("value") for op in operations if op.get("path") == pointer]
        other = replaced[0] if replaced and isinstance(replaced[0], list) else value
        about = [e for e in value if contacts.find_same(pointer, other, e) is None]
    else:
        old = (image or {}).get(pointer)
        old = old if isinstance(old, list) else []
        about = [e for e in value if contacts.find_same(pointer, old, e) is None]
    return contacts.hide_contact_details(pointer, value, about)


def _owner_of_this_process() -> str:
    pid = os.getpid()
    return "|".join((socket.gethostname(), str(pid), _boot_id(), _start_ticks(pid), _INSTANCE))


def _owner_alive(owner: str) -> bool:
    """Whether the process that wrote ``owner`` may still be running (then its entries stay pending)."""
    parts = owner.split("|")
    if len(parts) == 5:
        host, pid, boot, start, instance = parts
        if instance == _INSTANCE:
            return True
        if host != socket.gethostname() or not pid.isdigit():
            return False
        if boot and boot != _boot_id():
            return False
        if int(pid) == os.getpid():
            return False  # our PID, another instance: the PID was reused
        if not _alive(int(pid)):
            return False  # gone, or a zombie
        return not start or start == _start_ticks(int(pid))  # another start time: the PID was reused
    # older rows: "host:pid"
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot, /proc), or "" where that cannot be read."""
    return _stat_field(pid, 19)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie (killed, not yet reaped by its parent) answers ``kill(pid, 0)``
    like a live process, but it runs nothing and never records an outcome: it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _state(pid) not in ("Z", "X", "x")


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, D, Z …), or "" where that cannot be read."""
    return _stat_field(pid, 0)


def _stat_field(pid: int, index: int) -> str:
    """Field ``index`` of ``/proc/<pid>/stat`` counted from the one after the command name (which
    may hold spaces and parentheses: the fields start after its last ``)``), or "" where the file
    or the field cannot be read."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    after_name = text[text.rfind(")") + 2 :].split()
    return after_name[index] if len(after_name) > index else ""


def stamp(moment: datetime | None = None) -> str:
    """A time as the journal writes it (UTC, milliseconds, ``Z``: sorts as text); now by default."""
    return (
        (moment or datetime.now(UTC))
        .astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
