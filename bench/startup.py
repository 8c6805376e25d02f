"""Cold start: spawn the server over stdio, time until the first ``tools/list`` is answered.

Raw JSON-RPC over pipes (``initialize``, ``notifications/initialized``, ``tools/list``), so the figure
is the server's, not a client library's. Baseline: a minimal ``MCPServer`` with one tool, spawned the
same way with the same interpreter; runs alternate so both see the same machine state.

Each pair's order alternates (pcref first, then the baseline first), so neither always starts right
after the other exits. Besides the wall time (what a client waits), each run records the CPU time the
server's threads used up to the answer (``/proc/<pid>/task/*/schedstat``). On a machine that other work
loads, wall ratios scatter: the middle half of a run's pairs spanned 0.90-1.26x at load 5-8, and the
20-pair median of the same code read 1.05, 1.09, 1.10, 1.16, 1.17 and 1.27 in runs minutes apart; the
CPU ratio moved less (1.12 and 1.16). So the result gives the quartiles of the pair ratios next to their
median (a single reading of 1.25x or 1.10x is one draw from that spread) and the median of the pairs'
CPU ratios.

Both start as installed: ``pip install`` compiles a package's modules, the SDK's included, but an
editable install leaves the project's own uncompiled, and where ``PYTHONDONTWRITEBYTECODE`` is set
every spawn would compile them again. So the project's modules are compiled first (only what changed).
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import progress

PROTOCOL = "2025-11-25"
BASELINE_SERVER = '''
from mcp.server import MCPServer

server = MCPServer("baseline")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


if __name__ == "__main__":
    server.run()
'''


def run(runs: int = 20, warmup: int = 2) -> dict[str, Any]:
    import pcref_mcp

    compileall.compile_dir(Path(pcref_mcp.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="pcref-bench-start-") as tmp_name:
        tmp = Path(tmp_name)
        baseline_file = tmp / "baseline_server.py"
        baseline_file.write_text(BASELINE_SERVER)
        env = {
            **os.environ,
            "PCREF_SANDBOX_DB": str(tmp / "sandbox.db"),
            "PCREF_JOURNAL_PATH": str(tmp / "journal.sqlite3"),
            "PCREF_LOG_LEVEL": "WARNING",
        }
        cmds = {
            "pcref": [sys.executable, "-m", "pcref_mcp"],
            "baseline": [sys.executable, str(baseline_file)],
        }
        samples: dict[str, list[tuple[float, int, float | None]]] = {k: [] for k in cmds}
        answers: dict[str, bytes] = {}
        for i in range(warmup + runs):
            for name in list(cmds) if i % 2 == 0 else list(cmds)[::-1]:  # the order alternates
                seconds, rss_kb, answer, cpu = spawn_once(cmds[name], env, cwd=tmp)
                answers[name] = answer
                if i >= warmup:
                    samples[name].append((seconds, rss_kb, cpu))
            if i >= warmup and (i - warmup + 1) % 5 == 0:
                progress(f"cold start: {i - warmup + 1}/{runs} pairs")
    out: dict[str, Any] = {"runs": runs}
    for name, got in samples.items():
        cpus = [c for _, _, c in got if c is not None]
        out[name] = {
            "median_s": statistics.median(s for s, _, _ in got),
            "rss_kb": statistics.median(r for _, r, _ in got),
            "cpu_median_s": statistics.median(cpus) if len(cpus) == len(got) else None,
        }
    # Each pair runs back to back, so the median of the pair ratios resists load that drifts over the run.
    pairs = list(zip(samples["pcref"], samples["baseline"], strict=True))
    pair_ratios = [p[0] / b[0] for p, b in pairs]
    out["ratio"] = statistics.median(pair_ratios)
    out["ratio_quartiles"] = _quartiles(pair_ratios)
    out["ratio_of_medians"] = out["pcref"]["median_s"] / out["baseline"]["median_s"]
    cpu_pairs = [p[2] / b[2] for p, b in pairs if p[2] is not None and b[2]]
    out["cpu_ratio"] = statistics.median(cpu_pairs) if len(cpu_pairs) == len(pairs) else None
    out["rss_ratio"] = out["pcref"]["rss_kb"] / out["baseline"]["rss_kb"]
    out["heavy_checked"] = list(HEAVY)
    out["heavy_loaded"] = heavy_modules_at_startup()
    out["tools_list_wire_bytes"] = len(answers["pcref"].rstrip(b"\n"))
    out["tools_list_answer"] = json.loads(answers["pcref"])
    return out


HEAVY = (
    "msal",
    "sqlite3",
    "httpx",
    "pcref_mcp.sandbox",
    "pcref_mcp.partner_center.client",
    "pcref_mcp.writes.journal",
    "pcref_mcp.referrals.write_requests",
)
_PROBE = """
import json, sys
import anyio
from pcref_mcp.config import load_settings
from pcref_mcp.server.app import build_server
server = build_server(load_settings())
anyio.run(server.list_tools)
print(json.dumps([m for m in %r if m in sys.modules]))
"""


def heavy_modules_at_startup() -> list[str]:
    """Which heavy modules a server has loaded once it can answer ``tools/list`` (none, ideally)."""
    with tempfile.TemporaryDirectory(prefix="pcref-bench-probe-") as tmp:
        env = {
            **os.environ,
            "PCREF_SANDBOX_DB": f"{tmp}/sandbox.db",
            "PCREF_JOURNAL_PATH": f"{tmp}/journal.sqlite3",
        }
        done = subprocess.run(
            [sys.executable, "-c", _PROBE % (HEAVY,)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def _quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles (the middle half of the pair ratios lies between them)."""
    if len(values) < 2:
        return (values[0], values[0])
    first, _, third = statistics.quantiles(values, n=4)
    return (first, third)


def spawn_once(
    cmd: list[str], env: dict[str, str], *, cwd: Path, timeout: float = 30.0
) -> tuple[float, int, bytes, float | None]:
    """Seconds from spawn to the ``tools/list`` answer, VmRSS (kB) just after it, the answer line, and
    the CPU seconds the server's threads had used by then (None where ``/proc`` has no schedstat)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        _send(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "pcref-bench", "version": "1"},
                },
            },
        )
        _read_answer(proc, 1)
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        answer = _read_answer(proc, 2)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds(proc.pid)
        rss_kb = _vm_rss_kb(proc.pid)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return seconds, rss_kb, answer, cpu


def _send(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def _read_answer(proc: subprocess.Popen[bytes], request_id: int) -> bytes:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited before answering request {request_id}")
        message = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"server answered request {request_id} with {message['error']}")
            return line


def _cpu_seconds(pid: int) -> float | None:
    """CPU time of all of ``pid``'s threads so far (schedstat: nanoseconds on the CPU), or None."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def _vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    result.pop("tools_list_answer")
    print(json.dumps(result, indent=2))
