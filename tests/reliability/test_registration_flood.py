"""Registration flood and oversized registrations against the team server in proxy mode (issue 19,
item 2), measured: the figures in docs/reliability.md come from ``pytest -s`` on this file.

2,000 junk registrations from 2,000 source addresses (``X-Forwarded-For`` from a trusted proxy, as
behind nginx: the per-address rate does not stop a botnet), with the unused-registration cap lowered
to 500 so the eviction is exercised; then a real client registers, a person signs in and it calls a
tool. And a 2.6 MB registration (20,000 redirect URIs), with and without ``Content-Length``. Timings
are printed, never asserted; the bounds are asserted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pcref_mcp.config import Settings
from pcref_mcp.team import proxy as proxy_module
from pcref_mcp.team.proxy import UNUSED
from pcref_mcp.team.standin_idp import RunningIdp
from tests.team.conftest import ServedTeam, idp, serve_team, settings  # noqa: F401 - fixtures
from tests.team.test_team_proxy import Dance

CAP = 500
FLOOD = 2_000


def broker_rows(team: ServedTeam) -> dict[str, tuple[int, int]]:
    """kind → (rows, sealed bytes) in the team server's store."""
    store: Any = team.runtime.store
    with store._lock:
        rows = store._db.execute(
            "SELECT kind, COUNT(*) AS n, SUM(LENGTH(sealed)) AS b FROM broker GROUP BY kind"
        ).fetchall()
    return {r["kind"]: (int(r["n"]), int(r["b"] or 0)) for r in rows}


@pytest.fixture
def team(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedTeam]:  # noqa: F811
    monkeypatch.setattr(proxy_module, "MAX_UNUSED_CLIENTS", CAP)
    with serve_team(settings) as served:
        yield served


@pytest.mark.slow
def test_a_flood_of_registrations_is_bounded_and_the_next_real_client_signs_in(
    team: ServedTeam,
    idp: RunningIdp,  # noqa: F811
) -> None:
    dance = Dance(team, idp)
    with dance.http:
        before = broker_rows(team)
        started = time.perf_counter()
        refused = 0
        for i in range(FLOOD):
            junk = dance.http.post(
                f"{team.url}/register",
                json={
                    "client_name": f"junk {i} " + "x" * 150,
                    "redirect_uris": [f"https://junk{i}.example/{'p' * 1_500}/{n}" for n in range(5)],
                    "token_endpoint_auth_method": "none",
                },
                headers={"X-Forwarded-For": f"10.{i // 65_536}.{i // 256 % 256}.{i % 256}"},
            )
            refused += junk.status_code != 201
        flood_s = time.perf_counter() - started
        after = broker_rows(team)
        assert refused == 0  # nobody is refused: the oldest unused go
        unused_rows, unused_bytes = after[UNUSED]
        assert unused_rows <= CAP
        real_started = time.perf_counter()
        client_id, tokens = dance.full("ada")  # the next real client: registers, signs in, works
        real_s = time.perf_counter() - real_started
        assert dance.mcp(tokens["access_token"]).status_code == 200
        final = broker_rows(team)
        assert client_id and final[UNUSED][0] <= CAP
    print(
        f"\nregistration flood: {FLOOD} junk registrations (5 redirect URIs of 1.5 KB each) from {FLOOD} "
        f"addresses in {flood_s:.1f} s ({FLOOD / flood_s:.0f}/s), 0 refused; broker rows before {before}, "
        f"after {after}: {unused_rows} unused kept (cap {CAP}), {unused_bytes / 1e6:.2f} MB sealed, "
        f"{unused_bytes / max(unused_rows, 1):.0f} B per registration; the next real client registered, "
        f"signed in and called a tool in {real_s * 1000:.0f} ms; after it: {final}"
    )


def test_a_2_6_mb_registration_is_refused_before_it_is_read(team: ServedTeam, idp: RunningIdp) -> None:  # noqa: F811
    body = json.dumps(
        {
            "client_name": "huge",
            "redirect_uris": [f"https://a.example/{i:05d}/{'p' * 110}" for i in range(20_000)],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    assert len(body) > 2_600_000
    dance = Dance(team, idp)
    timings = {}
    with dance.http:
        for how in ("Content-Length", "chunked"):

            def chunks() -> Iterator[bytes]:
                for i in range(0, len(body), 65_536):
                    yield body[i : i + 65_536]

            started = time.perf_counter()
            answer = dance.http.post(
                f"{team.url}/register",
                content=body if how == "Content-Length" else chunks(),
                headers={"content-type": "application/json"},
            )
            timings[how] = (time.perf_counter() - started) * 1000
            assert answer.status_code == 413, answer.text
    assert UNUSED not in broker_rows(team)
    print(
        f"\noversized registration: {len(body) / 1e6:.1f} MB ({20_000} redirect URIs) refused with 413 in "
        + ", ".join(f"{ms:.0f} ms ({how})" for how, ms in timings.items())
    )
