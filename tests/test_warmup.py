"""The untimed warm-up step leaves no trace: a run with it ends exactly where a run without it ends."""

from __future__ import annotations

import pytest
import torch

from ganbench.training.budget import Budget
from ganbench.plugin.data import BatchStream, ImageDataset
from ganbench.training.loop import TrainingLoop
from ganbench.plugin.model import BuildContext, TrainSettings
from ganbench.results.records import RunConfig, RunInfo

pytestmark = pytest.mark.usefixtures("one_thread")

#: (family, objective); lapgan and progressive need 16 px, conditional labels: the dataset below has both.
FAMILIES = ["vanilla", "dcgan", "conditional", "began", "lapgan", "progressive"]


@pytest.fixture(scope="module")
def labelled16() -> ImageDataset:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (48, 1, 16, 16), generator=g, dtype=torch.uint8)
    return ImageDataset("tiny16", images, torch.arange(48) % 4, num_classes=4)


def train(registry, dataset, family: str, directory, warmup: bool, steps: int = 3) -> TrainingLoop:
    spec = registry.model(family)
    budget = Budget.parse(f"{steps}steps")
    config = RunConfig(family, spec.default_objective, dataset.name, budget.text, 0, "cpu", 8, log_every=1)
    info = RunInfo("r", config, directory, budget.amount, budget.kind)
    torch.manual_seed(config.seed)
    ctx = BuildContext(dataset.info, registry.objective(spec.default_objective).build(), TrainSettings(8),
                       torch.device("cpu"), config.seed)
    model = spec.build(ctx)
    loop = TrainingLoop(model, BatchStream(dataset, 8, 0, torch.device("cpu")), budget, info, torch.device("cpu"),
                        warmup=warmup)
    assert loop.run().status == "completed"
    return loop


@pytest.mark.parametrize("family", FAMILIES)
def test_a_run_with_the_warm_up_ends_with_identical_weights(registry, labelled16, tmp_path, family):
    cold = train(registry, labelled16, family, tmp_path / "cold", warmup=False)
    warm = train(registry, labelled16, family, tmp_path / "warm", warmup=True)
    a, b = cold.state_dict(), warm.state_dict()
    for name, weights in a["networks"].items():  # weights and batch-norm statistics
        for key, value in weights.items():
            assert torch.equal(value, b["networks"][name][key]), (family, name, key)
    for name, opt in a["optimizers"].items():  # the optimiser moments saw the same steps
        for index, moments in opt["state"].items():
            for key, value in moments.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizers"][name]["state"][index][key]))
    assert a["stream"] == b["stream"] and a["extra"] == b["extra"]
    assert [row["step"] for row in cold.rows] == [row["step"] for row in warm.rows] == [1, 2, 3]
    assert {k: v for k, v in cold.rows[-1].items() if k != "seconds"} == \
           {k: v for k, v in warm.rows[-1].items() if k != "seconds"}  # the same losses, step by step
    assert torch.equal(a["latent_rng"], b["latent_rng"]) and torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    # the warm-up is recorded apart from training, and only when it ran
    assert warm.counters.warmup_seconds > 0 and cold.counters.warmup_seconds == 0
    assert warm.counters.compile_seconds == cold.counters.compile_seconds == 0
    assert warm.counters.steps == cold.counters.steps == 3 and warm.counters.images == cold.counters.images == 24


def test_warm_up_and_compile_seconds_are_in_the_run_record(registry, tmp_path):
    import json

    from ganbench.execution.runner import Invocation, execute

    (record,) = execute(registry, Invocation(plugins=("vanilla",), budget=Budget.parse("2steps"), device="cpu",
                                             results=tmp_path))
    saved = json.loads((tmp_path / "runs" / record.run_id / "run.json").read_text())
    assert saved["warmup_seconds"] > 0 and saved["compile_seconds"] == 0 and saved["steps"] == 2
