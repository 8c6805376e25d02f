"""A tiny in-memory referrals service for httpx.MockTransport, with scripted failures.

Small on purpose: just enough of the API (list with $filter on externalReferenceId, nextLink paging,
get, create, patch with If-Match) to drive the client's retry and settle logic deterministically.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE = "https://pc.test/v1.0/engagements/"
TOKEN = "test-token-5f0c1b2a"


class Sleeps:
    """A fake sleep that records the delays asked for and moves a fake clock instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds


def referral_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "Contoso deal",
        "status": "New",
        "substatus": "Pending",
        "type": "Independent",
        "eTag": f'"{uuid.uuid4()}"',
        "details": {"dealValue": 1000, "currency": "USD", "notes": "n"},
        "customerProfile": {"name": "Contoso"},
    }
    doc.update(over)
    return doc


@dataclass
class Fault:
    """What to do to the next matching request."""

    method: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    exc: type[Exception] | None = None
    apply_first: bool = False  # process the request, then fail (the ambiguous case)


class FakeService:
    def __init__(self, *, page_size: int = 100) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[httpx.Request] = []
        self.page_size = page_size
        self.counts: Counter[str] = Counter()
        self.patch_returns_204 = False
        # A replica that has not seen a write yet: the next N reads of a referral after a write
        # return it as it was before (body and ETag).
        self.lagging_reads = 0
        self._stale: dict[str, list[Any]] = {}

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, n: int = 1, **over: Any) -> list[dict[str, Any]]:
        docs = [referral_doc(**over) for _ in range(n)]
        for doc in docs:
            self.store[doc["id"]] = doc
        return docs

    def fail(self, method: str, times: int = 1, **kw: Any) -> None:
        self.faults.extend(Fault(method, **kw) for _ in range(times))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.counts[request.method] += 1
        fault = next((f for f in self.faults if f.method in (request.method, "*")), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.apply_first:
                self._serve(request)
            if fault.exc is not None:
                if issubclass(fault.exc, httpx.HTTPError):
                    raise fault.exc("scripted failure", request=request)  # type: ignore[call-arg]
                raise fault.exc("scripted failure")
            body = fault.body if fault.body is not None else {"error": {"code": "x", "message": "boom"}}
            if isinstance(body, str | bytes):  # an HTML gateway page, a plain-text message
                headers = {"Content-Type": "text/plain", **fault.headers}
                return httpx.Response(fault.status or 500, content=body, headers=headers)
            return httpx.Response(fault.status or 500, json=body, headers=fault.headers)
        return self._serve(request)

    # --- the happy path -------------------------------------------------------------------------

    def _serve(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        m = re.fullmatch(r"/v1.0/(?:engagements/)?referrals(?:/([^/]+))?", path)
        if not m:
            return httpx.Response(404, json={"error": {"code": "itemNotFound", "message": "no route"}})
        rid = m.group(1)
        if request.method == "GET" and rid is None:
            return self._list(request)
        if request.method == "GET":
            stale = self._stale.get(rid)
            if stale is not None:
                stale[1] -= 1
                if stale[1] <= 0:
                    del self._stale[rid]
                return httpx.Response(200, json=stale[0], headers={"ETag": stale[0]["eTag"]})
            doc = self.store.get(rid)
            if doc is None:
                return httpx.Response(
                    404, json={"error": {"code": "itemNotFound", "message": "Referral not found"}}
                )
            return httpx.Response(200, json=doc, headers={"ETag": doc["eTag"]})
        if request.method == "POST":
            doc = json.loads(request.content)
            doc.setdefault("id", str(uuid.uuid4()))
            doc["eTag"] = f'"{uuid.uuid4()}"'
            self.store[doc["id"]] = doc
            return httpx.Response(201, json=doc)
        if request.method == "PATCH":
            doc = self.store.get(rid)
            if doc is None:
                return httpx.Response(
                    404, json={"error": {"code": "itemNotFound", "message": "Referral not found"}}
                )
            if_match = request.headers.get("If-Match")
            if if_match and if_match != doc["eTag"]:
                return httpx.Response(
                    412, json={"error": {"code": "preconditionFailed", "message": "ETag mismatch"}}
                )
            if self.lagging_reads:
                self._stale[rid] = [json.loads(json.dumps(doc)), self.lagging_reads]
            for op in json.loads(request.content):
                _apply(doc, op)
            doc["eTag"] = f'"{uuid.uuid4()}"'
            if self.patch_returns_204:
                return httpx.Response(204)
            return httpx.Response(200, json=doc)
        return httpx.Response(405)

    def _list(self, request: httpx.Request) -> httpx.Response:
        docs = list(self.store.values())
        flt = request.url.params.get("$filter")
        if flt:
            m = re.fullmatch(r"externalReferenceId eq '((?:[^']|'')*)'", flt)
            assert m, f"fake only understands externalReferenceId filters: {flt}"
            want = m.group(1).replace("''", "'")
            docs = [d for d in docs if d.get("externalReferenceId") == want]
        skip = int(request.url.params.get("$skiptoken", "0"))
        page = docs[skip : skip + self.page_size]
        body: dict[str, Any] = {"@odata.count": len(docs), "value": page}
        if skip + self.page_size < len(docs):
            # An absolute link with a shape the client must not rebuild (odd path, opaque token).
            body["@odata.nextLink"] = f"https://pc.test/v1.0/referrals?$skiptoken={skip + self.page_size}"
        return httpx.Response(200, json=body)


def _apply(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = op["path"].lstrip("/").split("/")
    node: Any = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[int(part)]
    last = parts[-1]
    if last == "-":
        node.append(op["value"])
    elif isinstance(node, list):
        node[int(last)] = op["value"]
    else:
        node[last] = op["value"]
