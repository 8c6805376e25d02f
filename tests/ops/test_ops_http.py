"""The operator's HTTP surface on a real 127.0.0.1 socket (uvicorn in a thread), single-user
``serve --http`` as the CLI wires it (:func:`pcref_mcp.ops.operate` in front of ``http_app``):
health, readiness and its failure modes, /metrics behind its own token counting a scripted workload
exactly with bounded labels, request ids on responses and in error text, and a drain."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
import pytest

from deploy.workload import Workload
from pcref_mcp import metrics
from tests.ops.conftest import METRICS_TOKEN

pytestmark = pytest.mark.anyio


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and found == labels:
            return float(value)
    return 0.0


def test_healthz_and_readyz_answer_without_any_credentials(serve: Any) -> None:
    served = serve()
    alive = served.get("/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = served.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "store": "ok", "migrations": "current", "backend": "unknown"}


async def test_readyz_is_unready_while_the_store_does_not_answer_and_ready_after(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve()
    store = served.runtime.store
    real = store.schema_version

    async def down() -> int:
        raise OSError("connection refused by db.internal.example:5432")

    monkeypatch.setattr(store, "schema_version", down)
    served.gate.readiness._cached = None
    unready = served.get("/readyz")
    assert unready.status_code == 503
    assert unready.json() == {
        "status": "unready",
        "store": "unreachable",
        "migrations": "unknown",
        "backend": "unknown",
    }
    assert "example" not in unready.text and "5432" not in unready.text  # nothing of the error leaks
    monkeypatch.setattr(store, "schema_version", real)
    served.gate.readiness._cached = None
    assert served.get("/readyz").status_code == 200


async def test_readyz_is_unready_when_the_schema_is_behind_this_version(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve()

    async def old() -> int:
        return 1

    monkeypatch.setattr(served.runtime.store, "schema_version", old)
    served.gate.readiness._cached = None
    behind = served.get("/readyz")
    assert behind.status_code == 503 and behind.json()["migrations"] == "behind"


def test_metrics_are_absent_without_their_token_and_refused_with_a_wrong_one(serve: Any) -> None:
    off = serve(metrics_token=None)
    assert off.get("/metrics").status_code == 404
    assert off.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}").status_code == 404
    metrics.reset_for_tests()
    on = serve()
    assert on.get("/metrics").status_code == 401
    assert on.get("/metrics", Authorization="Bearer " + "x" * 40).status_code == 401
    assert on.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}").status_code == 200


async def test_metrics_count_a_scripted_workload_exactly_with_bounded_labels(serve: Any) -> None:
    served = serve()
    client = Workload(f"{served.base}/mcp", "unused")
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        found = await client.call(http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 3})
        referral = found["rows"][0]["id"]
        args = {"referral_id": referral, "changes": [{"field": "deal value", "value": 777001}]}
        previews = [await client.call(http, "update_field", args) for _ in range(2)]
        done = await client.call(
            http, "update_field", {**args, "confirm_token": previews[0]["confirm_token"]}
        )
        assert done["status"] == "applied", done
        other = {"referral_id": referral, "changes": [{"field": "deal value", "value": 777002}]}
        again = await client.call(
            http, "update_field", {**other, "confirm_token": previews[0]["confirm_token"]}
        )
        assert "already used" in again.get("error", ""), again  # spent: refused
        wrong = await client.call(http, "get_referral", {"referral_id": "no-such-referral-0000"})
        assert "error" in wrong
    text = served.scrape()
    assert _sample(text, "pcref_tool_calls_total", tool="search_referrals", outcome="ok") == 1
    assert _sample(text, "pcref_tool_calls_total", tool="update_field", outcome="ok") == 3
    assert _sample(text, "pcref_tool_calls_total", tool="update_field", outcome="error") == 1
    assert _sample(text, "pcref_tool_calls_total", tool="get_referral", outcome="error") == 1
    assert _sample(text, "pcref_approvals_total", path="token", decision="asked") == 2
    assert _sample(text, "pcref_approvals_total", path="token", decision="approved") == 1
    assert _sample(text, "pcref_approvals_total", path="token", decision="refused") == 1
    assert _sample(text, "pcref_writes_started_total", kind="update") == 1
    assert _sample(text, "pcref_writes_total", outcome="applied") == 1
    assert _sample(text, "pcref_tool_call_seconds_count", tool="update_field") == 4
    assert _sample(text, "pcref_partner_center_requests_total", method="PATCH", status="2xx") == 1
    assert _sample(text, "pcref_partner_center_seconds_count", method="GET") >= 1
    assert _sample(text, "pcref_http_requests_total", route="/mcp", status="2xx") == 6
    assert _sample(text, "pcref_store_seconds_count", op="journal_outcome") == 1
    # no referral id, token or free text ever becomes a label
    assert referral not in text and previews[0]["confirm_token"] not in text
    assert "no-such-referral" not in text
    assert served.get("/readyz").json()["backend"] == "ok"


async def test_every_response_carries_a_request_id_and_an_error_names_it(serve: Any) -> None:
    served = serve()
    fresh = served.get("/nope")
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
    kept = served.get("/nope", **{"X-Request-Id": "nginx-1234abcd"})
    assert kept.headers["x-request-id"] == "nginx-1234abcd"
    odd = served.get("/nope", **{"X-Request-Id": "<script>alert(1)</script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", odd.headers["x-request-id"])
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_referral", "arguments": {"referral_id": "no-such-referral-0000"}},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
        "X-Request-Id": "req-feedface01",
    }
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        answer = await http.post(f"{served.base}/mcp", json=body, headers=headers)
    assert answer.headers["x-request-id"] == "req-feedface01"
    assert "(request id req-feedface01)" in answer.text


def test_a_draining_replica_is_unready_and_closes_every_connection_it_answers(serve: Any) -> None:
    served = serve()
    assert served.get("/nope").headers.get("connection") != "close"
    served.gate.begin_drain()
    draining = served.get("/readyz")
    assert draining.status_code == 503 and draining.json() == {"status": "draining"}
    assert served.get("/healthz").status_code == 200  # alive all the same
    assert served.get("/nope").headers.get("connection") == "close"
    assert _sample(served.scrape(), "pcref_draining") == 1


async def test_json_logs_carry_one_line_per_request_and_per_write_with_the_request_id(serve: Any) -> None:
    import io
    import json
    import logging

    from pcref_mcp.ops.logs import JsonFormatter

    served = serve()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pcref_mcp")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        client = Workload(f"{served.base}/mcp", "unused")
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            found = await client.call(
                http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 1}
            )
            args = {"referral_id": found["rows"][0]["id"], "changes": [{"field": "deal value", "value": 515}]}
            preview = await client.call(http, "update_field", args)
            confirm = {**args, "confirm_token": preview["confirm_token"]}
            body = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "update_field", "arguments": confirm},
            }
            headers = {**client._headers_of(0), "X-Request-Id": "req-json-000042"}
            await http.post(f"{served.base}/mcp", json=body, headers=headers)
        # the request's own line is written once its response has gone out: wait for it (bounded)
        with anyio.move_on_after(10):
            while not any(
                '"req-json-000042"' in line and '"event": "request"' in line
                for line in out.getvalue().splitlines()
            ):
                await anyio.sleep(0.05)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "req-json-000042"]
    events = sorted(line.get("event") for line in mine if line.get("event"))
    assert events == ["call", "request", "write"], mine
    write = next(line for line in mine if line.get("event") == "write")
    assert write["outcome"] == "applied" and isinstance(write["change_id"], int)
    request = next(line for line in mine if line.get("event") == "request")
    assert request["route"] == "/mcp" and request["status"] == 200 and request["method"] == "POST"
    assert all(preview["confirm_token"] not in json.dumps(line) for line in lines)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_readiness_asks_the_store_once_for_probes_that_arrive_together_and_once_a_second_when_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe storm against a store that takes the whole probe bound to fail: the probes that arrive
    while a check is out share its answer, and the answer is fresh for a second from when it came
    (not from when it was asked, which would make every check of a slow store stale at once)."""
    from types import SimpleNamespace

    from pcref_mcp.ops import health

    clock = _Clock()
    monkeypatch.setattr(health, "time", clock)
    asked: list[float] = []
    release = anyio.Event()

    class Store:
        dialect = "sqlite"

        async def schema_version(self) -> int:
            asked.append(clock.now)
            await release.wait()
            clock.now += health.PROBE_SECONDS  # as slow as the bound allows
            raise OSError("connection refused")

    readiness = health.Readiness(SimpleNamespace(live_runtime=SimpleNamespace(store=Store())))
    answers: list[tuple[bool, dict[str, str]]] = []

    async def probe() -> None:
        answers.append(await readiness.check())

    async with anyio.create_task_group() as probes:
        for _ in range(5):
            probes.start_soon(probe)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert len(asked) == 1 and len(answers) == 5
    assert all(not ready and body["store"] == "unreachable" for ready, body in answers)
    clock.now += 0.9  # within a second of the answer: from the cache
    assert (await readiness.check())[1]["store"] == "unreachable" and len(asked) == 1
    clock.now += 0.2  # a second after the answer: asked again
    await readiness.check()
    assert len(asked) == 2
