"""IS/FID/KID/PRC through torch-fidelity: correctness against independent code, and its pitfalls.

The domain extractor is trained once per session into a shared cache folder.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity.utils as tf_utils

from ganbench import GanbenchError, ImageDataset, MetricSpec
from ganbench.training.budget import Counters
from ganbench.plugin.data import to_float
from ganbench.scoring.evaluation import EvalOptions, make_evaluator
from ganbench_builtin.fidelity import (
    GeneratorInput,
    UInt8Images,
    checked_kwargs,
    dataset_digest,
    to_rgb_uint8,
)
from ganbench_builtin.extractors import lenet
from ganbench_builtin.metrics import fidelity as fidelity_metrics

from helpers import CPU, Replay, evaluate, noisy, subset


pytestmark = pytest.mark.usefixtures("one_thread", "scoring_env")


@pytest.fixture(scope="module")
def cache(_private_cache, digits_extractor, digits) -> Path:
    """The session's cache, which every `ganbench run` of the session uses too: the extractor is trained once."""
    lenet.prepare(digits, _private_cache)
    return _private_cache


@pytest.fixture(scope="module")
def extractor_name(cache, digits) -> str:
    return lenet.extractor_name(digits)


def features(name: str, images: torch.Tensor, layer: str = "features") -> np.ndarray:
    extractor = lenet.LeNetExtractor(name, [layer])
    with torch.no_grad():
        return extractor(to_rgb_uint8(images))[0].numpy().astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def mmd2_unbiased_poly(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


# -- correctness ------------------------------------------------------------


def test_fid_and_kid_equal_independent_computation(registry, digits, cache, extractor_name):
    reference = subset(digits, torch.arange(0, 200))
    bank = noisy(digits.images[200:400], 0.25)
    scores = evaluate(registry, ["fid", "kid"], Replay(bank), reference, cache, 200, extractor=extractor_name)
    fid = scores[f"fid200[{extractor_name}]"]
    kid = scores[f"kid200[{extractor_name}]"]
    fake, real = features(extractor_name, bank), features(extractor_name, reference.images)
    assert fid == pytest.approx(frechet(fake, real), rel=1e-6)
    # KID's subsets are clamped to the 200 samples, so every subset is the whole set and KID is the full MMD.
    assert kid == pytest.approx(mmd2_unbiased_poly(fake, real), rel=1e-6)
    assert scores[f"kid200_std[{extractor_name}]"] < 1e-6 * abs(kid)


def test_fid_of_the_dataset_against_itself_is_zero_and_grows_with_noise(registry, digits, cache, extractor_name):
    n = len(digits)
    fids = []
    for sigma in (0.0, 0.15, 0.4, 0.8):
        bank = noisy(digits.images, sigma) if sigma else to_float(digits.images)
        scores = evaluate(registry, ["fid"], Replay(bank), digits, cache, n)
        fids.append(scores[f"fid{n}[{extractor_name}]"])
    assert abs(fids[0]) < 1e-6 * max(1.0, fids[-1])
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert fids[1] > 0


def test_inception_score_of_balanced_real_digits_approaches_the_number_of_classes(registry, digits, cache, extractor_name):
    idx = torch.cat([torch.nonzero(digits.labels == c).flatten()[:170] for c in range(10)])
    bank = to_float(digits.images[idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))]])
    scores = evaluate(registry, ["isc"], Replay(bank), digits, cache, len(bank))
    assert scores[f"isc1700[{extractor_name}]"] > 7.0
    blank = torch.full((10, 1, 16, 16), -1.0)
    scores = evaluate(registry, ["isc"], Replay(blank), digits, cache, 500)
    assert scores[f"isc500[{extractor_name}]"] < 1.5


def test_all_four_metrics_labelled_and_sane(registry, digits, cache, extractor_name):
    scores = evaluate(registry, ["isc", "fid", "kid", "prc"], Replay(to_float(digits.images)), digits, cache, 300)
    expected = {f"{m}300{s}[{extractor_name}]" for m, s in
                [("isc", ""), ("isc", "_std"), ("fid", ""), ("kid", ""), ("kid", "_std"),
                 ("prc", "_precision"), ("prc", "_recall"), ("prc", "_f_score"),
                 ("div", "_spread"), ("div", "_classes")]}
    assert set(scores) == expected
    assert scores[f"prc300_precision[{extractor_name}]"] > 0.9  # real images lie on the real manifold
    assert all(math.isfinite(v) for v in scores.values())


