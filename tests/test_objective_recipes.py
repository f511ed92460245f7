"""Objectives that own their optimiser and act after each critic update: wgan-gp's Adam and the original WGAN."""

import ast
from pathlib import Path

import pytest
import torch

from helpers import draw_for
from ganbench import OptimizerRecipe
from ganbench.training.budget import Budget
from ganbench.plugin.data import DataInfo
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.execution.runner import Invocation, plan

pytestmark = pytest.mark.usefixtures("one_thread")
DIGITS = DataInfo(name="digits", channels=1, resolution=16, num_classes=10)


def _built(registry, family, objective, lr=None):
    ctx = BuildContext(DIGITS, registry.objective(objective).build(), TrainSettings(batch_size=8, lr=lr),
                       torch.device("cpu"), 0)
    return registry.model(family).build(ctx)


@pytest.mark.parametrize("family", ["dcgan", "vanilla", "lapgan"])
def test_wgan_clips_every_critic_weight_and_trains_with_rmsprop(registry, family):
    model = _built(registry, family, "wgan")
    critics = [net for name, net in model.networks().items() if name.startswith("discriminator")]
    with torch.no_grad():  # weights far outside the box, so clipping has something to do
        for net in critics:
            for p in net.parameters():
                p.mul_(0).add_(0.5)
    model.train_step(draw_for(1, 16), StepContext(0, 0.0))
    for net in critics:
        for p in net.parameters():
            assert p.abs().max() <= 0.01, family
    for name, opt in model.optimizers().items():
        assert isinstance(opt, torch.optim.RMSprop), name
        assert opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    assert model.n_critic == 5


def test_the_users_lr_overrides_the_objectives_recipe(registry):
    model = _built(registry, "dcgan", "wgan", lr=3e-4)
    assert isinstance(model.opt_d, torch.optim.RMSprop)
    assert model.opt_d.param_groups[0]["lr"] == model.opt_g.param_groups[0]["lr"] == pytest.approx(3e-4)


def test_wgan_gp_trains_with_gulrajanis_adam_in_every_family_but_progressive(registry):
    for family in ("dcgan", "vanilla", "lapgan"):
        opt = next(o for n, o in _built(registry, family, "wgan-gp").optimizers().items() if "discriminator" in n)
        group = opt.param_groups[0]
        assert isinstance(opt, torch.optim.Adam)
        assert (group["lr"], group["betas"]) == (pytest.approx(1e-4), (0.0, 0.9)), family
    # progressive's paper tuned its own Adam together with WGAN-GP and the equalised learning rate
    progressive = _built(registry, "progressive", "wgan-gp")
    assert progressive.opt_d.param_groups[0]["betas"] == (0.0, 0.99)
    # objectives without a recipe leave the family's
    assert _built(registry, "dcgan", "hinge").opt_d.param_groups[0]["betas"] == (0.5, 0.999)


def test_the_objectives_recipe_is_recorded_in_the_run_config_and_identity(registry):
    inv = Invocation(plugins=("dcgan:wgan", "dcgan:wgan-gp", "dcgan:hinge"), budget=Budget.parse("2steps"),
                     device="cpu")
    wgan, gp, hinge = (run.config for run in plan(registry, inv))
    assert wgan.as_dict()["objective_optimizers"]["discriminator"] == {"kind": "rmsprop", "lr": 5e-5, "alpha": 0.99}
    assert gp.as_dict()["objective_optimizers"]["generator"] == {"kind": "adam", "lr": 1e-4, "betas": [0.0, 0.9]}
    assert "objective_optimizers" not in hinge.as_dict()  # runs of objectives without one keep their ids


def test_a_recipe_names_a_known_optimiser():
    with pytest.raises(ValueError, match="'sgd' is not one of adam, rmsprop"):
        OptimizerRecipe("sgd", 0.1)


def test_wgan_is_written_only_with_the_public_api():
    source = Path(__file__).resolve().parents[1] / "plugins" / "ganbench_builtin" / "wgan.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.Import)
        for alias in node.names}
    assert {m for m in imported if m and m.startswith("ganbench")} == {"ganbench"}
