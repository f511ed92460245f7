"""Image resizes inside a network, written as fixed matrix products so that their gradients are deterministic.

dcgan and conditional build their networks for the nearest convenient size
and resize at one end when the dataset's resolution is awkward (e.g. 9 or
12 px): the generator's output is area-averaged down, the discriminator's
input bilinearly scaled up. Both sit on the training path, so their backward
pass runs every step. On CUDA, the backward of ``F.interpolate`` (bilinear,
and area, which is ``adaptive_avg_pool2d``) accumulates with atomic adds: it
is not bit-reproducible, and under ``torch.use_deterministic_algorithms`` it
raises. A resize is a linear map along each axis, so here it is a product
with two small constant matrices, ``A_h @ x @ A_w^T``; a matrix product's
backward is deterministic on every device (on CUDA with
``CUBLAS_WORKSPACE_CONFIG`` set, which ``--deterministic`` does). The
matrices reproduce ``F.interpolate``'s ``area`` and ``bilinear``
(``align_corners=False``) weights, so the result equals it up to float
rounding (tests/test_resize.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODES = ("area", "bilinear")


def area_weights(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in): row i averages inputs floor(i*n/m) to ceil((i+1)*n/m) - 1, as adaptive pooling does."""
    w = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        start = (i * size_in) // size_out
        stop = math.ceil((i + 1) * size_in / size_out)
        w[i, start:stop] = 1.0 / (stop - start)
    return w


def bilinear_weights(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in): linear interpolation at half-pixel centres (``align_corners=False``)."""
    w = torch.zeros(size_out, size_in, dtype=torch.float64)
    scale = size_in / size_out
    for i in range(size_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        low = min(int(math.floor(src)), size_in - 1)
        high = min(low + 1, size_in - 1)
        frac = src - low
        w[i, low] += 1.0 - frac
        w[i, high] += frac
    return w


class Resize(nn.Module):
    """Resize square images from ``size_in`` to ``size_out`` pixels by ``mode`` (area or bilinear).

    The matrices are non-persistent buffers: they follow the module to its
    device and dtype but are not saved, so checkpoints keep the keys they had.
    """

    def __init__(self, size_in: int, size_out: int, mode: str) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Resize mode must be one of {', '.join(MODES)}, not {mode!r}.")
        weights = (area_weights if mode == "area" else bilinear_weights)(size_in, size_out)
        self.register_buffer("weights", weights.to(torch.get_default_dtype()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights.to(x.dtype)
        return w @ x @ w.T
