"""Recorded exchanges with the service: what ``pcref-mcp doctor --record DIR`` saves and tests replay.

One JSON file per exchange, named ``NNN-<method>-<what>.json``::

    {"request": {"method": "GET", "path": "/v1.0/engagements/referrals", "query": "$top=2"},
     "response": {"status": 200, "headers": {"etag": "…"}, "body": {…}},
     "note": "why this exchange is here (hand-written fixtures say which oddity they hold)"}

Only what a replay needs is kept: never the request headers (the bearer token lives there), never a
request body, and the response body with contact details scrubbed (:func:`scrub`): e-mail addresses,
phone numbers, people's names and titles, street lines and postal codes. Company names, ids,
statuses, amounts and dates stay, because they are what a service's oddities are made of.

:class:`Recorder` is an httpx transport that saves every exchange passing through it;
:class:`Replay` is one that answers from a directory of such files (exact method, path and query
first, then method and path), so a recorded session runs again without the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx

__all__ = ["CONTACT_KEYS", "Exchange", "Recorder", "Replay", "load_exchanges", "scrub"]

# Keys whose values identify or reach a person (Member, Address): replaced, whatever they hold.
CONTACT_KEYS: dict[str, str] = {
    "email": "scrubbed@example.invalid",
    "phoneNumber": "+00 000 000 0000",
    "firstName": "Scrubbed",
    "lastName": "Person",
    "title": "Scrubbed title",
    "addressLine1": "Scrubbed street 1",
    "addressLine2": "",
    "postalCode": "00000",
}
_CONTACT_KEYS_LOWER = {k.lower(): v for k, v in CONTACT_KEYS.items()}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()./-]{6,}\d(?![\w-])")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEPT_HEADERS = ("content-type", "etag", "location", "retry-after", "request-id")


def scrub(value: Any, key: str | None = None) -> Any:
    """``value`` with contact details replaced: by key (any letter case, so PascalCase documents are
    scrubbed too), and e-mail addresses / phone numbers inside any text (notes, invite notes)."""
    if isinstance(value, dict):
        return {k: scrub(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key) for v in value]
    if key is not None and key.lower() in _CONTACT_KEYS_LOWER and value not in (None, ""):
        return _CONTACT_KEYS_LOWER[key.lower()]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def _scrub_text(text: str) -> str:
    text = _EMAIL.sub("scrubbed@example.invalid", text)
    if _GUID.match(text) or re.fullmatch(r"[\d.:TZ+-]+", text):  # ids, dates and plain numbers stay
        return text
    return _PHONE.sub("+00 000 000 0000", text)


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer."""

    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str]
    body: Any
    note: str | None = None
    name: str = ""

    def query_params(self) -> list[tuple[str, str]]:
        return sorted(parse_qsl(self.query, keep_blank_values=True))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "request": {"method": self.method, "path": self.path, "query": self.query},
            "response": {"status": self.status, "headers": self.headers, "body": self.body},
        }
        if self.note:
            doc["note"] = self.note
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any], name: str = "") -> Exchange:
        request, response = doc["request"], doc["response"]
        return cls(
            method=str(request["method"]).upper(),
            path=str(request["path"]),
            query=str(request.get("query") or ""),
            status=int(response["status"]),
            headers={str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()},
            body=response.get("body"),
            note=doc.get("note"),
            name=name,
        )


class Recorder(httpx.AsyncBaseTransport):
    """Passes every request to ``inner`` and saves the exchange, scrubbed, into ``directory``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, directory: Path | str) -> None:
        self._inner = inner
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.saved: list[Path] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self.saved.append(self._save(request, response, content))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _save(self, request: httpx.Request, response: httpx.Response, content: bytes) -> Path:
        try:
            body: Any = json.loads(content) if content else None
        except (ValueError, UnicodeDecodeError):
            body = {"unreadable": f"{len(content)} bytes that are not JSON"}
        pairs = parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True)
        exchange = Exchange(
            method=request.method,
            path=request.url.path,
            query=urlencode([(k, _scrub_text(v)) for k, v in pairs], quote_via=quote, safe="$/'(),:"),
            status=response.status_code,
            headers={k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers},
            body=scrub(body),
        )
        what = "referral" if request.url.path.rstrip("/").count("/referrals/") else "referrals"
        path = self.directory / f"{len(self.saved) + 1:03d}-{request.method.lower()}-{what}.json"
        path.write_text(json.dumps(exchange.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def load_exchanges(directory: Path | str) -> list[Exchange]:
    """Every ``*.json`` exchange in ``directory``, in file-name order."""
    files = sorted(Path(directory).glob("*.json"))
    return [Exchange.from_json(json.loads(f.read_text(encoding="utf-8")), f.name) for f in files]


class Replay(httpx.AsyncBaseTransport):
    """Answers from recorded exchanges. A request matches on method, path and query (as a set of
    parameters, decoded); failing that, on method and path. Each exchange answers once unless
    ``reuse`` (then the last match keeps answering). No match is a 404 naming what was asked, so a
    test sees exactly which request had no recording."""

    def __init__(self, exchanges: Iterable[Exchange], *, reuse: bool = True) -> None:
        self._exchanges = list(exchanges)
        self._used: set[int] = set()
        self.reuse = reuse
        self.requests: list[httpx.Request] = []

    @classmethod
    def from_directory(cls, directory: Path | str, **kw: Any) -> Replay:
        return cls(load_exchanges(directory), **kw)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        found = self._match(request)
        if found is None:
            body = {
                "error": {
                    "code": "itemNotFound",
                    "message": f"no recording for {request.method} {request.url}",
                }
            }
            return httpx.Response(404, json=body, request=request)
        headers = dict(found.headers)
        content = b"" if found.body is None else json.dumps(found.body).encode()
        if content:
            headers.setdefault("content-type", "application/json")
        return httpx.Response(found.status, headers=headers, content=content, request=request)

    def _match(self, request: httpx.Request) -> Exchange | None:
        params = sorted(parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True))
        candidates = [
            (i, e)
            for i, e in enumerate(self._exchanges)
            if e.method == request.method and e.path == request.url.path
        ]
        for exact in (True, False):
            pool = [(i, e) for i, e in candidates if not exact or e.query_params() == params]
            fresh = [(i, e) for i, e in pool if i not in self._used]
            if fresh:
                index, exchange = fresh[0]
                self._used.add(index)
                return exchange
            if pool and self.reuse:
                return pool[-1][1]
        return None
