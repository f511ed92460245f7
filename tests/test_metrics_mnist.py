"""On the real MNIST test set: FID between its two halves is small, an untrained generator's is large,
and a DCGAN trained briefly on the first half scores between them.

Needs /work/shared/data/mnist/t10k-*-ubyte.gz (skipped without them). The domain
extractor is trained on the first half, which is also the reference set.
"""

from __future__ import annotations

import pytest
import torch

from ganbench import ImageDataset
from ganbench.training.budget import Counters
from ganbench.plugin.data import BatchStream, to_float
from ganbench.scoring.evaluation import EvalOptions, make_evaluator
from ganbench.plugin.model import BuildContext, StepContext, TrainSettings
from ganbench.plugin.registry import build_registry
from ganbench_builtin.datasets.torchvision_sets import read_idx
from helpers import SHARED_MNIST, Replay

STEPS = 150
IMAGES, LABELS = SHARED_MNIST / "t10k-images-idx3-ubyte.gz", SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not (IMAGES.exists() and LABELS.exists()),
                       reason=f"the real MNIST test set is not at {SHARED_MNIST} (t10k-*-ubyte.gz)"),
]


@pytest.fixture(autouse=True)
def no_cache_env(monkeypatch):
    monkeypatch.delenv("GANBENCH_CACHE_DIR", raising=False)


def test_fid_halves_small_untrained_large_trained_dcgan_between(tmp_path):
    images = torch.from_numpy(read_idx(IMAGES).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(LABELS).astype("int64"))
    half = ImageDataset("mnist", images[:5000], labels[:5000], num_classes=10, split="test-a")
    other = to_float(images[5000:])
    registry = build_registry()
    opts = EvalOptions(metrics=("fid",), extractor="lenet", num_samples=5000, cache_dir=tmp_path)
    scores = make_evaluator([registry.metric("fid")], Replay(other), half, opts, torch.device("cpu"), 0)(1.0, Counters())
    (key,) = [k for k in scores if k.startswith("fid")]
    assert key.startswith("fid5k[lenet-mnist-")
    fid_halves = scores[key]

    torch.manual_seed(0)
    ctx = BuildContext(half.info, registry.objective("nonsaturating").build(), TrainSettings(), torch.device("cpu"), 0)
    untrained = registry.model("dcgan").build(ctx)
    scores = make_evaluator([registry.metric("fid")], untrained, half, opts, torch.device("cpu"), 0)(1.0, Counters())
    fid_untrained = scores[key]
    assert fid_halves < 0.02 * fid_untrained, (fid_halves, fid_untrained)

    # the same network after STEPS steps on the reference half (two threads: training is the slow part)
    torch.set_num_threads(2)
    stream = BatchStream(half, 64, seed=0, device=torch.device("cpu"))
    for step in range(STEPS):
        untrained.train_step(stream.next, StepContext(step, step / STEPS))
    torch.set_num_threads(1)
    scores = make_evaluator([registry.metric("fid")], untrained, half, opts, torch.device("cpu"), 0)(1.0, Counters())
    fid_trained = scores[key]
    assert fid_halves < fid_trained < 0.75 * fid_untrained, (fid_halves, fid_trained, fid_untrained)
