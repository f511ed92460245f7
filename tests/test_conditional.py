"""The conditional family (Mirza & Osindero 2014) and its label sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.cli import main
from ganbench.plugin.data import DataInfo, DatasetRequest, ImageDataset, to_float
from ganbench.errors import UsageError
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.plugin.registry import build_registry
from ganbench.execution.runner import Invocation, check_requirements, plan
from ganbench_builtin import conditional
from ganbench_builtin.conditional import sample_labels
from ganbench_builtin.datasets.digits import load as load_digits
from ganbench_builtin.objectives import NonSaturating

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(channels: int = 1, resolution: int = 16, width: int = 16, lr: float | None = None, objective=None):
    info = DataInfo("toy", channels=channels, resolution=resolution, num_classes=10, class_counts=(10,) * 10)
    settings = TrainSettings(batch_size=8, lr=lr, options={"width": width})
    return conditional.build(BuildContext(info, objective or NonSaturating(), settings, CPU, seed=0))


# -- sample_labels -----------------------------------------------------------------


def test_sample_labels_matches_the_class_proportions() -> None:
    labels = sample_labels((50, 30, 20, 0), 100, generator=torch.Generator().manual_seed(0))
    assert labels.dtype == torch.int64 and labels.shape == (100,)
    assert torch.bincount(labels, minlength=4).tolist() == [50, 30, 20, 0]
    assert not torch.equal(labels, labels.sort().values)  # shuffled, not grouped by class


@pytest.mark.parametrize("n", [0, 1, 7, 33, 1000])
def test_sample_labels_counts_stay_within_one_of_the_quota(n: int) -> None:
    counts = torch.tensor([178, 182, 177, 183, 181, 182, 181, 179, 174, 180, 0])
    labels = sample_labels(counts, n, generator=torch.Generator().manual_seed(n))
    hist = torch.bincount(labels, minlength=len(counts)).double()
    quota = counts.double() / counts.sum() * n
    assert len(labels) == n
    assert ((hist - quota).abs() < 1).all()
    assert hist[-1] == 0  # an empty class is never drawn


def test_sample_labels_is_reproducible_from_a_generator() -> None:
    a = sample_labels([3, 1, 1], 11, generator=torch.Generator().manual_seed(5))
    b = sample_labels([3, 1, 1], 11, generator=torch.Generator().manual_seed(5))
    c = sample_labels([3, 1, 1], 11, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("counts", [(), (0, 0), (3, -1)])
def test_sample_labels_refuses_bad_counts(counts) -> None:
    with pytest.raises(UsageError):
        sample_labels(counts, 4)


# -- the model -----------------------------------------------------------------------


def test_the_label_changes_the_sample() -> None:
    torch.manual_seed(0)
    model = make_model().eval()
    assert model.conditional and model.num_classes == 10
    z = model.sample_latent(1, CPU).repeat(10, 1)
    with torch.no_grad():
        x = model.generate(z, torch.arange(10))
    assert (x[1:] - x[0]).abs().flatten(1).max(dim=1).values.min() > 1e-4


def test_spec_is_registered_and_requires_labels() -> None:
    spec = build_registry().model("conditional")
    assert spec.requires_labels
    assert spec.default_objective == "nonsaturating"
    assert spec.paper.startswith("Mirza")


# -- refusing unlabelled data ----------------------------------------------------------


def _unlabelled_folder(root: Path) -> Path:
    folder = root / "flat"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(folder / f"{i}.png")
    return folder


def test_check_requirements_refuses_an_unlabelled_dataset() -> None:
    registry = build_registry()
    planned = plan(registry, Invocation(plugins=("conditional",), device="cpu"))
    unlabelled = ImageDataset("blobs", torch.zeros(4, 1, 16, 16, dtype=torch.uint8))
    with pytest.raises(UsageError, match="needs class labels"):
        check_requirements(planned, unlabelled)


def test_cli_refuses_an_unlabelled_imagefolder(tmp_path: Path, capsys) -> None:
    folder = _unlabelled_folder(tmp_path)
    code = main(["run", "--device", "cpu", "--plugins", "conditional", "--dataset", f"imagefolder:{folder}", "--budget", "2steps",
                 "--results", str(tmp_path / "results"), "--device", "cpu", "--no-download"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'conditional' needs class labels" in err
    runs = tmp_path / "results" / "runs"
    assert not (runs.exists() and any(p.is_dir() for p in runs.iterdir()))  # refused before any run started


# -- it learns the conditioning --------------------------------------------------------


def _ridge_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """A least-squares (ridge) linear classifier on flattened pixels: closed form, deterministic, instant."""

    def features(x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1).double()
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

    a = features(images)
    targets = torch.nn.functional.one_hot(labels, num_classes).double()
    weights = torch.linalg.solve(a.T @ a + torch.eye(a.shape[1], dtype=a.dtype), a.T @ targets)
    return lambda x: (features(x) @ weights).argmax(dim=1)


def test_samples_for_class_c_are_classified_as_c_after_short_training() -> None:
    """A short run on 16x16 digits; a classifier fitted to the real digits then reads the samples."""
    from ganbench.plugin.data import BatchStream
    from ganbench.training.loop import seed_everything

    seed_everything(0)
    digits = load_digits(DatasetRequest("digits", None, Path("."), False, None)).resized(16)
    classify = _ridge_classifier(to_float(digits.images), digits.labels, 10)
    assert (classify(to_float(digits.images)) == digits.labels).double().mean() > 0.9

    settings = TrainSettings(batch_size=32, lr=1e-3, options={"width": 16})
    model = conditional.build(BuildContext(digits.info, NonSaturating(), settings, CPU, seed=0))
    stream = BatchStream(digits, 32, seed=0, device=CPU)
    steps = 150  # about 65% after 150 steps for seeds 0-2; 10% is chance
    for step in range(steps):
        logs = model.train_step(stream.next, StepContext(step, step / steps))
    assert all(np.isfinite(float(v)) for v in logs.values())

    model.eval()
    labels = torch.arange(10).repeat_interleave(30)
    with torch.no_grad():
        z = model.sample_latent(len(labels), CPU, generator=torch.Generator().manual_seed(1))
        samples = model.generate(z, labels)
    accuracy = float((classify(samples) == labels).double().mean())
    assert accuracy > 0.3, f"samples match their class {accuracy:.0%} of the time (chance: 10%)"


# -- end to end ------------------------------------------------------------------------------


def test_cli_run_end_to_end(tmp_path: Path) -> None:
    """The family through the real CLI; scoring is left to the metric tests (--metrics '')."""
    code = main(["run", "--device", "cpu", "--plugins", "conditional", "--dataset", "digits", "--budget", "20steps",
                 "--results", str(tmp_path), "--log-every", "5", "--device", "cpu", "--metrics", "",
                 "--batch-size", "32"])
    assert code == 0
    finals = list((tmp_path / "runs").glob("*/samples/final.png"))
    assert len(finals) == 1
    grid = Image.open(finals[0])
    assert grid.height > grid.width  # ten rows (one per class) of eight samples
