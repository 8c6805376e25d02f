"""JSON log lines (stable fields, only the documented ones, the request id and the person's id),
the journal's release on a clean stop (its own pending writes in doubt, nobody else's), and the
drain's signal handling (the first SIGTERM announces, the listener closes after; a second stops)."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp import calls
from pcref_mcp.identity import Principal, acting_as
from pcref_mcp.ops import drain
from pcref_mcp.ops.logs import JsonFormatter
from pcref_mcp.writes.journal import Journal

pytestmark = pytest.mark.anyio


def _line(record: logging.LogRecord) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return data


def _record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("pcref_mcp.journal", logging.INFO, __file__, 1, msg, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_a_json_line_has_the_documented_fields_the_request_id_and_the_persons_id_only() -> None:
    token = calls.set_request_id("req-0123456789")
    try:
        with acting_as(Principal(id="oid-42", name="ada@contoso.example", tenant="t")):
            line = _line(
                _record(
                    "write %s %s",
                    7,
                    "applied",
                    event="write",
                    change_id=7,
                    outcome="applied",
                    authorization="Bearer secret-token",  # not a documented field: never copied
                )
            )
    finally:
        calls.reset_request_id(token)
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "msg",
        "request_id",
        "person",
        "event",
        "change_id",
        "outcome",
    }
    assert line["msg"] == "write 7 applied" and line["request_id"] == "req-0123456789"
    assert line["person"] == "oid-42" and "contoso" not in json.dumps(line)
    assert "secret-token" not in json.dumps(line)


def test_a_line_outside_any_request_has_neither_request_id_nor_person() -> None:
    line = _line(_record("started"))
    assert set(line) == {"ts", "level", "logger", "msg"}


def test_a_traceback_stays_inside_its_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exc"]


async def test_release_marks_only_this_processs_pending_writes_in_doubt_and_releases_its_lease(
    tmp_path: Path,
) -> None:
    from pcref_mcp.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    mine, theirs = Journal(store), Journal(store)
    theirs._owner = mine._owner.replace(mine._owner.rsplit("|", 1)[-1], "another-instance")
    args: dict[str, Any] = dict(
        tool="update_field",
        kind="update",
        referral_id="r-1",
        correlation_id="c",
        operations=[],
        before_image={},
        etag_before='"1"',
    )
    in_flight = await mine.record_intent(**args)
    done = await mine.record_intent(**args)
    await mine.record_outcome(done, "applied", etag_after='"2"')
    other = await theirs.record_intent(**args)
    await mine.renew_lease()
    await theirs.renew_lease()
    assert await mine.release() == 1
    statuses = {e.id: e.status for e in await mine.recent(10, any_actor=True)}
    assert statuses == {in_flight: "in_doubt", done: "applied", other: "pending"}
    # its lease released (nothing of it pending any more); the other process's kept
    assert set(await store.leases([mine._owner, theirs._owner])) == {theirs._owner}
    assert await mine.release() == 0  # nothing left: a second stop marks nothing
    await store.close()


@pytest.fixture(autouse=True)
def _sse_streams_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's exit hook, which these tests call, also tells sse-starlette (process-wide) to end
    every stream: restored after each test so other tests' servers are unaffected."""
    from sse_starlette.sse import AppStatus

    monkeypatch.setattr(AppStatus, "should_exit", False)
    monkeypatch.setattr(
        AppStatus, "enable_automatic_graceful_drain", AppStatus.enable_automatic_graceful_drain
    )


def test_serving_keeps_the_streams_in_flight_open_until_they_finish() -> None:
    from sse_starlette.sse import AppStatus

    drain._keep_streams_open_while_draining()
    assert AppStatus.enable_automatic_graceful_drain is False


class _Gate:
    def __init__(self) -> None:
        self.draining = False

    def begin_drain(self) -> None:
        self.draining = True


def test_the_first_sigterm_announces_the_drain_and_only_then_stops_listening() -> None:
    import uvicorn

    gate = _Gate()
    config = uvicorn.Config(gate, timeout_graceful_shutdown=3, log_config=None)
    server = drain._draining_server(config, gate, announce=0.05)
    server.handle_exit(signal.SIGTERM, None)
    assert gate.draining and not server.should_exit  # still serving: unready, closing connections
    deadline = time.monotonic() + 30
    while not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.should_exit and not server.force_exit


def test_a_second_signal_while_draining_stops_at_once() -> None:
    import uvicorn

    gate = _Gate()
    server = drain._draining_server(uvicorn.Config(gate, log_config=None), gate, announce=60)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit
    server.announcing.join(5)  # the announcement was called off: it ends now, not in a minute
    assert not server.announcing.is_alive()


def test_without_an_announcement_the_first_signal_drains_and_stops_listening_at_once() -> None:
    """PCREF_DRAIN_ANNOUNCE_SECONDS=0 (nothing routes to this server): unready, and the listener
    closes straight away; the calls in flight are still waited for (not a forced exit)."""
    import uvicorn

    gate = _Gate()
    server = drain._draining_server(uvicorn.Config(gate, log_config=None), gate, announce=0)
    server.handle_exit(signal.SIGTERM, None)
    assert gate.draining and server.should_exit and not server.force_exit
    assert getattr(server, "announcing", None) is None
