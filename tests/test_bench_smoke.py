"""The benchmarks run and produce their figures (tiny sizes, nothing timed or compared)."""

from __future__ import annotations

from pathlib import Path

from bench import batch, calls, economy, footprint, overhead, report, sandbox_bench, startup


def test_every_benchmark_runs_and_the_report_renders(tmp_path: Path) -> None:
    results = {
        "date": "today",
        "machine": {"cpu": "cpu", "cores": "1", "ram": "1 GiB", "python": "3.11", "os": "os"},
        "load_start": "0",
        "load_end": "0",
        "code": "test",
        "wall_seconds": 0.0,
    }
    results["startup"] = startup.run(runs=1, warmup=0)
    answer = results["startup"].pop("tools_list_answer")
    assert {"pcref", "baseline", "ratio", "rss_ratio", "heavy_loaded"} <= results["startup"].keys()
    assert results["startup"]["pcref"]["median_s"] > 0 and results["startup"]["pcref"]["rss_kb"] > 0

    results["footprint"] = footprint.run(answer)
    assert {"total_bytes", "naive_total_bytes", "tools", "naive_tools", "untyped_top_level"} <= results[
        "footprint"
    ].keys()
    assert len(results["footprint"]["naive_tools"]) == 7

    results["economy"] = economy.run(size=20, rows=5)
    assert results["economy"]["rows"] == 5 and results["economy"]["first_row"]["raw_bytes"] > 0

    results["calls"] = calls.run(size=150, burst=120)
    assert results["calls"]["summary"]["seen"] == 150
    assert results["calls"]["burst"]["completed"] == results["calls"]["burst_baseline"]["completed"] == 120

    results["overhead"] = overhead.run(repeat=3, warmup=1)
    assert {"noop", "get_referral", "search_referrals"} <= results["overhead"].keys()

    results["sandbox"] = sandbox_bench.run(300, repeat=3, cache_dir=tmp_path / "cache")
    again = sandbox_bench.run(300, repeat=3, cache_dir=tmp_path / "cache")
    assert again["seed_cached"]
    for level in ("asgi", "store"):
        assert {"page", "get", "create", "patch"} <= again[level].keys()

    results["batch"] = batch.run(items=5)
    assert results["batch"]["batch_elicit"]["calls"] == results["batch"]["batch_elicit"]["minimum"] == 10

    text = report.render(results)
    for n in range(1, 8):
        assert f"## {n}. " in text
    assert "Not run." not in text


def test_batch_benchmark_writes_only_its_section(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## 6. Sandbox at scale\n\nkept\n", encoding="utf-8")
    figures = batch.run(items=3)
    assert figures["batch_token"]["answer_bytes"] < figures["single_token"]["answer_bytes"]
    batch.write_docs(figures, docs)
    batch.write_docs(figures, docs)  # again: replaced, not appended twice
    text = docs.read_text(encoding="utf-8")
    assert "kept" in text and text.count("## 7. ") == 1 and "| API calls, elicitation" in text
