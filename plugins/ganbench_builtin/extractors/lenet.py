"""lenet: a domain feature extractor for small labelled image datasets (digits, MNIST).

The standard scores judge images with Inception-v3, an ImageNet classifier
that knows little about 16-pixel handwritten digits (and whose weights need a
download). For such datasets ganbench trains its own judge: a small LeNet-style
classifier, trained on the dataset's own labelled images with a fixed recipe,
then registered with torch-fidelity's extension mechanism
(``torch_fidelity.register_feature_extractor``) so that IS, FID, KID and
precision/recall are computed by torch-fidelity exactly as with Inception.

Network (input at the dataset's resolution, scaled to [-1, 1]; greyscale
datasets read the mean of the 3 channels torch-fidelity hands over):
conv 5x5 (16) - ReLU - max-pool 2 - conv 5x5 (32) - ReLU - max-pool 2 -
adaptive average pool to 4x4 - linear 512->256 - ReLU - linear 256->128
(``features``: the penultimate layer, before its ReLU, used by FID/KID/PRC) -
ReLU - linear 128->K without bias (``logits_unbiased`` = ``logits``, used by
IS). Features are returned in float64 so the statistics downstream are
computed in double precision.

Recipe (:data:`RECIPE`): seed 0, Adam lr 1e-3, batch 64, ``max(3, min(20,
ceil(30000 / N)))`` epochs over the N images, dropout 0.25 before the last
layer, a random shift of up to 2 pixels per batch; trained on the CPU so the
weights do not depend on the machine's GPU. Training uses a forked RNG and
never disturbs the run's random stream.

Trained weights are cached as ``<cache_dir>/extractors/lenet-<hash16>.pt``,
keyed by the SHA-256 of the training data (pixels, labels, shape), the
recipe and the extraction's version (:data:`EXTRACTION`). The extractor is
registered with torch-fidelity under ``lenet-<dataset>-<hash8>`` (the
dataset's short name: an image folder's last part, never its path; the hash
of the training data and recipe), which is also the label of its scores, so
scores from different training data (another dataset, split or resolution)
never share a name.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from ganbench import ImageDataset, UsageError
from ganbench import to_float
from ganbench_builtin.fidelity import dataset_digest, slug
from ganbench import save_torch

FEATURES = ("features", "logits_unbiased", "logits")
#: The layer of logits over the dataset's classes (the diversity statistic counts predicted classes with it).
CLASS_LOGITS = "logits"
FEATURE_DIM = 128
RECIPE = {"version": 1, "seed": 0, "lr": 2e-3, "batch": 128, "images_per_run": 20_000, "min_epochs": 1,
          "max_epochs": 20, "dropout": 0.25, "shift": 2, "widths": (16, 32), "hidden": 256, "features": FEATURE_DIM}

#: How images reach the network, in training and in :meth:`LeNetExtractor.forward`. ``version`` is bumped
#: whenever that code changes (2: images scaled to [-1, 1] once, after ``to_float`` stopped rescaling floats);
#: it keys the cached weights (:func:`weights_digest`) and, with them, the cached reference statistics, so
#: a fix never reads back what the broken code wrote. It is not in the extractor's name (the score label):
#: a fix must not make earlier, correct scores incomparable.
EXTRACTION = {"version": 2, "scale": "x / 127.5 - 1", "greyscale": "mean of 3 channels", "resize": "bilinear"}

#: registered name -> weights file, filled by :func:`prepare`.
_WEIGHTS: dict[str, Path] = {}


class LeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, widths: tuple[int, int] = (16, 32), hidden: int = 256,
                 features: int = FEATURE_DIM, dropout: float = 0.0) -> None:
        super().__init__()
        w1, w2 = widths
        self.body = nn.Sequential(
            nn.Conv2d(channels, w1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(w2 * 16, hidden), nn.ReLU(),
            nn.Linear(hidden, features),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(self.dropout(F.relu(features)))


def epochs_for(n: int) -> int:
    return max(RECIPE["min_epochs"], min(RECIPE["max_epochs"], math.ceil(RECIPE["images_per_run"] / n)))


def training_digest(dataset: ImageDataset) -> str:
    h = hashlib.sha256(dataset_digest(dataset).encode())
    h.update(repr(sorted(RECIPE.items())).encode())
    return h.hexdigest()


def weights_digest(dataset: ImageDataset, digest: str | None = None) -> str:
    """The key of the cached weights: the training data and recipe, and the extraction's version."""
    h = hashlib.sha256((digest or training_digest(dataset)).encode())
    h.update(version().encode())
    return h.hexdigest()


def version() -> str:
    """The extraction's version and parameters, as :func:`ganbench_builtin.fidelity.extraction_tag` takes them."""
    return repr(sorted(EXTRACTION.items()))


def extractor_name(dataset: ImageDataset, digest: str | None = None) -> str:
    return f"lenet-{slug(dataset.name)}-{(digest or training_digest(dataset))[:8]}"


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    if max_shift <= 0:
        return x
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]


