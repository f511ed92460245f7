"""``ganbench score``: the protocol of ``ganbench run`` for models ganbench did not train.

A score is only comparable with another when both were computed the same
way: same metrics, feature extractor, sample count, reference set, cached
statistics. So an outside model is not scored by a second implementation but
made to look like a trained one to the evaluation code every run uses
(:func:`ganbench.scoring.evaluation.make_evaluator` and the metric plugins), and its
scores carry the same protocol labels (``fid10k[lenet-digits-…]``).

Sources:

- an image folder: every image under it (through the ``imagefolder`` dataset plugin);
- an ``.npy`` or ``.npz`` of uint8 images, shaped (N, H, W), (N, H, W, C) or (N, C, H, W);
- a ganbench run directory: its generator rebuilt by its family plugin from
  ``config.json``, with the final checkpoint's weights (or ``best.pt``); by
  default scored with the run's own protocol, so its recorded final scores
  come out again exactly;
- ``module:callable``: a function returning a ``torch.nn.Module`` that maps
  latents (N, latent_dim) to images (N, C, H, W) in [-1, 1]; ``latent_dim``
  comes from the module's ``latent_dim`` (or ``z_dim``) attribute or ``--latent-dim``.

A set of images stands in for a generator through :class:`ImageSet`: the
n-th sample asked for is the n-th image of a seeded shuffle, so scoring N of
more images draws a fixed, reproducible subset without repeats.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganbench.training.budget import Counters
from ganbench.plugin.data import ImageDataset, to_float
from ganbench.errors import UsageError
from ganbench.scoring.evaluation import EvalOptions, make_evaluator, preflight
from ganbench.plugin.model import BuildContext, GanModel
from ganbench.plugin.registry import Registry
from ganbench.results.records import RunConfig

IMAGE_FILES = (".npy", ".npz")
#: The dataset plugin that reads image folders (a source folder goes through the same loader as a dataset).
FOLDER_PLUGIN = "imagefolder"


@dataclass(frozen=True)
class Scored:
    """What ``ganbench score`` reports: the scores and where they came from."""

    source: str
    kind: str
    dataset: str
    samples: int | None
    scores: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "dataset": self.dataset, "samples": self.samples,
                "scores": self.scores, **self.details}


class ImageSet(GanModel):
    """A fixed block of uint8 images posing as a generator (see the module docstring).

    Each evaluation puts the model in eval mode, which starts the samples again
    from the first image, so one evaluation never sees an image twice.
    """

    latent_dim = 1

    def __init__(self, images: torch.Tensor, seed: int) -> None:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        self.images = images[order]
        self.cursor = 0

    def networks(self) -> dict[str, nn.Module]:
        return {}

    def eval(self) -> GanModel:
        self.cursor = 0
        return self

    def sample_latent(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.cursor + n > len(self.images):
            raise UsageError(
                f"The input holds {len(self.images):,} images, fewer than the samples the metrics score (more than "
                f"{self.cursor:,}). Pass --eval-samples {len(self.images)} or less (the scores' names then state that "
                "count, so they are compared only with scores from as many samples), or give more images."
            )
        index = torch.arange(self.cursor, self.cursor + n)
        self.cursor += n
        return index.to(device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return to_float(self.images[z.cpu()]).to(z.device)


class ModuleGenerator(GanModel):
    """A user's ``torch.nn.Module`` (latents in, images in [-1, 1] out) as a generator."""

    def __init__(self, module: nn.Module, latent_dim: int) -> None:
        self.module = module
        self.latent_dim = latent_dim

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.module}

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = self.module(z)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise UsageError(f"The generator module returned {got}; it must return float images (N, C, H, W) in [-1, 1].")
        return images


# -- sources ----------------------------------------------------------------


