"""gauss1d, ring, grid: distributions known exactly, so that scores can be checked against the truth.

Each training set is 100,000 samples drawn from a generator seeded with
:data:`DATA_SEED` (PacGAN draws 100k training samples), so every run and every
seed trains on the same points; what the seeds vary is the networks and the
order. The true distribution goes into ``meta["truth"]`` (an equal-weight
mixture of isotropic normals), which the exact metrics
(:mod:`ganbench_builtin.metrics.toys`) and the sample pictures read.

- ``gauss1d``: the normal N(16, 5) (mean 16, standard deviation 5), the
  seed's own 1-D example; ``gauss1d:MEAN,STD`` picks another.
- ``ring``: 8 normals with means (cos 2πi/8, sin 2πi/8), i = 0..7, σ = 0.01
  (PacGAN, Lin et al. 2018, ``2DRing`` config; REFERENCES §3). The angles are
  ``arange(8) * 2π/8``: the Unrolled-GAN demo's ``linspace(0, 2π, 8)``
  includes both ends and so has only 7 distinct modes.
- ``grid``: 25 normals with means {−4, −2, 0, 2, 4}², σ = 0.05 (PacGAN,
  ``2DGrid`` config).

Samples carry the index of their component as a label (ring and grid), so a
conditional or per-mode analysis can use them; the metrics do not.
"""

from __future__ import annotations

import math

import torch

from ganbench import DatasetRequest, ImageDataset, UsageError
from ganbench import TRUTH

DATA_SEED = 0
NUM_SAMPLES = 100_000
GAUSS1D = (16.0, 5.0)
RING = {"modes": 8, "radius": 1.0, "sigma": 0.01}
GRID = {"side": (-4.0, -2.0, 0.0, 2.0, 4.0), "sigma": 0.05}


def ring_centres(modes: int = RING["modes"], radius: float = RING["radius"]) -> list[list[float]]:
    """Evenly spaced on the circle, the end point excluded (angle 2π is angle 0)."""
    return [[radius * math.cos(2 * math.pi * i / modes), radius * math.sin(2 * math.pi * i / modes)]
            for i in range(modes)]


def grid_centres(side: tuple[float, ...] = GRID["side"]) -> list[list[float]]:
    return [[x, y] for x in side for y in side]


def mixture_samples(centres: list[list[float]], sigma: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of the equal-weight mixture and the component each came from."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor(centres, dtype=torch.float64)
    which = torch.randint(len(centres), (n,), generator=g)
    points = means[which] + sigma * torch.randn(n, means.shape[1], generator=g, dtype=torch.float64)
    return points.float(), which


def _dataset(name: str, centres: list[list[float]], sigma: float, protocol: str, labelled: bool) -> ImageDataset:
    points, which = mixture_samples(centres, sigma, NUM_SAMPLES, DATA_SEED)
    return ImageDataset(
        name=name, images=points, labels=which if labelled else None, num_classes=len(centres) if labelled else 0,
        source=f"drawn with seed {DATA_SEED}", split="train",
        meta={TRUTH: {"centres": centres, "sigma": sigma, "protocol": protocol}},
    )


def parse_gauss1d(argument: str | None) -> tuple[float, float]:
    """``None`` -> (16, 5); ``"MEAN,STD"`` -> the numbers, refused with the reason when they make no normal."""
    if argument is None:
        return GAUSS1D
    parts = argument.split(",")
    try:
        mean, std = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"gauss1d takes MEAN,STD such as gauss1d:16,5; {argument!r} is not two numbers.") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise UsageError(f"gauss1d:{argument}: the mean must be finite and the standard deviation positive.")
    return mean, std


def load_gauss1d(request: DatasetRequest) -> ImageDataset:
    mean, std = parse_gauss1d(request.argument)
    return _dataset(request.text, [[mean]], std, f"N({mean:g}, {std:g}), {NUM_SAMPLES:,} samples, seed {DATA_SEED}",
                    labelled=False)


def load_ring(request: DatasetRequest) -> ImageDataset:
    _no_argument(request)
    return _dataset("ring", ring_centres(), RING["sigma"],
                    "PacGAN ring: 8 normals on the unit circle, sigma 0.01", labelled=True)


def load_grid(request: DatasetRequest) -> ImageDataset:
    _no_argument(request)
    return _dataset("grid", grid_centres(), GRID["sigma"],
                    "PacGAN grid: 25 normals at {-4,-2,0,2,4}^2, sigma 0.05", labelled=True)


def _no_argument(request: DatasetRequest) -> None:
    if request.argument is not None:
        raise UsageError(f"The dataset {request.name!r} takes no argument (got {request.text!r}).")
