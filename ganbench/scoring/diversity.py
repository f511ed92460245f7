"""Sample diversity and the ``collapsed`` verdict: a collapse is never silent.

A generator that has lost its diversity (every sample the same blob, or the
same digit) still gets an FID and an Inception Score, and a leaderboard that
only ranks those numbers turns a broken run into a "finding". ganbench
therefore measures, at every evaluation and from the features the scores
already extract (no second pass over the samples), two statistics:

``div<N>_spread[<extractor>]``
    sqrt(tr Σ_gen / tr Σ_real): the root-mean-square distance of generated
    features from their mean, as a fraction of the real data's, in the
    extractor's FID layer. 1 for samples as varied as the data; 0 for a
    generator that ignores its noise.
``div<N>_classes[<extractor>]``
    with an extractor that classifies the dataset's own classes (``lenet``
    for digits and MNIST): how many of the K classes the extractor predicts
    for at least half their uniform share (:data:`MIN_CLASS_SHARE`; 5 % of
    the samples for 10 classes), so that the stray argmaxes of a few odd
    samples are not counted as diversity.

A run is **collapsed** when its final evaluation has a spread below
:data:`SPREAD_COLLAPSED_BELOW` or a single predicted class
(:data:`CLASSES_COLLAPSED_AT_MOST`). The thresholds, and the measurements they
were chosen from, are in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import torch

#: The metric name of the diversity statistics in score keys (``div10k_spread[lenet-…]``).
METRIC = "div"
SPREAD, CLASSES = "_spread", "_classes"
#: A run whose generated features spread less than this fraction of the real data's is collapsed.
SPREAD_COLLAPSED_BELOW = 0.25
#: A run whose samples the domain classifier assigns to this many classes or fewer is collapsed.
CLASSES_COLLAPSED_AT_MOST = 1
#: A class counts as generated when at least this fraction of its uniform share (1/K of the samples)
#: is predicted as it: 5 % of the samples for 10 classes. The digits classifier puts up to 4 % of the
#: images of one real class into another one; those stray predictions are not a second mode.
MIN_CLASS_SHARE = 0.5
#: The rule in words, for tables and reports.
COLLAPSE_RULE = (f"{METRIC}…{SPREAD} below {SPREAD_COLLAPSED_BELOW:g} of the real data's feature spread, "
                 f"or {METRIC}…{CLASSES} <= {CLASSES_COLLAPSED_AT_MOST}")

_KEY = re.compile(rf"^{METRIC}\d+k?(?P<suffix>{SPREAD}|{CLASSES})\[[^\]]+\]$")


def covariance_trace(features: torch.Tensor | np.ndarray) -> float:
    """tr of the sample covariance (ddof 1) of an (N, D) feature block: the total variance."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        return math.nan
    return float(x.var(axis=0, ddof=1).sum())


def spread_ratio(generated_trace: float, real_trace: float) -> float:
    """sqrt(tr Σ_gen / tr Σ_real); NaN when the real data has no spread to compare with."""
    if not (math.isfinite(generated_trace) and math.isfinite(real_trace)) or real_trace <= 0:
        return math.nan
    return math.sqrt(max(generated_trace, 0.0) / real_trace)


def predicted_classes(logits: torch.Tensor | np.ndarray, min_share: float = MIN_CLASS_SHARE) -> int:
    """How many of the K classes are the argmax of at least ``min_share / K`` of the rows of ``logits`` (N, K)."""
    x = np.asarray(logits)
    if x.ndim != 2 or len(x) == 0:
        return 0
    counts = np.bincount(x.argmax(axis=1), minlength=x.shape[1])
    return int((counts >= max(1.0, min_share / x.shape[1] * len(x))).sum())


def _statistic(scores: Mapping[str, float], suffix: str) -> float | None:
    for key, value in scores.items():
        match = _KEY.match(str(key))
        if match and match["suffix"] == suffix and value is not None and math.isfinite(float(value)):
            return float(value)
    return None


def is_diversity_key(key: str) -> bool:
    """Whether a score key is one of the diversity statistics (a diagnostic, not a quality score)."""
    return _KEY.match(key.split(":", 1)[-1].partition("@")[0]) is not None


def judge(scores: Mapping[str, float]) -> tuple[bool | None, str]:
    """(collapsed, why) from one evaluation's scores; (None, '') when they hold no diversity statistic."""
    spread, classes = _statistic(scores, SPREAD), _statistic(scores, CLASSES)
    if spread is None and classes is None:
        return None, ""
    reasons = []
    if spread is not None and spread < SPREAD_COLLAPSED_BELOW:
        reasons.append(f"feature spread {spread:.3g} of the real data's (< {SPREAD_COLLAPSED_BELOW:g})")
    if classes is not None and classes <= CLASSES_COLLAPSED_AT_MOST:
        reasons.append(f"{int(classes)} predicted class{'es' if classes != 1 else ''} "
                       f"(<= {CLASSES_COLLAPSED_AT_MOST})")
    if reasons:
        return True, "samples lack diversity: " + "; ".join(reasons)
    parts = [f"feature spread {spread:.3g}" if spread is not None else "",
             f"{int(classes)} predicted classes" if classes is not None else ""]
    return False, ", ".join(p for p in parts if p)
