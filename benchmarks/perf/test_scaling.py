"""Speed-up of the ray executor (pytest-benchmark): two 60-second runs, one CPU each.

The same two runs (vanilla, seeds 0 and 1, a 60 s wall-clock budget, no
metrics) train once with ``--executor local`` (one after the other) and once
with ``--executor ray`` on a local Ray runtime of 2 CPUs that the executor
starts and stops itself, so Ray's start-up is part of the time. Each is one
round: a run is a minute. The target is a ratio ray/local of at most 0.65;
the figure measured is recorded in benchmarks/README.md.

    uv run pytest benchmarks/perf/test_scaling.py --benchmark-only -s
"""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # read when Ray is imported; see the ray executor
pytest.importorskip("ray")

from ganbench.cli import main  # noqa: E402

TWO_RUNS = ["--no-plugin", "progress", "run", "--plugins", "vanilla", "--seeds", "2", "--metrics=", "--cpus-per-run", "1"]
#: With --benchmark-disable (the CI smoke run) each executor trains the two runs for a few steps: the path, not the time.
BUDGET, SMOKE_BUDGET = "60s", "4steps"
WALL: dict[str, float] = {}


@pytest.fixture(autouse=True)
def one_thread_per_run(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_two_sixty_second_runs(benchmark, tmp_path, executor):
    def train() -> int:
        start = time.perf_counter()
        budget = SMOKE_BUDGET if benchmark.disabled else BUDGET
        code = main([*TWO_RUNS, "--budget", budget, "--executor", executor,
                     "--results", str(tmp_path / f"r{time.time_ns()}")])
        WALL[executor] = time.perf_counter() - start
        return code

    code = benchmark.pedantic(train, rounds=1, iterations=1)
    assert code == 0
    benchmark.extra_info["load_average"] = os.getloadavg()[0]
    if len(WALL) == 2 and not benchmark.disabled:
        ratio = WALL["ray"] / WALL["local"]
        benchmark.extra_info["ray_over_local"] = round(ratio, 3)
        print(f"\nwall-clock: local {WALL['local']:.1f} s, ray {WALL['ray']:.1f} s, ratio {ratio:.2f} "
              f"(load average {os.getloadavg()[0]:.1f})")
        assert ratio <= 0.65, f"ray / local wall-clock for two runs side by side: {ratio:.2f}"
