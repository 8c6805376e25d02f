"""Pending approvals: what a person was shown and may still approve, kept until used or expired.

A confirm token a model must copy back has to be short (at most 64 characters), so it cannot
carry its own claims. The claims stay here, server-side, and the model gets a random handle plus
a MAC: ``<nonce>.<mac>`` (39 characters). The handle is looked up, checked against the call that
redeems it (owner, tool, plan digest, ETag) and spent in one SQLite transaction, so it writes at
most once even when two processes race to redeem it.

Kept in the user's data dir (file 0600, dir 0700) so that a token issued by one stdio process is
redeemed by the next: some clients start a fresh server per call. The MAC keys live in the same
file; a new key is made every ``key_days`` and the previous one is still accepted for ``grace``
seconds, longer than any approval lives. Only a hash of each nonce is stored, so the file alone
does not yield a usable token.

The API is storage-shaped on purpose (issue / redeem / peek / purge): a later store behind the
same four calls can live in PostgreSQL for a team deployment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pcref_mcp.errors import ConfigError, ConfirmationError, StaleConfirmation

__all__ = ["TOKEN_MAX_LENGTH", "ApprovalStore", "Claims", "Pending"]

TOKEN_MAX_LENGTH = 64
Channel = Literal["token", "elicitation"]

_NONCE_BYTES = 16  # 22 characters of base64url
_MAC_BYTES = 12  # 16 characters of base64url

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id        TEXT PRIMARY KEY,   -- sha256 of the nonce
    ref       TEXT,               -- the handle itself, kept only for elicitation (shown in the question)
    owner     TEXT NOT NULL,
    tool      TEXT NOT NULL,
    plan      TEXT NOT NULL,
    etag      TEXT NOT NULL,
    channel   TEXT NOT NULL,
    fallback  INTEGER NOT NULL DEFAULT 0,
    snapshot  TEXT NOT NULL,
    issued    REAL NOT NULL,
    expires   REAL NOT NULL,
    spent     REAL
);
CREATE INDEX IF NOT EXISTS approvals_open ON approvals(owner, tool, plan, etag, channel);
CREATE TABLE IF NOT EXISTS approval_keys (
    created   REAL PRIMARY KEY,
    secret    BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Claims:
    """What an approval is bound to: who may use it, for which tool, which exact plan and ETag."""

    owner: str
    tool: str
    plan: str
    etag: str


@dataclass(frozen=True)
class Pending:
    """One approval as issued: its claims, how it was asked, what the person saw, its lifetime."""

    claims: Claims
    channel: Channel
    issued: float
    expires: float
    spent: float | None = None
    fallback: bool = False
    snapshot: dict[str, Any] = field(default_factory=dict)


class ApprovalStore:
    """Issues, redeems (once) and forgets approvals; safe across threads and processes."""

    def __init__(
        self,
        path: Path | str | None,
        *,
        clock: Callable[[], float] = time.time,
        key_days: float = 7.0,
        grace: float = 86_400.0,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._clock = clock
        self._key_age = key_days * 86_400.0
        self._grace = grace
        self._lock = threading.Lock()
        self._db = self._open()

    # -- the four calls ----------------------------------------------------------------------------

    def issue(
        self,
        claims: Claims,
        *,
        ttl: float,
        channel: Channel = "token",
        snapshot: Mapping[str, Any] | None = None,
        fallback: bool = False,
        reuse: bool = False,
    ) -> str:
        """A new handle for ``claims``, valid ``ttl`` seconds.

        ``reuse`` returns the open (unspent, unexpired) elicitation handle for the same claims
        instead, so the question re-rendered on each 2026-07-28 round names the same approval.
        """
        now = self._clock()
        with self._transaction() as db:
            if reuse:
                row = db.execute(
                    "SELECT ref FROM approvals WHERE owner=? AND tool=? AND plan=? AND etag=? AND channel=? "
                    "AND spent IS NULL AND expires>=? AND ref IS NOT NULL ORDER BY issued DESC LIMIT 1",
                    (claims.owner, claims.tool, claims.plan, claims.etag, channel, now),
                ).fetchone()
                if row is not None:
                    return str(row[0])
            nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
            handle = f"{nonce}.{_mac(self._current_key(db, now), nonce)}"
            db.execute(
                "INSERT INTO approvals (id, ref, owner, tool, plan, etag, channel, fallback, snapshot, issued, "
                "expires) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    _id(nonce),
                    handle if channel == "elicitation" else None,
                    claims.owner,
                    claims.tool,
                    claims.plan,
                    claims.etag,
                    channel,
                    int(fallback),
                    json.dumps(dict(snapshot or {}), default=str),
                    now,
                    now + ttl,
                ),
            )
        return handle

    def redeem(self, handle: str, claims: Claims) -> Pending:
        """Spend ``handle`` for exactly ``claims``, or raise ConfirmationError saying why not.

        Checked in the order a person would want to hear it: not ours, another session, another
        tool, already used, expired; then a referral that changed since the preview (StaleConfirmation,
        answered with a fresh preview; the handle stays unspent); last other arguments.
        """
        now = self._clock()
        with self._transaction() as db:
            pending = self._lookup(db, handle, now)
            if pending is None:
                raise _not_ours()
            _check(pending, claims, now)
            spent = db.execute(
                "UPDATE approvals SET spent=? WHERE id=? AND spent IS NULL", (now, _id(_nonce(handle)))
            )
            if spent.rowcount != 1:  # pragma: no cover - the transaction holds the write lock
                raise _used()
        return Pending(
            pending.claims,
            pending.channel,
            pending.issued,
            pending.expires,
            now,
            pending.fallback,
            pending.snapshot,
        )

    def peek(self, handle: str) -> Pending | None:
        """The approval behind ``handle`` (spent or not), or None for a handle that is not ours."""
        with self._transaction(write=False) as db:
            return self._lookup(db, handle, self._clock())

    def purge(self) -> int:
        """Forget approvals that expired more than ``grace`` ago, and keys nobody can still need."""
        now = self._clock()
        with self._transaction() as db:
            gone = db.execute("DELETE FROM approvals WHERE expires < ?", (now - self._grace,)).rowcount
            keys = [r[0] for r in db.execute("SELECT created FROM approval_keys ORDER BY created DESC")]
            # a key stays while the key that replaced it is younger than the grace period
            for successor, old in itertools.pairwise(keys):
                if successor < now - self._grace:
                    db.execute("DELETE FROM approval_keys WHERE created=?", (old,))
        return int(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- private -----------------------------------------------------------------------------------

    def _lookup(self, db: sqlite3.Connection, handle: str, now: float) -> Pending | None:
        nonce, _, mac = handle.partition(".")
        if not nonce or not mac or len(handle) > TOKEN_MAX_LENGTH:
            return None
        keys = [bytes(r[0]) for r in db.execute("SELECT secret FROM approval_keys ORDER BY created DESC")]
        if not any(hmac.compare_digest(mac, _mac(key, nonce)) for key in keys):
            return None
        row = db.execute("SELECT * FROM approvals WHERE id=?", (_id(nonce),)).fetchone()
        if row is None:
            return None
        return Pending(
            claims=Claims(row["owner"], row["tool"], row["plan"], row["etag"]),
            channel=row["channel"],
            issued=row["issued"],
            expires=row["expires"],
            spent=row["spent"],
            fallback=bool(row["fallback"]),
            snapshot=json.loads(row["snapshot"]),
        )

    def _current_key(self, db: sqlite3.Connection, now: float) -> bytes:
        """The newest key, made anew when it is older than ``key_days`` (inside the caller's lock)."""
        row = db.execute("SELECT created, secret FROM approval_keys ORDER BY created DESC LIMIT 1").fetchone()
        if row is not None and row[0] > now - self._key_age:
            return bytes(row[1])
        key = secrets.token_bytes(32)
        db.execute("INSERT OR REPLACE INTO approval_keys (created, secret) VALUES (?, ?)", (now, key))
        return key

    def _transaction(self, *, write: bool = True) -> _Transaction:
        return _Transaction(self._db, self._lock, write)

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True)
            for candidate in (
                self.path,
                *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")),
            ):
                if candidate.is_symlink():  # SQLite would write through a planted link
                    raise ConfigError(f"{candidate} is a symbolic link; refusing to keep approvals there.")
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                if hasattr(os, "fchmod"):  # POSIX; on the file opened, never through a link
                    os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")  # -wal/-shm take the database file's mode
        db.row_factory = sqlite3.Row
        db.executescript(_SCHEMA)
        return db


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: the database's write lock is what makes redemption single-use."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, write: bool) -> None:
        self._db, self._lock, self._write = db, lock, write

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._lock.release()


