"""Exact metrics for data whose true distribution is known (``meta["truth"]`` of the dataset).

IS and FID estimate quality in a learned feature space. On the toy datasets
(:mod:`ganbench_builtin.datasets.toys`) the truth is known, so the answer can
be computed exactly and checked.

1-D (a single normal N(μ, σ), ``gauss1d``), on ``--eval-samples`` generated
samples, 10,000 by default:

- ``w1``: the Wasserstein-1 distance between the samples' empirical
  distribution F_n and the true normal F, ∫|F_n(x) − F(x)| dx, computed
  exactly against the normal's CDF and quantile function (not against a
  second sample, whose own noise would add about σ·1.1/√n): between two
  consecutive sorted samples F_n is a constant k/n, and the integral of
  |k/n − F| over that stretch splits at the quantile F⁻¹(k/n) and uses the
  normal's integrated CDF, (x − μ)Φ(z) + σφ(z). Key ``w1_10k``.
- ``ks``: the Kolmogorov–Smirnov statistic sup|F_n − F| (scipy). Key ``ks10k``.
- ``moments``: |sample mean − μ| and |sample standard deviation − σ|.
  Keys ``mean_err10k``, ``std_err10k``.

2-D mixtures (``ring``, ``grid``), PacGAN's definitions (Lin et al. 2018,
``pacgan/extensions.py``; REFERENCES §3), on 2,500 samples by default:

- a sample is *high quality* when its distance to the nearest mode centre is
  below 3σ (the Mahalanobis distance of an isotropic normal);
- ``modes``: modes with at least one high-quality sample. Key ``modes2500``.
- ``hq``: the percentage of high-quality samples. Key ``hq2500``.
- ``rkl``: the reverse KL divergence Σ p log(p·K) of the histogram p of the
  high-quality samples over the K modes against the uniform 1/K (0 for a
  perfect generator, log K when every good sample is in one mode; NaN when no
  sample is good). Key ``rkl2500``.

Stacked MNIST (``stacked-mnist``), after VEEGAN and PacGAN, on 26,000 samples
by default: each colour channel of a generated image is classified by
ganbench's MNIST classifier (the ``lenet`` domain extractor, trained on the
single digits the stack was built from), and the digit triple is its mode.
``modes`` counts the triples seen (out of 1,000) and ``rkl`` is the KL of
their histogram against uniform (every sample counts). Keys name the
classifier: ``modes26k[lenet-mnist-…]``, ``rkl26k[lenet-mnist-…]``.

Latents come from a generator seeded by the run's seed, so every evaluation of
a run scores the same latents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from ganbench import UsageError
from ganbench import TRUTH, MetricContext, to_float, to_uint8
from ganbench_builtin.fidelity import count_label

DEFAULT_SAMPLES = {"1d": 10_000, "2d": 2_500, "stacked": 26_000}
#: PacGAN's threshold: a sample within this many sigmas of a mode centre is high quality.
THRESHOLD_SIGMAS = 3.0
CHUNK = 10_000
STATE = "toy-truth"


# -- the exact computations (plain numpy, tested on known answers) -------------------------------------------


def w1_to_normal(samples: np.ndarray, mean: float, std: float) -> float:
    """∫|F_n − F| dx between the empirical CDF of ``samples`` and N(mean, std), exactly (module docstring)."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = len(x)

    def integrated_cdf(t: np.ndarray) -> np.ndarray:  # ∫_{-inf}^t F
        z = (t - mean) / std
        return (t - mean) * stats.norm.cdf(z) + std * stats.norm.pdf(z)

    g = integrated_cdf(x)
    left = g[0]  # F_n = 0 below the smallest sample
    right = integrated_cdf(np.array([x[-1]]))[0] - (x[-1] - mean)  # ∫_{x_n}^inf (1 - F) = G(x_n) - (x_n - mean)
    level = np.arange(1, n) / n
    lo, hi = x[:-1], x[1:]
    cross = np.clip(mean + std * stats.norm.ppf(level), lo, hi)
    g_cross = integrated_cdf(cross)
    middle = level * (cross - lo) - (g_cross - g[:-1]) + (g[1:] - g_cross) - level * (hi - cross)
    return float(left + middle.sum() + right)


def ks_to_normal(samples: np.ndarray, mean: float, std: float) -> float:
    return float(stats.kstest(np.asarray(samples, dtype=np.float64).ravel(), "norm", args=(mean, std)).statistic)


def mode_counts(samples: np.ndarray, centres: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    """High-quality samples per mode (nearest centre, within 3σ) and how many samples were high quality."""
    d = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)
    nearest, distance = d.argmin(axis=1), d.min(axis=1)
    good = distance < THRESHOLD_SIGMAS * sigma
    return np.bincount(nearest[good], minlength=len(centres)), int(good.sum())


