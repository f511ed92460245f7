"""celeba: CelebA aligned faces, unlabelled, centre-cropped and resized (64x64 by default).

CelebA (Liu, Luo, Wang and Tang, "Deep Learning Face Attributes in the Wild",
ICCV 2015; https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) holds 202,599
photographs of 10,177 celebrities. Its "aligned and cropped" release,
``img_align_celeba``, puts the eyes at fixed positions in 178x218 JPEGs; the
official ``list_eval_partition.txt`` splits it into 162,770 train, 19,867 valid
and 19,962 test images. GAN papers train on it without its attribute labels,
so the dataset is unlabelled here.

Layout: torchvision's, so files it downloaded elsewhere can be copied in::

    <data-dir>/celeba/img_align_celeba/000001.jpg ... 202599.jpg
    <data-dir>/celeba/list_eval_partition.txt      (lines "000001.jpg 0"; 0 train, 1 valid, 2 test)

Only those two are read. torchvision's ``CelebA`` class also demands the
identity, attribute, landmark and box files (and checks their MD5s), so, as
for MNIST, ganbench reads the images itself. When either is missing,
torchvision is asked to download the dataset (from Google Drive, which often
refuses on quota); when that fails the error says what to put where.

Dataset argument: the split, ``train`` (default), ``valid``, ``test`` or
``all`` (every image, in the partition file's order: train, valid, test).

Preprocessing: the centred 178x178 square (rows 20-197 of the 178x218 image,
the full width), resized with PIL's bicubic filter to ``--resolution``
(default 64) and kept RGB uint8. A centred square crop followed by a resize
is the common recipe of 64x64 CelebA GAN code (common practice, not a
paper's prescription), but the crop size varies: pytorch/examples' DCGAN
(resize the short side, then centre-crop) amounts to the 178 square used
here, which keeps the whole face and some hair; carpedm20's DCGAN-tensorflow
crops 108 by default, tensorpack's DCGAN example 140, closer to the face. FID
is only comparable between runs with the same crop, so the recipe is in the
dataset's ``meta`` and in the cache name. Bicubic is the filter
``imagefolder`` uses, so ``imagefolder:<data-dir>/celeba/img_align_celeba``
holds the same pixels; PIL's bicubic widens its kernel when shrinking, so it
antialiases rather than skipping source pixels.

Decoding 162,770 JPEGs takes minutes, so each decoded split is cached as one
``.npy`` next to the images, ``celeba/ganbench-cache/<split>-<res>px-<key>.npy``,
where ``key`` hashes the partition file and the recipe: editing the partition
(or this recipe) makes a new file. Replacing images in place does not; delete
the cache folder then. Where it cannot be written, loading still works,
uncached, with a warning.

Memory: the train split at 64x64 is 162,770 x 3 x 64 x 64 bytes, about
2.0 GB, held in memory as uint8 (``all`` about 2.5 GB); at 128x128 four times
as much.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ganbench import DatasetRequest, DatasetUnavailableError, GanbenchError, ImageDataset, UsageError
from ganbench import atomic_write
from ganbench_builtin.catalogue import CELEBA_RESOLUTION

HOME = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
FOLDER = "celeba"  # torchvision's CelebA.base_folder
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
SPLITS = {"train": (0,), "valid": (1,), "test": (2,), "all": (0, 1, 2)}
CROP = 178  # the centred square: the full width of the 178x218 aligned images
DEFAULT_RESOLUTION = CELEBA_RESOLUTION
RECIPE = f"centre{CROP}-bicubic-v1"  # change it whenever the pixels would change


def _split(request: DatasetRequest) -> str:
    split = request.argument or "train"
    if split not in SPLITS:
        choices = ", ".join(f"celeba:{s}" for s in SPLITS)
        raise UsageError(f"Unknown split {split!r} for celeba; use one of {choices} (plain celeba is celeba:train).")
    return split


def _unavailable(request: DatasetRequest, looked: list[Path], cause: str = "") -> DatasetUnavailableError:
    root = request.data_dir / FOLDER
    if not request.download:
        how = "Downloads are off (--no-download)."
    else:
        how = (f"torchvision's download failed ({cause}); it fetches from Google Drive, "
               "needs the gdown package and is often refused on the daily quota.")
    return DatasetUnavailableError(
        f"The dataset {request.text!r} is not on disk: looked for {', '.join(str(p) for p in looked)}. {how} "
        f"To provide it by hand, download img_align_celeba.zip and list_eval_partition.txt from {HOME} "
        f"(the 'Align&Cropped Images' and 'Eval' folders), unzip img_align_celeba.zip into {root} "
        f"so that the JPEGs are in {root / IMAGES}, and put {PARTITION} next to that folder, at {root / PARTITION}. "
        f"Or point --data-dir at a folder that holds celeba/ already (currently {request.data_dir})."
    )


def _locate(request: DatasetRequest) -> tuple[Path, Path]:
    """The image folder and the partition file, downloaded through torchvision when missing and allowed."""
    root = request.data_dir / FOLDER
    images, partition = root / IMAGES, root / PARTITION
    if images.is_dir() and partition.is_file():
        return images, partition
    if not request.download:
        raise _unavailable(request, [images, partition])
    try:
        import torchvision.datasets as tvd

        tvd.CelebA(root=str(request.data_dir), split="all", download=True)
    except Exception as exc:  # offline, gdown missing, Drive quota, bad checksum
        raise _unavailable(request, [images, partition], f"{type(exc).__name__}: {exc}") from exc
    if not (images.is_dir() and partition.is_file()):
        raise _unavailable(request, [images, partition], "files missing after download")
    return images, partition


def read_partition(path: Path, split: str) -> list[str]:
    """The file names of one split, in the file's order."""
    wanted = SPLITS[split]
    names = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DatasetUnavailableError(
                f"Line {number} of {path} is {line!r}, not 'NAME.jpg SPLIT' with SPLIT 0, 1 or 2. "
                f"Replace the file with the official {PARTITION} from {HOME}."
            )
        if int(fields[1]) in wanted:
            names.append(fields[0])
    if not names:
        raise DatasetUnavailableError(f"{path} assigns no image to the {split} split; replace it with the official {PARTITION}.")
    return names


