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
    assert {
        "pcref",
        "baseline",
        "ratio",
        "rss_ratio",
        "heavy_loaded",
        "ratio_quartiles",
        "cpu_ratio",
    } <= results["startup"].keys()
    assert results["startup"]["pcref"]["median_s"] > 0 and results["startup"]["pcref"]["rss_kb"] > 0

    results["footprint"] = footprint.run(answer)
    assert {"total_bytes", "naive_total_bytes", "tools", "naive_tools", "untyped_top_level"} <= results[
        "footprint"
    ].keys()
    assert len(results["footprint"]["naive_tools"]) == 7

    results["economy"] = economy.run(size=20, rows=5)
    assert results["economy"]["rows"] == 5 and results["economy"]["first_row"]["raw_bytes"] > 0

    results["calls"] = calls.run(size=150, burst=120, repeat=3)
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


def test_scale_check_projects_and_renders_without_a_stack() -> None:
    """The model's check (bench.pinned) needs PostgreSQL and nginx to measure; its arithmetic, its
    pinning and its table do not."""
    import os

    from bench import pinned, scale

    cpu = {"replicas": 0.010, "nginx": 0.0002, "postgres": 0.0013, "sandbox": 0.001, "load generator": 0.0025}
    p = pinned.projection(cpu)
    assert round(p["one"]) == 100  # the replica's core, the rest (5 ms) far from its own core's ceiling
    assert round(p["two"]) == 133 and p["ratio_hosts"] == 2.0  # two cores / (10 + 5 ms): everything shares
    allowed = os.sched_getaffinity(0)
    pinned.pin(os.getpid(), allowed, tree=False)  # every thread of this process: where it already may run
    assert os.sched_getaffinity(0) == allowed
    step = {"throughput": 90.0, "cpu_per_call": cpu}
    check = {
        "cores": 2,
        "calls": 10,
        "people": 5,
        "replica_cpus": [[0], [1]],
        "one": step,
        "two": {**step, "throughput": 120.0},
    }
    text = "\n".join(pinned.render(check, cpu))
    assert "1.33× measured" in text and "| one replica on a core of its own" in text
    # each step projected from its own CPU per call (100 and 133 calls/s): 90 and 120 measured
    assert "against 90.0 and 120.0 measured (0.90×, 0.90×): the arithmetic holds" in text
    assert "rest on a figure that held either way" in text
    busier = {**cpu, "replicas": 0.015}  # a replica costs 1.5× with both cores busy
    text = "\n".join(pinned.render({**check, "two": {"throughput": 40.0, "cpu_per_call": busier}}, cpu))
    assert (
        "the arithmetic does not hold" in text and "(1.50×)" in text and "are a floor, not a ceiling" in text
    )
    assert pinned.render({"skipped": "1 core"}, cpu) == ["**The model's check** was not run: 1 core."]
    assert "check" in scale.model(
        {
            "postgres": {"cpu_per_call": cpu, "pc_per_call": 1.0, "throughput": 100.0},
            "sqlite": {"cpu_per_call": cpu, "pc_per_call": 1.0, "throughput": 100.0},
            "check": check,
        }
    )
