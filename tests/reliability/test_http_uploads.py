"""Stalled unauthenticated uploads against the team server: bounded, measured.

`pcref-mcp team --stand-in` runs as a subprocess on 127.0.0.1. 200 connections each send the headers
of a ``POST /mcp`` with a forged bearer token and ``Content-Length: 1000000``, then nearly all of the
body (999,000 bytes), then stall — never the last bytes, never a close. Before the token was checked
from the headers, the claims gate buffered each body while waiting for the rest: the server's memory
rose by about 185 MB and no connection got an answer. Now each gets its 401 from the headers alone
and is closed, the bodies are never read, and the server's resident memory (``VmRSS`` from
``/proc/<pid>/status``) stays flat. The figures go to docs/reliability.md; the test asserts the
answer every connection got and a memory bound far below the old growth, not a time.
"""

from __future__ import annotations

import re
import selectors
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.e2e.servers import PCREF, Running, free_port, http_server, process_env

CONNECTIONS = 200
DECLARED = 1_000_000
SENT = 999_000  # all but the last kilobyte: a server that reads the body waits for the rest forever
FORGED = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmdlZCIsInR5cCI6IkpXVCJ9.eyJ0aWQiOiJ4In0.Zm9yZ2Vk"
OLD_GROWTH_MB = 185  # measured on the code before this check (docs/reliability.md)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("uploads")
    port = free_port()
    argv = [str(PCREF), "team", "--stand-in", "--port", str(port), "--stand-in-port", str(free_port())]
    with http_server(tmp, argv, port=port, env=process_env(tmp, PCREF_LOG_LEVEL="WARNING")) as running:
        yield running


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found, status
    return int(found.group(1)) / 1024


def stalled_upload(port: int, connections: ExitStack) -> socket.socket:
    """Headers with a forged bearer and a 1 MB Content-Length, then 999,000 bytes, then nothing."""
    sock = connections.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {FORGED}\r\n"
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    )
    sock.sendall(head.encode())
    body = b"[" + b" " * (SENT - 1)
    try:
        sock.sendall(body)
    except OSError:  # the server answered from the headers and closed: the rest had nowhere to go
        pass
    return sock


def answers_of(sockets: list[socket.socket], within: float = 30.0) -> list[str]:
    """What each connection got back; "no answer" for those with nothing to read within ``within``
    seconds in all (a bound that keeps a failing run short, not a measured time)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    ready: set[socket.socket] = set()
    deadline = time.monotonic() + within
    while len(ready) < len(sockets) and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(left):
            ready.add(key.fileobj)  # type: ignore[arg-type]
            selector.unregister(key.fileobj)
    selector.close()
    return [answer_of(sock) if sock in ready else "no answer" for sock in sockets]


def answer_of(sock: socket.socket) -> str:
    """The status line the server sent back, or how the connection ended without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return data.decode("latin-1") or "closed"
            data += chunk
    except TimeoutError:
        return "no answer"
    except ConnectionResetError:
        return data.decode("latin-1") or "reset"
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def test_stalled_uploads_with_a_forged_bearer_are_refused_from_the_headers(
    team: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    before = rss_mb(team.proc.pid)
    with ExitStack() as connections:
        sockets = [stalled_upload(team.port, connections) for _ in range(CONNECTIONS)]
        during = rss_mb(team.proc.pid)  # every upload is stalled now, all connections still held open
        answers = answers_of(sockets)
    after = rss_mb(team.proc.pid)
    with capsys.disabled():
        print(
            f"\n{CONNECTIONS} stalled {DECLARED:,}-byte uploads with a forged bearer: server RSS "
            f"{before:.1f} MB before, {during:.1f} MB while stalled, {after:.1f} MB after; "
            f"answers {sorted(set(answers))}"
        )
    # every connection was answered 401 from its headers (or closed right after it), none left waiting
    assert all(a.startswith("HTTP/1.1 401") or a in ("closed", "reset") for a in answers), set(answers)
    assert sum(a.startswith("HTTP/1.1 401") for a in answers) > 0
    assert during - before < OLD_GROWTH_MB / 4, (before, during)
    assert team.proc.poll() is None  # and the server is still serving
