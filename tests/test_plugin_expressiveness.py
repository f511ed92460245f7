"""What a plugin can express beyond its hooks: a dataset's default extractor, per-plugin options, and a plugin
loaded from a path while it is being written."""

import pytest
import torch

from ganbench import DatasetSpec, ImageDataset, MetricSpec, hookimpl
from ganbench.budget import Budget
from ganbench.evaluation import EvalOptions
from ganbench.model import TrainSettings
from ganbench.plugins import PluginInfo, build_registry
from ganbench.runner import Invocation, execute

pytestmark = pytest.mark.usefixtures("one_thread")
SEEN: dict = {}


def _blobs(request):
    g = torch.Generator().manual_seed(0)
    return ImageDataset("blobs", torch.randint(0, 256, (32, 1, 8, 8), generator=g, dtype=torch.uint8))


def _which_extractor(ctx):
    SEEN["extractor"] = ctx.options.extractor
    return {"probe": 0.0}


class Blobs:
    GANBENCH_API_VERSION = 1

    @hookimpl
    def ganbench_datasets(self):
        return [DatasetSpec("blobs", _blobs, "random blobs", default_extractor="blob-features")]

    @hookimpl
    def ganbench_metrics(self):
        return [MetricSpec("probe", _which_extractor, "records the extractor it was given")]


def _run(tmp_path, registry, extractor=None):
    inv = Invocation(plugins=("vanilla",), dataset="blobs", budget=Budget.parse("1steps"), results=tmp_path,
                     device="cpu", settings=TrainSettings(batch_size=8), fresh=True,
                     evaluation=EvalOptions(metrics=("probe",), fractions=(), extractor=extractor))
    return execute(registry, inv)


def test_a_dataset_names_the_extractor_used_when_the_user_gives_none(tmp_path):
    registry = build_registry(disabled=["progress"], extra=[(PluginInfo("blobs", "m", "ganbench-blobs", "1"), Blobs())])
    [record] = _run(tmp_path, registry)
    assert record.status == "completed" and SEEN["extractor"] == "blob-features"
    [record] = _run(tmp_path, registry, extractor="inception-v3-compat")
    assert SEEN["extractor"] == "inception-v3-compat"  # the user's choice wins
