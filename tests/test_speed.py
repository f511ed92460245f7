"""The recorded speed settings: precision, compile, channels-last and reused fakes, on the CPU."""

import math
from dataclasses import replace

import pytest
import torch

from ganbench.training import checkpoint
from ganbench.training.budget import Budget
from ganbench.plugin.data import BatchStream, ImageDataset
from ganbench.results.leaderboard import compile_leaderboard
from ganbench.training.loop import TrainingLoop
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.results.records import RunConfig, RunInfo
from ganbench.execution.suite import parse_suite
from helpers import make_record

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def _data() -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    return ImageDataset("tiny", torch.randint(0, 256, (32, 1, 16, 16), generator=g, dtype=torch.uint8),
                        torch.arange(32) % 10, num_classes=10)


def _loop(registry, tmp_path, family="dcgan", steps=4, **speed):
    data = _data()
    settings = TrainSettings(batch_size=8, options={"width": 8} if family != "vanilla" else {}, **speed)
    objective = registry.objective("nonsaturating").build()
    model = registry.model(family).build(BuildContext(data.info, objective, settings, CPU, 0))
    config = RunConfig(family, "nonsaturating", "tiny", f"{steps}steps", 0, "cpu", 8, log_every=2,
                       options=dict(settings.options), **speed)
    return TrainingLoop(model, BatchStream(data, 8, 0, CPU), Budget.parse(f"{steps}steps"),
                        RunInfo("r", config, tmp_path, steps, "steps"), CPU)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_end_to_end(registry, tmp_path, precision):
    loop = _loop(registry, tmp_path, precision=precision)
    outcome = loop.run()
    assert outcome.status == "completed" and outcome.counters.steps == 4
    assert all(math.isfinite(v) for v in outcome.losses.values())
    state = checkpoint.load_latest(tmp_path)
    assert ("grad_scaler" in state) == (precision == "fp16")  # fp16's loss scale is resumed with the run


def test_mixed_precision_really_computes_in_the_lower_precision(registry, tmp_path):
    loop = _loop(registry, tmp_path, precision="bf16")
    seen = []
    loop.model.discriminator.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    loop.run()
    assert torch.bfloat16 in seen


def test_channels_last_converts_every_convolution_and_trains(registry, tmp_path):
    loop = _loop(registry, tmp_path, channels_last=True)
    convs = [m.weight for net in loop.model.networks().values() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert loop.run().status == "completed"


@pytest.mark.slow
def test_compiled_networks_train_end_to_end_and_checkpoint_like_eager_ones(registry, tmp_path):
    loop = _loop(registry, tmp_path, family="vanilla", steps=3, compile=True)
    assert loop.run().status == "completed"
    state = checkpoint.load_latest(tmp_path)
    assert set(state["networks"]["generator"]) == set(loop.model.generator._orig_mod.state_dict()
                                                       if hasattr(loop.model.generator, "_orig_mod")
                                                       else loop.model.generator.state_dict())
    assert not any(k.startswith("_orig_mod") for k in state["networks"]["generator"])


@pytest.mark.parametrize("reuse", [False, True])
def test_reuse_fakes_runs_the_generator_once_per_step(registry, reuse):
    data = _data()
    model = registry.model("dcgan").build(BuildContext(
        data.info, registry.objective("nonsaturating").build(),
        TrainSettings(batch_size=8, options={"width": 8}, reuse_fakes=reuse), CPU, 0))
    calls = []
    model.generator.register_forward_hook(lambda module, args, out: calls.append(out.requires_grad))
    model.train_step(BatchStream(data, 8, 0, CPU).next, StepContext(0, 0.0))
    assert calls == ([True] if reuse else [False, True])  # reused: one forward, with the graph G's loss needs


@pytest.mark.parametrize("objective", ["nonsaturating", "wgan-gp"])
def test_the_generator_step_computes_no_discriminator_weight_gradient(registry, objective):
    """D's weight gradients from G's update would be discarded by D's next zero_grad: they are never computed."""
    data = _data()
    model = registry.model("dcgan").build(BuildContext(
        data.info, registry.objective(objective).build(), TrainSettings(batch_size=8, options={"width": 8}), CPU, 0))
    d_grads, g_grads = [], []
    for p in model.discriminator.parameters():
        p.register_hook(lambda grad: d_grads.append(grad))
    for p in model.generator.parameters():
        p.register_hook(lambda grad: g_grads.append(grad))
    model.train_step(BatchStream(data, 8, 0, CPU).next, StepContext(0, 0.0))
    d_params = sum(1 for _ in model.discriminator.parameters())
    assert len(d_grads) == model.n_critic * d_params  # once per D update, none from G's update
    assert len(g_grads) == sum(1 for _ in model.generator.parameters())  # G's own update still reaches every weight
    assert all(p.requires_grad for p in model.discriminator.parameters())  # and D trains again next step

def test_speed_settings_are_identity_and_separate_leaderboard_rows():
    base = RunConfig("dcgan", "nonsaturating", "digits", "10steps", 0, "cpu", 8)
    assert "precision" not in base.as_dict() and base.speed_label == ""  # old run ids are kept
    variants = [replace(base, precision="bf16"), replace(base, compile=True), replace(base, channels_last=True),
                replace(base, reuse_fakes=True), replace(base, precision="bf16", compile=True)]
    assert len({c.run_id for c in [base, *variants]}) == 6
    assert variants[-1].speed_label == "bf16+compile"
    records = [make_record(c.family, c.seed, run_id=c.run_id, objective=c.objective, dataset=c.dataset, budget=c.budget,
                           speed=c.speed_label) for c in (base, variants[0])]
    board = compile_leaderboard(records)
    assert sorted(board["speed"]) == ["", "bf16"]


def test_speed_settings_are_suite_keys(tmp_path):
    suite = parse_suite({"name": "fast", "precision": "bf16", "compile": True, "channels_last": True,
                         "reuse_fakes": True, "data_on_device": "no"}, tmp_path / "fast.toml")
    assert suite.defaults.items() >= {"precision": "bf16", "compile": True, "channels_last": True,
                                      "reuse_fakes": True, "data_on_device": "no"}.items()
