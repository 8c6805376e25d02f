"""A mixed workload of simulated people against a pcref-mcp URL: search, get, update with approval.

Each person works their own referrals (as a sales team does), one call at a time: a search, a get,
then an update in two calls (preview → confirm token → confirmed write). Each person sends their own
bearer (a team server: their own sign-in, so 50 people are 50 principals) or all send one (the
single-user HTTP mode). Raw JSON-RPC over HTTP (stateless, 2025-06-18) keeps the client's own cost
small and equal for every deployment measured.

What a person does when the server cannot be reached tells lost from duplicated writes:
reads and previews are retried; a confirm call whose answer never came is retried once with the
same token (the token writes at most once: "already used" means the first attempt spent it) and
otherwise left *in doubt* for the journal to settle. Every confirmed write sets the referral's deal
value to a number unique to that write, so the service's state names the write that made it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

__all__ = ["Outcome", "Unanswered", "Workload"]

PROTOCOL = "2025-06-18"


@dataclass
class Outcome:
    """What the people saw: per-call latencies, acknowledged and unknown writes, errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"search": [], "get": [], "update": []})
    calls: int = 0
    retries: int = 0
    acknowledged: dict[int, tuple[str, int]] = field(default_factory=dict)  # change_id -> (referral, value)
    writers: dict[int, int] = field(default_factory=dict)  # change_id -> the person (0-based) who made it
    unknown: list[tuple[str, int]] = field(default_factory=list)  # (referral, value) never answered
    refused: list[str] = field(default_factory=list)  # tool errors (a person would read them)
    wall: float = 0.0

    @property
    def throughput(self) -> float:
        return self.calls / self.wall if self.wall else 0.0


Bearer = str | Sequence[str] | Callable[[int], str]


