"""isc, fid, kid, prc: the standard sample-quality scores, computed by torch-fidelity.

- isc: Inception Score (Salimans et al. 2016), higher is better.
- fid: Fréchet Inception Distance (Heusel et al. 2017), lower is better.
- kid: Kernel Inception Distance (Bińkowski et al. 2018), unbiased MMD² with
  the cubic polynomial kernel over 100 subsets of 1,000 (fewer when there
  are fewer samples), lower is better.
- prc: improved precision and recall (Kynkäänniemi et al. 2019), k=3.

Whatever subset of the four a run asks for is computed in one torch-fidelity
call per evaluation, so the generated samples are drawn and their features
extracted once (see :mod:`ganbench_builtin.fidelity` for the safeguards).

Protocol:

- Generated samples: ``--eval-samples`` (final) and
  ``--eval-samples-intermediate``; by default 50,000, the literature's count
  for IS and FID (:data:`DEFAULT_SAMPLES`), except with the domain extractor
  ``lenet``, whose default is 10,000 (50,000 takes about a minute per
  evaluation on a 2-core CPU, 10,000 about 10 s). Latents are drawn from a
  generator seeded by the run's seed, so every evaluation of a run scores the
  same latents; a conditional model gets labels in the dataset's class
  proportions.
- Reference: the whole dataset as loaded (the training split), cached on
  disk per (content hash, split, resolution, extractor, extraction version:
  :func:`ganbench_builtin.fidelity.extraction_tag`).
- Extractor: ``--extractor``; by default the dataset's domain extractor when
  its spec names one (``DatasetSpec.default_extractor``: ``lenet`` for digits
  and mnist; ``ganbench run`` and ``ganbench score`` fill it in),
  otherwise ``inception-v3-compat``, whose weights must be on disk
  (``--inception-weights``). Any other extractor torch-fidelity has
  registered (``vgg16``, ``clip-*``, ``dinov2-*``) may be named too; those
  download their own weights.

Score keys name the metric, the generated sample count and the extractor:
``fid50k[inception-v3-compat]``, ``isc10k[lenet-digits-1a2b3c4d]``,
``isc10k_std[...]``, ``kid10k[...]``, ``kid10k_std[...]``,
``prc10k_precision[...]``, ``prc10k_recall[...]``, ``prc10k_f_score[...]``.

Whichever of them a run asks for, the same extraction also gives the
diversity statistics ``div10k_spread[...]`` and, with ``lenet`` (a classifier
of the dataset's own classes), ``div10k_classes[...]``; they decide whether a
run is marked collapsed (:mod:`ganbench.scoring.diversity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch_fidelity
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ganbench import UsageError
from ganbench import DIVERSITY_METRIC as DIVERSITY, MetricContext
from ganbench_builtin.fidelity import (
    INCEPTION,
    METRICS,
    GeneratorInput,
    UInt8Images,
    calculate,
    dataset_digest,
    extraction_batch_size,
    extraction_tag,
    inception_label,
    named_scores,
    reference_cache_name,
    resolve_inception_weights,
)
from ganbench_builtin.extractors import lenet

#: default generated samples per evaluation, by extractor kind.
DEFAULT_SAMPLES = {"lenet": 10_000, "other": 50_000}

STATE = "torch-fidelity"


@dataclass(frozen=True)
class Setup:
    """What ``prepare`` resolved for a run, shared by the four metrics."""

    extractor: str  # the name torch-fidelity knows
    label: str  # the name in score keys
    weights: Path | None
    default_samples: int
    #: the name of the reference set's cached statistics and features, which holds the extraction's version
    reference_cache: str
    #: the extractor's layer of logits over the dataset's own classes (None: it classifies something else)
    class_layer: str | None = None


def resolve(ctx: MetricContext) -> Setup:
    """The extractor the options name, prepared; Inception when they name none (the caller fills in the
    dataset's own default, ``DatasetSpec.default_extractor``, before it gets here)."""
    requested = ctx.options.extractor or INCEPTION
    version = f"torch-fidelity {torch_fidelity.__version__}"  # its extractors' code ships with it
    if requested == "lenet":
        name, weights = lenet.prepare(ctx.dataset, ctx.cache_dir)
        extractor, label, default, version = name, name, DEFAULT_SAMPLES["lenet"], lenet.version()
    elif requested == INCEPTION:
        weights = resolve_inception_weights(ctx.options.inception_weights, ctx.cache_dir)
        extractor, label, default = INCEPTION, inception_label(weights), DEFAULT_SAMPLES["other"]
    elif requested in FEATURE_EXTRACTORS_REGISTRY:
        extractor, label, weights, default = requested, requested, None, DEFAULT_SAMPLES["other"]
    else:
        known = ["lenet", *sorted(FEATURE_EXTRACTORS_REGISTRY)]
        raise UsageError(f"Unknown feature extractor {requested!r} for --extractor; choose one of {', '.join(known)}.")
    tag = extraction_tag(extractor, version, weights)
    cache = reference_cache_name(ctx.dataset, tag, dataset_digest(ctx.dataset))
    return Setup(extractor, label, weights, default, cache, lenet.CLASS_LOGITS if requested == "lenet" else None)


def prepare(ctx: MetricContext) -> None:
    if STATE not in ctx.state:
        ctx.state[STATE] = resolve(ctx)


def _label_sampler():
    try:
        from ganbench_builtin.conditional import sample_labels
    except ImportError:  # the conditional family is optional; fall back to i.i.d. labels
        return None
    return sample_labels


def score_all(ctx: MetricContext) -> tuple[dict[str, float], int, str]:
    """Every requested torch-fidelity metric in one call: (raw results, samples, extractor label)."""
    prepare(ctx)
    setup: Setup = ctx.state[STATE]
    wanted = [m for m in METRICS if m in ctx.metrics]
    n = ctx.num_samples or setup.default_samples
    generated = GeneratorInput(
        ctx.model, n, ctx.device, seed=1_000_003 * (ctx.seed + 1),
        class_counts=ctx.dataset.info.class_counts, label_sampler=_label_sampler(),
    )
    raw = calculate(wanted, generated, n, UInt8Images(ctx.dataset.images), setup.reference_cache, setup.extractor,
                    ctx.device, ctx.cache_dir, seed=ctx.seed, weights_path=setup.weights,
                    batch_size=extraction_batch_size(ctx.device, ctx.options.batch_size),
                    diversity=True, class_layer=setup.class_layer)
    return raw, n, setup.label


def _compute(metric: str):
    def compute(ctx: MetricContext) -> dict[str, float]:
        raw, n, label = ctx.once(STATE, lambda: score_all(ctx))
        # every metric of the group reports the diversity statistics of the shared extraction (same values),
        # so that any choice of --metrics leaves a run with them
        return named_scores(raw, [metric, DIVERSITY], n, label, reference_size=len(ctx.dataset))

    compute.__name__ = f"compute_{metric}"
    return compute


compute_isc = _compute("isc")
compute_fid = _compute("fid")
compute_kid = _compute("kid")
compute_prc = _compute("prc")
