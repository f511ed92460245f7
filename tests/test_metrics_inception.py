"""The Inception-v3 path: end to end with random weights of the right architecture, and the missing-weights error.

Real Inception weights cannot be downloaded here; a state dict with torch-fidelity's
exact architecture and random values exercises the same code (and is labelled as
non-official in the score keys). Sample counts are tiny: Inception at 299x299 on a CPU
takes about a second per image.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch_fidelity

from ganbench import GanbenchError, ImageDataset
from ganbench.plugin.data import to_float
from ganbench.scoring.evaluation import EvalOptions, make_evaluator
from ganbench_builtin.fidelity import INCEPTION, INCEPTION_FILE, INCEPTION_URL, file_digest, inception_label
from helpers import CPU, Replay, evaluate, noisy, subset

pytestmark = pytest.mark.usefixtures("one_thread", "scoring_env")


class _Unloaded(torch_fidelity.FeatureExtractorInceptionV3):
    def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
        return None


def test_inception_path_runs_end_to_end_with_architecture_identical_random_weights(registry, digits, tmp_path):
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    net = _Unloaded(INCEPTION, ["2048"], feature_extractor_weights_path=str(empty))
    weights = tmp_path / "random-inception.pth"
    torch.save(net.state_dict(), weights)
    reference = subset(digits, torch.arange(4))
    scores = evaluate(registry, ["isc", "fid"], Replay(noisy(digits.images[4:8], 0.2)), reference,
                      tmp_path / "cache", 4, extractor=INCEPTION, inception_weights=weights)
    keys = sorted(scores)
    assert all(k.endswith("]") and f"[{INCEPTION}-" in k for k in keys), keys  # not the official weights: hash in label
    assert {k.split("[")[0] for k in keys} == {"isc4", "isc4_std", "fid4", "div4_spread"}  # no classes: ImageNet's
    assert all(math.isfinite(v) for v in scores.values())


def test_missing_inception_weights_error_names_file_url_and_place(registry, digits, tmp_path):
    with pytest.raises(GanbenchError) as info:
        evaluate(registry, ["fid"], Replay(to_float(digits.images[:8])), digits, tmp_path, 8, extractor=INCEPTION)
    message = str(info.value)
    assert INCEPTION_FILE == "weights-inception-2015-12-05-6726825d.pth"
    assert INCEPTION_FILE in message and INCEPTION_URL in message
    assert str(tmp_path / "weights" / INCEPTION_FILE) in message
    assert "--inception-weights" in message
    with pytest.raises(GanbenchError, match="does not exist"):
        evaluate(registry, ["fid"], Replay(to_float(digits.images[:8])), digits, tmp_path, 8,
                 extractor=INCEPTION, inception_weights=tmp_path / "nowhere.pth")


def test_cifar_like_dataset_defaults_to_inception_and_fails_before_training(registry, tmp_path):
    colour = ImageDataset("cifar10", torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(GanbenchError, match=INCEPTION_FILE):
        make_evaluator([registry.metric("fid")], Replay(torch.zeros(4, 3, 8, 8)), colour,
                       EvalOptions(metrics=("fid",), cache_dir=tmp_path), CPU, 0)


def test_weights_found_through_the_environment_variable(registry, digits, tmp_path, monkeypatch):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not the official file")
    monkeypatch.setenv("GANBENCH_INCEPTION_WEIGHTS", str(weights))
    from ganbench_builtin.metrics.fidelity import resolve
    from ganbench.scoring.evaluation import MetricContext

    ctx = MetricContext(Replay(to_float(digits.images[:2])), digits, EvalOptions(metrics=("fid",), extractor=INCEPTION),
                        CPU, 0, ("fid",), tmp_path)
    setup = resolve(ctx)
    assert setup.weights == weights
    assert setup.label == inception_label(weights) == f"{INCEPTION}-{file_digest(weights)[:8]}"
    # another weights file never shares the reference cache: the cache name folds in the weights' hash
    other = tmp_path / "other.pth"
    other.write_bytes(b"another unofficial file")
    monkeypatch.setenv("GANBENCH_INCEPTION_WEIGHTS", str(other))
    assert resolve(ctx).reference_cache != setup.reference_cache


def test_weights_are_looked_up_in_order_option_environment_cache_torch_hub(tmp_path, monkeypatch):
    """Each place in turn: the first that holds a file wins; an explicit option is the only place looked at."""
    from ganbench_builtin.fidelity import WEIGHTS_ENV, resolve_inception_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # so get_dir() follows TORCH_HOME, whatever set_dir did before
    cache = tmp_path / "cache"
    places = {"option": tmp_path / "given.pth", "environment": tmp_path / "env.pth",
              "cache": cache / "weights" / INCEPTION_FILE,
              "torch hub": Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE}
    for path in places.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
    monkeypatch.setenv(WEIGHTS_ENV, str(places["environment"]))
    assert resolve_inception_weights(places["option"], cache) == places["option"]
    for name in ("environment", "cache", "torch hub"):
        assert resolve_inception_weights(None, cache) == places[name], name
        places[name].unlink()
    with pytest.raises(GanbenchError) as info:
        resolve_inception_weights(None, cache)
    looked = str(info.value).split("Looked for it in: ")[1]
    assert [looked.index(str(places[n])) for n in ("environment", "cache", "torch hub")] == sorted(
        looked.index(str(places[n])) for n in ("environment", "cache", "torch hub"))
    places["option"].unlink()
    places["cache"].write_bytes(b"weights")  # present, but an option names the one file to use
    with pytest.raises(GanbenchError, match="--inception-weights does not exist"):
        resolve_inception_weights(places["option"], cache)


def test_the_official_weights_are_recognised_by_their_hash_not_their_name(tmp_path, monkeypatch):
    """Under the official file name, other bytes get their hash in the label; the official hash gets the plain one.

    No file with the official SHA-256 can be made here, so the test names the digest of its own file official.
    """
    from ganbench_builtin import fidelity

    impostor = tmp_path / INCEPTION_FILE
    impostor.write_bytes(b"not the official weights")
    digest = file_digest(impostor)
    assert not digest.startswith(fidelity.INCEPTION_SHA256_PREFIX)
    assert inception_label(impostor) == f"{INCEPTION}-{digest[:8]}"
    assert fidelity.INCEPTION_SHA256_PREFIX == INCEPTION_FILE.split("-")[-1].split(".")[0]  # the hash in the URL's name
    monkeypatch.setattr(fidelity, "INCEPTION_SHA256_PREFIX", digest[:8])
    renamed = tmp_path / "anything.pth"
    renamed.write_bytes(impostor.read_bytes())
    assert inception_label(renamed) == INCEPTION
