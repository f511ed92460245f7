"""imagefolder:PATH: a user's own images.

Every image file under PATH is loaded, centre-cropped to a square and resized
to ``--resolution``. Without ``--resolution`` the images must all have the
same size, which is kept (centre-cropped to a square if needed): resizing a
folder of mixed sizes is a choice the user makes explicitly. When PATH holds one sub-folder per class
(the torchvision ImageFolder layout), the sub-folder names become labels;
otherwise the dataset is unlabelled. Greyscale images stay one-channel when
all images are greyscale; any colour image makes the whole set RGB. 16-bit
and float images are scaled to 8 bits from their own range, never clipped.

The dataset is named by the folder's last part (``imagefolder:faces``), and
a fingerprint of the files' names and bytes becomes part of every run's
identity, so adding or replacing images makes new runs instead of reusing
finished ones on the old content.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganbench import DatasetRequest, DatasetUnavailableError, ImageDataset, UsageError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _square(image: Image.Image, resolution: int) -> Image.Image:
    w, h = image.size
    if w == h == resolution:  # already what is asked: resampling would only cost time
        return image
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.BICUBIC)


def to_8bit(image: Image.Image, path: Path) -> Image.Image:
    """8-bit channels, scaled from the image's own range: PIL's ``convert`` clips 16-bit and float
    pixels to 0-255, which turns a 16-bit PNG or a float TIFF into a black-and-white mask."""
    if image.mode.startswith("I;16") or image.mode == "I":
        pixels = np.asarray(image, dtype=np.float64)
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise UsageError(f"The image {path} holds integers outside 0-65535 (mode {image.mode}); "
                             "save it as an 8- or 16-bit image, or remove it.")
        return Image.fromarray(np.rint(pixels * (255 / 65535)).astype(np.uint8), "L")
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if pixels.size and not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1):
            raise UsageError(f"The image {path} holds floating-point pixels outside [0, 1] (or NaN); ganbench cannot "
                             "tell their scale. Save it as an 8- or 16-bit image, or with values in [0, 1].")
        return Image.fromarray(np.rint(pixels * 255).astype(np.uint8), "L")
    return image


def load(request: DatasetRequest) -> ImageDataset:
    if not request.argument:
        raise UsageError("imagefolder needs a path: --dataset imagefolder:/path/to/images")
    root = Path(request.argument).expanduser()
    if not root.is_dir():
        raise DatasetUnavailableError(f"The image folder {root} does not exist or is not a directory. Give an existing folder: --dataset imagefolder:PATH.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise DatasetUnavailableError(
            f"The image folder {root} holds no images ({', '.join(sorted(EXTENSIONS))}). "
            "Put image files in it, or one sub-folder of images per class."
        )
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    labelled = bool(classes) and all(len(p.relative_to(root).parts) > 1 for p in files)
    opened = []
    fingerprint = hashlib.sha256()
    for path in files:
        try:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                opened.append(to_8bit(im.copy(), path))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DatasetUnavailableError(f"Cannot read the image {path}: {exc}. Remove or replace the file.") from exc
        fingerprint.update(path.relative_to(root).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        fingerprint.update(hashlib.sha256(data).digest())
    sizes = sorted({im.size for im in opened})
    if request.resolution is None and len(sizes) > 1:
        examples = ", ".join(f"{w}x{h}" for w, h in sizes[:3])
        raise UsageError(
            f"The images in {root} have {len(sizes)} different sizes ({examples}, ...). "
            "Pass --resolution N to centre-crop and resize them all to N x N pixels."
        )
    resolution = request.resolution or min(sizes[0])
    grey = all(im.mode in ("L", "1") for im in opened)
    mode = "L" if grey else "RGB"
    arrays = [np.asarray(_square(im.convert(mode), resolution), dtype=np.uint8) for im in opened]
    stacked = np.stack(arrays)
    images = torch.from_numpy(stacked).unsqueeze(1) if grey else torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    labels = None
    if labelled:
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[p.relative_to(root).parts[0]] for p in files], dtype=torch.int64)
    return ImageDataset(
        name=f"imagefolder:{root.resolve().name or 'root'}",  # the folder's name only: labels never hold a path
        images=images,
        labels=labels,
        num_classes=len(classes) if labelled else 0,
        class_names=tuple(classes) if labelled else (),
        source=str(root),
        meta={"fingerprint": fingerprint.hexdigest()[:16], "files": len(files), "modes": sorted({im.mode for im in opened}), "sizes": len({im.size for im in opened})},
    )
