"""A third-party client end to end: the MCP Inspector CLI (npm `@modelcontextprotocol/inspector`,
`--cli` mode) against the real server over stdio (it spawns `python -m pcref_mcp`) and over
Streamable HTTP (`pcref-mcp serve --http` on 127.0.0.1).

The Inspector validates every tool's structuredContent against its outputSchema (exit 1 on a
mismatch) and checks schema portability with `--strict` (exit 6 on an error), so a schema change that
breaks clients fails here.

The CLI makes one call per process (a node process and, over stdio, a server process each), so an
answer two tests read is asked for once per transport (the strict tool list; the search for Active,
Accepted referrals); over stdio every run's server uses one sandbox and data dir for the module, as
the HTTP tests share one server.

`make e2e` installs it into `.tools/` and sets PCREF_INSPECTOR; under CI
(or `make e2e`, which sets PCREF_E2E_REQUIRED) a missing Inspector is a failure, locally a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import REQUIRED, ROOT, Running, http_server, server_env


def _given_inspector() -> Path:
    given = os.environ.get("PCREF_INSPECTOR")
    return Path(given) if given else ROOT / ".tools" / "node_modules" / ".bin" / "mcp-inspector"


_MISSING = f"MCP Inspector CLI not found at {_given_inspector()}; `make e2e` installs it (npm, Node 20+)"

# Locally the check is skipped when the Inspector is not installed; under CI (or `make e2e`) it must
# run, so there a missing Inspector fails in _inspector_path() instead.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not REQUIRED and not _given_inspector().exists(), reason=_MISSING),
]

CONNECT_TIMEOUT_MS = 90_000  # under the subprocess timeout (120 s), so a slow start reads as the CLI's error
WRITE_TOOLS = {"update_field", "create_referral", "register_deal", "undo_change", "batch_update"}
READ_TOOLS = {"search_referrals", "get_referral", "recent_changes", "search", "fetch"}


def _inspector_path() -> Path:
    path = _given_inspector()
    if not path.exists():
        pytest.fail(_MISSING + " — under CI (or `make e2e`) this check must run, not skip")
    return path


@dataclass
class Answer:
    """Exit code, the JSON on stdout (``{"result": …}``) and the error envelope on stderr, if any."""

    code: int
    body: dict[str, Any]
    error: dict[str, Any]
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        assert self.code == 0 and "result" in self.body, f"exit {self.code}: {self.body}\n{self.stderr}"
        return dict(self.body["result"])


@dataclass
class Target:
    """How the Inspector reaches the server: the arguments before `--method`."""

    transport: str
    args: list[str]
    home: Path
    server: Running | None = None  # the HTTP server, for diagnostics

    def run(self, method: str, *extra: str) -> Answer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
        env.update(
            HOME=str(self.home),  # its catalog, client config and secrets stay in the tmp dir
            MCP_CATALOG_PATH=str(self.home / "catalog.json"),
            MCP_CLIENT_CONFIG_PATH=str(self.home / "client.json"),
            MCP_INSPECTOR_SECRET_STORE="memory",
            NO_COLOR="1",
        )
        proc = subprocess.run(
            [
                str(_inspector_path()),
                "--cli",
                *self.args,
                "-q",
                "--connect-timeout",  # 15 s by default: a stdio server starting on a loaded machine takes longer
                str(CONNECT_TIMEOUT_MS),
                "--format",
                "json",
                "--method",
                method,
                *extra,
            ],
            env=env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        stderr = proc.stderr
        if self.server is not None and self.server.proc.poll() is not None:
            stderr += (
                f"\n[the HTTP server exited with {self.server.proc.returncode}]\n{self.server.stderr[-2000:]}"
            )
        return Answer(proc.returncode, _last_json(proc.stdout), _last_json(proc.stderr), stderr)

    def call(self, tool: str, arguments: dict[str, Any]) -> Answer:
        return self.run("tools/call", "--tool-name", tool, "--tool-args-json", json.dumps(arguments))


def _last_json(text: str) -> dict[str, Any]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    _inspector_path()  # skip/fail before starting anything
    with http_server(tmp_path_factory.mktemp("inspector-http")) as running:
        yield running


@pytest.fixture(scope="module")
def stdio_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stdio servers' sandbox, journal and data dir: one for the module, so a shared answer's
    referral is there for every test (each run still spawns its own server)."""
    return tmp_path_factory.mktemp("inspector-stdio")


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    _inspector_path()
    if request.param == "stdio":
        data: Path = request.getfixturevalue("stdio_data")
        env_args = [arg for key, value in server_env(data).items() for arg in ("-e", f"{key}={value}")]
        return Target("stdio", [*env_args, sys.executable, "-m", "pcref_mcp"], tmp_path)
    running: Running = request.getfixturevalue("http")
    return Target("http", [running.url, "--transport", "http"], tmp_path, running)