def _check(pending: Pending, claims: Claims, now: float) -> None:
    have = pending.claims
    if have.owner != claims.owner:
        raise ConfirmationError(
            "This confirm token was issued to another session; nothing was written.",
            hint="Call the tool without confirm_token to get a preview and a token for this session.",
        )
    if have.tool != claims.tool:
        raise ConfirmationError(
            f"This confirm token was issued for {have.tool}, not {claims.tool}.",
            hint="Call the tool without confirm_token to get a fresh preview.",
        )
    if pending.spent is not None:
        raise _used()
    if now > pending.expires:
        raise ConfirmationError(
            "This confirm token has expired; nothing was written.",
            hint="Call again without confirm_token to get a fresh preview.",
        )
    if have.etag != claims.etag:
        raise StaleConfirmation(
            "The referral changed after the preview was approved; nothing was written.",
            hint="Show the person the new preview and ask again.",
        )
    if have.plan != claims.plan:
        raise ConfirmationError(
            "The arguments differ from the ones the person approved; nothing was written.",
            hint="Call again without confirm_token to preview the new change and ask the person again.",
        )


def _not_ours() -> ConfirmationError:
    return ConfirmationError(
        "This confirm token is not valid here (it was not issued by this server, or it was mistyped).",
        hint="Call the tool without confirm_token to get a preview and a token.",
    )


def _used() -> ConfirmationError:
    return ConfirmationError(
        "This confirm token was already used; each token writes once.",
        hint="Call again without confirm_token if another change is wanted.",
    )


def _nonce(handle: str) -> str:
    return handle.partition(".")[0]


def _id(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _mac(key: bytes, nonce: str) -> str:
    return _b64(hmac.new(key, nonce.encode(), hashlib.sha256).digest()[:_MAC_BYTES])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
