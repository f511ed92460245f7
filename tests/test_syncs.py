"""The loop is shaped for a GPU, proven by counting on the CPU: no device->host read inside a step."""

import json

import pytest
import torch

from ganbench.cli import main
from ganbench.plugin.data import BatchStream, ImageDataset
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.training.syncs import SyncCounter

FAMILIES = ["vanilla", "dcgan", "conditional", "lapgan", "began", "progressive"]
#: Families that return a number only the host knows (BEGAN's learning rate; progressive's resolution and
#: fade-in): CPU tensors made from Python numbers, which the loop keeps on the host (never a copy to the device).
HOST_VALUES = {"began": 2, "progressive": 3}  # began: lr_g; progressive: resolution, alpha, full_resolution_fraction
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def _labelled(n: int = 32, channels: int = 1, side: int = 16) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, side, side), generator=g, dtype=torch.uint8)
    return ImageDataset("tiny", images, torch.arange(n) % 10, num_classes=10)


def test_counter_sees_reads_copies_and_host_tensors_but_not_optimiser_internals():
    x = torch.ones(3, requires_grad=True)
    opt = torch.optim.Adam([x])
    with SyncCounter() as counter:
        y = (x * 2).sum()
        float(y.detach())
        bool(y > 0)
        y.detach().tolist()
        torch.tensor([1.0, 2.0])
        y.backward()
        opt.step()  # Adam reads its CPU step counter: not a device read
    assert counter.reads == 3 and counter.host_tensors == 1 and counter.h2d == 0
    assert torch.Tensor.tolist is torch._C.TensorBase.tolist  # the wrapper is gone afterwards


@pytest.mark.parametrize("family", FAMILIES)
def test_train_step_reads_nothing_back(registry, family):
    data = _labelled()
    spec = registry.model(family)
    objective = registry.objective(spec.default_objective).build()
    options = {"width": 8} if family in ("dcgan", "conditional", "lapgan", "began", "progressive") else {}
    model = spec.build(BuildContext(data.info, objective, TrainSettings(batch_size=8, options=options), CPU, 0))
    stream = BatchStream(data, 8, 0, CPU)
    model.train_step(stream.next, StepContext(0, 0.0))  # optimiser state and lazy buffers come first
    with SyncCounter() as counter:
        for step in range(1, 3):
            logs = model.train_step(stream.next, StepContext(step, step / 10))
    assert counter.reads == 0, counter.by_op
    assert counter.h2d == 0, counter.by_op
    assert counter.host_tensors == 2 * HOST_VALUES.get(family, 0), counter.by_op
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad for v in logs.values())


def test_a_whole_run_reads_at_most_once_per_five_steps(tmp_path):
    args = ["run", "--plugins", "dcgan", "--dataset", "digits", "--budget", "100steps", "--batch-size", "16",
            "--log-every", "10", "--metrics=", "--device", "cpu", "--results", str(tmp_path)]
    with SyncCounter() as counter:
        assert main(args) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/run.json")]
    assert record["status"] == "completed" and record["steps"] == 100
    assert counter.reads / 100 <= 0.2, counter.by_op


class _Wrapped:
    """A built-in model whose step is altered by ``change(step, logs)``; everything else passes through."""

    def __init__(self, model, change):
        self.model, self.change = model, change

    def __getattr__(self, name):
        return getattr(self.model, name)

    def train_step(self, draw, ctx):
        return self.change(ctx.step, self.model.train_step(draw, ctx))


def _loop(registry, tmp_path, change, budget="12steps", log_every=5):
    from ganbench.training.budget import Budget
    from ganbench.training.loop import TrainingLoop
    from ganbench.results.records import RunConfig, RunInfo

    data = _labelled()
    objective = registry.objective("nonsaturating").build()
    model = registry.model("vanilla").build(BuildContext(data.info, objective, TrainSettings(batch_size=8), CPU, 0))
    config = RunConfig("vanilla", "nonsaturating", "tiny", budget, 0, "cpu", 8, log_every=log_every)
    return TrainingLoop(_Wrapped(model, change), BatchStream(data, 8, 0, CPU), Budget.parse(budget),
                        RunInfo("r", config, tmp_path, 12, "steps"), CPU)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_divergence_is_placed_at_its_exact_step_inside_a_window(registry, tmp_path, bad):
    """NaN, +inf and -inf all count: a loss of -inf (a D that is certain) is as broken as one of NaN."""
    def nan_at_seventh(step, logs):
        if step >= 6:  # steps 7, 8, ... (1-based) return a non-finite loss
            logs["loss_g"] = logs["loss_g"] * 0 + float(bad)
        return logs

    loop = _loop(registry, tmp_path, nan_at_seventh)
    outcome = loop.run()
    assert outcome.status == "diverged" and outcome.diverged_at_step == 7
    assert outcome.counters.steps == 7 and outcome.counters.images == 7 * 8
    assert str(outcome.losses["loss_g"]) == bad and set(outcome.losses) >= {"loss_d", "D(x)"}
    assert "step 7" in outcome.error
    rows = [int(float(r.split(",")[0])) for r in (tmp_path / "curves.csv").read_text().splitlines()[1:]]
    assert (tmp_path / "samples" / "frac050.png").exists()  # step 6: before it
    assert rows == [5, 7]  # the full window at 5, then the partial one ending at the diverging step
    assert not (tmp_path / "samples" / "frac075.png").exists()  # no grid drawn past the divergence (step 9)


def test_floats_from_a_plugin_still_work_with_one_warning_naming_it(registry, tmp_path):
    loop = _loop(registry, tmp_path, lambda step, logs: {k: float(v) for k, v in logs.items()}, budget="4steps")
    with pytest.warns(DeprecationWarning, match="family 'vanilla'") as caught:
        outcome = loop.run()
    assert outcome.status == "completed" and len([w for w in caught if w.category is DeprecationWarning]) == 1
    assert set(outcome.losses) >= {"loss_d", "loss_g"}


def test_a_time_budget_records_its_overshoot(registry, tmp_path):
    loop = _loop(registry, tmp_path, lambda step, logs: logs, budget="0.3s", log_every=5)
    outcome = loop.run()
    c = outcome.counters
    assert outcome.status == "completed" and c.train_seconds >= 0.3
    assert c.overshoot_seconds == pytest.approx(c.train_seconds - 0.3, abs=1e-5)
