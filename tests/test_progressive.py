"""The progressive family: geometry, budget-fraction schedule, building blocks, growth, pairing, end to end."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F

from ganbench.cli import main
from ganbench.plugin.data import DataInfo
from ganbench.errors import UsageError
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.plugin.registry import build_registry
from ganbench.execution.runner import resolve_pair
from ganbench_builtin.objectives import WassersteinGP
from ganbench_builtin.progressive import (
    EqualConv2d,
    ProgressiveModel,
    build,
    geometry,
    minibatch_stddev,
    pixel_norm,
    schedule,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def make(channels: int = 1, resolution: int = 16, n_critic: int | None = None, **options) -> ProgressiveModel:
    torch.manual_seed(0)
    ctx = BuildContext(
        DataInfo("toy", channels=channels, resolution=resolution), WassersteinGP(),
        TrainSettings(batch_size=8, n_critic=n_critic, options={"width": 8, **options}), torch.device("cpu"), seed=0,
    )
    return build(ctx)


def toy_draw(channels: int, resolution: int, counter: list[int] | None = None):
    x = torch.rand(8, channels, resolution, resolution, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def draw():
        if counter is not None:
            counter.append(1)
        return x, None

    return draw


def test_geometry():
    assert geometry(16) == (4, 2)  # 4 -> 8 -> 16
    assert geometry(32) == (4, 3)
    assert geometry(28) == (7, 2)  # 7 -> 14 -> 28
    assert geometry(4) == (4, 0)
    assert geometry(9) == (4, 2)  # awkward: grow to 16 and resize


def test_schedule_grows_within_the_budget():
    """With growth over 90 % of the budget (the default is the paper's 14 %: tests/test_recipes.py)."""
    points = [schedule(p / 1000, 2, 0.9) for p in range(1001)]
    levels = [level for level, _ in points]
    assert levels == sorted(levels) and levels[0] == 0 and set(levels) == {0, 1, 2}
    assert all(0 <= a <= 1 for _, a in points)
    assert schedule(0.0, 2, 0.9) == (0, 1.0)
    assert schedule(0.9, 2, 0.9) == (2, 1.0) and schedule(1.0, 2, 0.9) == (2, 1.0)
    level, alpha = schedule(0.18 + 0.09, 2, 0.9)  # middle of the first fade-in (phases of 0.18)
    assert level == 1 and alpha == pytest.approx(0.5)
    assert schedule(0.5, 0, 0.9) == (0, 1.0)


def test_building_blocks():
    conv = EqualConv2d(16, 8, 3, 1)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15)  # N(0, 1), scaled at run time
    assert conv.scale == pytest.approx((2 / (16 * 9)) ** 0.5)
    x = torch.randn(4, 8, 5, 5) * 3
    assert pixel_norm(x).pow(2).mean(dim=1).sub(1).abs().max() < 1e-4
    y = minibatch_stddev(x)
    assert y.shape == (4, 9, 5, 5) and torch.equal(y[:, :8], x)
    assert torch.allclose(y[:, 8], y[0, 8, 0, 0].expand(4, 5, 5))


@pytest.mark.parametrize(("channels", "resolution"), [(1, 16), (1, 28), (3, 32)])
def test_every_level_has_its_own_geometry(channels, resolution):
    model = make(channels, resolution)
    z = model.sample_latent(4, torch.device("cpu"))
    assert model.latent == "sphere" and z.norm(dim=1).sub(128**0.5).abs().max() < 1e-3
    base, k = geometry(resolution)
    for level in range(k + 1):
        for alpha in (0.5, 1.0):
            model.level, model.alpha = level, alpha
            with torch.no_grad():
                raw = model.generator(z, level, alpha)
                images = model.generate(z)
                score = model.discriminator(raw, level, alpha)
            assert raw.shape == (4, channels, base * 2**level, base * 2**level)
            assert images.shape == (4, channels, resolution, resolution)  # upsampled to the data's size
            assert score.shape == (4,)


def test_real_batches_follow_the_current_resolution():
    model = make(1, 16)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    assert torch.equal(model._real(x, 2, 1.0), x)
    assert torch.allclose(model._real(x, 1, 1.0), F.avg_pool2d(x, 2))
    half = F.avg_pool2d(x, 2)
    faded = model._real(x, 1, 0.25)
    assert torch.allclose(faded, 0.25 * half + 0.75 * F.interpolate(F.avg_pool2d(half, 2), scale_factor=2))


def test_training_grows_with_progress():
    model = make(1, 16, grow_fraction=0.9)  # phases long enough for 12 steps to see every one
    draws: list[int] = []
    draw = toy_draw(1, 16, draws)
    n = 12
    seen = []
    for step in range(n):
        logs = model.train_step(draw, StepContext(step, step / n))
        assert {"wasserstein", "gradient_penalty", "drift", "resolution", "alpha"} <= set(logs)
        seen.append((float(logs["resolution"]), float(logs["alpha"])))
    assert len(draws) == n  # one critic step per generator step (the CIFAR config), not wgan-gp's 5
    resolutions = [r for r, _ in seen]
    assert resolutions == sorted(resolutions) and resolutions[0] == 4 and set(resolutions) == {4, 8, 16}
    assert any(0 < a < 1 for _, a in seen)  # faded in
    assert seen[-1] == (16, 1.0)
    assert model.extra_state()["level"] == 2
    with torch.no_grad():
        assert model.generate(model.sample_latent(2, torch.device("cpu"))).shape == (2, 1, 16, 16)


def test_n_critic_setting_is_honoured():
    model = make(1, 16, n_critic=2)
    draws: list[int] = []
    model.train_step(toy_draw(1, 16, draws), StepContext(0, 0.0))
    assert len(draws) == 2


def test_only_wgan_gp_is_accepted():
    registry = build_registry()
    model, objective = resolve_pair(registry, "progressive")
    assert (model.name, objective.name) == ("progressive", "wgan-gp")
    with pytest.raises(UsageError, match="wgan-gp"):
        resolve_pair(registry, "progressive:hinge")


def test_end_to_end_reaches_full_resolution(tmp_path):
    rc = main(["run", "--device", "cpu", "--metrics=", "--plugins", "progressive", "--dataset", "digits", "--budget", "20steps", "--batch-size", "4",
               "--results", str(tmp_path), "--log-every", "1"])
    assert rc == 0
    (curves,) = (tmp_path / "runs").glob("*/curves.csv")
    rows = list(csv.DictReader(curves.open()))
    resolutions = [float(r["resolution"]) for r in rows]
    assert resolutions == sorted(resolutions) and resolutions[0] == 4
    # the paper's share of the budget at full resolution, reported with every row
    assert sum(1 for r in rows if float(r["resolution"]) == 16 and float(r["alpha"]) == 1) >= 0.85 * len(rows)
    assert float(rows[-1]["full_resolution_fraction"]) == pytest.approx(1 - 0.14 + 0.14 / 5)
    assert float(rows[-1]["resolution"]) == 16 and float(rows[-1]["alpha"]) == 1
