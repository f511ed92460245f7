"""Datasets as the core sees them: a block of uint8 images, or of float vectors, and their labels.

Dataset plugins return an :class:`ImageDataset`; models only ever see its
:class:`DataInfo` (shape, kind and classes), so any family adapts to any
dataset it accepts. Images stay uint8 in memory (a quarter of the float size)
and are scaled to [-1, 1] per batch, on the training device. Vectors (N, D)
of float32, such as samples of a known 1-D or 2-D distribution, are served as
they are: their scale is the data's own, and nothing else in the loop differs
(a family that prefers standardised units gets the training set's per-feature
mean and standard deviation in :class:`DataInfo`).

A dataset whose true distribution is known says so in ``meta["truth"]``
(see :data:`TRUTH`), which exact metrics and the sample pictures read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F

from ganbench.errors import UsageError
from ganbench.plugin.specs import DATA_KINDS, IMAGE, VECTOR  # noqa: F401 - the kinds families and metrics declare


#: ``meta`` key of a known true distribution: ``{"centres": [[...], ...], "sigma": s}``, an equal-weight
#: mixture of isotropic normals (a 1-D normal is a mixture of one), plus a ``"protocol"`` line.
TRUTH = "truth"
#: ``meta`` key of a range every vector sample lies in, ``(low, high)``, for a dataset that has one (data scaled
#: to [-1, 1], say); the loop then checks generated vectors against it. Without it vectors keep any scale.
RANGE = "range"


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data to build itself.

    ``dim`` is the length of a vector sample; 0 means the data are images.

    For vectors, ``loc`` and ``scale`` are the training set's per-feature mean
    and standard deviation. Vectors are served in their own units (a 1-D normal
    at 16 stays at 16), and a family whose networks learn best on standardised
    inputs needs these to standardise D's input and to map G's output back;
    empty for images and for an info built by hand.

    ``pack`` is how many samples one discriminator input holds: 1, except in the
    second build ``--pack M`` makes for the discriminator (M, with ``dim``,
    ``loc`` and ``scale`` widened M times), so that a family sizing itself by
    the sample (``dim // pack``) builds the same kind of network both times.
    """

    name: str
    channels: int
    resolution: int
    num_classes: int = 0
    class_counts: tuple[int, ...] = ()
    dim: int = 0
    loc: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    pack: int = 1

    @property
    def labelled(self) -> bool:
        return self.num_classes > 0

    @property
    def kind(self) -> str:
        return VECTOR if self.dim else IMAGE

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape: (C, H, W) for images, (D,) for vectors."""
        return (self.dim,) if self.dim else (self.channels, self.resolution, self.resolution)


@dataclass(frozen=True)
class ImageDataset:
    """Square images (N, C, H, W) as uint8, or vectors (N, D) as float32, with int64 labels or ``None``.

    The field is called ``images`` for both kinds (the name predates vectors); :attr:`kind` tells them apart.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None = None
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    source: str = ""
    split: str = "train"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        images = self.images
        if images.dtype == torch.float32 and images.ndim == 2:
            self._check_vectors()
            return
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise UsageError(
                f"Dataset {self.name!r} must hold uint8 images shaped (N, C, H, W) or float32 vectors shaped (N, D); "
                f"got {images.dtype} with shape {tuple(images.shape)}."
            )
        n, c, h, w = images.shape
        if n == 0:
            raise UsageError(f"Dataset {self.name!r} holds no images.")
        if h != w:
            raise UsageError(f"Dataset {self.name!r} has {h}x{w} images; ganbench needs square images.")
        if c not in (1, 3):
            raise UsageError(f"Dataset {self.name!r} has {c} channels; ganbench needs 1 or 3.")
        self._check_labels(n)

    def _check_vectors(self) -> None:
        n, d = self.images.shape
        if n == 0 or d == 0:
            raise UsageError(f"Dataset {self.name!r} holds no vectors (shape {tuple(self.images.shape)}).")
        if not torch.isfinite(self.images).all():
            raise UsageError(f"Dataset {self.name!r} holds NaN or infinite values.")
        self._check_labels(n)

    def _check_labels(self, n: int) -> None:
        if self.labels is not None:
            if self.labels.shape != (n,):
                raise UsageError(f"Dataset {self.name!r} has {len(self.labels)} labels for {n} samples.")
            if self.num_classes <= 0:
                raise UsageError(f"Dataset {self.name!r} has labels but num_classes={self.num_classes}.")

    @property
    def kind(self) -> str:
        return VECTOR if self.images.ndim == 2 else IMAGE

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1]) if self.kind == IMAGE else 0

    @property
    def resolution(self) -> int:
        return int(self.images.shape[2]) if self.kind == IMAGE else 0

    @property
    def dim(self) -> int:
        return int(self.images.shape[1]) if self.kind == VECTOR else 0

    @cached_property
    def info(self) -> DataInfo:
        """Computed once per dataset (it is frozen): a vector dataset's loc and scale take a pass over every
        sample, and each run reads its info several times (planning, building, packing, metrics)."""
        counts: tuple[int, ...] = ()
        if self.labels is not None:
            counts = tuple(torch.bincount(self.labels, minlength=self.num_classes).tolist())
        loc: tuple[float, ...] = ()
        scale: tuple[float, ...] = ()
        if self.kind == VECTOR:
            std, mean = torch.std_mean(self.images, dim=0)
            loc, scale = tuple(mean.tolist()), tuple(std.tolist())
        return DataInfo(self.name, self.channels, self.resolution, self.num_classes if self.labels is not None else 0,
                        counts, self.dim, loc, scale)

    def resized(self, resolution: int) -> ImageDataset:
        """The same dataset at another square resolution (area-averaged down, bilinear up)."""
        if self.kind == VECTOR:
            raise UsageError(f"The dataset {self.name!r} holds {self.dim}-D vectors, not images; "
                             "--resolution applies to images only. Leave it out.")
        if resolution == self.resolution:
            return self
        check_image_limits(self.name, len(self), self.channels, resolution)
        return ImageDataset(
            name=self.name,
            images=resize_uint8(self.images, resolution),
            labels=self.labels,
            num_classes=self.num_classes,
            class_names=self.class_names,
            source=self.source,
            split=self.split,
            meta={**self.meta, "resized_from": self.resolution},
        )


