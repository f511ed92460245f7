"""Glue between ganbench and torch-fidelity (IS, FID, KID, precision/recall).

torch-fidelity computes the scores; this module only feeds it, safely:

- The generator is sampled batch by batch straight into the feature
  extractor through :class:`GeneratorInput` (a ``GenerativeModelBase``): no
  image files, nothing generated ever touches the disk cache. Latents come
  from the model's own distribution and a seeded ``torch.Generator``; class
  labels of a conditional model are drawn here, in the dataset's class
  proportions (torch-fidelity's own conditional path uses the removed
  ``np.int`` and uniform labels), and torch-fidelity is told the model is
  unconditional. The model is held outside the module tree, so
  torch-fidelity's ``.cuda()`` never moves it.
- Real images go in as :class:`UInt8Images`, a dataset of uint8 3-channel
  tensors (greyscale repeated), and generated floats in [-1, 1] are rounded
  to uint8 with :func:`ganbench.plugin.data.to_uint8`, never truncated.
- Every keyword passed to ``calculate_metrics`` is checked against
  ``torch_fidelity.defaults.DEFAULTS`` (:func:`checked_kwargs`): torch-fidelity
  silently ignores a misspelt option. ``cuda`` is always passed explicitly
  (it defaults to True and crashes without a GPU), ``kid_subset_size`` is
  clamped to the sample counts, and all requested metrics share one feature
  extraction: :func:`calculate` drives torch-fidelity's own building blocks the
  way ``calculate_metrics`` does, so that the generated features it extracts
  also give the diversity statistics (:mod:`ganbench.scoring.diversity`).
- torch-fidelity's disk cache is keyed by name only, so only the reference
  set is ever cached, under a name holding the content hash of its images,
  its split, resolution, the extractor and the version of the extraction
  (:func:`reference_cache_name`, :func:`extraction_tag`).

Score keys are ``<metric><samples>[<extractor>]`` (:func:`score_key`):
``isc10k[lenet-digits-1a2b3c4d]``, ``fid50k[inception-v3-compat]``, plus
``isc<N>_std``, ``kid<N>_std``, ``prc<N>_precision``, ``prc<N>_recall``,
``prc<N>_f_score``, and the diversity statistics ``div<N>_spread`` and
``div<N>_classes`` (:mod:`ganbench.scoring.diversity`). ``<samples>`` is the number of generated samples (``10k``
for 10,000, ``500`` for 500); the reference set is always the whole dataset as
loaded. ``<extractor>`` is the extractor's label: ``inception-v3-compat`` with
the official weights, ``inception-v3-compat-<sha8>`` with any other weights
file, and for trained domain extractors a name carrying the hash of their
training data.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_fidelity
import torch_fidelity.metric_fid as tf_fid
import torch_fidelity.metric_isc as tf_isc
import torch_fidelity.metric_kid as tf_kid
import torch_fidelity.metric_prc as tf_prc
import torch_fidelity.utils as tf_utils
from torch.utils.data import Dataset
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from ganbench import (
    DIVERSITY_CLASSES as CLASSES, DIVERSITY_METRIC as DIVERSITY, DIVERSITY_SPREAD as SPREAD, GanbenchError, GanModel,
    ImageDataset, UsageError, count_label, covariance_trace, predicted_classes, score_key, slug, spread_ratio, to_uint8,
)

INCEPTION = "inception-v3-compat"
INCEPTION_URL = URL_INCEPTION_V3
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth
INCEPTION_SHA256_PREFIX = INCEPTION_FILE.rsplit("-", 1)[-1].split(".")[0]  # 6726825d
WEIGHTS_ENV = "GANBENCH_INCEPTION_WEIGHTS"

#: torch-fidelity flag -> our metric name, and the result keys it produces -> our suffix.
RESULT_KEYS: dict[str, dict[str, str]] = {
    "isc": {torch_fidelity.KEY_METRIC_ISC_MEAN: "", torch_fidelity.KEY_METRIC_ISC_STD: "_std"},
    "fid": {torch_fidelity.KEY_METRIC_FID: ""},
    "kid": {torch_fidelity.KEY_METRIC_KID_MEAN: "", torch_fidelity.KEY_METRIC_KID_STD: "_std"},
    "prc": {
        torch_fidelity.KEY_METRIC_PRECISION: "_precision",
        torch_fidelity.KEY_METRIC_RECALL: "_recall",
        torch_fidelity.KEY_METRIC_F_SCORE: "_f_score",
    },
}
METRICS = tuple(RESULT_KEYS)
#: The diversity statistics computed from the same extraction (:mod:`ganbench.scoring.diversity`) -> their suffix.
KEY_SPREAD, KEY_CLASSES = "ganbench_feature_spread", "ganbench_predicted_classes"
DIVERSITY_KEYS = {KEY_SPREAD: SPREAD, KEY_CLASSES: CLASSES}
BINARY = ("fid", "kid", "prc")

LabelSampler = Callable[[Sequence[int], int, torch.Generator], torch.Tensor]


# -- naming ---------------------------------------------------------------


def dataset_digest(dataset: ImageDataset) -> str:
    """SHA-256 of a dataset's content: shape, pixels and labels (not its name).

    Computed once per dataset per process (the reference cache name, the
    domain extractor's name and every evaluation ask for it): the result is
    kept for as long as the images tensor lives, and recomputed if the images
    or labels were changed in place since.
    """
    images, labels = dataset.images, dataset.labels
    version = (images._version, None if labels is None else (id(labels), labels._version))
    known = _DATASET_DIGESTS.get(id(images))
    if known is not None and known[0]() is images and known[1] == version:
        return known[2]
    digest = _content_digest(dataset)
    _DATASET_DIGESTS[id(images)] = (weakref.ref(images), version, digest)
    weakref.finalize(images, _DATASET_DIGESTS.pop, id(images), None)
    return digest


#: id of an images tensor -> (a weak reference to it, its and its labels' versions, the digest); an entry
#: leaves with its tensor. See :func:`dataset_digest`.
_DATASET_DIGESTS: dict[int, tuple[weakref.ref, Any, str]] = {}


def _content_digest(dataset: ImageDataset) -> str:
    """The hash itself, reading the tensors' memory in place (a 2 GB dataset is never copied to hash it)."""
    h = hashlib.sha256()
    images = dataset.images.contiguous()  # a no-op for the contiguous tensors datasets hold
    h.update(repr((tuple(images.shape), str(images.dtype))).encode())
    h.update(_buffer(images))
    if dataset.labels is not None:
        h.update(b"labels")
        h.update(_buffer(dataset.labels.to(torch.int64).contiguous()))
    return h.hexdigest()


def _buffer(tensor: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor, as a view of its memory (what ``numpy().tobytes()`` would copy)."""
    return memoryview(tensor.detach().cpu().numpy()).cast("B")


def reference_cache_name(dataset: ImageDataset, extractor_tag: str = "", digest: str | None = None) -> str:
    """torch-fidelity cache name for a reference set: content hash, split and resolution.

    torch-fidelity appends ``-<extractor name>-features-<layer>`` (and ``-stat-fid-<layer>``);
    ``extractor_tag`` adds what that name does not tell: the extraction's version and weights
    (:func:`extraction_tag`), so that statistics computed by an older or broken extractor are never read back.
    """
    digest = digest or dataset_digest(dataset)
    name = f"ganbench-{slug(dataset.name)}-{slug(dataset.split)}-{dataset.resolution}px-{digest[:16]}"
    return f"{name}-{extractor_tag}" if extractor_tag else name


#: The version of what ganbench does to images before any extractor sees them (:func:`to_rgb_uint8`,
#: :class:`UInt8Images`, :class:`GeneratorInput`). Bump it when that changes: every cached reference
#: statistic and feature set is keyed by it (:func:`extraction_tag`).
INPUT_VERSION = 1


def extraction_tag(extractor: str, version: str, weights: Path | None = None) -> str:
    """A short hash of everything that decides an extractor's features, for the names of cached statistics.

    An extractor's name says which network it is, not which code computed it: a bug
    once fixed in an extractor's preprocessing left statistics computed before the fix
    in the cache, under the same name. The tag folds in ganbench's input
    preparation (:data:`INPUT_VERSION`), the extractor's own ``version`` (its code and
    preprocessing parameters; for torch-fidelity's extractors, torch-fidelity's version)
    and the SHA-256 of its weights file, so that a change to any of them misses the old
    cache entries instead of reading them.
    """
    h = hashlib.sha256(repr((INPUT_VERSION, extractor, str(version))).encode())
    if weights is not None:
        h.update(file_digest(weights).encode())
    return f"x{h.hexdigest()[:12]}"


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime)."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


# -- the Inception weights ------------------------------------------------


def inception_search_paths(option: Path | None, cache_dir: Path) -> list[Path]:
    """Where the Inception weights are looked for, in order."""
    if option is not None:
        return [Path(option).expanduser()]
    paths = []
    if os.environ.get(WEIGHTS_ENV):
        paths.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    paths.append(Path(cache_dir) / "weights" / INCEPTION_FILE)
    paths.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE)  # where torch-fidelity downloads it
    return paths


def resolve_inception_weights(option: Path | None, cache_dir: Path) -> Path:
    """The local Inception-v3 weights file, or a GanbenchError saying where to get it and where to put it."""
    paths = inception_search_paths(option, cache_dir)
    for path in paths:
        if path.is_file():
            return path
    target = Path(cache_dir) / "weights" / INCEPTION_FILE
    if option is not None:
        where = f"The file given with --inception-weights does not exist: {paths[0]}."
    else:
        where = f"Looked for it in: {', '.join(str(p) for p in paths)}."
    raise GanbenchError(
        f"The Inception-v3 weights for the {INCEPTION!r} extractor are not on disk, and ganbench does not "
        f"download them. {where} Download {INCEPTION_FILE} from {INCEPTION_URL} "
        f"(e.g. `curl -L -o {target} {INCEPTION_URL}`) and put it at {target}, or pass its path with "
        f"--inception-weights PATH or the {WEIGHTS_ENV} environment variable. "
        f"On a machine without it, score with a domain extractor instead (--extractor lenet)."
    )


def inception_label(weights: Path) -> str:
    """``inception-v3-compat`` for the official weights; ``inception-v3-compat-<sha8>`` for any other file."""
    digest = file_digest(weights)
    return INCEPTION if digest.startswith(INCEPTION_SHA256_PREFIX) else f"{INCEPTION}-{digest[:8]}"


# -- inputs ---------------------------------------------------------------


def to_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    """A batch for a feature extractor: uint8 with 3 channels (greyscale repeated); floats in [-1, 1] rounded."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if images.ndim != 4 or images.shape[1] != 3:
        raise GanbenchError(f"Cannot score images shaped {tuple(images.shape)}: expected (N, 1 or 3, H, W).")
    return images.contiguous()


class UInt8Images(Dataset):
    """A block of uint8 images (N, C, H, W) as a torch Dataset of 3-channel uint8 tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise GanbenchError(f"Reference images must be uint8 (N, C, H, W); got {images.dtype} {tuple(images.shape)}.")
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_rgb_uint8(self.images[index : index + 1])[0]


def iid_labels(class_counts: Sequence[int], n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` i.i.d. labels in the proportions of ``class_counts`` (the fallback label sampler)."""
    p = torch.as_tensor(list(class_counts), dtype=torch.float64)
    return torch.multinomial(p, n, replacement=True, generator=generator)


class GeneratorInput(torch_fidelity.GenerativeModelBase):
    """A GanModel as torch-fidelity's input1: ``num_samples`` generated images, batch by batch.

    torch-fidelity calls it with noise of shape (batch, 1) and uses only the
    batch size: latents (and labels) are drawn here from ``seed``, so the
    samples are the same whatever the device and torch-fidelity's RNG.
    """

    def __init__(
        self,
        model: GanModel,
        num_samples: int,
        device: torch.device,
        seed: int,
        class_counts: Sequence[int] = (),
        label_sampler: LabelSampler | None = None,
    ) -> None:
        super().__init__()
        self.__dict__["_model"] = model  # outside the module tree: torch-fidelity's .cuda() must not move it
        self.device = torch.device(device)
        self.num_samples = num_samples
        self.generator = torch.Generator().manual_seed(seed)
        self.labels: torch.Tensor | None = None
        if model.conditional and model.num_classes > 0:
            counts = list(class_counts) or [1] * model.num_classes
            if len(counts) != model.num_classes:
                raise GanbenchError(
                    f"The model has {model.num_classes} classes but the dataset {len(counts)}; cannot draw labels for it."
                )
            self.labels = (label_sampler or iid_labels)(counts, num_samples, self.generator).to(torch.int64)
        self.position = 0

    @property
    def z_size(self) -> int:
        return 1

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0  # labels are drawn here, never by torch-fidelity

    def forward(self, noise: torch.Tensor, *unused: Any) -> torch.Tensor:
        n = int(noise.shape[0])
        model = self.__dict__["_model"]
        z = model.sample_latent(n, self.device, generator=self.generator)
        labels = None
        if self.labels is not None:
            labels = self.labels[self.position : self.position + n].to(self.device)
        self.position += n
        images = model.generate(z, labels)
        return to_rgb_uint8(images).to(noise.device)


# -- calling torch-fidelity -------------------------------------------------


def checked_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` for ``calculate_metrics``, refusing any name torch-fidelity does not know (it would ignore it)."""
    unknown = sorted(set(kwargs) - set(DEFAULTS))
    if unknown:
        raise GanbenchError(
            f"torch-fidelity {torch_fidelity.__version__} does not know the option(s) {', '.join(unknown)}; "
            "it would silently ignore them. This is a bug in the caller."
        )
    if "cuda" not in kwargs:
        raise GanbenchError("Pass 'cuda' to torch-fidelity explicitly: it defaults to True and fails without a GPU.")
    return dict(kwargs)


def calculate(
    metrics: Sequence[str],
    generated: torch_fidelity.GenerativeModelBase | Dataset,
    num_generated: int,
    reference: Dataset | None,
    reference_cache_name: str | None,
    extractor: str,
    device: torch.device,
    cache_dir: Path,
    seed: int = 0,
    weights_path: Path | None = None,
    batch_size: int = 128,
    extra: Mapping[str, Any] | None = None,
    diversity: bool = False,
    class_layer: str | None = None,
) -> dict[str, float]:
    """Every metric in ``metrics`` from one feature extraction; returns torch-fidelity's keys.

    With ``diversity`` the same extraction also gives :data:`DIVERSITY_KEYS` (see
    :mod:`ganbench.scoring.diversity`): the spread of the generated features in the FID layer relative
    to the reference's, and, when ``class_layer`` names the extractor's class logits, the number
    of predicted classes.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise UsageError(f"torch-fidelity metrics are {', '.join(METRICS)}; got {', '.join(metrics) or 'none'}.")
    binary = [m for m in metrics if m in BINARY]
    kwargs: dict[str, Any] = {
        "input1": generated,
        "cuda": torch.device(device).type == "cuda",
        "batch_size": batch_size,
        "feature_extractor": extractor,
        "cache": True,
        "cache_root": str(Path(cache_dir) / "fidelity"),
        "input1_cache_name": None,  # never cache generated samples
        "rng_seed": seed,
        "save_cpu_ram": True,  # no DataLoader worker processes for an in-memory tensor
        "verbose": False,
        **{m: True for m in metrics},
    }
    if isinstance(generated, torch_fidelity.GenerativeModelBase):
        kwargs["input1_model_num_samples"] = num_generated
    if binary or diversity:
        if reference is None or not reference_cache_name:
            raise GanbenchError("FID, KID, precision/recall and the diversity statistics need the reference images "
                                "and a cache name holding their hash.")
        kwargs["input2"] = reference
        kwargs["input2_cache_name"] = reference_cache_name
    if weights_path is not None:
        kwargs["feature_extractor_weights_path"] = str(weights_path)
    if "kid" in metrics:
        n_ref = len(reference) if reference is not None else num_generated
        kwargs["kid_subset_size"] = max(2, min(int(DEFAULTS["kid_subset_size"]), num_generated, n_ref))
    if "prc" in metrics:
        kwargs["prc_batch_size"] = 2_000  # distance blocks of 2,000 x N instead of 10,000 x N
    if "isc" in metrics:
        kwargs["isc_splits"] = max(1, min(int(DEFAULTS["isc_splits"]), num_generated // 2))
    kwargs.update(extra or {})
    if isinstance(generated, GeneratorInput):
        generated.position = 0
    return _one_extraction(checked_kwargs(kwargs), metrics, diversity, class_layer)


def _one_extraction(kwargs: dict[str, Any], metrics: Sequence[str], diversity: bool,
                    class_layer: str | None) -> dict[str, float]:
    """What ``torch_fidelity.calculate_metrics`` does for one extractor, from torch-fidelity's own
    building blocks, so that the generated features it extracts once also give the diversity
    statistics. The reference's FID statistics and features come from torch-fidelity's cache."""
    layers = {m: tf_utils.resolve_feature_layer_for_metric(m, **kwargs) for m in (*metrics, "fid")}
    wanted = {layers[m] for m in metrics} | ({layers["fid"]} if diversity else set())
    if diversity and class_layer:
        wanted.add(class_layer)
    extractor = feature_extractor(kwargs["feature_extractor"], sorted(wanted), kwargs)
    generated = tf_utils.extract_featuresdict_from_input_id_cached(1, extractor, **kwargs)
    reference = None
    if "kid" in metrics or "prc" in metrics:  # FID alone needs only the reference's cached statistics
        reference = tf_utils.extract_featuresdict_from_input_id_cached(2, extractor, **kwargs)
    out: dict[str, float] = {}
    if "isc" in metrics:
        out.update(tf_isc.isc_featuresdict_to_metric(generated, layers["isc"], **kwargs))
    real_stats = None
    if "fid" in metrics or diversity:
        real_stats = tf_fid.fid_input_id_to_statistics_cached(2, extractor, layers["fid"], **kwargs)
    if "fid" in metrics:
        fake_stats = tf_fid.fid_featuresdict_to_statistics(generated, layers["fid"])
        out.update(tf_fid.fid_statistics_to_metric(fake_stats, real_stats, False))
    if "kid" in metrics:
        out.update(tf_kid.kid_featuresdict_to_metric(generated, reference, layers["kid"], **kwargs))
    if "prc" in metrics:
        layer = layers["prc"]
        fake, real = generated[layer], prc_reference(reference[layer])
        if kwargs["cuda"]:  # the distance blocks on the GPU; torch-fidelity brings each block back itself
            fake, real = fake.cuda(), real.cuda()
        out.update(tf_prc.prc_featuresdict_to_metric({layer: fake}, {layer: real}, layer, **kwargs))
    if diversity and real_stats is not None:
        real_trace = float(np.trace(real_stats["sigma"]))
        out[KEY_SPREAD] = spread_ratio(covariance_trace(generated[layers["fid"]]), real_trace)
        if class_layer:
            out[KEY_CLASSES] = float(predicted_classes(generated[class_layer]))
    return out


#: Improved precision/recall compares every generated sample with every reference one (k-NN radii in both
#: sets): against CelebA's 162,770 training images that is 2.6e10 distances per evaluation. Larger reference
#: sets are subsampled to this many images, the same ones for every run (:data:`PRC_REFERENCE_SEED`), and
#: the score key's extractor label says so (:func:`prc_label`). 50,000 is the largest set
#: Kynkäänniemi et al. 2019 use on either side (their §3: 50k real and 50k generated images).
PRC_REFERENCE_CAP = 50_000
PRC_REFERENCE_SEED = 0


def prc_reference(features: torch.Tensor, cap: int | None = None) -> torch.Tensor:
    """The reference features precision/recall uses: all of them, or a seeded subsample of ``cap``."""
    cap = PRC_REFERENCE_CAP if cap is None else cap
    if len(features) <= cap:
        return features
    keep = torch.randperm(len(features), generator=torch.Generator().manual_seed(PRC_REFERENCE_SEED))[:cap]
    return features[keep.sort().values]


def prc_label(extractor: str, reference_size: int, cap: int | None = None) -> str:
    """The extractor label of precision/recall scores: ``-ref50k`` appended when the reference was subsampled,
    so that those scores are never ranked beside scores against a whole (smaller) reference set."""
    cap = PRC_REFERENCE_CAP if cap is None else cap
    return f"{extractor}-ref{count_label(cap)}" if reference_size > cap else extractor


#: (extractor name, layers, on CUDA, weights file and its content hash, GPU) -> the extractor: built once per
#: process, not per evaluation (an Inception network is 100 MB of weights to read and move to the device each
#: time); weights rewritten at the same path (a retrained domain extractor) make a new entry.
_EXTRACTORS: dict[tuple[Any, ...], Any] = {}


def feature_extractor(name: str, layers: Sequence[str], kwargs: Mapping[str, Any]) -> Any:
    """torch-fidelity's extractor ``name`` for ``layers``, built on first use and reused after."""
    gpu = torch.cuda.current_device() if kwargs.get("cuda") else None
    weights = kwargs.get("feature_extractor_weights_path")
    content = file_digest(Path(weights)) if weights and Path(weights).is_file() else None
    key = (name, tuple(layers), bool(kwargs.get("cuda")), weights, content, gpu)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = tf_utils.create_feature_extractor(name, list(layers), **kwargs)
    return _EXTRACTORS[key]


#: Images per feature-extraction batch when ``--eval-batch-size`` is not given: torch-fidelity's 128 on the
#: CPU; on a GPU, 512 (four times the work per launch; not measured here, see docs/performance.md).
EXTRACTION_BATCH = {"cpu": 128, "cuda": 512}


def extraction_batch_size(device: torch.device, requested: int | None = None) -> int:
    """``requested``, or the default for the device's type."""
    return requested if requested is not None else EXTRACTION_BATCH.get(torch.device(device).type, 128)


def named_scores(raw: Mapping[str, float], metrics: Sequence[str], samples: int, extractor: str,
                 reference_size: int = 0) -> dict[str, float]:
    """torch-fidelity's result keys renamed to ganbench score keys (see the module docstring);
    ``metrics`` may include :data:`DIVERSITY` (``div``) for the diversity statistics. ``reference_size``
    (the reference set's image count) marks precision/recall scores against a subsampled reference."""
    out = {}
    for metric in metrics:
        label = prc_label(extractor, reference_size) if metric == "prc" else extractor
        for key, suffix in (DIVERSITY_KEYS if metric == DIVERSITY else RESULT_KEYS[metric]).items():
            if key in raw:
                out[score_key(metric, suffix, samples, label)] = float(raw[key])
    return out
