"""Scoring a generator during and after training (wiring between the loop and metric plugins).

The loop calls the evaluator returned by :func:`make_evaluator` at each
fraction of the budget in ``EvalOptions.fractions`` (and at 1.0); its time is
charged to evaluation, never to the training budget.

How an evaluation runs
----------------------
:func:`make_evaluator` builds one :class:`MetricContext` per run and calls every
metric's ``prepare`` (when it has one) right away, before the first training
step: a missing weights file or an unknown extractor fails the run before any
budget is spent. Each evaluation then gets a fresh copy of the context and
calls every metric's ``compute``. Metrics that share work (the torch-fidelity
scores share one feature extraction) use :meth:`MetricContext.once`, which
memoises a result for the duration of one evaluation.

Every evaluation runs under :func:`scoring`: gradients off, the generator in
eval mode (each network's previous train/eval mode is restored afterwards),
TF32 matmuls and convolutions off (restored afterwards), and the global RNGs
forked, so that scoring in the middle of training never changes the random
stream the training uses.

Score names
-----------
Metric plugins name their scores; the built-in torch-fidelity metrics use
``<metric><samples>[<extractor>]`` (see :mod:`ganbench.plugin.naming`), e.g.
``fid10k[lenet-digits-1a2b3c4d]`` or ``isc50k[inception-v3-compat]``, so a
leaderboard never averages scores from different extractors or sample counts.

Cache directory
---------------
Reference statistics and trained domain extractors are cached under
``EvalOptions.cache_dir``; the environment variable ``GANBENCH_CACHE_DIR``,
when set, takes precedence (the CLI always passes its default, the user cache
directory, so the variable is the way to move the cache from the command line).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ganbench.training.budget import Counters
from ganbench.plugin.data import ImageDataset
from ganbench.errors import GanbenchError, UsageError
from ganbench.plugin.model import GanModel
from ganbench.results.records import FAILED_METRICS
from ganbench.plugin.specs import MetricSpec
from ganbench.results.store import check_writable

Evaluator = Callable[[float, Counters], dict[str, float]]

CACHE_ENV = "GANBENCH_CACHE_DIR"


@dataclass(frozen=True)
class EvalOptions:
    """How runs are scored; recorded in each run's config.

    ``num_samples`` None means the metric's literature default; ``intermediate_samples``
    is the cheaper count used before the final evaluation (None: same as final).
    """

    metrics: tuple[str, ...] = ()
    extractor: str | None = None
    num_samples: int | None = None
    intermediate_samples: int | None = None
    fractions: tuple[float, ...] = (1.0,)
    inception_weights: Path | None = None
    cache_dir: Path = Path(".")
    #: Metric whose held-out score selects a "best" checkpoint (see :mod:`ganbench.scoring.selection`); None: no selection.
    select_best: str | None = None
    #: Images per feature-extraction batch (None: the metric plugin chooses by device).
    #: Not part of the protocol: torch-fidelity's scores do not depend on it beyond float rounding.
    batch_size: int | None = None


def resolve_cache_dir(options: EvalOptions) -> Path:
    """Where scoring caches live: ``$GANBENCH_CACHE_DIR`` when set, else ``options.cache_dir``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(options.cache_dir).expanduser()