class Workload:
    """``bearer``: one token for everybody, a token per person (a list), or ``person -> token``."""

    def __init__(
        self,
        url: str,
        bearer: Bearer,
        *,
        people: int = 50,
        calls: int = 500,
        timeout: float = 60.0,
        on_progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.url = url
        self.people = people
        self.budget = calls
        self.on_progress = on_progress
        self._bearer = bearer
        self._headers: dict[int, dict[str, str]] = {}
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._values = itertools.count(1_000_001)
        self._taken = 0

    async def run(self) -> Outcome:
        outcome = Outcome()
        limits = httpx.Limits(max_connections=self.people + 10, max_keepalive_connections=self.people + 10)
        async with httpx.AsyncClient(timeout=self._timeout, limits=limits) as http:
            mine = await self._assign(http)
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for person in range(self.people):
                    tg.start_soon(self._person, http, person, mine[person], outcome)
            outcome.wall = time.perf_counter() - started
        return outcome

    # -- one person -----------------------------------------------------------------------------------

    async def _person(
        self, http: httpx.AsyncClient, person: int, referrals: list[str], outcome: Outcome
    ) -> None:
        for step in itertools.count():
            referral = referrals[step % len(referrals)]
            if not await self._take(1, outcome):
                return
            await self._read(
                http,
                person,
                "search",
                "search_referrals",
                {"filters": {"status": ["Active"]}, "limit": 5},
                outcome,
            )
            if not await self._take(1, outcome):
                return
            await self._read(http, person, "get", "get_referral", {"referral_id": referral}, outcome)
            if not await self._take(2, outcome):
                return
            await self._update(http, person, referral, next(self._values), outcome)

    async def _update(
        self, http: httpx.AsyncClient, person: int, referral: str, value: int, outcome: Outcome
    ) -> None:
        args = {"referral_id": referral, "changes": [{"field": "deal value", "value": value}]}
        started = time.perf_counter()
        preview = await self._retrying(http, person, "update_field", args, outcome)
        if preview is None or preview.get("status") != "confirmation_required":
            outcome.refused.append(f"preview: {preview}")
            return
        confirmed = {**args, "confirm_token": preview["confirm_token"]}
        for attempt in range(2):
            try:
                answer = await self.call(http, "update_field", confirmed, person=person)
            except Unanswered:
                outcome.retries += 1
                await anyio.sleep(0.2)
                continue
            if answer.get("status") == "applied":
                outcome.acknowledged[int(answer["change_id"])] = (referral, value)
                outcome.writers[int(answer["change_id"])] = person
            elif attempt and any(
                m in str(answer.get("error", "")) for m in ("already used", "nothing to change")
            ):
                outcome.unknown.append((referral, value))  # the first attempt spent it: the journal knows
            else:
                outcome.refused.append(f"confirm: {answer}")
            outcome.latencies["update"].append(time.perf_counter() - started)
            return
        outcome.unknown.append((referral, value))

    async def _read(
        self,
        http: httpx.AsyncClient,
        person: int,
        kind: str,
        tool: str,
        args: dict[str, Any],
        outcome: Outcome,
    ) -> None:
        started = time.perf_counter()
        answer = await self._retrying(http, person, tool, args, outcome)
        if answer is None or "error" in answer:
            outcome.refused.append(f"{tool}: {answer}")
            return
        outcome.latencies[kind].append(time.perf_counter() - started)

    # -- wire -----------------------------------------------------------------------------------------

    async def _take(self, calls: int, outcome: Outcome) -> bool:
        if self._taken + calls > self.budget:
            return False
        self._taken += calls
        outcome.calls += calls
        if self.on_progress is not None:
            await self.on_progress(self._taken)
        return True

    async def _retrying(
        self, http: httpx.AsyncClient, person: int, tool: str, args: dict[str, Any], outcome: Outcome
    ) -> dict[str, Any] | None:
        """Reads and previews change nothing: asked again until answered (a replica restarts)."""
        for _ in range(20):
            try:
                return await self.call(http, tool, args, person=person)
            except Unanswered:
                outcome.retries += 1
                await anyio.sleep(0.25)
        return None

    async def call(
        self, http: httpx.AsyncClient, tool: str, args: dict[str, Any], *, person: int = 0
    ) -> dict[str, Any]:
        """One tool call as ``person``: its structured result, or ``{"error": text}`` for a refusal
        or an HTTP error; raises :class:`Unanswered` when no answer came (it may have been served)."""
        body = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": "tools/call",
            "params": {"name": tool, "arguments": args},
        }
        try:
            response = await http.post(self.url, json=body, headers=self._headers_of(person))
        except httpx.TransportError as exc:
            raise Unanswered(str(exc)) from exc
        if response.status_code in (502, 503, 504):
            raise Unanswered(str(response.status_code))
        if response.status_code != 200:
            return {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
        message = _message(response)
        if message is None:
            raise Unanswered("no JSON-RPC answer in the response")
        if "error" in message:
            return {"error": message["error"].get("message")}
        result = message["result"]
        if result.get("isError"):
            return {"error": " ".join(c.get("text", "") for c in result.get("content", []))}
        structured = result.get("structuredContent")
        if structured is None:
            structured = json.loads(result["content"][0]["text"])
        return dict(structured)

    async def _assign(self, http: httpx.AsyncClient) -> list[list[str]]:
        """Each person's own referrals: Active ones, dealt out round-robin."""
        ids: list[str] = []
        cursor: str | None = None
        while len(ids) < self.people * 2:
            args: dict[str, Any] = {"filters": {"status": ["Active"]}, "limit": 50}
            if cursor:
                args["cursor"] = cursor
            page = await self.call(http, "search_referrals", args)
            ids += [row["id"] for row in page.get("rows", [])]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if not ids:
            raise RuntimeError(f"no Active referrals to work on: {page}")
        return [ids[i :: self.people] or [ids[i % len(ids)]] for i in range(self.people)]

    def _headers_of(self, person: int) -> dict[str, str]:
        headers = self._headers.get(person)
        if headers is None:  # a token is made once per person (signing one costs the load generator)
            bearer = self._bearer
            token = (
                bearer if isinstance(bearer, str) else bearer(person) if callable(bearer) else bearer[person]
            )
            headers = self._headers[person] = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
                "MCP-Protocol-Version": PROTOCOL,
            }
        return headers


class Unanswered(Exception):
    """The request may or may not have reached a replica; no answer came."""


def _message(response: httpx.Response) -> dict[str, Any] | None:
    if response.headers.get("content-type", "").startswith("application/json"):
        data: dict[str, Any] = response.json()
        return data
    for line in response.text.splitlines():
        if line.startswith("data:"):
            data = json.loads(line[5:].strip())
            if "result" in data or "error" in data:
                return dict(data)
    return None