def test_default_extractor_is_the_datasets_own_and_inception_otherwise(registry, digits, tmp_path):
    from ganbench.scoring.evaluation import MetricContext
    from ganbench.execution.runner import dataset_extractor

    builtin = {name for name, reg in registry.specs["dataset"].items() if reg.plugin.distribution == "ganbench"}
    chosen = {name: dataset_extractor(registry, f"{name}:x", EvalOptions()).extractor for name in builtin}
    assert chosen == {name: "lenet" if name in ("digits", "mnist") else None for name in builtin}
    assert dataset_extractor(registry, "digits", EvalOptions(extractor="vgg16")).extractor == "vgg16"  # the user's wins
    # named by neither: the metric plugin's own default, Inception (whose weights are not on disk here)
    ctx = MetricContext(None, digits, EvalOptions(metrics=("fid",)), CPU, 0, ("fid",), tmp_path)
    with pytest.raises(GanbenchError, match="Inception-v3 weights"):
        fidelity_metrics.resolve(ctx)


# -- torch-fidelity pitfalls ---------------------------------------------------


def test_one_extraction_explicit_cuda_no_generated_cache_and_clamped_kid(registry, digits, cache, extractor_name, tmp_path,
                                                                         monkeypatch):
    calls, generated = [], []
    real_extract, real_generate = tf_utils.extract_featuresdict_from_input_id_cached, tf_utils.get_featuresdict_from_generative_model

    def spy(input_id, extractor, **kwargs):
        calls.append(kwargs)
        return real_extract(input_id, extractor, **kwargs)

    def spy_generate(*args, **kwargs):
        generated.append(args)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(tf_utils, "extract_featuresdict_from_input_id_cached", spy)
    monkeypatch.setattr(tf_utils, "get_featuresdict_from_generative_model", spy_generate)
    # a cache of its own (holding the session's trained extractor), since other tests cache other reference sets
    cache = Path(shutil.copytree(cache / "extractors", tmp_path / "cache" / "extractors")).parent
    scores = evaluate(registry, ["isc", "fid", "kid", "prc"], Replay(noisy(digits.images[:50], 0.3)), digits, cache, 50)
    assert len(generated) == 1  # all four metrics and the diversity statistics share one feature extraction
    kwargs = calls[0]
    assert kwargs["cuda"] is False
    assert kwargs["isc"] and kwargs["fid"] and kwargs["kid"] and kwargs["prc"]
    assert kwargs["input1_cache_name"] is None
    assert dataset_digest(digits)[:16] in kwargs["input2_cache_name"]
    assert kwargs["kid_subset_size"] == 50
    assert f"kid50[{extractor_name}]" in scores
    files = sorted(p.name for p in (cache / "fidelity").iterdir())
    assert any(name.startswith(kwargs["input2_cache_name"]) for name in files)
    assert all(name.startswith("ganbench-digits-") for name in files), files  # reference sets only
    evaluate(registry, ["isc", "fid", "kid", "prc"], Replay(noisy(digits.images[:50], 0.6)), digits, cache, 50)
    assert sorted(p.name for p in (cache / "fidelity").iterdir()) == files  # generated samples are never cached


def test_unknown_or_missing_torch_fidelity_options_are_refused():
    with pytest.raises(GanbenchError, match="kid_subset"):
        checked_kwargs({"cuda": False, "fid": True, "kid_subset": 10})
    with pytest.raises(GanbenchError, match="cuda"):
        checked_kwargs({"fid": True})
    assert checked_kwargs({"cuda": False, "fid": True}) == {"cuda": False, "fid": True}


def test_conditional_labels_are_drawn_in_the_dataset_proportions(registry, digits, cache, extractor_name):
    idx = torch.cat([torch.nonzero(digits.labels == c).flatten()[: 20 + 10 * c] for c in range(10)])
    unbalanced = subset(digits, idx)
    model = Replay(to_float(unbalanced.images), conditional=True, num_classes=10)
    scores = evaluate(registry, ["isc", "fid"], model, unbalanced, cache, 1000, extractor=extractor_name)
    assert f"fid1k[{extractor_name}]" in scores
    labels = torch.cat(model.seen_labels)
    assert len(labels) == 1000
    expected = torch.bincount(unbalanced.labels, minlength=10).double() / len(unbalanced) * 1000
    assert (torch.bincount(labels, minlength=10).double() - expected).abs().max() <= 1.0


