"""Statistics over seeds: mean, standard deviation and a Student-t confidence interval.

Every score on a leaderboard is a mean over the seeds that completed. Its
uncertainty is reported two ways: the sample standard deviation (``ddof=1``,
the spread of one run) and the half-width of a 95 % confidence interval for
the mean, ``t(0.975, n-1) * std / sqrt(n)`` (how well the mean is known).
With one seed neither exists and both are NaN, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation, count and 95 % CI half-width of finite values."""

    mean: float
    std: float
    n: int
    ci95: float

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95


def t_halfwidth(std: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the two-sided Student-t interval for a mean of ``n`` values; NaN when n < 2."""
    if n < 2 or not math.isfinite(std):
        return NAN
    from scipy import stats as _scipy_stats  # here, not at the top: scipy.stats costs every command a second

    return float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)


def summarize(values: Iterable[float | None]) -> Summary:
    """Summarise the finite values (None, NaN and infinities are ignored)."""
    finite = [float(v) for v in values if v is not None and _finite(v)]
    n = len(finite)
    if n == 0:
        return Summary(NAN, NAN, 0, NAN)
    mean = math.fsum(finite) / n
    if n == 1:
        return Summary(mean, NAN, 1, NAN)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    return Summary(mean, std, n, t_halfwidth(std, n))


def intervals_overlap(mean_a: float, half_a: float, mean_b: float, half_b: float) -> bool:
    """Whether [mean ± half] intervals overlap; False when either is unknown (NaN)."""
    if not all(math.isfinite(x) for x in (mean_a, half_a, mean_b, half_b)):
        return False
    return abs(mean_a - mean_b) <= half_a + half_b


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
