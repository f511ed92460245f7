"""The gate's machine-independent speed figure: ganbench's step against a plain one on the same networks."""

from __future__ import annotations

import math

import pytest
import torch

from ganbench.training.calibration import plain_step, relative_throughput
from ganbench.plugin.model import BuildContext, TrainSettings

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _build(registry, family, dataset):
    spec = registry.model(family)
    torch.manual_seed(0)
    ctx = BuildContext(dataset.info, registry.objective(spec.default_objective).build(), TrainSettings(batch_size=8),
                       CPU, seed=0)
    return spec.build(ctx)


@pytest.mark.parametrize("family", ["dcgan", "conditional"])
def test_the_figure_is_a_positive_ratio_and_leaves_the_run_untouched(registry, tiny_dataset, family):
    model = _build(registry, family, tiny_dataset)
    weights = {k: v.clone() for k, v in model.generator.state_dict().items()}
    rng = torch.get_rng_state()
    value = relative_throughput(model, tiny_dataset, 8, CPU, seed=0, steps=2)
    assert value is not None and math.isfinite(value) and value > 0
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in weights.items())
    assert torch.equal(rng, torch.get_rng_state())


def test_the_plain_step_trains_the_same_networks(registry, tiny_dataset):
    model = _build(registry, "dcgan", tiny_dataset)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    images = tiny_dataset.images.float().div(127.5).sub(1)
    plain_step(model, images, tiny_dataset.labels, 8)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters()))


def test_a_family_with_its_own_procedure_has_no_figure(registry, tiny_dataset):
    assert relative_throughput(_build(registry, "lapgan", tiny_dataset), tiny_dataset, 8, CPU, seed=0) is None
