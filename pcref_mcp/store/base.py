"""The storage interface: every operation the journal, approvals, rate limits, token caches, batches,
the change feed's snapshots, the journal's process leases and the OAuth proxy's broker need.

Async for both implementations (PostgreSQL is reached over the network; SQLite answers in
microseconds and is called inline). Rows cross the interface as plain dicts keyed by column name,
so the layers above own their models and messages and the store owns only SQL. Every operation
that must be single-use or mutually exclusive across replicas is one statement or one transaction
here, never a read followed by a write in the caller.

What the two dialects share is written here once: a public signature and what it checks, the
journal's page filters (rendered with the dialect's placeholder), and the queries whose SQL is the
same in both. Each dialect keeps the statements that differ, handed one row (``Seen``,
``Snapshot``, ``BrokerEntry``, ``Outcome``: tuples in the order of the columns they fill).
"""

from __future__ import annotations

import abc
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pcref_mcp.errors import ConfigError

if TYPE_CHECKING:
    from pcref_mcp.store.sealing import Sealer


__all__ = [
    "BROKER_LIST_LIMIT",
    "JOURNAL_COLUMNS",
    "BrokerEntry",
    "Outcome",
    "Row",
    "Seen",
    "Snapshot",
    "Store",
    "broker_digest",
]

BROKER_LIST_LIMIT = 200  # the most entries one broker_list answers with

Row = dict[str, Any]

# The journal's columns, in order (both dialects create exactly these).
JOURNAL_COLUMNS: tuple[str, ...] = (
    "id",
    "started_at",
    "finished_at",
    "tool",
    "kind",
    "referral_id",
    "correlation_id",
    "operations",
    "before_image",
    "etag_before",
    "etag_after",
    "status",
    "error",
    "undo_of",
    "undone_by",
    "external_ref",
    "owner",
    "summary",
    "actor_id",
    "actor_name",
    "request_id",  # the HTTP request that made the write (logs, error text, audit)
    "approval_path",  # how the person approved it: elicitation, page or token
)


class Outcome(NamedTuple):
    """What became of a journaled write (:meth:`Store.journal_finish`), in the order the journal's
    ``UPDATE`` sets the columns. The journal keeps one while the store cannot take it."""

    status: str
    finished_at: str
    etag_after: str | None
    error: str | None
    referral_id: str | None


class Seen(NamedTuple):
    """A person seen with a client (:meth:`Store.seen_touch`): a row of ``seen``, in column order."""

    person: str
    client_id: str
    name: str | None
    client_name: str | None
    last_seen: float
    issued: float


class Snapshot(NamedTuple):
    """A referral as a person last saw it (the change feed): a row of ``snapshots``, in column order."""

    actor_id: str
    referral_id: str
    seen_at: str
    updated: str | None
    fields: str  # JSON


class BrokerEntry(NamedTuple):
    """A broker entry as stored (:meth:`Store.broker_put`): a row of ``broker``, in column order."""

    kind: str
    key: str  # the key's digest (:func:`broker_digest`)
    sealed: bytes
    expires: float | None
    client_id: str | None
    subject: str | None