def reverse_kl_to_uniform(counts: np.ndarray) -> float:
    """Σ p log(p K) of the histogram ``counts`` against uniform over its K bins; NaN for an empty histogram."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts[counts > 0] / total
    return float((p * np.log(p * len(counts))).sum())


# -- wiring to the evaluation -------------------------------------------------------------------------------


def _truth(ctx: MetricContext, metric: str, want: str) -> dict[str, Any]:
    truth = ctx.dataset.meta.get(TRUTH)
    reason = ""
    if not truth:
        reason = "its true distribution is not known (only gauss1d, ring, grid and stacked-mnist say theirs)"
    elif want == "1d" and not ("centres" in truth and len(truth["centres"]) == 1 and len(truth["centres"][0]) == 1):
        reason = "it needs a single 1-D normal such as gauss1d"
    elif want == "mixture" and "centres" not in truth:
        reason = "it needs a mixture of normals such as ring or grid"
    elif want == "modes" and "centres" not in truth and "modes" not in truth:
        reason = "it needs data with known modes (ring, grid, stacked-mnist)"
    if reason:
        raise UsageError(f"The metric {metric!r} (ganbench's built-in toy metrics) cannot score the dataset "
                         f"{ctx.dataset.name!r}: {reason}. Choose metrics that fit the dataset, e.g. with "
                         "--metrics; `ganbench plugins` lists them.")
    return truth


def prepare_1d(ctx: MetricContext) -> None:
    _truth(ctx, "w1/ks/moments", "1d")


def prepare_hq(ctx: MetricContext) -> None:
    _truth(ctx, "hq", "mixture")


def prepare_modes(ctx: MetricContext) -> None:
    truth = _truth(ctx, "modes/rkl", "modes")
    if "centres" not in truth and STATE not in ctx.state:
        ctx.state[STATE] = _digit_classifier(ctx)


def generate(ctx: MetricContext, n: int) -> torch.Tensor:
    """``n`` samples from the run's generator, from latents seeded by the run's seed, on the CPU."""
    g = torch.Generator(ctx.device).manual_seed(1_000_003 * (ctx.seed + 1))
    out = []
    for start in range(0, n, CHUNK):
        z = ctx.model.sample_latent(min(CHUNK, n - start), ctx.device, generator=g)
        out.append(ctx.model.generate(z).float().cpu())
    return torch.cat(out)


def _samples(ctx: MetricContext, kind: str) -> tuple[np.ndarray, int]:
    n = ctx.num_samples or DEFAULT_SAMPLES[kind]
    return ctx.once(f"toy-samples-{n}", lambda: generate(ctx, n)).numpy().astype(np.float64), n


def _normal(ctx: MetricContext) -> tuple[np.ndarray, int, float, float]:
    truth = ctx.dataset.meta[TRUTH]
    x, n = _samples(ctx, "1d")
    return x.ravel(), n, float(truth["centres"][0][0]), float(truth["sigma"])


def compute_w1(ctx: MetricContext) -> dict[str, float]:
    x, n, mean, std = _normal(ctx)
    return {f"w1_{count_label(n)}": w1_to_normal(x, mean, std)}


def compute_ks(ctx: MetricContext) -> dict[str, float]:
    x, n, mean, std = _normal(ctx)
    return {f"ks{count_label(n)}": ks_to_normal(x, mean, std)}


def compute_moments(ctx: MetricContext) -> dict[str, float]:
    x, n, mean, std = _normal(ctx)
    return {f"mean_err{count_label(n)}": abs(float(x.mean()) - mean),
            f"std_err{count_label(n)}": abs(float(x.std(ddof=1)) - std)}


def _mixture(ctx: MetricContext) -> tuple[np.ndarray, int, int, str]:
    """(high-quality counts per mode, high-quality samples, samples, key suffix) for a 2-D mixture."""
    truth = ctx.dataset.meta[TRUTH]
    x, n = _samples(ctx, "2d")
    counts, good = mode_counts(x, np.asarray(truth["centres"], dtype=np.float64), float(truth["sigma"]))
    return counts, good, n, count_label(n)


def _stacked(ctx: MetricContext) -> tuple[np.ndarray, str]:
    name, classify = ctx.state[STATE]
    n = ctx.num_samples or DEFAULT_SAMPLES["stacked"]
    modes = ctx.once(f"stacked-modes-{n}", lambda: classify(generate(ctx, n)))
    return np.bincount(modes, minlength=1000), f"{count_label(n)}[{name}]"


def compute_modes(ctx: MetricContext) -> dict[str, float]:
    if STATE in ctx.state:
        counts, suffix = _stacked(ctx)
    else:
        counts, _, _, suffix = _mixture(ctx)
    return {f"modes{suffix}": float((counts > 0).sum())}


def compute_hq(ctx: MetricContext) -> dict[str, float]:
    _, good, n, suffix = _mixture(ctx)
    return {f"hq{suffix}": 100.0 * good / n}


def compute_rkl(ctx: MetricContext) -> dict[str, float]:
    if STATE in ctx.state:
        counts, suffix = _stacked(ctx)
    else:
        counts, _, _, suffix = _mixture(ctx)
    return {f"rkl{suffix}": reverse_kl_to_uniform(counts)}


# -- Stacked MNIST: the digit of each channel ---------------------------------------------------------------


def _digit_classifier(ctx: MetricContext) -> tuple[str, Callable[[torch.Tensor], np.ndarray]]:
    """(its name, images in [-1, 1] (N, 3, H, W) -> modes 100r + 10g + b), trained once on the source digits."""
    from ganbench_builtin.datasets.stacked_mnist import DIGITS
    from ganbench_builtin.extractors import lenet

    digits = ctx.dataset.meta[DIGITS]
    name, path = lenet.prepare(digits, ctx.cache_dir)
    net, _ = lenet.load(path)
    side = digits.resolution

    def classify(images: torch.Tensor) -> np.ndarray:
        modes = torch.zeros(len(images), dtype=torch.int64)
        with torch.no_grad():
            for start in range(0, len(images), CHUNK):
                x = to_float(to_uint8(images[start : start + CHUNK]))  # scored as the saved images would be
                n, c, h, w = x.shape
                x = x.reshape(n * c, 1, h, w)
                if h != side:
                    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
                digit = net(x)[1].argmax(1).view(n, c)
                modes[start : start + n] = digit[:, 0] * 100 + digit[:, 1] * 10 + digit[:, 2]
        return modes.numpy()

    return name, classify
