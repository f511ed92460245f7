"""mnist, fashion-mnist, cifar10: the standard small datasets, fetched by torchvision.

Files are looked for under ``--data-dir`` in exactly the layout torchvision's
downloaders write (``MNIST/raw/*-ubyte[.gz]``, ``FashionMNIST/raw/...``,
``cifar-10-batches-py/``), so data downloaded by torchvision elsewhere can be
copied in. When they are missing, torchvision downloads them; when that is
impossible (offline, ``--no-download``) the error says where ganbench looked
and how to provide the files.

The files are read by ganbench itself, one split at a time: torchvision's
``MNIST`` class insists on all four files even to read one split.

Dataset argument: the split, ``train`` (default) or ``test``: ``mnist:test``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganbench import DatasetRequest, DatasetUnavailableError, ImageDataset, UsageError

_IDX = {  # name -> (torchvision folder, torchvision class, home page, class names)
    "mnist": ("MNIST", "MNIST", "http://yann.lecun.com/exdb/mnist/", tuple(str(i) for i in range(10))),
    "fashion-mnist": (
        "FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _split(request: DatasetRequest) -> str:
    split = request.argument or "train"
    if split not in ("train", "test"):
        raise UsageError(f"Unknown split {split!r} for {request.name}; use {request.name}:train or {request.name}:test.")
    return split


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: big-endian header, then raw bytes), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {array.size}")
    return array.reshape(shape)


def _find(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _unavailable(name: str, looked: list[Path], home: str, request: DatasetRequest, cause: str = "") -> DatasetUnavailableError:
    where = ", ".join(str(p) for p in looked)
    how = "ganbench downloads it when the machine is online (drop --no-download)" if not request.download else (
        "the download failed" + (f" ({cause})" if cause else "")
    )
    return DatasetUnavailableError(
        f"The dataset {request.text!r} is not on disk: looked for {where}. {how[0].upper() + how[1:]}. "
        f"To provide it by hand, download the files from {home} and place them there "
        f"(or point --data-dir at a folder that holds them; currently {request.data_dir})."
    )


def load_idx_dataset(request: DatasetRequest) -> ImageDataset:
    folder, tv_class, home, classes = _IDX[request.name]
    split = _split(request)
    prefix = "train" if split == "train" else "t10k"
    raw = request.data_dir / folder / "raw"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    paths = [_find(raw, s) for s in stems]
    if None in paths:
        if not request.download:
            raise _unavailable(request.name, [raw / s for s in stems], home, request)
        try:
            import torchvision.datasets as tvd

            getattr(tvd, tv_class)(root=str(request.data_dir), train=split == "train", download=True)
        except Exception as exc:  # offline, or the mirror is down
            raise _unavailable(request.name, [raw / s for s in stems], home, request, f"{type(exc).__name__}: {exc}") from exc
        paths = [_find(raw, s) for s in stems]
        if None in paths:
            raise _unavailable(request.name, [raw / s for s in stems], home, request, "files missing after download")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise DatasetUnavailableError(f"{paths[0]} holds {len(images)} images but {paths[1]} {len(labels)} labels; re-download them.")
    return ImageDataset(
        name=request.name,
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        num_classes=10,
        class_names=classes,
        source=str(paths[0]),
        split=split,
    )


def load_cifar10(request: DatasetRequest) -> ImageDataset:
    split = _split(request)
    folder = request.data_dir / CIFAR_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if not all((folder / n).exists() for n in names):
        if not request.download:
            raise _unavailable("cifar10", [folder / n for n in names], CIFAR_URL, request)
        try:
            import torchvision.datasets as tvd

            tvd.CIFAR10(root=str(request.data_dir), train=split == "train", download=True)
        except Exception as exc:
            raise _unavailable("cifar10", [folder / n for n in names], CIFAR_URL, request, f"{type(exc).__name__}: {exc}") from exc
    images, labels = [], []
    for n in names:
        batch = read_cifar_batch(folder / n)
        images.append(batch["data"])
        labels.extend(batch["labels"])
    return ImageDataset(
        name="cifar10",
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.tensor(labels, dtype=torch.int64),
        num_classes=10,
        class_names=CIFAR_CLASSES,
        source=str(folder),
        split=split,
    )


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else.

    The official CIFAR-10 batches are Python pickles, and a pickle can name any
    callable to run while it loads; a planted file in a shared data directory
    would run code. Only the numpy names an array needs (and the codec that
    turns a string back into bytes) are resolved;
    any other global is refused before it is called.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how Python 3 pickles bytes at protocol 2; it only encodes a string

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks to run {module}.{name}, which a data file never needs")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict[str, Any]:
    """One CIFAR-10 batch as {'data': uint8 (N, 3, 32, 32), 'labels': [int]}, read without running code."""
    try:
        with open(path, "rb") as fh:
            batch = _DataOnlyUnpickler(fh, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = [int(v) for v in batch["labels"]]
        if len(labels) != len(data) or any(not 0 <= v < 10 for v in labels):
            raise ValueError(f"{len(data)} images with {len(labels)} labels in 0-9")
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError) as exc:
        raise DatasetUnavailableError(
            f"Refusing to read {path}: it is not an official CIFAR-10 batch ({exc}). ganbench reads these pickles "
            "without running any code they name; delete the folder and let ganbench download it again, or copy in "
            f"the files from {CIFAR_URL}."
        ) from exc
    return {"data": data, "labels": labels}