def preprocess(image: Image.Image, resolution: int) -> np.ndarray:
    """One aligned face to (3, resolution, resolution) uint8: centred square crop, bicubic resize."""
    w, h = image.size
    side = min(CROP, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = image.convert("RGB").crop((left, top, left + side, top + side))
    return np.asarray(square.resize((resolution, resolution), Image.BICUBIC), dtype=np.uint8).transpose(2, 0, 1)


def _decode(folder: Path, names: list[str], resolution: int, split: str) -> np.ndarray:
    present = set(os.listdir(folder))
    missing = [n for n in names if n not in present]
    if missing:
        raise DatasetUnavailableError(
            f"{len(missing)} of the {len(names)} {split} images listed in {PARTITION} are missing from {folder} "
            f"(first: {missing[0]}). Unzip the complete img_align_celeba.zip from {HOME} there."
        )
    out = np.empty((len(names), 3, resolution, resolution), dtype=np.uint8)  # filled in place: no second copy
    for i, name in enumerate(tqdm(names, desc=f"celeba:{split} {resolution}px", unit="img", disable=None, leave=False)):
        try:
            with Image.open(folder / name) as image:
                out[i] = preprocess(image, resolution)
        except OSError as exc:
            raise DatasetUnavailableError(f"Cannot read the image {folder / name}: {exc}. Re-extract img_align_celeba.zip.") from exc
    return out


def cache_path(root: Path, partition: Path, split: str, resolution: int) -> Path:
    """Where a decoded split is cached; the name changes with the partition file and the recipe."""
    key = hashlib.sha256(RECIPE.encode() + b"\0" + partition.read_bytes()).hexdigest()[:12]
    return root / "ganbench-cache" / f"{split}-{resolution}px-{key}.npy"


def _read_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):  # absent, truncated or not an array: decode again
        return None
    return array if array.dtype == np.uint8 and array.shape == shape else None


def _write_cache(path: Path, array: np.ndarray) -> bool:
    try:
        atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))
    except (OSError, GanbenchError) as exc:
        warnings.warn(f"celeba: not caching the decoded images at {path} ({exc}); the next load decodes them again", stacklevel=2)
        return False
    return True


def load(request: DatasetRequest) -> ImageDataset:
    split = _split(request)
    resolution = request.resolution or DEFAULT_RESOLUTION
    folder, partition = _locate(request)
    names = read_partition(partition, split)
    cache = cache_path(folder.parent, partition, split, resolution)
    images = _read_cache(cache, (len(names), 3, resolution, resolution))
    cached = images is not None
    if images is None:
        images = _decode(folder, names, resolution, split)
        cached = _write_cache(cache, images)
    return ImageDataset(
        name="celeba",
        images=torch.from_numpy(images),
        source=str(folder),
        split=split,
        meta={"recipe": RECIPE, "crop": CROP, "resample": "bicubic", "cache": str(cache) if cached else None},
    )
