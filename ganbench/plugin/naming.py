"""How scores are named: ``<metric><samples>[_suffix][[extractor]]``, e.g. ``fid10k[lenet-digits-1a2b3c4d]``.

The sample count and the feature extractor are part of a score's name so that
a leaderboard never averages scores computed from different sample counts or
extractors. Every metric plugin follows it; the conformance kit checks it
(``metric.names``). Kept apart from the scoring code so that naming a score
imports nothing heavy.
"""

from __future__ import annotations

import re


def count_label(n: int) -> str:
    """A sample count as score names write it: 10000 -> '10k', 50000 -> '50k', 500 -> '500', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def score_key(metric: str, suffix: str, samples: int, extractor: str) -> str:
    """The name a score is recorded under, e.g. ``fid10k[lenet-digits-1a2b3c4d]``."""
    return f"{metric}{count_label(samples)}{suffix}[{extractor}]"


def slug(text: str) -> str:
    """A string safe inside file names and registry names (datasets, extractors, runs scored from outside)."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "data"