def images_from_array(path: Path) -> torch.Tensor:
    """uint8 images (N, C, H, W) from an ``.npy``, or the array of an ``.npz`` (``images`` or its only one)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot read {path} as a NumPy array file: {exc}.") from exc
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            if "images" not in names and len(names) != 1:
                raise UsageError(f"{path} holds the arrays {', '.join(names)}; name the images 'images' or keep only one.")
            array = data["images" if "images" in names else names[0]]
    else:
        array = data
    if array.dtype != np.uint8:
        raise UsageError(f"{path} holds {array.dtype} values; ganbench scores uint8 images in [0, 255].")
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise UsageError(f"{path} holds an array shaped {array.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W).")
    return torch.from_numpy(np.ascontiguousarray(array))


def is_run_directory(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "run.json").is_file()


def read_run_config(run_dir: Path) -> RunConfig:
    """The :class:`RunConfig` a run directory was trained with."""
    data = json.loads((run_dir / "config.json").read_text())
    known = RunConfig.__dataclass_fields__
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    return RunConfig(**data)


def run_generator(registry: Registry, run_dir: Path, config: RunConfig, dataset: ImageDataset,
                  device: torch.device, which: str) -> GanModel:
    """The run's family rebuilt from its config, with the weights of its final checkpoint or of ``best.pt``."""
    from ganbench.training import checkpoint

    from ganbench.execution.runner import build_objective, family_options
    from ganbench.training.capacity import matched_context
    from ganbench.training.options import build_model, ema_weights, settings_of

    family = registry.model(config.family)
    settings = settings_of(config, family_options(family, config))
    objective = build_objective(registry.objective(config.objective), config.options)
    ctx = BuildContext(dataset.info, objective, settings, device, config.seed)
    model = build_model(family, matched_context(family, ctx, str(registry.get("model", family.name).plugin)))
    if which == "best":
        if not (run_dir / "best.pt").is_file():
            raise UsageError(f"{run_dir} has no best.pt; only runs trained with --select-best keep one. "
                             "Use --checkpoint final.")
        weights = checkpoint.load_file(run_dir / "best.pt")
    else:
        state = checkpoint.load_latest(run_dir)
        if state is None:
            raise UsageError(f"{run_dir} holds no checkpoint; the run never saved one.")
        weights = {**state["networks"], **ema_weights(state)}  # with --ema, the averaged G is what was scored
    for name, net in model.networks().items():
        net.load_state_dict(weights[name])
    return model


def module_generator(text: str, latent_dim: int | None, device: torch.device) -> GanModel:
    """``module:callable`` imported and called; the module it returns wrapped as a generator."""
    module_name, _, attribute = text.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"Cannot import the generator {text!r}: {type(exc).__name__}: {exc}.") from exc
    module = factory()
    if not isinstance(module, nn.Module):
        raise UsageError(f"{text} returned {type(module).__name__}, not a torch.nn.Module.")
    latent_dim = latent_dim or getattr(module, "latent_dim", None) or getattr(module, "z_dim", None)
    if not latent_dim:
        raise UsageError(f"The latent size of {text} is unknown: give the module a latent_dim attribute "
                         "or pass --latent-dim N.")
    return ModuleGenerator(module.to(device).eval(), int(latent_dim))


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _dataset(registry: Registry, name: str, data_dir: Path, download: bool, resolution: int | None) -> ImageDataset:
    from ganbench.execution.runner import Invocation, load_dataset

    return load_dataset(registry, Invocation(dataset=name, data_dir=data_dir, download=download, resolution=resolution))


@dataclass(frozen=True)
class ScoreRequest:
    """What ``ganbench score`` was asked; None means the run's own value (run directories) or the default."""

    source: str
    dataset: str | None = None
    metrics: tuple[str, ...] | None = None
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    checkpoint: str = "final"
    seed: int | None = None
    device: str = "auto"
    data_dir: Path = Path(".")
    download: bool = True
    resolution: int | None = None
    latent_dim: int | None = None


