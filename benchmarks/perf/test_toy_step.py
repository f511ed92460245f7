"""ganbench's step on vector data against a plain loop over the same toy networks, in the same process.

PacGAN's networks for 2-D data (vanilla on ``ring``: G 4 x 400 ReLU + BN, D 3 x 200 maxout
x 5, batch 100) are small enough that a step costs milliseconds, so anything ganbench does per
step around them (contract checks, the logging window, the budget, counters) shows here first.
Interleaved rounds (one real ``ganbench run``, its img/s as recorded in ``run.json``, then the
plain loop of :func:`ganbench.training.calibration.plain_step` over freshly built networks), so load on the
machine hits both sides alike; the median of the per-round ratios is asserted >= 0.97.

With ``--benchmark-disable`` (a smoke run) each side runs a few steps once and no ratio is asserted.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

from ganbench.training.calibration import plain_step
from ganbench.plugin.data import DatasetRequest
from ganbench.plugin.model import BuildContext, TrainSettings

from conftest import CPU, recorded_rate

#: PacGAN's batch (REFERENCES §3).
TOY_BATCH = 100
#: Interleaved rounds and steps per side per round; GANBENCH_TOY_ROUNDS/STEPS change them.
ROUNDS = int(os.environ.get("GANBENCH_TOY_ROUNDS", 5))
STEPS = int(os.environ.get("GANBENCH_TOY_STEPS", 300))
SMOKE_STEPS = 3


def ganbench_rate(registry, results: Path, steps: int) -> float:
    return recorded_rate(registry, ["run", "--plugins", "vanilla", "--dataset", "ring", "--budget", f"{steps}steps",
                                    "--batch-size", str(TOY_BATCH), "--device", "cpu", "--metrics=", "--eval-at=",
                                    "--log-every", "100", "--results", str(results)])


def plain_rate(registry, steps: int) -> float:
    """img/s of the plain loop over freshly built toy networks (same objective and optimisers)."""
    dataset = registry.dataset("ring").load(DatasetRequest("ring", None, Path(".")))
    spec = registry.model("vanilla")
    objective = registry.objective(spec.default_objective).build()
    model = spec.build(BuildContext(dataset.info, objective, TrainSettings(TOY_BATCH), CPU, 0))
    start = time.perf_counter()
    for _ in range(steps):
        plain_step(model, dataset.images, None, TOY_BATCH)
    return steps * TOY_BATCH / (time.perf_counter() - start)


def test_toy_harness_overhead(benchmark, registry, tmp_path):
    rounds, steps = (1, SMOKE_STEPS) if benchmark.disabled else (ROUNDS, STEPS)
    ratios: list[float] = []

    def one_round() -> None:
        ours = ganbench_rate(registry, tmp_path / f"round{len(ratios)}", steps)
        ratios.append(ours / plain_rate(registry, steps))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    benchmark.extra_info.update(steps=steps, threads=torch.get_num_threads(), ratios=[round(r, 3) for r in ratios])
    print(f"\nvanilla on ring, batch {TOY_BATCH}, {steps} steps: ratios {[round(r, 3) for r in ratios]}")
    assert all(r > 0 for r in ratios)
    if not benchmark.disabled:
        assert statistics.median(ratios) >= 0.97, f"ganbench / hand-written loop on PacGAN's toy networks: {ratios}"
