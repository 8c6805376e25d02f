"""Benchmarks (not tests): `make bench` / `python -m bench` regenerates docs/benchmarks.md; each module
also runs alone (`python -m bench.startup`, `bench.footprint`, `bench.economy`, `bench.calls`,
`bench.overhead`, `bench.sandbox_bench`)."""
