"""HTTP sessions on a real 127.0.0.1 socket: bounded per client and in total without locking a client
out (its least recently used idle session is closed instead of a 503), and a client that disconnects
mid-call costs one log line, not a traceback."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.config import Settings
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.server.app import build_server
from pcref_mcp.server.http import SessionBounds, http_app
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.server.sdk_adapter import open_sessions
from tests.reliability.test_http_transport import HEADERS, INIT
from tests.serving import free_port, serve_in_thread, tls


class Running:
    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.base = f"http://127.0.0.1:{port}/mcp"

    @property
    def bounds(self) -> SessionBounds:
        assert isinstance(self.app, SessionBounds)
        return self.app

    def live(self) -> int:
        return len(open_sessions(self.bounds.manager))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as started:

        def start(**overrides: Any) -> Running:
            settings = Settings(
                journal_path=tmp_path / "journal.sqlite3", sandbox_db=tmp_path / "s.db", **overrides
            )
            server = build_server(
                settings, runtime=Runtime(settings, sandbox_app=create_app(SandboxConfig(seed_size=5)))
            )
            port = free_port()
            app = http_app(settings, server, host="127.0.0.1", port=port)
            started.enter_context(serve_in_thread(app, port=port, lifespan="on"))
            return Running(app, port)

        yield start


def _open(http: httpx.Client, base: str) -> str:
    r = http.post(base, json=INIT, headers=HEADERS)
    assert r.status_code == 200, (r.status_code, r.text)
    sid = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert http.post(base, json=note, headers={**HEADERS, "mcp-session-id": sid}).status_code == 202
    return sid


def _ping(http: httpx.Client, base: str, sid: str) -> int:
    body = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    return http.post(base, json=body, headers={**HEADERS, "mcp-session-id": sid}).status_code


def test_one_client_opening_sessions_in_a_loop_stays_within_its_bound(serve: Any) -> None:
    running = serve(http_max_sessions_per_client=8, http_max_sessions=50)
    with httpx.Client(timeout=30, verify=tls()) as http:
        sids = [_open(http, running.base) for _ in range(300)]  # bounded loop; never a 503
        assert running.live() <= 8
        assert _ping(http, running.base, sids[-1]) == 200  # the newest sessions work
        assert _ping(http, running.base, sids[0]) == 404  # the oldest were closed: re-initialize
        assert _open(http, running.base)  # and a new session is always admitted


def test_total_bound_evicts_the_least_recently_used_idle_session(serve: Any) -> None:
    running = serve(http_max_sessions_per_client=100, http_max_sessions=4)
    with httpx.Client(timeout=30, verify=tls()) as http:
        first, second, third, fourth = (_open(http, running.base) for _ in range(4))
        assert _ping(http, running.base, first) == 200  # first is now more recently used than second
        fifth = _open(http, running.base)
        assert running.live() <= 4
        assert _ping(http, running.base, second) == 404
        for sid in (first, third, fourth, fifth):
            assert _ping(http, running.base, sid) == 200


def test_client_disconnect_mid_call_is_one_log_line(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    running = serve()
    with httpx.Client(timeout=30, verify=tls()) as http:
        sid = _open(http, running.base)
    host, port = running.base.split("/")[2].split(":")
    call = (
        b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"search_referrals","arguments":{}}}'
    )
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        b"mcp-session-id: " + sid.encode() + b"\r\nContent-Length: " + str(len(call)).encode() + b"\r\n\r\n"
    )
    for cut in (len(call), len(call) // 2, 0):  # whole call, half the body, headers only
        for _ in range(3):
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(head + call[:cut])
            # closed before reading the answer (or before sending all of the body)
    with httpx.Client(timeout=30, verify=tls()) as http:
        assert _ping(http, running.base, sid) == 200  # the session survives its client's hiccup
    time.sleep(0.5)
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
