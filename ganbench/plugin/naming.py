"""How scores are named: ``<metric><samples>[_suffix][[extractor]]``, e.g. ``fid10k[lenet-digits-1a2b3c4d]``.

The sample count and the feature extractor are part of a score's name so that
a leaderboard never averages scores computed from different sample counts or
extractors. Every metric plugin follows it; the conformance kit checks it
(``metric.names``). Kept apart from the scoring code so that naming a score
imports nothing heavy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def count_label(n: int) -> str:
    """A sample count as score names write it: 10000 -> '10k', 50000 -> '50k', 500 -> '500', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def score_key(metric: str, suffix: str, samples: int, extractor: str) -> str:
    """The name a score is recorded under, e.g. ``fid10k[lenet-digits-1a2b3c4d]``."""
    return f"{metric}{count_label(samples)}{suffix}[{extractor}]"


def slug(text: str) -> str:
    """A string safe inside file names and registry names (datasets, extractors, runs scored from outside)."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "data"


def matching_scores(metric: str, keys: Iterable[str]) -> list[str]:
    """The score keys a user's ``metric`` names (``--rank-by``, ``--tune-metric``, a suite's ``rank_by``).

    The exact key (``fid10k[lenet-digits-1a2b3c4d]``), else the metric's headline scores: the name, then a
    sample count, then the extractor or nothing (``fid`` -> ``fid10k[...]``, ``w1`` -> ``w1_10k``, ``fid10k``
    -> ``fid10k[...]``). That leaves out the scores a metric adds with a suffix (``isc`` does not name
    ``isc10k_std[...]``) and other metrics that merely start with the same letters (``w`` names nothing).

    The leaderboard and ``ganbench tune`` both find scores with it, so one name means the same score to both.
    """
    keys = list(keys)
    if metric in keys:
        return [metric]
    headline = re.compile(rf"{re.escape(metric)}(_?[0-9.]+k?)?(\[|$)")
    return [k for k in keys if headline.match(k)]
