"""On the real MNIST test set: FID between its two halves is small, an untrained generator's is large.

Needs /work/shared/data/mnist/t10k-*-ubyte.gz (skipped without them). The domain
extractor is trained on the first half, which is also the reference set.
"""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits

from ganbench import ImageDataset
from ganbench.budget import Counters
from ganbench.data import to_float
from ganbench.evaluation import EvalOptions, make_evaluator
from ganbench.model import BuildContext, TrainSettings
from ganbench.plugins import build_registry
from ganbench_builtin.datasets.torchvision_sets import read_idx
from conftest import SHARED_MNIST
from test_metrics import Replay

IMAGES, LABELS = SHARED_MNIST / "t10k-images-idx3-ubyte.gz", SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (IMAGES.exists() and LABELS.exists()),
                       reason=f"the real MNIST test set is not at {SHARED_MNIST} (t10k-*-ubyte.gz)"),
]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.delenv("GANBENCH_CACHE_DIR", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def test_fid_between_halves_is_small_and_untrained_generator_is_large(tmp_path):
    images = torch.from_numpy(read_idx(IMAGES).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(LABELS).astype("int64"))
    half = ImageDataset("mnist", images[:5000], labels[:5000], num_classes=10, split="test-a")
    other = to_float(images[5000:])
    registry = build_registry()
    opts = EvalOptions(metrics=("fid",), num_samples=5000, cache_dir=tmp_path)
    scores = make_evaluator([registry.metric("fid")], Replay(other), half, opts, torch.device("cpu"), 0)(1.0, Counters())
    (key,) = scores
    assert key.startswith("fid5k[lenet-mnist-")
    fid_halves = scores[key]

    torch.manual_seed(0)
    ctx = BuildContext(half.info, registry.objective("nonsaturating").build(), TrainSettings(), torch.device("cpu"), 0)
    untrained = registry.model("dcgan").build(ctx)
    scores = make_evaluator([registry.metric("fid")], untrained, half, opts, torch.device("cpu"), 0)(1.0, Counters())
    fid_untrained = scores[key]
    assert fid_halves < 0.02 * fid_untrained, (fid_halves, fid_untrained)
