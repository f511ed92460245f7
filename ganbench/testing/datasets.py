"""The contracts of a dataset (``dataset.*``): what ``load`` must hand the loop."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch

from ganbench.plugin.data import DatasetRequest, ImageDataset
from ganbench.errors import DatasetUnavailableError
from ganbench.plugin.specs import DatasetSpec
from .contract import Contract, ContractSkipped, expect, fail


@functools.cache
def _loaded(spec: DatasetSpec) -> ImageDataset:
    """The dataset as a run without an argument asks for it, never downloading; skipped when it is not here."""
    with tempfile.TemporaryDirectory() as data_dir:
        request = DatasetRequest(spec.name, None, Path(data_dir), download=False, resolution=spec.default_resolution)
        try:
            dataset = spec.load(request)
        except DatasetUnavailableError as exc:
            raise ContractSkipped(f"the dataset is not available offline: {str(exc).splitlines()[0]}") from exc
    if not isinstance(dataset, ImageDataset):
        raise fail("dataset.load", spec.name, f"load returned {type(dataset).__name__}, not a ganbench.ImageDataset")
    return dataset


def _load(spec: DatasetSpec) -> None:
    _loaded(spec)


def _images(spec: DatasetSpec) -> None:
    images = _loaded(spec).images
    expect(images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] in (1, 3), "dataset.images", spec.name,
           f"images must be uint8 shaped (N, C, H, W) with C 1 or 3, got {images.dtype} {tuple(images.shape)}")


def _labels(spec: DatasetSpec) -> None:
    data = _loaded(spec)
    if data.labels is None:
        expect(data.num_classes == 0, "dataset.labels", spec.name, f"no labels but num_classes={data.num_classes}")
        return
    labels = data.labels
    expect(labels.dtype == torch.int64 and labels.shape == (len(data),), "dataset.labels", spec.name,
           f"labels must be int64 shaped ({len(data)},), got {labels.dtype} {tuple(labels.shape)}")
    low, high = int(labels.min()), int(labels.max())
    expect(0 <= low and high < data.num_classes, "dataset.labels", spec.name,
           f"labels run from {low} to {high}; with num_classes={data.num_classes} they must lie in [0, {data.num_classes})")


def _shape(spec: DatasetSpec) -> None:
    data = _loaded(spec)
    expect(data.images.shape[2] == data.images.shape[3], "dataset.shape", spec.name,
           f"images must be square, got {tuple(data.images.shape[2:])}")
    if spec.default_resolution is not None:
        expect(data.resolution == spec.default_resolution, "dataset.shape", spec.name,
               f"the spec declares default_resolution={spec.default_resolution} but load served {data.resolution}px")


def dataset_contracts(spec: DatasetSpec) -> list[Contract]:
    checks = {"dataset.load": _load, "dataset.images": _images, "dataset.labels": _labels, "dataset.shape": _shape}
    return [Contract(cid, spec.name, lambda check=check: check(spec)) for cid, check in checks.items()]
