"""Pending approvals: what a person was shown and may still approve, kept until used or expired.

A confirm token a model must copy back has to be short (at most 64 characters), so it cannot
carry its own claims. The claims stay here, server-side, and the model gets a random handle plus
a MAC: ``<nonce>.<mac>`` (39 characters). The handle is checked against the call that redeems it
(owner, tool, plan digest, ETag, unspent, unexpired) and spent by one conditional update in the
store (one round trip), so it writes at most once even when two processes, or two replicas, race to
redeem it; only a refused handle is read again, to say why.

Kept in the store (:mod:`pcref_mcp.store`): by default the SQLite file in the user's data dir
(file 0600, dir 0700), so that a token issued by one stdio process is redeemed by the next (some
clients start a fresh server per call); PostgreSQL for a team server, where any replica redeems any
replica's token, once. The MAC keys live in the store too; a new key is made every ``key_days`` and
the previous one is still accepted for ``grace`` seconds, longer than any approval lives. Only a hash
of each nonce is stored, so the store alone does not yield a usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pcref_mcp.errors import ConfirmationError, StaleConfirmation

if TYPE_CHECKING:
    from pcref_mcp.store.base import Store

__all__ = ["TOKEN_MAX_LENGTH", "ApprovalStore", "Claims", "Pending"]

TOKEN_MAX_LENGTH = 64
Channel = Literal["token", "elicitation", "page"]  # page: approved on the approval page

_NONCE_BYTES = 16  # 22 characters of base64url
_MAC_BYTES = 12  # 16 characters of base64url
_PURPOSE = "approval"  # their MAC keys in the store's key table


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
    """Issues, redeems (once) and forgets approvals; safe across threads, processes and replicas.

    ``ApprovalStore(path)`` keeps them in a SQLite file of its own; ``ApprovalStore(store)`` in the
    shared :class:`~pcref_mcp.store.Store`, where every replica sees the same approvals and keys.
    """

    def __init__(
        self,
        where: Path | str | Store | None,
        *,
        clock: Callable[[], float] = time.time,
        key_days: float = 7.0,
        grace: float = 86_400.0,
    ) -> None:
        from pcref_mcp.store import open_store  # not at import: a stdio start does not load the store

        self.store = open_store(where)
        self.path: Path | None = getattr(self.store, "path", None)
        self._clock = clock
        self._key_age = key_days * 86_400.0
        self._grace = grace
        # the store's keys (newest first) as last read: a MAC none of them verifies reads them again
        # (another replica may have made a newer one), and signing re-reads once the newest is due
        # for renewal, so a call costs no key round trip while the keys stand
        self._keys: list[tuple[float, bytes]] | None = None

    # -- the four calls ----------------------------------------------------------------------------

    async def issue(
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
        if reuse:
            ref = await self.store.approval_open(_claims(claims), channel, now)
            if ref is not None:
                return ref
        nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
        handle = f"{nonce}.{_mac(await self._current_key(now), nonce)}"
        await self.store.approval_insert(
            {
                "id": _id(nonce),
                "ref": handle if channel == "elicitation" else None,
                "owner": claims.owner,
                "tool": claims.tool,
                "plan": claims.plan,
                "etag": claims.etag,
                "channel": channel,
                "fallback": bool(fallback),
                "snapshot": json.dumps(dict(snapshot or {}), default=str),
                "issued": now,
                "expires": now + ttl,
            }
        )
        return handle

    async def redeem(self, handle: str, claims: Claims) -> Pending:
        """Spend ``handle`` for exactly ``claims``, or raise ConfirmationError saying why not.

        Checked in the order a person would want to hear it: not ours, another session, another
        tool, already used, expired; then a referral that changed since the preview (StaleConfirmation,
        answered with a fresh preview; the handle stays unspent); last other arguments. Spending is
        one conditional update in the store, so of two replicas racing exactly one wins.
        """
        now = self._clock()
        if not await self._signed(handle):
            raise _not_ours()
        # the usual case in one round trip: every check below, as one conditional update
        row = await self.store.approval_redeem(_id(_nonce(handle)), _claims(claims), now)
        if row is not None:
            return _pending(row)
        # refused: read it to say why (nothing was spent)
        pending = await self._lookup(handle)
        if pending is None:
            raise _not_ours()
        _check(pending, claims, now)
        raise _used()  # it passed every check after all: another caller spent it meanwhile

    async def peek(self, handle: str) -> Pending | None:
        """The approval behind ``handle`` (spent or not), or None for a handle that is not ours."""
        return await self._lookup(handle)

    async def purge(self) -> int:
        """Forget approvals that expired more than ``grace`` ago, and keys nobody can still need."""
        now = self._clock()
        gone = await self.store.approval_purge(now - self._grace)
        keys = [created for created, _ in await self.store.keys(_PURPOSE)]
        # a key stays while the key that replaced it is younger than the grace period
        for successor, old in itertools.pairwise(keys):
            if successor < now - self._grace:
                await self.store.drop_key(_PURPOSE, old)
        self._keys = None
        return int(gone)

    async def aclose(self) -> None:
        await self.store.close()

    def close(self) -> None:
        """Close an approval store's own SQLite file (sync, for tests)."""
        self.store.close_now()

    # -- private -----------------------------------------------------------------------------------

    async def _signed(self, handle: str) -> bool:
        """The handle's MAC is one of ours (read the keys again before saying no: another replica
        may have made a newer one)."""
        nonce, _, mac = handle.partition(".")
        if not nonce or not mac or len(handle) > TOKEN_MAX_LENGTH:
            return False
        for fresh in (False, True):
            if any(hmac.compare_digest(mac, _mac(key, nonce)) for _, key in await self._known_keys(fresh)):
                return True
        return False

    async def _lookup(self, handle: str) -> Pending | None:
        if not await self._signed(handle):
            return None
        row = await self.store.approval_get(_id(_nonce(handle)))
        if row is None:
            return None
        return _pending(row)

    async def _current_key(self, now: float) -> bytes:
        """The newest key, made anew when it is older than ``key_days``. Two replicas that both make
        one keep both: every key verifies, the newest signs."""
        keys = await self._known_keys()
        if not (keys and keys[0][0] > now - self._key_age):
            keys = await self._known_keys(True)
        if keys and keys[0][0] > now - self._key_age:
            return keys[0][1]
        key = secrets.token_bytes(32)
        await self.store.add_key(_PURPOSE, now, key)
        self._keys = None
        return key

    async def _known_keys(self, fresh: bool = False) -> list[tuple[float, bytes]]:
        if self._keys is None or fresh:
            self._keys = list(await self.store.keys(_PURPOSE))
        return self._keys


def _pending(row: Mapping[str, Any]) -> Pending:
    return Pending(
        claims=Claims(row["owner"], row["tool"], row["plan"], row["etag"]),
        channel=row["channel"],
        issued=row["issued"],
        expires=row["expires"],
        spent=row["spent"],
        fallback=bool(row["fallback"]),
        snapshot=json.loads(row["snapshot"]),
    )


def _claims(claims: Claims) -> dict[str, str]:
    return {"owner": claims.owner, "tool": claims.tool, "plan": claims.plan, "etag": claims.etag}


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
