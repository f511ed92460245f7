"""stacked-mnist: three MNIST digits as the red, green and blue channels of one image, 1,000 modes.

The recipe of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018),
after Metz et al.'s Unrolled GAN: each image stacks three MNIST digits drawn
independently and uniformly at random, so its mode is the triple of digits
(000 to 999). A generator that covers the distribution hits all 1,000 modes
about equally; the metrics ``modes`` and ``rkl``
(:mod:`ganbench_builtin.metrics.toys`) count them with an MNIST classifier.

Built from any MNIST split on disk, offline:

- ``stacked-mnist`` / ``stacked-mnist:train`` / ``stacked-mnist:test``: the
  split in ``--data-dir`` in torchvision's layout (``MNIST/raw/``), downloaded
  when allowed, exactly as the ``mnist`` dataset;
- ``stacked-mnist:DIR``: a folder holding the IDX files themselves
  (``train-images-idx3-ubyte[.gz]`` or ``t10k-…``, with their labels), such as
  ``/work/shared/data/mnist``.

:data:`NUM_SAMPLES` stacked images are drawn with seed :data:`DATA_SEED`, so
every run trains on the same ones; the label is 100·red + 10·green + blue.
The source digits ride along in ``meta["digits"]`` for the classifier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganbench import DatasetRequest, DatasetUnavailableError, ImageDataset
from ganbench import TRUTH
from ganbench_builtin.datasets.torchvision_sets import load_idx_dataset, read_idx

DATA_SEED = 0
NUM_SAMPLES = 50_000
#: meta key of the single-digit MNIST split the stack was drawn from
DIGITS = "digits"


def load_digits(request: DatasetRequest) -> ImageDataset:
    """The single MNIST digits: a split from --data-dir, or the IDX files in the folder the argument names."""
    if request.argument in (None, "train", "test"):
        return load_idx_dataset(DatasetRequest("mnist", request.argument, request.data_dir, request.download))
    folder = Path(request.argument).expanduser()
    for prefix, split in (("train", "train"), ("t10k", "test")):
        found = [_find(folder, f"{prefix}-{what}-idx{n}-ubyte") for what, n in (("images", 3), ("labels", 1))]
        if None not in found:
            images, labels = read_idx(found[0]), read_idx(found[1])
            return ImageDataset("mnist", torch.from_numpy(images.copy()).unsqueeze(1),
                                torch.from_numpy(labels.astype(np.int64)), 10, tuple("0123456789"),
                                source=str(found[0]), split=split)
    raise DatasetUnavailableError(
        f"stacked-mnist:{request.argument}: no MNIST IDX files in {folder} (looked for train-images-idx3-ubyte "
        "and t10k-images-idx3-ubyte, optionally .gz, with their labels). Name a folder holding them, or use "
        "stacked-mnist:train / stacked-mnist:test with --data-dir in torchvision's layout."
    )


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def stack(digits: ImageDataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of three independently drawn digits (N, 3, H, W) and their modes 100r + 10g + b."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(digits), (n, 3), generator=g)
    images = digits.images[picks.flatten(), 0].view(n, 3, *digits.images.shape[-2:])
    labels = digits.labels[picks]  # type: ignore[index]
    return images.contiguous(), labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


def load(request: DatasetRequest) -> ImageDataset:
    digits = load_digits(request)
    images, modes = stack(digits, NUM_SAMPLES, DATA_SEED)
    return ImageDataset(
        name="stacked-mnist", images=images, labels=modes, num_classes=1000,
        class_names=tuple(f"{i:03d}" for i in range(1000)), source=digits.source, split=digits.split,
        meta={DIGITS: digits, TRUTH: {"modes": 1000, "protocol": f"Stacked MNIST from the MNIST {digits.split} split, "
                                      f"{NUM_SAMPLES:,} stacks, seed {DATA_SEED}"}},
    )
