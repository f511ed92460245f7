"""digits: scikit-learn's bundled handwritten digits, the dataset that needs no download.

1,797 real 8x8 greyscale digits (UCI "Optical Recognition of Handwritten
Digits", test part), with labels 0-9, shipped inside scikit-learn. Pixel
values 0-16 are scaled to 0-255 and served at 16x16 by default (bilinear
upscaling), large enough for convolutional families. ``--resolution``
changes the size.
"""

from __future__ import annotations

import torch

from ganbench import DatasetRequest, ImageDataset, UsageError


def load(request: DatasetRequest) -> ImageDataset:
    from sklearn.datasets import load_digits

    if request.argument not in (None, "", "all"):
        raise UsageError(
            f"The dataset 'digits' takes no argument (got 'digits:{request.argument}'): it has a single split of "
            "1,797 images. Use --dataset digits, and --resolution to change its size."
        )
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().clamp(0, 255).to(torch.uint8)
    return ImageDataset(
        name="digits",
        images=images.unsqueeze(1),
        labels=torch.from_numpy(bunch.target).long(),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        source="sklearn.datasets.load_digits",
        split="all",
    )
