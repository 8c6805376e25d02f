"""A single-user HTTP server as ``pcref-mcp serve --http`` wires it (the ops gate in front), on a real
127.0.0.1 socket, with a sqlite store and an embedded sandbox; metrics on behind their own token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pcref_mcp import metrics
from pcref_mcp.config import Settings
from pcref_mcp.ops import operate
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.server.app import build_server
from pcref_mcp.server.http import http_app
from pcref_mcp.server.runtime import Runtime
from tests.serving import free_port, serve_in_thread, tls

METRICS_TOKEN = "m" * 40


class Served:
    def __init__(self, base: str, server: Any, gate: Any) -> None:
        self.base, self.server, self.gate = base, server, gate

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.server.live_runtime
        return runtime

    def get(self, path: str, **headers: str) -> httpx.Response:
        with httpx.Client(trust_env=False, timeout=20, verify=tls()) as http:
            return http.get(f"{self.base}{path}", headers=headers)

    def scrape(self) -> str:
        got = self.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
        assert got.status_code == 200, got.text
        return got.text


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    metrics.reset_for_tests()
    with ExitStack() as stack:

        def start(*, metrics_token: str | None = METRICS_TOKEN) -> Served:
            settings = Settings(
                journal_path=tmp_path / "journal.sqlite3",
                store_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                sandbox_db=tmp_path / "sandbox.db",
                http_stateless=True,
                metrics_token=SecretStr(metrics_token) if metrics_token else None,
            )
            server_runtime = Runtime(settings, sandbox_app=create_app(SandboxConfig(seed_size=8)))
            server = build_server(settings, runtime=server_runtime)
            server.live_runtime = server_runtime
            port = free_port()
            gate = operate(settings, server, http_app(settings, server, host="127.0.0.1", port=port))
            stack.enter_context(serve_in_thread(gate, port=port, lifespan="on"))
            return Served(f"http://127.0.0.1:{port}", server, gate)

        yield start
    metrics.reset_for_tests()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """``main()`` points the pcref_mcp logger at the stderr of the moment (pytest's capture, closed
    after the test): put back what was there, so later lines do not go to a closed stream."""
    import logging

    logger = logging.getLogger("pcref_mcp")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
