"""A second third-party client end to end: the official TypeScript SDK (npm `@modelcontextprotocol/sdk`
v1 on the 2025 era, `@modelcontextprotocol/client` v2 on both eras), with an elicitation handler that
accepts, declines or cancels, and without one (the confirm-token round trip), over stdio (it spawns
`python -m pcref_mcp`) and Streamable HTTP. Both SDKs validate structured output against the tools'
outputSchema after tools/list, which the script always runs first.

One node process per client and transport (the SDK loads once) runs that client's four scenarios in
turn when the first of their tests asks: the three answers over one connection, the token round trip
over a second without the capability (over stdio, a server each, on one sandbox); each scenario writes
its own note and is asked or answered for itself alone. Each test checks its own scenario's answer.

`make e2e` installs both packages into `.tools/` (pinned) and sets PCREF_TOOLS_DIR; under CI (or
`make e2e`) a missing package is a failure, locally a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import REQUIRED, ROOT, Running, http_server, process_env

TOOLS = Path(os.environ.get("PCREF_TOOLS_DIR") or ROOT / ".tools")
SCRIPT = Path(__file__).with_name("ts_client.mjs")
_PACKAGES = ("@modelcontextprotocol/sdk", "@modelcontextprotocol/client")
_MISSING = f"TypeScript MCP SDK not found under {TOOLS}; `make e2e` installs it (npm, Node 20+)"


def _installed() -> bool:
    return shutil.which("node") is not None and all((TOOLS / "node_modules" / p).is_dir() for p in _PACKAGES)


pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not REQUIRED and not _installed(), reason=_MISSING)]

# (sdk, era): v1 speaks the 2025 era only; v2 both
CLIENTS = [("v1", "legacy"), ("v2", "legacy"), ("v2", "modern")]
EXPECTED = {"accept": "applied", "decline": "declined", "cancel": "cancelled"}
PROTOCOL = {"legacy": "2025-11-25", "modern": "2026-07-28"}


Scenario = tuple[str, list[dict[str, Any]]]  # the elicitation answer ("none": no capability), the calls


@dataclass
class Outcomes:
    """One node process's answer; each test reads its own scenario's (the process's failure fails them all)."""

    proc: subprocess.CompletedProcess[str]

    def __getitem__(self, name: str) -> Any:
        proc = self.proc
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
        out = json.loads(proc.stdout.strip().splitlines()[-1])[name]
        assert "failure" not in out, f"{out['failure']}\n{proc.stderr[-3000:]}"
        return out


def _run(sdk: str, era: str, target: list[str], scenarios: dict[str, Scenario], tmp: Path) -> Outcomes:
    """Every scenario in one node process: name -> (answer, calls)."""
    if not _installed():
        pytest.fail(_MISSING + " — under CI (or `make e2e`) this check must run, not skip")
    env = {**process_env(tmp), "PCREF_TOOLS_DIR": str(TOOLS)}
    given = [{"name": name, "answer": answer, "calls": calls} for name, (answer, calls) in scenarios.items()]
    proc = subprocess.run(
        ["node", str(SCRIPT), sdk, era, *target],
        input=json.dumps({"scenarios": given}),
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return Outcomes(proc)


def _write(note: str, *, token: bool = False) -> list[dict[str, Any]]:
    search = {"tool": "search_referrals", "arguments": {"filters": {"status": ["Active"]}, "limit": 1}}
    update = {
        "tool": "update_field",
        "referral_from": 0,
        "arguments": {"changes": [{"field": "notes", "value": note}]},
    }
    calls = [search, update]
    if token:
        calls.append({**update, "confirm_from": 1})
    return calls


def _note(sdk: str, era: str, transport: str, scenario: str) -> str:
    return f"TS {sdk} {era} {transport} {scenario}"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if not REQUIRED and not _installed():
        pytest.skip(_MISSING)
    with http_server(tmp_path_factory.mktemp("ts-http")) as running:
        yield running


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """The answer of (sdk, era, transport, scenario): each client's node process runs on first use."""
    done: dict[tuple[str, str, str], Outcomes] = {}

    def scenario(sdk: str, era: str, transport: str, name: str) -> Any:
        if (sdk, era, transport) not in done:
            tmp = tmp_path_factory.mktemp(f"ts-{sdk}-{era}-{transport}")
            if transport == "stdio":  # the servers inherit the client's environment: process_env(tmp)
                target = ["stdio", sys.executable, "-m", "pcref_mcp"]
            else:
                target = ["http", request.getfixturevalue("http").url]
            scenarios: dict[str, Scenario] = {
                answer: (answer, _write(_note(sdk, era, transport, answer))) for answer in EXPECTED
            }
            scenarios["token"] = ("none", _write(_note(sdk, era, transport, "token"), token=True))
            done[sdk, era, transport] = _run(sdk, era, target, scenarios, tmp)
        return done[sdk, era, transport][name]

    return scenario


@pytest.mark.parametrize(("sdk", "era"), CLIENTS)
@pytest.mark.parametrize("answer", list(EXPECTED))
def test_elicitation_answers(
    sdk: str, era: str, answer: str, transport: str, runs: Callable[..., Any]
) -> None:
    note = _note(sdk, era, transport, answer)
    out = runs(sdk, era, transport, answer)
    assert out["protocol"] in (None, PROTOCOL[era]), out
    found, update = out["results"]
    assert found["structuredContent"]["rows"], out
    assert not update.get("isError") and "error" not in update, update
    result = update["structuredContent"]
    assert result["status"] == EXPECTED[answer], result
    assert len(out["asked"]) == 1 and note in out["asked"][0]
    assert (result.get("change_id") is not None) is (answer == "accept")


@pytest.mark.parametrize(("sdk", "era"), CLIENTS)
def test_without_elicitation_the_token_round_trip_writes_once(
    sdk: str, era: str, transport: str, runs: Callable[..., Any]
) -> None:
    out = runs(sdk, era, transport, "token")
    _, first, second = out["results"]
    preview = first["structuredContent"]
    assert preview["status"] == "confirmation_required" and len(preview["confirm_token"]) <= 64, preview
    assert second["structuredContent"]["status"] == "applied", second
    assert not out["asked"]


def test_require_elicitation_fails_closed_for_a_client_that_cannot_ask(tmp_path: Path) -> None:
    """PCREF_REQUIRE_ELICITATION: a 2026-07-28 client without elicitation gets the specification's
    missing-capability error (-32021); a 2025 client reads why in the tool result."""
    env = {**process_env(tmp_path, PCREF_REQUIRE_ELICITATION="1")}
    with http_server(tmp_path, env=env) as running:
        never = {"never": ("none", _write("never"))}
        modern = _run("v2", "modern", ["http", running.url], never, tmp_path)["never"]
        assert modern["results"][1]["error"]["code"] == -32021, modern
        legacy = _run("v1", "legacy", ["http", running.url], never, tmp_path)["never"]
        update = legacy["results"][1]
        assert update["isError"] and "require confirmation through the client" in update["text"], update