def test_generated_floats_are_rounded_and_greyscale_repeated():
    value = 2 * 100.6 / 255 - 1  # 100.6 in [0, 255]: rounds to 101 (truncation would give 100)
    model = Replay(torch.full((4, 1, 5, 5), value))
    out = GeneratorInput(model, 4, CPU, seed=0)(torch.zeros(4, 1))
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 5, 5)
    assert int(out.min()) == int(out.max()) == 101
    item = UInt8Images(torch.full((2, 1, 5, 5), 7, dtype=torch.uint8))[1]
    assert item.shape == (3, 5, 5) and int(item.max()) == 7


def test_scoring_restores_modes_tf32_rng_and_device(digits, tmp_path):
    seen = {}

    def compute(ctx):
        seen["tf32"] = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        seen["training"] = [m.training for m in ctx.model.net.modules()]
        torch.rand(3)  # a metric consuming the global RNG must not shift the training's stream
        return {"probe": 1.0}

    model = Replay(to_float(digits.images[:4]))
    model.net.train()
    model.net[1].eval()  # a module deliberately left in eval mode by its family
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        evaluator = make_evaluator([MetricSpec("probe", compute, "test probe")], model, digits,
                                   EvalOptions(metrics=("probe",), cache_dir=tmp_path), CPU, 0)
        torch.manual_seed(123)
        state = torch.get_rng_state()
        assert evaluator(0.5, Counters()) == {"probe": 1.0}
        assert torch.equal(torch.get_rng_state(), state)
        assert seen["tf32"] == (False, False)
        assert seen["training"] == [False, False, False]
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        assert [m.training for m in model.net.modules()] == [True, True, False]
        assert all(p.device.type == "cpu" for p in model.net.parameters())
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_intermediate_evaluations_use_the_intermediate_sample_count(registry, digits, cache, extractor_name):
    model = Replay(noisy(digits.images[:100], 0.3))
    opts = EvalOptions(metrics=("fid",), extractor="lenet", num_samples=60, intermediate_samples=30, cache_dir=cache)
    evaluator = make_evaluator([registry.metric("fid")], model, digits, opts, CPU, 0)
    assert [k for k in evaluator(0.5, Counters()) if k.startswith("fid")] == [f"fid30[{extractor_name}]"]
    assert [k for k in evaluator(1.0, Counters()) if k.startswith("fid")] == [f"fid60[{extractor_name}]"]


def test_domain_extractor_is_cached_by_content(digits, cache):
    name, path = lenet.prepare(digits, cache)
    assert path.is_file() and name == lenet.extractor_name(digits)
    written = path.stat().st_mtime_ns
    assert lenet.prepare(digits, cache) == (name, path) and path.stat().st_mtime_ns == written  # found, not retrained
    other = subset(digits, torch.arange(300))
    assert lenet.extractor_name(other) != name  # other training data, other name (and cache entry)
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["train_accuracy"] > 0.9
    assert payload["data_sha256"].startswith(name.rsplit("-", 1)[-1])


# -- scoring at scale ------------------------------------------------------------------------------------------


