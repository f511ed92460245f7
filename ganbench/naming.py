"""How scores are named: ``<metric><samples>[_suffix][[extractor]]``, e.g. ``fid10k[lenet-digits-1a2b3c4d]``.

The sample count and the feature extractor are part of a score's name so that
a leaderboard never averages scores computed from different sample counts or
extractors. Every metric plugin follows it; the conformance kit checks it
(``metric.names``). Kept apart from the scoring code so that naming a score
imports nothing heavy.
"""

from __future__ import annotations


def count_label(n: int) -> str:
    """A sample count as score names write it: 10000 -> '10k', 50000 -> '50k', 500 -> '500', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
