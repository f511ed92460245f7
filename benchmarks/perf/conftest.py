"""Shared fixtures for the performance suites: the digits data at 16x16 and built models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganbench.plugin.data import BatchStream, DatasetRequest
from ganbench.plugin.model import BuildContext, TrainSettings
from ganbench.plugin.registry import build_registry

BATCH = 64
RESOLUTION = 16
CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def registry():
    return build_registry()


@pytest.fixture(scope="session")
def digits(registry):
    spec = registry.dataset("digits")
    return spec.load(DatasetRequest("digits", None, Path("."), False, RESOLUTION)).resized(RESOLUTION)


@pytest.fixture
def build(registry, digits):
    """build(family) -> (model, draw): the family with its default objective, seeded, on the CPU."""

    def make(family: str):
        spec = registry.model(family)
        objective = registry.objective(spec.default_objective).build()
        torch.manual_seed(0)
        ctx = BuildContext(digits.info, objective, TrainSettings(batch_size=BATCH), CPU, seed=0)
        stream = BatchStream(digits, BATCH, 0, CPU)
        return spec.build(ctx), stream.next

    return make


def recorded_run(registry, argv: list[str], skip_why: str = ""):
    """The record of one real, completed ``ganbench run`` (``argv``)."""
    from ganbench.cli import build_parser, invocation_from_args
    from ganbench.execution.runner import execute

    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.skip(skip_why or f"this ganbench cannot parse {' '.join(argv)}")
    (record,) = execute(registry, invocation_from_args(args))
    assert record.status == "completed", record.error
    return record


def recorded_rate(registry, argv: list[str], skip_why: str = "") -> float:
    """img/s of one real ``ganbench run`` (``argv``), as its record states it (training seconds only)."""
    return recorded_run(registry, argv, skip_why).images_per_second


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Record what the numbers were measured with (threads matter on a CPU)."""
    output_json["ganbench"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "batch": BATCH, "resolution": RESOLUTION}


def pytest_collection_modifyitems(config, items):
    """Refuse a timed benchmark run that pytest-benchmark would silently turn into a smoke run.

    pytest-benchmark switches itself off whenever pytest-xdist distributes tests (any ``--dist`` but
    ``no``); the ratios would then go unasserted while the run still passes.
    """
    if config.getoption("dist", "no") != "no" and not config.getoption("benchmark_disable", False):
        raise pytest.UsageError("benchmarks/perf times code and cannot run under pytest-xdist: drop -n/--dist "
                                "(or pass --benchmark-disable for a smoke run).")