def test_the_dataset_hash_reads_memory_in_place_once_and_notices_changes(digits, monkeypatch):
    import hashlib
    import tracemalloc

    from ganbench_builtin import fidelity

    big = ImageDataset("big", torch.randint(0, 256, (4_000, 3, 32, 32), dtype=torch.uint8),
                       torch.arange(4_000) % 10, num_classes=10)
    expected = hashlib.sha256()  # the documented content: shape and dtype, pixels, then the labels
    expected.update(repr(((4_000, 3, 32, 32), "torch.uint8")).encode())
    expected.update(big.images.numpy().tobytes())
    expected.update(b"labels" + big.labels.to(torch.int64).numpy().tobytes())
    hashed = []
    real = fidelity._content_digest
    monkeypatch.setattr(fidelity, "_content_digest", lambda dataset: hashed.append(dataset.name) or real(dataset))
    tracemalloc.start()
    try:
        digest = dataset_digest(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == expected.hexdigest()
    assert peak < big.images.numel() // 10  # 12 MB of pixels hashed without a copy of them
    assert dataset_digest(big) == digest and dataset_digest(big) == digest and hashed == ["big"]
    big.images[0, 0, 0, 0] += 1  # changed in place: hashed again
    assert dataset_digest(big) != digest and hashed == ["big", "big"]


def test_the_feature_extractor_is_built_once_per_process(registry, digits, cache, monkeypatch):
    built = []
    real = tf_utils.create_feature_extractor
    monkeypatch.setattr(tf_utils, "create_feature_extractor",
                        lambda *args, **kwargs: built.append(args[0]) or real(*args, **kwargs))
    from ganbench_builtin import fidelity

    monkeypatch.setattr(fidelity, "_EXTRACTORS", {})
    model = Replay(noisy(digits.images[:64], 0.3))
    first = evaluate(registry, ["fid"], model, digits, cache, 64)
    second = evaluate(registry, ["fid"], model, digits, cache, 64, batch_size=16)  # another batch size, same scores
    assert len(built) == 1
    assert first.keys() == second.keys() and all(math.isclose(first[k], second[k], rel_tol=1e-4) for k in first)


def test_extraction_batch_size_is_configurable_and_by_device():
    from ganbench_builtin.fidelity import extraction_batch_size

    assert extraction_batch_size(CPU) == 128 and extraction_batch_size(torch.device("cuda:1")) == 512
    assert extraction_batch_size(CPU, 32) == 32


def test_precision_recall_subsamples_a_large_reference_and_says_so(registry, digits, cache, monkeypatch):
    from ganbench_builtin import fidelity

    features_in = torch.arange(1_000, dtype=torch.float32)[:, None].repeat(1, 3)
    kept = fidelity.prc_reference(features_in, cap=300)
    assert kept.shape == (300, 3) and torch.equal(kept, fidelity.prc_reference(features_in, cap=300))  # seeded
    assert len(set(kept[:, 0].tolist())) == 300 and kept[:, 0].tolist() == sorted(kept[:, 0].tolist())
    assert fidelity.prc_reference(features_in, cap=1_000) is features_in  # small enough: the whole set

    monkeypatch.setattr(fidelity, "PRC_REFERENCE_CAP", 500)  # digits holds more than 500 images
    scores = evaluate(registry, ["prc", "fid"], Replay(noisy(digits.images[:100], 0.3)), digits, cache, 100)
    name = lenet.extractor_name(digits)
    assert f"prc100_precision[{name}-ref500]" in scores and f"prc100_recall[{name}-ref500]" in scores
    assert f"fid100[{name}]" in scores  # only precision/recall used the subsample
    assert 0.0 <= scores[f"prc100_precision[{name}-ref500]"] <= 1.0


def test_caches_are_keyed_by_the_extraction_version_not_only_the_extractor_name(digits, cache, tmp_path, monkeypatch):
    from ganbench_builtin import fidelity
    from ganbench.scoring.evaluation import MetricContext

    ctx = MetricContext(None, digits, EvalOptions(metrics=("fid",), extractor="lenet"), CPU, 0, ("fid",), cache)
    setup = fidelity_metrics.resolve(ctx)
    tag = fidelity.extraction_tag(setup.extractor, lenet.version(), setup.weights)
    assert setup.reference_cache.endswith(tag)
    name, weights_key = setup.label, lenet.weights_digest(digits)
    assert setup.weights.name == f"lenet-{weights_key[:16]}.pt"

    # a fixed bug in the extraction bumps its version: new weights file, new reference statistics, same score label
    monkeypatch.setitem(lenet.EXTRACTION, "version", lenet.EXTRACTION["version"] + 1)
    assert lenet.weights_digest(digits) != weights_key and lenet.extractor_name(digits) == name
    assert fidelity.extraction_tag(setup.extractor, lenet.version(), setup.weights) != tag
    monkeypatch.undo()
    monkeypatch.setattr(fidelity, "INPUT_VERSION", fidelity.INPUT_VERSION + 1)  # ganbench's own input preparation
    assert fidelity.extraction_tag(setup.extractor, lenet.version(), setup.weights) != tag
    monkeypatch.undo()

    # other weights under the same path: another tag, and another extractor in memory
    copy = tmp_path / "lenet.pt"
    shutil.copy(setup.weights, copy)
    kwargs = {"cuda": False, "feature_extractor_weights_path": str(copy)}
    built = fidelity.feature_extractor(setup.extractor, ["features"], kwargs)
    assert fidelity.feature_extractor(setup.extractor, ["features"], kwargs) is built
    copied_tag = fidelity.extraction_tag(setup.extractor, lenet.version(), copy)
    payload = torch.load(copy, weights_only=True)
    payload["state"] = {k: v + 0.5 for k, v in payload["state"].items()}
    torch.save(payload, copy)
    assert fidelity.extraction_tag(setup.extractor, lenet.version(), copy) != copied_tag
    assert fidelity.feature_extractor(setup.extractor, ["features"], kwargs) is not built