class Store(abc.ABC):
    """Shared state. ``start`` connects and migrates (idempotent); ``close`` releases it."""

    #: "sqlite" or "postgresql"
    dialect: str
    #: True where several hosts may share the store (a team server's replicas)
    shared: bool = False

    async def start(self) -> None:  # noqa: B027 - SQLite opens in its constructor
        """Connect and run pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def close_now(self) -> None:  # noqa: B027 - only SQLite can close from sync code
        """Close from sync code (the CLI, tests) where the store can: its own SQLite file. A
        networked store is closed by :meth:`close`."""

    def integrity_ok(self) -> bool:
        """Whether the store's own check finds it intact (SQLite's ``integrity_check``); True where
        there is no such check."""
        return True

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # -- journal ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def journal_insert(self, values: Mapping[str, Any], *, guard_ref: str | None = None) -> int | Row:
        """Insert a pending write and return its id; with ``guard_ref``, atomically refuse (returning
        the blocking row instead) while another create of that external reference is pending."""

    @abc.abstractmethod
    async def journal_finish(self, entry_id: int, outcome: Outcome) -> None:
        """Record an outcome (a ``referral_id`` of None keeps the one recorded); an applied undo marks
        the change it undid (one transaction)."""

    @abc.abstractmethod
    async def journal_get(self, entry_id: int, *, actor_id: str | None) -> Row | None: ...

    async def journal_recent(self, limit: int, *, referral_id: str | None, actor_id: str | None) -> list[Row]:
        """Up to ``limit`` entries, newest first, of ``referral_id`` and ``actor_id`` where given."""
        return await self._journal_page(
            (("referral_id=", referral_id or None), ("actor_id=", actor_id)), limit, newest_first=True
        )

    async def journal_after(
        self,
        after_id: int,
        limit: int,
        *,
        since: str | None = None,
        until: str | None = None,
        actor_id: str | None = None,
    ) -> list[Row]:
        """Up to ``limit`` entries with an id above ``after_id``, oldest first, started at or after
        ``since`` and before ``until`` (journal stamps), of ``actor_id`` if given: the audit export
        pages through the journal with it, so no export holds the whole journal in memory."""
        conditions = (
            ("id>", after_id),
            ("started_at>=", since),
            ("started_at<", until),
            ("actor_id=", actor_id),
        )
        return await self._journal_page(conditions, limit, newest_first=False)

    async def journal_people(self) -> list[Row]:
        """Everyone who wrote: (actor_id, actor_name, last_write, writes), the latest writer first."""
        return await self._select(
            "SELECT actor_id, MAX(actor_name) AS actor_name, MAX(started_at) AS last_write,"
            " COUNT(*) AS writes FROM writes GROUP BY actor_id ORDER BY last_write DESC"
        )

    @abc.abstractmethod
    async def journal_recent_create(self, external_ref: str, since: str) -> Row | None: ...

    async def journal_pending(self) -> list[Row]:
        """(id, owner, started_at) of every pending entry."""
        return await self._select("SELECT id, owner, started_at FROM writes WHERE status='pending'")

    @abc.abstractmethod
    async def journal_mark_in_doubt(self, ids: Sequence[int], error: str) -> None:
        """Pending entries whose process is gone: in doubt (only while still pending)."""

    @abc.abstractmethod
    async def journal_settle(self, entry_id: int, status: str, note: str, finished_at: str) -> bool:
        """Settle an in-doubt entry once it has been checked against the service; False if it was
        not in doubt any more (someone else settled it)."""

    # -- who was seen (``pcref-mcp admin people``) -----------------------------------------------------

    async def seen_touch(
        self,
        person: str,
        client_id: str,
        *,
        name: str | None,
        client_name: str | None,
        now: float,
        issued: float = 0.0,
    ) -> bool:
        """``person`` was seen at ``now`` with ``client_id`` ("" for the person's own row); names kept
        when given. ``issued``: the ``iat`` of the access token they came with. True when it is later
        than any token recorded for that person and client, on any replica (one transaction: exactly
        one caller learns a token is new; team.seen counts a resource server's sign-ins with it)."""
        raised = await self._seen_upsert(Seen(person, client_id, name, client_name, now, issued))
        return issued > 0 and raised

    @abc.abstractmethod
    async def _seen_upsert(self, seen: Seen) -> bool:
        """Keep ``seen``: ``last_seen`` and ``issued`` only move forward, names are kept when None.
        True when the row is new or its ``issued`` was raised (one transaction)."""

    async def seen_list(self) -> list[Row]:
        """Every (person, client_id, name, client_name, last_seen) row, the latest seen first."""
        return await self._select(
            "SELECT person, client_id, name, client_name, last_seen FROM seen ORDER BY last_seen DESC"
        )

    async def clock(self) -> float:
        """Now (epoch seconds) by the store's clock. Lease times are read and written by this one
        clock, so a replica whose host clock is off cannot expire a live sibling's lease early.
        SQLite is shared by one host only: its clock is this host's."""
        return time.time()

    # -- process leases (whose pending writes are still being sent) ---------------------------------

    @abc.abstractmethod
    async def lease_renew(self, owner: str, now: float) -> None:
        """``owner`` (a journal-writing process) is alive at ``now`` (epoch seconds)."""

    @abc.abstractmethod
    async def leases(self, owners: Sequence[str]) -> dict[str, float]:
        """When each of ``owners`` last renewed its lease (owners without one are left out)."""

    @abc.abstractmethod
    async def lease_purge(self, before: float) -> int:
        """Forget leases not renewed since ``before`` (their processes are long gone)."""

    @abc.abstractmethod
    async def lease_release(self, owner: str) -> None:
        """``owner`` stopped cleanly, nothing of its own left pending: its lease goes now."""

    # -- batches: a batch id and the journal changes it made, per person ----------------------------

    @abc.abstractmethod
    async def batch_insert(self, values: Mapping[str, Any]) -> None:
        """A new batch (batch_id, actor_id, created_at, mode, undo_of); inserting it again is harmless."""

    @abc.abstractmethod
    async def batch_add_change(self, batch_id: str, change_id: int) -> bool:
        """Append ``change_id`` to the batch in one statement, so replicas appending at once lose none
        (an id already there is not added twice); False for an unknown batch."""

    @abc.abstractmethod
    async def batch_get(self, batch_id: str, *, actor_id: str) -> Row | None:
        """One of ``actor_id``'s batches, its ``change_ids`` a list of ints in the order added."""

    # -- snapshots: the last state of each referral a person has seen (the change feed) -------------

    @abc.abstractmethod
    async def snapshots_get(self, actor_id: str, referral_ids: Sequence[str]) -> list[Row]:
        """(referral_id, seen_at, updated, fields) of those of ``referral_ids`` the person has seen."""

    async def snapshots_put(
        self, actor_id: str, seen_at: str, rows: Sequence[tuple[str, str | None, str]]
    ) -> None:
        """Keep ``(referral_id, updated, fields)`` as the person's last state seen (replacing older)."""
        if rows:
            await self._snapshots_upsert(
                [Snapshot(actor_id, rid, seen_at, up, fields) for rid, up, fields in rows]
            )

    @abc.abstractmethod
    async def _snapshots_upsert(self, snapshots: Sequence[Snapshot]) -> None:
        """Insert ``snapshots``, replacing the person's older ones of the same referrals."""

    # -- one-time imports ---------------------------------------------------------------------------

    async def import_once(
        self,
        name: str,
        at: str,
        *,
        batches: Sequence[Mapping[str, Any]],
        snapshots: Sequence[Mapping[str, Any]],
    ) -> bool:
        """Import rows kept elsewhere before the store held them (the old ``pipeline.sqlite3``), once
        per ``name`` across every replica (one transaction); rows the store has already are kept.
        False when ``name`` was imported before."""
        rows = [Snapshot(**{column: s[column] for column in Snapshot._fields}) for s in snapshots]
        return await self._import_rows(name, at, batches, rows)

    @abc.abstractmethod
    async def _import_rows(
        self, name: str, at: str, batches: Sequence[Mapping[str, Any]], snapshots: Sequence[Snapshot]
    ) -> bool:
        """:meth:`import_once` (the snapshots as rows): batches and snapshots already there are kept."""

    # -- approvals ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def approval_open(self, claims: Mapping[str, str], channel: str, now: float) -> str | None:
        """The newest unspent, unexpired reference for exactly these claims (elicitation reuse)."""

    @abc.abstractmethod
    async def approval_insert(self, values: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    async def approval_get(self, approval_id: str) -> Row | None: ...

    @abc.abstractmethod
    async def approval_redeem(self, approval_id: str, claims: Mapping[str, str], now: float) -> Row | None:
        """Spend the approval in one round trip when it is unspent, unexpired at ``now`` and issued for
        exactly ``claims`` (owner, tool, plan, etag): its row (spent) for exactly one caller across all
        replicas; None otherwise, with nothing changed (the caller reads it to say why)."""

    @abc.abstractmethod
    async def approval_purge(self, before: float) -> int: ...

    # -- keys (approval MACs) -----------------------------------------------------------------------

    @abc.abstractmethod
    async def keys(self, purpose: str) -> list[tuple[float, bytes]]:
        """(created, secret), newest first."""

    @abc.abstractmethod
    async def add_key(self, purpose: str, created: float, secret: bytes) -> None: ...

    @abc.abstractmethod
    async def drop_key(self, purpose: str, created: float) -> None: ...

    # -- rate limits --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def rate_take(self, bucket: str, calls: int, window: float, now: float) -> float:
        """Take one call from ``bucket`` if it fits in the window (and no pause is set): 0.0; else
        how many seconds to wait before asking again. Atomic across replicas."""

    @abc.abstractmethod
    async def rate_pause(self, bucket: str, until: float) -> None:
        """Nobody takes from ``bucket`` before ``until`` (the service said Retry-After)."""

    # -- token caches: sealed at rest ---------------------------------------------------------------

    async def token_get(self, person: str) -> bytes | None:
        """A person's token cache (msal's serialized cache: it holds their refresh token), opened."""
        sealed = await self._token_get_sealed(person)
        if sealed is None:
            return None
        return (await self._sealer()).open(sealed, bound_to=person)

    async def token_put(self, person: str, cache: bytes) -> None:
        sealed = (await self._sealer()).seal(cache, bound_to=person)
        await self._token_put_sealed(person, sealed, time.time())

    @abc.abstractmethod
    async def token_delete(self, person: str) -> None: ...

    @abc.abstractmethod
    async def _token_get_sealed(self, person: str) -> bytes | None: ...

    @abc.abstractmethod
    async def _token_put_sealed(self, person: str, sealed: bytes, now: float) -> None: ...

    async def reseal(self) -> tuple[int, int]:
        """Every sealed value (token caches, broker entries) opened with any configured key and
        sealed again under the first: a store-key rotation (``pcref-mcp admin rotate-key``).
        (re-sealed, left because no key opens them). Each row is replaced only if unchanged since
        it was read, so a replica writing it meanwhile keeps its newer value."""
        sealer = await self._sealer()
        done = unreadable = 0
        for table, key, binding, sealed in await self._sealed_rows():
            try:
                fresh = sealer.seal(sealer.open(sealed, bound_to=binding), bound_to=binding)
            except ConfigError:
                unreadable += 1
                continue
            if await self._replace_sealed(table, key, sealed, fresh):
                done += 1
        return done, unreadable

    async def _sealed_rows(self) -> list[tuple[str, tuple[str, ...], str, bytes]]:
        """(table, primary key, binding, sealed) of every sealed value."""
        raise NotImplementedError

    async def _replace_sealed(self, table: str, key: tuple[str, ...], old: bytes, new: bytes) -> bool:
        raise NotImplementedError

    # -- OAuth broker state: digested keys, sealed values -------------------------------------------

    async def broker_put(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expires: float | None,
        client_id: str | None = None,
        subject: str | None = None,
    ) -> None:
        """Keep ``value`` under ``kind``/``key`` until ``expires`` (None: until dropped), replacing
        what was there. The key is stored as its SHA-256 digest (a leaked row names no usable code,
        handle or state) and the value sealed, bound to kind and digest (a row copied elsewhere does
        not open). ``client_id`` and ``subject`` are kept in the clear for :meth:`broker_drop`."""
        digest = broker_digest(key)
        sealed = (await self._sealer()).seal(value, bound_to=_broker_binding(kind, digest))
        await self._broker_put_sealed(BrokerEntry(kind, digest, sealed, expires, client_id, subject))

    async def broker_get(self, kind: str, key: str, now: float) -> bytes | None:
        """The unexpired value, opened; None when absent, expired, taken, or not opening under the
        configured key (the key changed: as good as gone, the person signs in again)."""
        digest = broker_digest(key)
        return await self._broker_open(kind, digest, await self._broker_get_sealed(kind, digest, now))

    async def broker_take(self, kind: str, key: str, now: float) -> bytes | None:
        """Get and remove, atomically: of several callers on any replicas, exactly one gets the value
        (a one-time code, a refresh handle being rotated, a sign-in's state)."""
        digest = broker_digest(key)
        return await self._broker_open(kind, digest, await self._broker_take_sealed(kind, digest, now))

    @abc.abstractmethod
    async def broker_drop(
        self, kind: str, *, client_id: str | None = None, subject: str | None = None
    ) -> int:
        """Remove every entry of ``kind`` held for ``client_id`` and/or ``subject`` (revocation);
        how many went. At least one of the two must be given."""

    @abc.abstractmethod
    async def broker_purge(self, now: float) -> int:
        """Remove expired (and taken) entries of every kind; how many went."""

    @abc.abstractmethod
    async def broker_count(self, kind: str, now: float) -> int:
        """How many unexpired entries of ``kind`` there are (the broker's bounds)."""

    async def broker_list(
        self, kind: str, now: float, *, client_id: str | None = None, subject: str | None = None
    ) -> list[bytes]:
        """Every unexpired value of ``kind`` held for ``client_id`` and/or ``subject``, opened
        (a person's approved clients, for the page where they revoke them); at most
        :data:`BROKER_LIST_LIMIT`, the latest to expire first."""
        found = await self._broker_list_sealed(kind, now, client_id, subject)
        values = [await self._broker_open(kind, digest, sealed) for digest, sealed in found]
        return [v for v in values if v is not None]

    @abc.abstractmethod
    async def broker_evict(self, kind: str, keep: int, now: float) -> int:
        """Leave at most ``keep`` unexpired entries of ``kind``, removing those that expire first
        (with one lifetime per kind: the oldest) and every expired one; how many went. This bounds a
        kind's share of the store without refusing the newest entry (unused client registrations:
        a flood evicts the flood, not the next real client). Not exact under concurrent puts from
        several replicas: the bound may be exceeded by the number of racing puts."""

    @abc.abstractmethod
    async def _broker_list_sealed(
        self, kind: str, now: float, client_id: str | None, subject: str | None
    ) -> list[tuple[str, bytes]]: ...

    @abc.abstractmethod
    async def _broker_put_sealed(self, entry: BrokerEntry) -> None:
        """Insert ``entry``, or replace the one of its kind and key (and its being taken)."""

    @abc.abstractmethod
    async def _broker_get_sealed(self, kind: str, digest: str, now: float) -> bytes | None: ...

    @abc.abstractmethod
    async def _broker_take_sealed(self, kind: str, digest: str, now: float) -> bytes | None: ...

    async def _broker_open(self, kind: str, digest: str, sealed: bytes | None) -> bytes | None:
        if sealed is None:
            return None
        try:
            return (await self._sealer()).open(sealed, bound_to=_broker_binding(kind, digest))
        except ConfigError:
            return None

    # -- what each dialect provides to the shared queries above ---------------------------------------

    @staticmethod
    @abc.abstractmethod
    def _mark(n: int) -> str:
        """The dialect's placeholder for the ``n``-th argument (from 1): ``?`` or ``$n``."""

    @abc.abstractmethod
    async def _select(self, sql: str, *args: Any) -> list[Row]:
        """Every row ``sql`` answers with ``args``, as dicts."""

    async def _journal_page(
        self, conditions: Sequence[tuple[str, Any]], limit: int, *, newest_first: bool
    ) -> list[Row]:
        """Up to ``limit`` journal rows, in id order, meeting every condition (``column<op>``, value)
        whose value is not None."""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in conditions:
            if value is not None:
                args.append(value)
                where.append(clause + self._mark(len(args)))
        args.append(limit)
        sql = "SELECT * FROM writes" + (" WHERE " + " AND ".join(where) if where else "")
        order = " ORDER BY id DESC" if newest_first else " ORDER BY id"
        return await self._select(f"{sql}{order} LIMIT {self._mark(len(args))}", *args)

    _sealing: Sealer | None = None

    async def _sealer(self) -> Sealer:
        """Under the configured key; without one (single-user SQLite) under a random key kept in the
        store itself, which guards against a copied row but not a copied file."""
        if self._sealing is None:
            from pcref_mcp.store.sealing import Sealer

            keys = await self.keys("token-seal")
            if not keys:
                # one fixed slot: processes racing to create the first key collide on it, and all
                # then read the one that landed (two keys would leave one process unable to open)
                await self.add_key("token-seal", 0.0, os.urandom(32))
                keys = await self.keys("token-seal")
            self._sealing = Sealer(*(secret for _, secret in keys))
        return self._sealing


def broker_digest(key: str) -> str:
    """How a broker key is stored: its SHA-256, hex (codes, handles and states are 256-bit random
    values, so an unsalted digest cannot be reversed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _broker_binding(kind: str, digest: str) -> str:
    return f"broker/{kind}/{digest}"
