"""Failures a real client must survive, switchable while the sandbox runs.

A ``Faults`` object is shared by reference: tests (or ``POST /_sandbox/faults``) change its fields
and the next request sees them. Decisions draw from one seeded ``random.Random`` so a failing run
can be replayed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = ["ConnectionDropped", "FaultDecision", "Faults"]

DropMode = Literal["before", "after_write"]


class ConnectionDropped(ConnectionResetError):
    """Raised inside the ASGI app to drop the connection without an HTTP answer.

    Over a socket the client sees the connection close mid-response (httpx: ``RemoteProtocolError``).
    In-process through ``httpx.ASGITransport`` this exception itself reaches the client, so an
    in-process client should treat it like any transport error.
    """

    def __init__(self, applied: bool) -> None:
        super().__init__("sandbox dropped the connection" + (" after applying the write" if applied else ""))
        self.applied = applied


@dataclass
class FaultDecision:
    """What to do to one request, decided up front."""

    latency_ms: float = 0.0
    status: int | None = None  # 429, 500 or 503 instead of an answer
    drop: DropMode | None = None
    fail_after_write: bool = False  # apply the write, then answer 503 with an HTML page


@dataclass
class Faults:
    """Fault injection knobs.

    ``error_rate``: probability a request gets a 500 or 503 (half each) instead of being served.
    ``latency_ms``: added to every request. ``drop_rate``: probability the connection drops with no
    answer. ``drop_mode``: ``"before"`` drops before anything happens; ``"after_write"`` lets a POST or
    PATCH be applied and then drops, the ambiguous outcome a client must settle by reading back
    (reads still drop before). ``burst_429``: the next N requests get 429.

    Service behaviours a real Partner Center may show and the sandbox otherwise does not (each
    reproduces a case the client must not be fooled by):
    ``ignore_orderby``: ``$orderby`` is accepted and ignored (rows come in the default order).
    ``ignore_skip``: ``$skip`` is accepted and ignored (every page starts at the first row).
    ``ignore_filter``: ``$filter`` is accepted and ignored (every referral matches).
    ``page_count``: ``@odata.count`` counts the rows of the page, not all matches.
    ``no_next_link``: pages end without ``@odata.nextLink`` even when more rows follow.
    ``fail_after_write``: the next N writes are applied, then answered 503 with an HTML page.
    ``lagging_reads``: after a write, the next N reads of that referral come from a replica that has
    not seen it yet (the body and ETag from before the write).
    """

    error_rate: float = 0.0
    latency_ms: float = 0.0
    drop_rate: float = 0.0
    drop_mode: DropMode = "before"
    burst_429: int = 0
    ignore_orderby: bool = False
    ignore_skip: bool = False
    ignore_filter: bool = False
    page_count: bool = False
    no_next_link: bool = False
    fail_after_write: int = 0
    lagging_reads: int = 0
    seed: int | None = None
    _lagging: dict[str, list[Any]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)
        self._validate()

    def update(self, **changes: Any) -> None:
        """Change knobs at run time; unknown names raise ``ValueError``."""
        names = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(
                f"Unknown fault setting(s): {', '.join(sorted(unknown))}; use {', '.join(sorted(names))}."
            )
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)
            if "seed" in changes:
                self._rng.seed(self.seed)
        self._validate()

    def clear(self) -> None:
        self.update(
            error_rate=0.0,
            latency_ms=0.0,
            drop_rate=0.0,
            drop_mode="before",
            burst_429=0,
            ignore_orderby=False,
            ignore_skip=False,
            ignore_filter=False,
            page_count=False,
            no_next_link=False,
            fail_after_write=0,
            lagging_reads=0,
        )
        with self._lock:
            self._lagging.clear()

    def wrote(self, referral_id: str, before: str) -> None:
        """A write changed ``referral_id``; with ``lagging_reads`` its next reads see ``before``."""
        with self._lock:
            if self.lagging_reads > 0:
                self._lagging[referral_id] = [before, self.lagging_reads]

    def lagging(self, referral_id: str) -> str | None:
        """The stale body a lagging replica serves for this read, if any (one read consumed)."""
        with self._lock:
            stale = self._lagging.get(referral_id)
            if stale is None:
                return None
            stale[1] -= 1
            if stale[1] <= 0:
                del self._lagging[referral_id]
            return str(stale[0])

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def decide(self, *, is_write: bool) -> FaultDecision:
        """Roll the dice for one request (burst 429s are consumed here)."""
        with self._lock:
            decision = FaultDecision(latency_ms=float(self.latency_ms))
            if self.burst_429 > 0:
                self.burst_429 -= 1
                decision.status = 429
                return decision
            if is_write and self.fail_after_write > 0:
                self.fail_after_write -= 1
                decision.fail_after_write = True
                return decision
            if self.drop_rate and self._rng.random() < self.drop_rate:
                decision.drop = "after_write" if (is_write and self.drop_mode == "after_write") else "before"
                return decision
            if self.error_rate and self._rng.random() < self.error_rate:
                decision.status = 500 if self._rng.random() < 0.5 else 503
            return decision

    def _validate(self) -> None:
        for name in ("error_rate", "drop_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, not {value!r}.")
        if not isinstance(self.latency_ms, int | float) or self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms!r}.")
        for name in ("burst_429", "fail_after_write", "lagging_reads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}.")
        for name in ("ignore_orderby", "ignore_skip", "ignore_filter", "page_count", "no_next_link"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}.")
        if self.drop_mode not in ("before", "after_write"):
            raise ValueError(f"drop_mode must be 'before' or 'after_write', not {self.drop_mode!r}.")
