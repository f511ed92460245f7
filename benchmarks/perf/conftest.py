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


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Record what the numbers were measured with (threads matter on a CPU)."""
    output_json["ganbench"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "batch": BATCH, "resolution": RESOLUTION}