#: The smallest square side every built-in family trains at (a DCGAN needs one doubling above a 3-7 pixel base).
MIN_RESOLUTION = 8


def check_image_limits(name: str, count: int, channels: int, resolution: int) -> None:
    """Refuse, before anything is resized or trained, images no family can use or memory cannot hold.

    A 1x1 to 7x7 image breaks some families with an ``IndexError`` and lets
    others "complete" on nothing; a resolution too large for the machine
    would be found out only when the allocation fails, minutes later.
    """
    if resolution < MIN_RESOLUTION:
        raise UsageError(
            f"The dataset {name!r} would be {resolution}x{resolution} pixels; ganbench needs at least "
            f"{MIN_RESOLUTION}x{MIN_RESOLUTION}. Pass --resolution {MIN_RESOLUTION} or more."
        )
    needed = count * channels * resolution * resolution * 9  # uint8 images plus two float copies while resizing
    available = _available_memory()
    if available and needed > available:
        raise UsageError(
            f"The dataset {name!r} at {resolution}x{resolution} would need about {needed / 2**30:.1f} GiB of memory "
            f"({count:,} images x {channels} channels), more than the {available / 2**30:.1f} GiB available. "
            "Choose a smaller --resolution or a smaller dataset."
        )


def _available_memory() -> int:
    """Bytes the kernel says a new allocation can get without swapping; 0 when unknown (then unchecked)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def resize_uint8(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize a uint8 batch, rounding back to uint8 (never truncating)."""
    x = images.float()
    if resolution < images.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    else:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] to float in [-1, 1], the range every generator targets; float vectors (N, D) as they are.

    Images in a float tensor are still on the [0, 255] scale (the lenet extractor converts torch-fidelity's
    uint8 batches with ``.float()`` first) and are scaled like uint8 ones.
    """
    if images.is_floating_point() and images.ndim == 2:
        return images
    return images.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] to uint8, rounding to nearest so a round trip is exact."""
    return images.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class DatasetRequest:
    """What the user asked for: ``name[:argument]`` plus where data lives."""

    name: str
    argument: str | None
    data_dir: Path
    download: bool = True
    resolution: int | None = None

    @property
    def text(self) -> str:
        return self.name if self.argument is None else f"{self.name}:{self.argument}"


