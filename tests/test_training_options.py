"""Options every family gets alike (--lr-g/--lr-d/--betas, --lr-schedule, --ema, --spectral-norm), and the cost
columns (D and G updates, measured GFLOPs per image) that make a comparison's compute visible."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from ganbench.training import checkpoint
from ganbench.training.budget import Budget
from ganbench.plugin.data import BatchStream
from ganbench.errors import UsageError
from ganbench.results.leaderboard import compile_leaderboard
from ganbench.training.loop import TrainingLoop
from ganbench.plugin.model import BuildContext, TrainSettings
from ganbench.results.records import RunConfig, RunInfo
from ganbench.execution.runner import Invocation, execute, plan
from ganbench.training.options import LrSchedule, build_model, ema_beta, settings_of

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = dict(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9), lr_schedule="linear", ema_kimg=0.05, spectral_norm=True)


def test_options_are_part_of_the_config_identity_and_label(registry):
    (plain,) = plan(registry, Invocation(plugins=("vanilla",), device="cpu"))
    (tuned,) = plan(registry, Invocation(plugins=("vanilla",), device="cpu", settings=TrainSettings(**OPTIONS)))
    assert not {"recipe", "lr_g", "ema_kimg", "spectral_norm"} & set(plain.config.as_dict())  # old run ids stay
    assert tuned.config.as_dict()["betas"] == [0.0, 0.9] and tuned.config.run_id != plain.config.run_id
    assert plain.config.recipe_label == "paper"
    assert tuned.config.recipe_label == "paper+lr_g=0.0001+lr_d=0.0004+betas=0,0.9+lr=linear+ema=0.05+sn"
    assert settings_of(tuned.config) == replace(TrainSettings(**OPTIONS), batch_size=64)


def test_every_setting_is_recorded_under_its_name_and_read_back_unchanged(registry):
    """A setting left out of RunConfig would train runs that share a run id; one not read back would be rescored
    with another model. Every TrainSettings field, each away from its default, must survive plan -> record ->
    JSON -> settings_of."""
    import json
    from dataclasses import fields

    assert {f.name for f in fields(TrainSettings)} <= {f.name for f in fields(RunConfig)}
    changed = TrainSettings(batch_size=32, n_critic=2, latent="uniform", separate_batches=False, lr=1e-3,
                            options={"width": 8}, reuse_fakes=True, precision="bf16", compile=True,
                            channels_last=True, recipe="paper", lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9),
                            lr_schedule="linear", ema_kimg=0.5, spectral_norm=True, pack=2)
    defaults = TrainSettings()
    untested = {f.name for f in fields(TrainSettings)
                if getattr(changed, f.name) == getattr(defaults, f.name)} - {"recipe"}  # "matched" resizes
    assert not untested, f"give these a non-default value here: {sorted(untested)}"
    inv = Invocation(plugins=("dcgan",), device="cpu", settings=changed, packs=(2,),
                     plugin_options={"dcgan": {"width": 8}})
    (run,) = plan(registry, inv)
    again = RunConfig(**json.loads(json.dumps(run.config.as_dict())))
    assert again.run_id == run.config.run_id
    assert settings_of(again) == changed


@pytest.mark.parametrize("bad, words", [
    (dict(recipe="tuned"), "--recipe must be one of paper"),
    (dict(lr_schedule="cosine"), "--lr-schedule must be one of constant, linear"),
    (dict(lr_d=0.0), "--lr-d must be a positive learning rate"),
    (dict(betas=(0.5, 1.5)), "--betas must be two numbers in [0, 1)"),
    (dict(ema_kimg=-1.0), "--ema is a half-life"),
])
def test_bad_options_are_refused_while_planning(registry, bad, words):
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        plan(registry, Invocation(plugins=("vanilla",), device="cpu", settings=TrainSettings(**bad)))


def test_lrs_betas_and_spectral_norm_reach_what_the_family_built(registry, tiny_dataset):
    ctx = BuildContext(tiny_dataset.info, registry.objective("hinge").build(), TrainSettings(8, **OPTIONS),
                       torch.device("cpu"))
    model = build_model(registry.model("dcgan"), ctx)
    assert [g["lr"] for g in model.opt_g.param_groups] == [1e-4] and model.opt_d.param_groups[0]["lr"] == 4e-4
    assert model.opt_g.param_groups[0]["betas"] == (0.0, 0.9) == model.opt_d.param_groups[0]["betas"]
    d_layers = [m for m in model.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert d_layers and all(hasattr(m, "parametrizations") for m in d_layers)
    assert not any(hasattr(m, "parametrizations") for m in model.generator.modules())
    # the optimiser the family built still trains the normalised weight, whose largest singular value is 1
    layer = d_layers[-1]
    original = layer.parametrizations.weight.original
    assert any(p is original for p in model.opt_d.param_groups[0]["params"])
    for _ in range(5):  # a few power iterations
        layer(torch.zeros(1, *layer.weight.shape[1:2], 4, 4))
    assert torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_spectral_norm_on_a_discriminator_without_standard_layers_names_the_family(registry, tiny_dataset):
    ctx = BuildContext(tiny_dataset.info, registry.objective("wgan-gp").build(), TrainSettings(8, spectral_norm=True),
                       torch.device("cpu"))
    with pytest.raises(UsageError, match="family 'progressive'"):
        build_model(registry.model("progressive"), ctx)


def test_linear_schedule_decays_to_zero_and_composes_with_a_familys_own_changes():
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = LrSchedule("linear", [opt])
    schedule.apply(0.0)
    assert opt.param_groups[0]["lr"] == 1e-3
    schedule.apply(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    opt.param_groups[0]["lr"] /= 2  # a family halving its lr (BEGAN when M_global stalls)
    schedule.apply(0.75)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 2 * 0.25)
    schedule.apply(1.0)
    assert opt.param_groups[0]["lr"] < 1e-12


def test_ema_beta_is_stylegans_half_life():
    beta = ema_beta(64, 10.0)
    assert beta == 0.5 ** (64 / 10_000)
    assert beta ** (10_000 / 64) == pytest.approx(0.5)  # after half-life images the old average weighs one half
    progan_half_life = 16 * math.log(0.5) / math.log(0.999) / 1000  # ProGAN's 0.999 per batch of 16: ~11 kimg
    assert ema_beta(16, progan_half_life) == pytest.approx(0.999) and 11 < progan_half_life < 11.1


def _loop(registry, dataset, directory, steps: int, measure_cost: bool = True, **options) -> TrainingLoop:
    config = RunConfig("dcgan", "nonsaturating", "tiny", f"{steps}steps", 0, "cpu", 8, log_every=2, **options)
    ctx = BuildContext(dataset.info, registry.objective("nonsaturating").build(), settings_of(config),
                       torch.device("cpu"))
    torch.manual_seed(0)  # the same initial weights for every loop, as the runner seeds before building
    model = build_model(registry.model("dcgan"), ctx)
    info = RunInfo("r", config, directory, steps, "steps")
    return TrainingLoop(model, BatchStream(dataset, 8, 0, torch.device("cpu")), Budget.parse(f"{steps}steps"), info,
                        torch.device("cpu"), checkpoint_every=4, measure_cost=measure_cost)


def test_ema_and_schedule_resume_bit_identically_and_samples_come_from_the_average(registry, tiny_dataset, tmp_path):
    loop = _loop(registry, tiny_dataset, tmp_path / "a", 8, ema_kimg=0.05, lr_schedule="linear")
    loop.run()
    final = checkpoint.load_file(tmp_path / "a" / checkpoint.CURRENT)
    at_four = checkpoint.load_file(tmp_path / "a" / checkpoint.PREVIOUS)
    assert at_four["counters"]["steps"] == 4 and "ema" in at_four and at_four["lr_factor"] == pytest.approx(0.625)
    assert final["optimizers"]["generator"]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 8)

    resumed = _loop(registry, tiny_dataset, tmp_path / "b", 8, ema_kimg=0.05, lr_schedule="linear")
    resumed.run(resume=at_four)
    again = resumed.state_dict()
    for key, value in final["ema"]["generator"].items():
        assert torch.equal(again["ema"]["generator"][key], value), key
    for key, value in final["networks"]["generator"].items():
        assert torch.equal(again["networks"]["generator"][key], value), key

    # sampling swaps the average in and the trained weights back
    live = {k: v.clone() for k, v in loop.model.generator.state_dict().items()}
    with loop.sampling():
        inside = {k: v.clone() for k, v in loop.model.generator.state_dict().items()}
    averaged = {k[len("module."):]: v for k, v in final["ema"]["generator"].items() if k.startswith("module.")}
    assert all(torch.equal(inside[k], averaged[k]) for k in inside)
    assert not all(torch.equal(inside[k], live[k]) for k in inside if inside[k].is_floating_point())
    assert all(torch.equal(loop.model.generator.state_dict()[k], live[k]) for k in live)


def test_measuring_the_cost_does_not_change_training(registry, tiny_dataset, tmp_path):
    measured = _loop(registry, tiny_dataset, tmp_path / "a", 3)
    unmeasured = _loop(registry, tiny_dataset, tmp_path / "b", 3, measure_cost=False)
    assert measured.gflops[0] > 0 and unmeasured.gflops == (None, None)
    measured.run()
    unmeasured.run()
    a, b = measured.state_dict(), unmeasured.state_dict()
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a["networks"][part][k], b["networks"][part][k]) for k in a["networks"][part])
    assert a["counters"]["g_updates"] == b["counters"]["g_updates"] == 3


def test_updates_and_flops_per_image_are_recorded_and_shown(registry, tmp_path):
    inv = Invocation(plugins=("vanilla", "dcgan:hinge", "dcgan:wgan-gp"), budget=Budget.parse("2steps"), results=tmp_path,
                     device="cpu", settings=TrainSettings(batch_size=16))
    vanilla, hinge, wgan = execute(registry, inv)
    assert (vanilla.g_updates, vanilla.d_updates) == (2, 2)
    assert (wgan.g_updates, wgan.d_updates) == (2, 10)  # a step is one G update: wgan-gp gets 5x the D work
    # vanilla's MLP, counted from its layer shapes: 2 FLOPs per multiply-add
    g_fwd = 2 * (100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 256)
    d_fwd = 2 * (256 * 1024 + 1024 * 512 + 512 * 256 + 256)
    # G: forward for D's fakes, forward + backward (no input gradient into z) for its own step
    assert vanilla.gflops_g * 1e9 == pytest.approx(2 * g_fwd + 2 * g_fwd - 2 * 100 * 256, rel=1e-3)
    # D: real and fake forward + backward (no input gradient for data); in G's step forward and a backward of
    # input gradients only (the ones G needs: D is frozen there, ganbench.plugin.model.frozen)
    d_bwd_no_input = 2 * d_fwd - 2 * 256 * 1024
    assert vanilla.gflops_d * 1e9 == pytest.approx(2 * (d_fwd + d_bwd_no_input) + 2 * d_fwd, rel=1e-3)
    # five critic steps, each with a gradient penalty, against one: the D work per step is several times larger
    assert wgan.gflops_d > 3 * hinge.gflops_d > 0 and wgan.gflops_g > hinge.gflops_g > 0
    board = compile_leaderboard([vanilla, wgan])
    assert {"g_updates", "d_updates", "gflops_g", "gflops_d", "recipe"} <= set(board.columns)
    assert list(board["d_updates"]) == [2, 10] and list(board["recipe"]) == ["paper", "paper"]
    assert not math.isnan(board["gflops_d"].iloc[1])
