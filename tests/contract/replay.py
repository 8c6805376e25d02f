"""Replayed services for the contract tests: recorded (or hand-written, same format) exchanges in
``tests/fixtures/oddities/<scenario>/``, served by :class:`pcref_mcp.partner_center.recording.Replay`."""

from __future__ import annotations

from pathlib import Path

import httpx

from pcref_mcp.partner_center import PartnerCenterClient, StaticTokenProvider
from pcref_mcp.partner_center.recording import Replay

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "oddities"
BASE = "https://pc.test/v1.0/engagements/"
TOKEN = "replay-token-7c1d"


async def _no_sleep(seconds: float) -> None:
    return None


def replay(scenario: str) -> Replay:
    return Replay.from_directory(FIXTURES / scenario)


def client_for(transport: httpx.AsyncBaseTransport, base: str = BASE) -> PartnerCenterClient:
    return PartnerCenterClient(base, StaticTokenProvider(TOKEN), transport=transport, sleep=_no_sleep)
