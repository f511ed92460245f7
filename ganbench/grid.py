"""Sample grids: what a person looks at to judge a generator in a second."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image

from .data import to_uint8
from .store import write_bytes


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


def save_grid(path: Path, images: torch.Tensor, nrow: int | None = None) -> None:
    """Save a grid as PNG, enlarged so that tiny images (8-32 px) are visible."""
    side = images.shape[-1]
    scale = max(1, 128 // max(side, 1) // 2)
    buf = io.BytesIO()
    grid_image(images, nrow=nrow, scale=scale).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())