def score(registry: Registry, request: ScoreRequest) -> Scored:
    """Score ``request.source`` against its reference dataset with the metric plugins (see the module docstring)."""
    from ganbench.execution.runner import dataset_extractor, resolve_device

    device = resolve_device(request.device)
    path = Path(request.source).expanduser()
    options, dataset_name, resolution, seed = request.evaluation, request.dataset, request.resolution, request.seed
    details: dict[str, Any] = {}
    config = None
    if path.is_dir() and is_run_directory(path):
        kind = "run"
        config = read_run_config(path)
        protocol = config.evaluation
        options = replace(options, metrics=request.metrics or config.metrics,
                          extractor=options.extractor or protocol.get("extractor"),
                          num_samples=options.num_samples or protocol.get("num_samples"),
                          inception_weights=options.inception_weights or _path(protocol.get("inception_weights")))
        dataset_name = dataset_name or config.dataset
        resolution = resolution or config.resolution
        seed = config.seed if seed is None else seed
        details = {"run_id": config.run_id, "checkpoint": request.checkpoint}
    else:
        options = replace(options, metrics=request.metrics or options.metrics)
        if dataset_name is None:
            raise UsageError("Name the reference images with --dataset (and --split), e.g. --dataset mnist --split test.")
        kind = "folder" if path.is_dir() else "array" if path.suffix in IMAGE_FILES else "module"
        if kind == "module" and ":" not in request.source:
            raise UsageError(f"{request.source!r} is not an image folder, an .npy/.npz file, a run directory or "
                             "module:callable naming a function that returns a torch module.")
        if kind == "array" and not path.is_file():
            raise UsageError(f"The file {path} does not exist.")
        seed = 0 if seed is None else seed
    if not options.metrics:
        raise UsageError("No metrics to compute; name some with --metrics, e.g. --metrics isc,fid.")
    options = dataset_extractor(registry, dataset_name, options)
    specs = [registry.metric(name) for name in options.metrics]
    reference = _dataset(registry, dataset_name, request.data_dir, request.download, resolution)
    preflight(specs, reference, options, device)
    if kind == "run":
        model = run_generator(registry, path, config, reference, device, request.checkpoint)
    elif kind == "module":
        model = module_generator(request.source, request.latent_dim, device)
    else:
        images = (_dataset(registry, f"{FOLDER_PLUGIN}:{path}", request.data_dir, False, None).images
                  if kind == "folder" else images_from_array(path))
        if images.shape[-1] != reference.resolution or images.shape[-2] != reference.resolution:
            raise UsageError(
                f"The images of {path} are {images.shape[-2]}x{images.shape[-1]}, the reference {dataset_name} "
                f"{reference.resolution}x{reference.resolution}. Resize one to the other (--resolution N resizes the "
                "reference) so that both are judged at the same size.")
        details["images"] = len(images)
        model = ImageSet(images, seed)
    evaluate = make_evaluator(specs, model, reference, options, device, seed)
    scores = evaluate(1.0, Counters())
    return Scored(str(request.source), kind, dataset_name, options.num_samples, scores,
                  {**details, "seed": seed, "metrics": list(options.metrics)})


def write_external(results: Path, name: str, scored: Scored, device: str) -> Path:
    """A run record for an outside model, so that it appears on ``results``' leaderboard and report.

    Its status is ``external`` and its budget ``external``: it is ranked by its
    scores beside the trained runs but never grouped with them, and it has no
    training counters, since ganbench never trained it under any budget.
    """
    from datetime import datetime, timezone

    from ganbench import __version__
    from ganbench.plugin.naming import slug
    from ganbench.results.records import EXTERNAL, RunRecord
    from ganbench.results.store import write_json

    run_id = f"external-{slug(name)}"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = RunRecord(run_id=run_id, family=name, objective="external", dataset=scored.dataset, budget="external",
                       seed=int(scored.details.get("seed", 0)), status=EXTERNAL, device=device, scores=scored.scores,
                       started_at=now, finished_at=now, ganbench_version=__version__)
    directory = Path(results) / "runs" / run_id
    write_json(directory / "external.json", scored.as_dict())
    write_json(directory / "run.json", record.as_dict())
    return directory
