"""The contracts of a metric (``metric.*``): numbers, named by the convention, the same under a seed."""

from __future__ import annotations

import numbers
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from ganbench.scoring.evaluation import EvalOptions, MetricContext, scoring
from ganbench.plugin.naming import count_label
from ganbench.plugin.specs import MetricSpec
from . import harness as h
from .contract import Contract, expect, fail
from .objectives import tiny_gan

SHAPE = (1, 16)
SAMPLES = 32
#: After the metric's name and the sample count: an optional ``_suffix`` and an optional ``[extractor]``.
_REST = re.compile(r"(_[a-z0-9_]+)?(\[[^\[\]]+\])?")


def _scores(spec: MetricSpec, registry: Any) -> dict[str, Any]:
    """``compute`` on a tiny trained generator, as an evaluation calls it (after ``prepare``)."""
    objective = registry.objective("nonsaturating").build()
    model = tiny_gan(objective, shape=SHAPE)
    h.steps(model, h.stream(h.tiny_dataset(*SHAPE)), 2)
    with tempfile.TemporaryDirectory() as cache:
        options = EvalOptions(metrics=(spec.name,), num_samples=SAMPLES, cache_dir=Path(cache))
        ctx = MetricContext(model, h.tiny_dataset(*SHAPE, n=64), options, h.CPU, 0, (spec.name,), Path(cache),
                            num_samples=SAMPLES)
        if spec.prepare is not None:
            spec.prepare(ctx)
        torch.manual_seed(0)
        with scoring(model, h.CPU):
            scores = spec.compute(ctx)
    if not isinstance(scores, dict):
        raise fail("metric.numbers", spec.name, f"compute must return a dict of named numbers, got {type(scores).__name__}")
    return scores


def _numbers(spec: MetricSpec, registry: Any) -> None:
    scores = _scores(spec, registry)
    expect(bool(scores), "metric.numbers", spec.name, "compute returned no scores")
    for key, value in scores.items():
        expect(isinstance(value, numbers.Real) and not isinstance(value, bool), "metric.numbers", spec.name,
               f"{key!r} is a {type(value).__name__}: scores are Python or NumPy numbers (float(t), never a tensor)")


def _names(spec: MetricSpec, registry: Any) -> None:
    prefix = f"{spec.name}{count_label(SAMPLES)}"
    for key in _scores(spec, registry):
        ok = isinstance(key, str) and key.startswith(prefix) and _REST.fullmatch(key[len(prefix):]) is not None
        expect(ok, "metric.names", spec.name, f"{key!r} does not follow <metric><samples>[_suffix][[extractor]]: "
               f"with {SAMPLES} samples asked for, a score of {spec.name!r} is named like {prefix!r}, "
               f"'{prefix}_std' or '{prefix}[my-extractor]'")


def _deterministic(spec: MetricSpec, registry: Any) -> None:
    first, second = _scores(spec, registry), _scores(spec, registry)
    where = h.difference(first, second)
    expect(where is None, "metric.deterministic", spec.name, f"two evaluations under seed 0 differ at {where}: "
           f"{first.get(where)!r} and {second.get(where)!r}")


def metric_contracts(spec: MetricSpec, registry: Any) -> list[Contract]:
    checks = {"metric.numbers": _numbers, "metric.names": _names, "metric.deterministic": _deterministic}
    return [Contract(cid, spec.name, lambda check=check: check(spec, registry)) for cid, check in checks.items()]
