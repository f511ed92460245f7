"""Sample grids: what a person looks at to judge a generator in a second.

Images are tiled into a grid; vector samples (a known 1-D or 2-D
distribution) become a histogram or scatter over the truth
(:mod:`ganbench.training.pictures`), so the loop saves either the same way.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image

from ganbench.plugin.data import TRUTH, to_uint8
from ganbench.results.store import write_bytes

#: Samples in an image grid.
GRID_SIZE = 64


def picture_size(dataset_kind: str) -> int:
    """How many samples a run's pictures show: an 8x8 grid of images, or PacGAN's 2,500 points."""
    from ganbench.training.pictures import PICTURE_POINTS

    return PICTURE_POINTS if dataset_kind == "vector" else GRID_SIZE


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """Tile float images in [-1, 1] (N, C, H, W) into one PIL image, ``nrow`` per row."""
    x = to_uint8(images.cpu())
    n, c, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    canvas = torch.zeros(c, rows * (h + padding) + padding, nrow * (w + padding) + padding, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top : top + h, left : left + w] = x[i]
    array = canvas.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0], mode="L") if c == 1 else Image.fromarray(array, mode="RGB")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def save_grid(path: Path, images: torch.Tensor, nrow: int | None = None, meta: dict | None = None) -> None:
    """Save a grid as PNG, enlarged so that tiny images (8-32 px) are visible.

    Vectors (N, D) are drawn over the dataset's true distribution (``meta["truth"]``) instead, and the points
    are kept beside the picture (``.npz``) for the run's plots.
    """
    if images.ndim == 2:
        _save_points(path, images, (meta or {}).get(TRUTH))
        return
    side = images.shape[-1]
    scale = max(1, 128 // max(side, 1) // 2)
    buf = io.BytesIO()
    grid_image(images, nrow=nrow, scale=scale).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def _save_points(path: Path, points: torch.Tensor, truth: dict | None) -> None:
    import numpy as np

    from ganbench.training.pictures import points_npz, points_png

    x = points.detach().float().cpu().numpy()
    centres = np.asarray(truth["centres"], dtype=float) if truth and "centres" in truth else None
    sigma = float(truth["sigma"]) if truth and "sigma" in truth else None
    stem = path.stem
    title = f"{int(stem[4:])}% of the budget" if stem.startswith("frac") and stem[4:].isdigit() else stem
    write_bytes(path, points_png(x, centres, sigma, title))
    write_bytes(path.with_suffix(".npz"), points_npz(x, centres, sigma))