@dataclass
class MetricContext:
    """What a metric's ``prepare`` and ``compute`` receive.

    ``metrics`` names every metric of this evaluator (so one plugin can compute
    a group of them together); ``num_samples`` is the number of generated
    samples asked for at this evaluation (None: the metric's default);
    ``state`` lives as long as the evaluator (what ``prepare`` resolved),
    ``shared`` only for one evaluation (see :meth:`once`).
    """

    model: GanModel
    dataset: ImageDataset
    options: EvalOptions
    device: torch.device
    seed: int
    metrics: tuple[str, ...]
    cache_dir: Path
    fraction: float = 1.0
    num_samples: int | None = None
    state: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.fraction >= 1.0

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for in this evaluation; the same result after."""
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]


def samples_for(options: EvalOptions, fraction: float) -> int | None:
    """Generated samples for an evaluation at ``fraction`` (None: the metric's default)."""
    if fraction < 1.0 and options.intermediate_samples is not None:
        return options.intermediate_samples
    return options.num_samples


@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """TF32 off for matmuls and cuDNN convolutions; the previous settings come back afterwards."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def modes_preserved(model: GanModel) -> Iterator[None]:
    """The model in eval mode inside; every module's own train/eval mode restored afterwards."""
    saved = [(m, m.training) for net in model.networks().values() for m in net.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training


@contextlib.contextmanager
def scoring(model: GanModel, device: torch.device) -> Iterator[None]:
    """Everything an evaluation runs under; see the module docstring."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=devices))
        stack.enter_context(modes_preserved(model))
        stack.enter_context(tf32_disabled())
        stack.enter_context(torch.no_grad())
        if device.type == "cuda":
            stack.enter_context(torch.cuda.device(device))
        yield


def sample_images(model: GanModel, n: int, device: torch.device | str, seed: int = 0,
                  batch_size: int = 256) -> torch.Tensor:
    """``n`` generated images in [-1, 1], (N, C, H, W) on ``device``, for a metric to score.

    Drawn under :func:`scoring` (eval mode, no gradients, the training random
    streams untouched) from a generator seeded with ``seed``, so the same call
    gives the same images; class labels, for a conditional family, are drawn
    uniformly from the same generator. Generated in batches of ``batch_size`` to
    bound memory; every latent is drawn first, so the batch size never changes the images.
    """
    device = torch.device(device)
    generator = torch.Generator(device).manual_seed(seed)
    with scoring(model, device):
        z = model.sample_latent(n, device, generator=generator)
        labels = (torch.randint(0, model.num_classes, (n,), device=device, generator=generator)
                  if model.conditional and model.num_classes else None)
        return torch.cat([model.generate(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                          for i in range(0, n, batch_size)])


def _check_scores(spec: MetricSpec, scores: Any) -> dict[str, float]:
    if not isinstance(scores, dict):
        raise GanbenchError(f"The metric {spec.name!r} returned {type(scores).__name__}, not a dict of named floats.")
    out: dict[str, float] = {}
    for key, value in scores.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise GanbenchError(f"The metric {spec.name!r} returned {value!r} for {key!r}, which is not a number.") from None
    return out  # a NaN is kept as is: it is information (e.g. a collapsed generator), not a crash


def preflight(specs: list[MetricSpec], dataset: ImageDataset, options: EvalOptions, device: torch.device) -> None:
    """Run every metric's ``prepare`` once before any run trains, so a missing weights file or an
    unknown extractor stops the invocation with its message instead of failing every run."""
    cache_dir = resolve_cache_dir(options)
    check_writable(cache_dir, "the scoring cache (extractors, reference statistics)",
                   f"Point {CACHE_ENV} (or XDG_CACHE_HOME) at a writable directory.")
    ctx = MetricContext(None, dataset, options, torch.device(device), 0,  # type: ignore[arg-type]
                        tuple(spec.name for spec in specs), cache_dir)
    for spec in specs:
        if spec.prepare is not None:
            spec.prepare(ctx)


def make_evaluator(
    specs: list[MetricSpec],
    model: GanModel,
    dataset: ImageDataset,
    options: EvalOptions,
    device: torch.device,
    seed: int,
    origins: Mapping[str, str] | None = None,
) -> Evaluator:
    """An evaluator for ``model``; every metric's ``prepare`` runs now, before training.

    A metric whose ``compute`` raises is left out of that evaluation and named,
    with ``origins[name]`` (its plugin and distribution), under
    :data:`FAILED_METRICS` in the scores; the other metrics are still computed.
    A :class:`UsageError` still stops the evaluation: the command must change
    (more images, fewer samples), which no other metric's score would fix.
    """
    origins = origins or {}
    names = tuple(spec.name for spec in specs)
    if len(set(names)) != len(names):
        raise GanbenchError(f"A metric is listed twice in {', '.join(names)}; name each metric once.")
    for count, what in ((options.num_samples, "--eval-samples"), (options.intermediate_samples, "--eval-samples-intermediate")):
        if count is not None and count < 2:
            raise GanbenchError(f"{what} must be at least 2 (got {count}).")
    base = MetricContext(model, dataset, options, torch.device(device), seed, names, resolve_cache_dir(options))
    for spec in specs:
        if spec.prepare is not None:
            spec.prepare(base)

    def evaluate(fraction: float, counters: Counters) -> dict[str, float]:
        del counters
        ctx = replace(base, fraction=fraction, num_samples=samples_for(options, fraction), shared={})
        scores: dict[str, float] = {}
        failed: dict[str, str] = {}
        with scoring(model, ctx.device):
            for spec in specs:
                try:
                    scores.update(_check_scores(spec, spec.compute(ctx)))
                except (KeyboardInterrupt, UsageError):  # an interrupt, or the user must change the command
                    raise
                except BaseException as exc:  # noqa: BLE001 - one metric's fault costs its score, not the others or the run
                    failed[spec.name] = f"{type(exc).__name__}: {exc}"
                    where = origins.get(spec.name, "")
                    print(f"warning: the metric {spec.name!r}{f' ({where})' if where else ''} failed at "
                          f"{fraction:.0%} of the budget; its score is missing: {failed[spec.name]}", file=sys.stderr)
        if failed:
            scores[FAILED_METRICS] = failed  # type: ignore[assignment]  # kept in scores.json, never ranked
        return scores

    return evaluate