#: ``--data-on-device auto`` keeps the dataset on a GPU when it takes at most this share of the free memory.
DEVICE_DATA_SHARE = 0.25
DATA_PLACEMENTS = ("auto", "yes", "no")


def data_on_device(choice: str, dataset: ImageDataset, device: torch.device) -> bool:
    """Whether the uint8 images and labels should live on ``device`` (``--data-on-device``).

    On the CPU the data are there already. On a GPU, 'auto' says yes when they
    take at most :data:`DEVICE_DATA_SHARE` of the memory free now.
    """
    if choice not in DATA_PLACEMENTS:
        raise UsageError(f"--data-on-device must be one of {', '.join(DATA_PLACEMENTS)}, not {choice!r}.")
    if choice != "auto":
        return choice == "yes"
    if device.type == "cpu":
        return True
    size = dataset.images.nbytes + (dataset.labels.nbytes if dataset.labels is not None else 0)
    free, _total = torch.cuda.mem_get_info(device)
    return size <= DEVICE_DATA_SHARE * free


class BatchStream:
    """Endless shuffled mini-batches, reproducible from a seed.

    Each epoch is a fresh permutation drawn from a generator seeded by
    (seed, epoch), so the position (epoch, index) is all that is needed to
    resume the exact same data order.

    With ``on_device`` the uint8 images and labels are copied to the device
    once and every batch is gathered there: the only host->device copy is
    the epoch's permutation (once per epoch). Otherwise each batch is gathered
    on the host into pinned memory (on CUDA), copied without blocking, and the
    next batch is prepared while the current one trains. Either way the
    batches, and their order, are the same.
    """

    def __init__(
        self, dataset: ImageDataset, batch_size: int, seed: int, device: torch.device, on_device: bool = True
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"Batch size must be at least 1, got {batch_size}.")
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        self.seed = seed
        self.device = device
        self.on_device = on_device
        self._pinned = device.type == "cuda" and not self.on_device
        self._images = dataset.images.to(device) if self.on_device else dataset.images
        self._labels = None
        if dataset.labels is not None:
            self._labels = dataset.labels.to(device) if self.on_device else dataset.labels
        self.epoch = 0
        self.index = 0
        self._order = self._permutation(0)
        #: off the device: (the next batch, the position after it), prepared while the current one trains
        self._next: tuple[tuple[torch.Tensor, torch.Tensor | None], tuple[int, int, torch.Tensor]] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=g)
        if self.on_device and self.device.type != "cpu":
            order = order.pin_memory().to(self.device, non_blocking=True)
        return order

    def _advance(self) -> torch.Tensor:
        """The next batch's indices (on the device that holds the data), moving the position on."""
        if self.index + self.batch_size > len(self._order):
            self.epoch += 1
            self.index = 0
            self._order = self._permutation(self.epoch)
        idx = self._order[self.index : self.index + self.batch_size]
        self.index += self.batch_size
        return idx

    def _gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.on_device:
            images, labels = self._images[idx], None if self._labels is None else self._labels[idx]
        else:  # gathered on the host; pinned on CUDA so that the copy does not block
            images = torch.empty((len(idx), *self._images.shape[1:]), dtype=self._images.dtype, pin_memory=self._pinned)
            torch.index_select(self._images, 0, idx, out=images)
            images = images.to(self.device, non_blocking=True)
            labels = None if self._labels is None else self._labels[idx].to(self.device, non_blocking=True)
        return to_float(images), labels

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch as (float images in [-1, 1], or vectors as stored, on device; labels or None)."""
        if self.on_device:
            return self._gather(self._advance())
        if self._next is None:
            self._next = (self._gather(self._advance()), self._position())
        batch, position = self._next
        self.epoch, self.index, self._order = position
        self._next = (self._gather(self._advance()), self._position())  # the one after, prepared now
        self.epoch, self.index, self._order = position  # the position counts only what was handed out
        return batch

    def _position(self) -> tuple[int, int, torch.Tensor]:
        return self.epoch, self.index, self._order

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])
        self._order = self._permutation(self.epoch)
        self._next = None