@pytest.fixture(scope="module")
def shared() -> dict[tuple[str, ...], Answer]:
    """Answers more than one test reads, each asked for once per transport (a node and, over stdio, a
    server process each): ``tools/list --strict`` (the tool list's test and the portability check's)
    and the search for Active, Accepted referrals (the read tools' test and the guarded write's)."""
    return {}


def _once(target: Target, answers: dict[tuple[str, ...], Answer], method: str, *extra: str) -> Answer:
    key = (target.transport, method, *extra)
    if key not in answers:
        answers[key] = target.run(method, *extra)
    return answers[key]


def _strict_listing(target: Target, answers: dict[tuple[str, ...], Answer]) -> Answer:
    return _once(target, answers, "tools/list", "--strict")


_ACCEPTED = {"filters": {"status": ["Active"], "substatus": ["Accepted"]}, "limit": 3}


def _accepted(target: Target, answers: dict[tuple[str, ...], Answer]) -> Answer:
    """Up to 3 Active, Accepted referrals (their notes can be written)."""
    args = json.dumps(_ACCEPTED)
    return _once(target, answers, "tools/call", "--tool-name", "search_referrals", "--tool-args-json", args)


# --- tests ------------------------------------------------------------------------------------------


def test_lists_tools_with_portable_schemas(target: Target, shared: dict[tuple[str, ...], Answer]) -> None:
    answer = _strict_listing(target, shared)
    tools = {t["name"]: t for t in answer.result["tools"]}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name, tool in tools.items():
        assert tool["outputSchema"]["type"] == "object", name
        assert tool["annotations"]["readOnlyHint"] is (name in READ_TOOLS), name


def test_read_tools_answer_within_their_output_schema(
    target: Target, shared: dict[tuple[str, ...], Answer]
) -> None:
    found = _accepted(target, shared).result
    rows = found["structuredContent"]["rows"]
    assert found.get("isError") is not True and 1 <= len(rows) <= 3
    assert all(row["status"].startswith("Active") for row in rows)

    got = target.call("get_referral", {"referral_id": rows[0]["id"]}).result
    assert got["structuredContent"]["id"] == rows[0]["id"] and got["structuredContent"]["etag"]

    missing = target.call("get_referral", {"referral_id": "no-such-referral"})
    assert missing.code == 5, missing  # the tool's isError, reported as such
    assert missing.error["error"]["code"] == "tool_is_error"
    assert "not found" in missing.body["result"]["content"][0]["text"]


def test_guarded_write_asks_first_then_applies_with_the_token(
    target: Target, shared: dict[tuple[str, ...], Answer]
) -> None:
    rows = _accepted(target, shared).result["structuredContent"]["rows"]
    args = {
        "referral_id": rows[0]["id"],
        "changes": [{"field": "notes", "value": f"Inspector {target.transport}"}],
    }

    first = target.call("update_field", args).result["structuredContent"]
    assert first["status"] == "confirmation_required", first
    assert first["confirm_token"] and first["preview"]["changes"][0]["field"] == "notes"

    second = target.call("update_field", {**args, "confirm_token": first["confirm_token"]})
    if target.transport == "http":
        # Each `--cli` run is a new MCP session, and over HTTP a token is bound to the session that
        # showed the preview: refused, nothing written.
        assert second.code == 5, second
        assert "another session" in second.body["result"]["content"][0]["text"]
        after = target.call("get_referral", {"referral_id": rows[0]["id"], "sections": ["details"]}).result
        assert f"Inspector {target.transport}" not in json.dumps(
            after["structuredContent"], ensure_ascii=False
        )
        return
    # Over stdio each `--cli` run spawns a new server: the token outlives the process that issued it
    # (kept in the data dir), so the round trip finishes there, and writes once.
    done = second.result["structuredContent"]
    assert done["status"] == "applied", done
    assert done["change_id"] >= 1
    after = target.call("get_referral", {"referral_id": rows[0]["id"], "sections": ["details"]}).result
    assert f"Inspector {target.transport}" in json.dumps(after["structuredContent"], ensure_ascii=False)

    again = target.call("update_field", {**args, "confirm_token": first["confirm_token"]})
    assert again.code == 5, again  # the planner finds nothing to change, or the token is spent
    assert again.error["error"]["code"] == "tool_is_error"


