"""Performance suites (pytest-benchmark): one training step per family, sampling and feature extraction.

Not collected by ``uv run pytest`` (testpaths is ``tests``). Run with::

    uv run pytest benchmarks/perf --benchmark-save=NAME
    uv run pytest benchmarks/perf --benchmark-compare          # against the latest saved run
    uv run pytest benchmarks/perf -q --benchmark-disable       # smoke: each body once, no timing

Everything is CPU-sized: the embedded digits at 16x16, batch 64.
"""

from __future__ import annotations

import pytest
import torch

from ganbench.plugin.model import StepContext
from ganbench.results.store import save_torch

from conftest import BATCH, CPU, RESOLUTION

FAMILIES = ["vanilla", "dcgan", "conditional", "lapgan", "began", "progressive"]
SAMPLES = 1024


@pytest.mark.parametrize("family", FAMILIES)
def test_train_step(benchmark, build, family):
    """One generator update with its discriminator updates (n_critic of the default objective)."""
    model, draw = build(family)
    # the middle of the budget: progressive growing has reached a real stage, schedules are warm
    ctx = StepContext(step=100, progress=0.5)
    model.train_step(draw, ctx)  # warm-up: lazy allocations, first-call overheads
    benchmark.extra_info["images_per_round"] = BATCH
    logs = benchmark(model.train_step, draw, ctx)
    assert logs and all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in logs.values())


@pytest.mark.parametrize("family", ["vanilla", "dcgan", "began"])
def test_sampling(benchmark, build, family):
    """Generating SAMPLES images in batches of 256, without gradients."""
    model, _ = build(family)
    for net in model.networks().values():
        net.eval()
    z = model.sample_latent(SAMPLES, CPU, torch.Generator().manual_seed(0))

    def sample():
        with torch.no_grad():
            return [model.generate(z[i : i + 256]) for i in range(0, SAMPLES, 256)]

    benchmark.extra_info["images_per_round"] = SAMPLES
    out = benchmark(sample)
    assert out[0].shape[-1] == RESOLUTION


@pytest.fixture
def lenet_extractor(tmp_path, digits):
    """The lenet domain extractor as torch-fidelity calls it, with untrained weights (same cost as trained)."""
    from ganbench_builtin.extractors.lenet import RECIPE, LeNet, LeNetExtractor

    torch.manual_seed(0)
    config = {"channels": 1, "num_classes": 10, "widths": tuple(RECIPE["widths"]), "hidden": RECIPE["hidden"],
              "features": RECIPE["features"]}
    path = tmp_path / "lenet.pt"
    save_torch(path, {"state": LeNet(**config).state_dict(), "config": config, "resolution": RESOLUTION})
    return LeNetExtractor("lenet-perf", ["features", "logits_unbiased"], feature_extractor_weights_path=str(path))


def test_feature_extraction_lenet(benchmark, lenet_extractor, digits):
    """Features and logits of SAMPLES uint8 images (N x 3 x H x W, what torch-fidelity hands over)."""
    images = digits.images[:SAMPLES].expand(-1, 3, -1, -1).contiguous()

    def extract():
        with torch.no_grad():
            return [lenet_extractor(images[i : i + 256]) for i in range(0, len(images), 256)]

    benchmark.extra_info["images_per_round"] = len(images)
    out = benchmark(extract)
    assert out[0][0].shape[-1] == 128