def _say(text: str) -> None:
    """A plain progress line on stderr: training the judge takes tens of seconds the first time, and a
    newcomer's first run (or a CI log) must not sit silent through it."""
    print(f"[ganbench] {text}", file=sys.stderr, flush=True)


def train(dataset: ImageDataset) -> tuple[dict, dict]:
    """Train the classifier on ``dataset`` with :data:`RECIPE`, on the CPU; return (state, config)."""
    if dataset.labels is None or dataset.num_classes < 2:
        raise UsageError(
            f"The lenet extractor is trained on class labels, but the dataset {dataset.name!r} has none. "
            "Use --extractor inception-v3-compat for unlabelled data."
        )
    config = {"channels": dataset.channels, "num_classes": dataset.num_classes, "widths": tuple(RECIPE["widths"]),
              "hidden": RECIPE["hidden"], "features": RECIPE["features"]}
    images, labels = to_float(dataset.images), dataset.labels.to(torch.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        g = torch.Generator().manual_seed(RECIPE["seed"])
        net = LeNet(**config, dropout=RECIPE["dropout"])
        opt = torch.optim.Adam(net.parameters(), lr=RECIPE["lr"])
        net.train()
        epochs, started = epochs_for(len(dataset)), time.perf_counter()
        every = max(1, epochs // 5)  # about five lines, whatever the number of epochs
        with torch.enable_grad():
            for epoch in range(1, epochs + 1):
                order = torch.randperm(len(dataset), generator=g)
                for start in range(0, len(order), RECIPE["batch"]):
                    idx = order[start : start + RECIPE["batch"]]
                    _, logits = net(_shift(images[idx], RECIPE["shift"], g))
                    loss = F.cross_entropy(logits, labels[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                if epoch % every == 0 or epoch == epochs:
                    _say(f"lenet extractor for {dataset.name}: epoch {epoch}/{epochs}, loss {float(loss.detach()):.3g}, "
                         f"{time.perf_counter() - started:.0f} s")
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(images[i : i + 1024])[1].argmax(1) == labels[i : i + 1024]).sum())
                      for i in range(0, len(images), 1024))
    return {k: v.clone() for k, v in net.state_dict().items()}, {**config, "train_accuracy": correct / len(dataset)}


def prepare(dataset: ImageDataset, cache_dir: Path) -> tuple[str, Path]:
    """Train (or load from the cache) the extractor for ``dataset``; register it; return (name, weights file)."""
    digest = training_digest(dataset)
    name = extractor_name(dataset, digest)
    path = Path(cache_dir) / "extractors" / f"lenet-{weights_digest(dataset, digest)[:16]}.pt"
    usable = path.is_file() and _loads(path)
    if path.is_file() and not usable:
        warnings.warn(f"the cached extractor {path} is corrupt or not a lenet extractor; training it again", stacklevel=2)
    if not usable:
        _say(f"training the lenet extractor for {dataset.name} ({len(dataset):,} images, {epochs_for(len(dataset))} "
             f"epochs on the CPU); done once, then cached in {path.parent}")
        state, config = train(dataset)
        save_torch(path, {"state": state, "config": config, "recipe": dict(RECIPE), "extraction": dict(EXTRACTION),
                          "data_sha256": digest,
                          "dataset": dataset.name, "resolution": dataset.resolution})
    _WEIGHTS[name] = path
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, LeNetExtractor)
    return name, path


def _loads(path: Path) -> bool:
    """Whether a cached extractor loads as one; a truncated or foreign file is rebuilt, never trusted."""
    try:
        load(path)
    except Exception:  # noqa: BLE001 - any failure means the same: train it again
        return False
    return True


def load(path: Path) -> tuple[LeNet, dict]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(payload["config"])
    net = LeNet(config["channels"], config["num_classes"], tuple(config["widths"]), config["hidden"], config["features"])
    net.load_state_dict(payload["state"])
    return net.eval(), payload


class LeNetExtractor(FeatureExtractorBase):
    """The trained LeNet as a torch-fidelity feature extractor (uint8 N x 3 x H x W in)."""

    def __init__(self, name: str, features_list, feature_extractor_weights_path=None, **kwargs) -> None:
        super().__init__(name, features_list)
        path = feature_extractor_weights_path or _WEIGHTS.get(name)
        if path is None:
            raise UsageError(f"No weights for the feature extractor {name!r}; it is prepared by ganbench's metrics.")
        self.net, payload = load(Path(path))
        self.channels = int(payload["config"]["channels"])
        self.resolution = int(payload["resolution"])
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits_unbiased", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, x: torch.Tensor):
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.ndim == 4 and x.shape[1] == 3):
            raise ValueError(f"Expecting uint8 images shaped (N, 3, H, W), got {getattr(x, 'dtype', type(x))} "
                             f"{tuple(getattr(x, 'shape', ()))}")
        x = x.float()
        if self.channels == 1:
            x = x.mean(dim=1, keepdim=True)  # exact for the repeated channels of a greyscale image
        x = to_float(x)  # the same arithmetic as on the uint8 training images
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        features, logits = self.net(x)
        out = {"features": features.double(), "logits_unbiased": logits.double(), "logits": logits.double()}
        return tuple(out[name] for name in self.features_list)
