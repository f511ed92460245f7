"""Helpers shared by test modules (which never import one another): install a package, make records."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from filelock import FileLock
from PIL import Image
from torch import nn

from ganbench import GanModel, ImageDataset
from ganbench.training.budget import Counters
from ganbench.plugin.data import to_float
from ganbench.scoring.evaluation import EvalOptions, make_evaluator
from ganbench.results.records import RunRecord

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


def _shared_mnist() -> Path:
    """Where the real MNIST test files are: $GANBENCH_TEST_MNIST, else the project's shared data folder.

    That folder sits next to the main checkout (``../shared/data/mnist``); a clean
    clone elsewhere on the same machine (as CI makes) finds it at ``/work/shared``.
    Tests that need the files skip, naming the first place, where none exists.
    """
    candidates = [Path(p) for p in (os.environ.get("GANBENCH_TEST_MNIST"),) if p]
    candidates += [REPO.parent / "shared" / "data" / "mnist", Path("/work/shared/data/mnist")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_MNIST = _shared_mnist()


def install(package: Path, target: Path) -> None:
    """Install ``package`` (a directory with a pyproject) into ``target`` as pip would, without its dependencies."""
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--no-build-isolation",
               "--target", str(target), str(package)]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target),
               str(package)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("neither uv nor pip is available to install a plugin package")
    assert result.returncode == 0, result.stderr


def run_with(target: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a process that sees the packages installed in ``target``."""
    env = {**os.environ, "PYTHONPATH": str(target) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


def add_distribution(root: Path, dist: str, entry_points: dict[str, str], version: str = "0.1.0") -> None:
    """Write the dist-info pip would, so that modules under ``root`` (put on sys.path) are a real distribution."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganbench]\n{lines}")


# -- sharing costly fixtures across pytest-xdist workers -------------------------------------


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id (``gw0``...), or None when the session runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A directory ``make`` fills once per test session, however many xdist workers ask for it.

    Without xdist, a fresh temporary directory. Under xdist, every worker's temporary directory sits in
    one folder of the session's (``getbasetemp().parent``): the first worker to get there fills
    ``name`` under a file lock, the others wait on the lock and find it done, so a costly fixture (a
    trained extractor, real runs) costs the session once rather than once per worker. A ``make`` that
    raised leaves no completion mark, so the next worker tries again and reports its own failure.
    """
    if xdist_worker() is None:
        path = tmp_path_factory.mktemp(name)
        make(path)
        return path
    root = tmp_path_factory.getbasetemp().parent
    path, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            done.touch()
    return path


# -- records and run directories ---------------------------------------------------------


def make_record(family: str = "a", seed: int = 0, **fields: Any) -> RunRecord:
    """The one RunRecord factory of the tests: a completed CPU run of ``family`` on digits, fields overridable."""
    identity = {"run_id": f"{family}-{seed}", "objective": "nonsaturating", "dataset": "digits", "budget": "100steps",
                "status": "completed", "device": "cpu"}
    return RunRecord(family=family, seed=seed, **{**identity, **fields})


#: The scores make_run writes.
RUN_FID = "fid500[lenet-digits-a47c01eb]"
RUN_ISC = "isc500[lenet-digits-a47c01eb]"


def _grid_png(seed: int, size: int = 34) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_run(
    results: Path,
    family: str = "dcgan",
    objective: str = "nonsaturating",
    seed: int = 0,
    status: str = "completed",
    columns: tuple[str, ...] = ("loss_d", "loss_g", "D(x)", "D(G(z))"),
    rows: int = 8,
    evaluations: int = 3,
    grids: bool = True,
    nan_from: int | None = None,
    extra: dict[str, list[float]] | None = None,
) -> Path:
    """A run directory as the runner leaves it: run.json, curves.csv, scores.json, samples/*.png."""
    run_id = f"{family}-{objective}_digits_60steps_s{seed}_{seed:08x}"
    d = results / "runs" / run_id
    (d / "samples").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    record = make_record(family, seed, run_id=run_id, objective=objective, budget="60steps", status=status, steps=rows * 10, images=rows * 640, train_seconds=12.5,
                       images_per_second=400.0, device="cpu", params_generator=1000, params_discriminator=900,
                       losses={"loss_d": 0.5, "loss_g": 1.5},
                       scores={RUN_FID: 500.0 - 10 * seed, RUN_ISC: 1.05} if evaluations else {},
                       diverged_at_step=rows * 10 if status == "diverged" else None)
    (d / "run.json").write_text(json.dumps(record.as_dict()))
    (d / "environment.json").write_text(json.dumps({"ganbench": "0.1.0", "torch": "2.15.0", "device": "cpu",
                                                     "device_name": "cpu (test)", "plugins": {"ganbench": "0.1.0"}}))
    if rows:
        with (d / "curves.csv").open("w", newline="") as fh:
            names = ["step", "kimg", "seconds", "fraction", *columns, *(extra or {})]
            w = csv.writer(fh)
            w.writerow(names)
            for i in range(rows):
                values = [rng.normal() for _ in columns] + [v[i] for v in (extra or {}).values()]
                if nan_from is not None and i >= nan_from:
                    values = ["nan" if j % 2 == 0 else "inf" for j in range(len(values))]
                w.writerow([(i + 1) * 10, (i + 1) * 0.64, i * 1.5, (i + 1) / rows, *values])
    if evaluations:
        scores = [{"fraction": f, "step": int(60 * f), "kimg": 3.84 * f, RUN_FID: 600 - 100 * f + seed,
                   RUN_ISC: 1 + f / 10, RUN_ISC.replace("[", "_std[", 1): 0.01}
                  for f in np.linspace(1 / evaluations, 1, evaluations)]
        (d / "scores.json").write_text(json.dumps(scores))
    if grids:
        for name in ("frac000", "frac050", "frac100", "final"):
            (d / "samples" / f"{name}.png").write_bytes(_grid_png(seed))
    return d


# -- training and scoring inputs ---------------------------------------------------------


def draw_for(channels: int, resolution: int, n: int = 8):
    """A ``draw()`` of random labelled batches in [-1, 1], as the loop would hand a family."""
    return lambda: (torch.rand(n, channels, resolution, resolution) * 2 - 1, torch.randint(0, 10, (n,)))


class Replay(GanModel):
    """A 'generator' that hands out a fixed bank of images in order (cycling), ignoring its latents."""

    def __init__(self, bank: torch.Tensor, conditional: bool = False, num_classes: int = 0) -> None:
        self.bank = bank
        self.position = 0
        self.net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.latent_dim = 4
        self.conditional = conditional
        self.num_classes = num_classes
        self.seen_labels: list[torch.Tensor] = []

    def networks(self):
        return {"generator": self.net}

    def generate(self, z, labels=None):
        n = z.shape[0]
        idx = (torch.arange(n) + self.position) % len(self.bank)
        self.position = (self.position + n) % len(self.bank)
        if labels is not None:
            self.seen_labels.append(labels.cpu())
        return self.bank[idx].to(z.device)


def noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = to_float(images)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def subset(dataset: ImageDataset, idx: torch.Tensor, name: str = "digits") -> ImageDataset:
    return ImageDataset(name, dataset.images[idx], dataset.labels[idx], dataset.num_classes,
                        dataset.class_names, split=dataset.split)


def evaluate(registry, metrics, model, dataset, cache, n, **options) -> dict[str, float]:
    """Scores of ``model`` by the metric plugins, with the domain extractor unless ``options`` name another
    (below ``ganbench run`` and ``score``, nothing fills in the dataset's own default)."""
    specs = [registry.metric(m) for m in metrics]
    opts = EvalOptions(metrics=tuple(metrics), num_samples=n, cache_dir=cache, **{"extractor": "lenet", **options})
    return make_evaluator(specs, model, dataset, opts, CPU, seed=0)(1.0, Counters())


def renamed(run: Path, results: Path, family: str) -> Path:
    """A copy of a real run under another family name, as another plugin's run would look."""
    copy = Path(shutil.copytree(run, results / "runs" / run.name.replace(run.name.split("-")[0], family, 1)))
    record = json.loads((copy / "run.json").read_text())
    record["family"], record["run_id"] = family, copy.name
    (copy / "run.json").write_text(json.dumps(record))
    return copy


def poison_curves(run: Path, from_row: int) -> None:
    """Losses become NaN and +/-inf from ``from_row`` on, as a diverging run logs them."""
    with (run / "curves.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    losses = [k for k in rows[0] if k.startswith("loss")]
    for row in rows[from_row:]:
        for i, key in enumerate(losses):
            row[key] = ("nan", "inf", "-inf")[i % 3]
    with (run / "curves.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