def test_batch_and_csv_export_answer_within_their_output_schemas(target: Target) -> None:
    """batch_update previews every item for one token; the CSV export's answer fits the search schema."""
    exported = target.call("search_referrals", {"format": "csv", "filters": {"status": ["Active"]}}).result
    files = [c for c in exported["content"] if c["type"] == "resource"]
    assert len(files) == 1 and files[0]["resource"]["mimeType"] == "text/csv"
    header, *rows = files[0]["resource"]["text"].splitlines()
    assert header.startswith("id,engagement_id,external_reference_id,name,customer")
    assert len(rows) == exported["structuredContent"]["total"] >= 2

    ids = [line.split(",", 1)[0] for line in rows[:2]]
    items = [
        {"referral_id": rid, "changes": [{"field": "notes", "value": f"Batch {target.transport}"}]}
        for rid in ids
    ]
    first = target.call("batch_update", {"items": items}).result["structuredContent"]
    assert first["status"] == "confirmation_required" and len(first["items"]) == 2, first
    done = target.call("batch_update", {"items": items, "confirm_token": first["confirm_token"]})
    if target.transport == "http":  # each `--cli` run is a new session; an HTTP token is bound to its own
        assert done.code == 5 and "another session" in done.body["result"]["content"][0]["text"], done
        return
    answer = done.result["structuredContent"]  # stdio: the token outlives the server that issued it
    assert answer["status"] == "applied" and answer["batch_id"].startswith("b-"), answer


def test_key_form_tool_args_are_coerced_to_the_schema(target: Target) -> None:
    """`--tool-arg key=value`, as people type it: an array argument given as JSON text."""
    answer = target.run(
        "tools/call", "--tool-name", "search_referrals", "--tool-arg", "limit=2", 'fields=["type","notes"]'
    )
    assert len(answer.result["structuredContent"]["rows"]) == 2


def test_resources_and_prompts(target: Target) -> None:
    resources = {r["uri"] for r in target.run("resources/list").result["resources"]}
    assert {"pcref://lifecycle", "pcref://fields", "catalog://products"} <= resources

    contents = target.run("resources/read", "--uri", "pcref://lifecycle").result["contents"]
    lifecycle = json.loads(contents[0]["text"])
    assert "Closed" in lifecycle["transitions"]["New"]

    prompts = {p["name"] for p in target.run("prompts/list").result["prompts"]}
    assert {
        "triage_incoming",
        "update_from_meeting_notes",
        "weekly_pipeline_review",
        "register_won_deal",
        "create_cosell_referral",
    } <= prompts


def test_readme_inspector_command_works_as_printed(http: Running, tmp_path: Path) -> None:
    """The README's Inspector line (against `make run` on 8765), pointed at this server's port."""
    from tests.test_readme import FENCE, section

    commands = [b.strip() for lang, b in FENCE.findall(section("Connect a client")) if "inspector" in b]
    assert len(commands) == 1, commands
    words = commands[0].split()
    assert words[:2] == ["npx", "@modelcontextprotocol/inspector"] and "http://127.0.0.1:8765/mcp" in words
    args = [http.url if w == "http://127.0.0.1:8765/mcp" else w for w in words[2:]]
    assert args[0] == "--cli"
    method = args.index("--method")
    answer = Target("http", args[1:method], tmp_path, http).run(*args[method + 1 :])
    assert {t["name"] for t in answer.result["tools"]} == READ_TOOLS | WRITE_TOOLS


# A server whose schemas are what the SDK derives untouched: a free-form argument (an empty schema),
# a portability warning for the Inspector.
_UNPORTABLE_SERVER = """
from typing import Any
from mcp.server import MCPServer
server = MCPServer("unportable")
@server.tool()
def probe(limit: int | None = None, value: Any = None) -> str:
    return "ok"
server.run()
"""


def _portability_findings(answer: Answer) -> list[str]:
    return [line for line in answer.stderr.splitlines() if line.startswith(("Warning: tool", "Error: tool"))]


def test_strict_portability_check_finds_nothing(
    target: Target, shared: dict[tuple[str, ...], Answer]
) -> None:
    answer = _strict_listing(target, shared)
    assert answer.code == 0, answer.stderr
    assert _portability_findings(answer) == [], answer.stderr
    assert "warning across" not in answer.stderr and "warnings across" not in answer.stderr


def test_strict_portability_check_does_find_unportable_schemas(tmp_path: Path) -> None:
    """The control: the same check on an SDK-default server reports what our transform removes."""
    _inspector_path()
    target = Target("stdio", [sys.executable, "-c", _UNPORTABLE_SERVER], tmp_path)
    answer = target.run("tools/list", "--strict")
    assert _portability_findings(answer) == ['Warning: tool "probe"'], answer.stderr
    assert "0 errors, 1 warning across 1 tool" in answer.stderr
