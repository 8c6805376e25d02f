"""Team mode under test: the stand-in identity provider over TLS and the team server on real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp.config import Settings, load_settings
from pcref_mcp.team.app import plan_for, team_app, team_server
from pcref_mcp.team.serve import stand_in_settings
from pcref_mcp.team.standin_idp import RunningIdp, StandInIdp
from tests.serving import free_port, serve_in_thread


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdp]:
    with RunningIdp(StandInIdp(), tmp_path_factory.mktemp("idp")) as running:
        yield running


def base_settings(tmp: Path, *, approval_policy: str | None = "token", **extra: Any) -> Settings:
    """Team settings on throwaway files. Writes are approved by confirm token here (the tests of
    identity, isolation and the proxy drive them that way); ``approval_policy=None`` keeps the team
    default (``strictest``: the person approves on the page), as tests/team/test_team_approval_page.py does."""
    if approval_policy is not None:
        extra["approval_policy"] = approval_policy
    env = {
        "PCREF_SANDBOX_DB": ":memory:",
        "PCREF_SANDBOX_SIZE": "12",
        "PCREF_JOURNAL_PATH": str(tmp / "journal.sqlite3"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "data"),
        **{f"PCREF_{k.upper()}": str(v) for k, v in extra.items()},
    }
    return load_settings(env=env)


@pytest.fixture
def settings(tmp_path: Path, idp: RunningIdp) -> Settings:
    return stand_in_settings(base_settings(tmp_path), idp.url, idp.cert)


class ServedTeam:
    def __init__(self, url: str, server: Any, port: int) -> None:
        self.url = url
        self.server = server
        self.port = port

    @property
    def mcp(self) -> str:
        return f"{self.url}/mcp"

    @property
    def runtime(self) -> Any:
        return self.server.team.runtime


@contextmanager
def serve_team(settings: Settings, *, server: Any = None, port: int | None = None) -> Iterator[ServedTeam]:
    port = port or free_port()
    plan = plan_for(settings, host="127.0.0.1", port=port)
    server = server or team_server(settings, plan)
    app = team_app(settings, host="127.0.0.1", port=port, server=server)
    with serve_in_thread(app, port=port, lifespan="auto", name="team server") as url:
        yield ServedTeam(url, server, port)
