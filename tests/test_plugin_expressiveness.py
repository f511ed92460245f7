"""What a plugin can express beyond its hooks: a dataset's default extractor, per-plugin options, and a plugin
loaded from a path while it is being written."""

import pytest
import torch

from ganbench import DatasetSpec, ImageDataset, MetricSpec, hookimpl
from ganbench.training.budget import Budget
from ganbench.scoring.evaluation import EvalOptions
from ganbench.plugin.model import TrainSettings
from ganbench.plugin.registry import PluginInfo, build_registry
from ganbench.execution.runner import Invocation, execute

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


DRAFT = """
import ganbench
from ganbench import ObjectiveSpec, lazy

GANBENCH_API_VERSION = 1


@ganbench.hookimpl
def ganbench_objectives():
    return [ObjectiveSpec("draftloss", lazy("ganbench_builtin.objectives:Hinge"), "a loss being written", "me 2026")]
"""


def test_plugin_module_loads_a_file_without_installing_it(tmp_path, capsys, monkeypatch):
    from ganbench.cli import main

    draft = tmp_path / "my_draft_plugin.py"
    draft.write_text(DRAFT)
    assert main(["--plugin-module", str(draft), "plugins"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("draftloss"))
    assert row[1:3] == ["objective", "(path)"]
    # the same through the environment, and by module name once it is importable
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GANBENCH_PLUGIN_MODULES", "my_draft_plugin")
    registry = build_registry()
    assert registry.get("objective", "draftloss").plugin.distribution == "(path)"


def test_a_missing_plugin_module_is_reported_as_broken(tmp_path, capsys):
    from ganbench.cli import main

    assert main(["--plugin-module", str(tmp_path / "nothere.py"), "plugins"]) != 0
    captured = capsys.readouterr()
    assert "BROKEN: plugin module 'nothere'" in captured.out and "nothere.py does not exist" in captured.out
    assert "Traceback" not in captured.err


def _planned(registry, plugins, options):
    from ganbench.plugin.options import parse_option_args
    from ganbench.execution.runner import plan

    inv = Invocation(plugins=plugins, budget=Budget.parse("2steps"), device="cpu",
                     plugin_options=parse_option_args(options))
    return [run.config for run in plan(registry, inv)]


def test_options_reach_the_family_and_the_objective_and_are_recorded(registry, tmp_path):
    from ganbench.execution.runner import build_objective, family_options

    [config] = _planned(registry, ("dcgan:wgan",), ["dcgan.width=8", "wgan.clip=0.05"])
    assert config.options == {"dcgan": {"width": 8}, "wgan": {"clip": 0.05}}
    assert config.as_dict()["options"] == {"dcgan": {"width": 8}, "wgan": {"clip": 0.05}}
    [plain] = _planned(registry, ("dcgan:wgan",), [])
    assert plain.run_id != config.run_id  # part of the identity
    assert family_options(registry.model("dcgan"), config) == {"width": 8}
    assert build_objective(registry.objective("wgan"), config.options).clip == 0.05
    assert build_objective(registry.objective("wgan"), plain.options).clip == 0.01  # the declared default


def test_a_misspelt_option_is_refused_with_what_the_plugin_accepts(registry):
    from ganbench.errors import UsageError

    with pytest.raises(UsageError, match=r"The model 'dcgan' has no option 'widht'\. Options it accepts: width \(int"):
        _planned(registry, ("dcgan",), ["dcgan.widht=8"])
    with pytest.raises(UsageError, match="--option names 'began', which this invocation does not run"):
        _planned(registry, ("dcgan",), ["began.gamma=0.7"])
    with pytest.raises(UsageError, match=r"dcgan.width takes int"):
        _planned(registry, ("dcgan",), ["dcgan.width=wide"])
    with pytest.raises(UsageError, match="must read NAME.KEY=VALUE"):
        _planned(registry, ("dcgan",), ["width=8"])


def test_a_suite_options_table_becomes_option_arguments_and_the_command_line_adds_to_it(tmp_path):
    from ganbench.cli import build_parser
    from ganbench.execution.suite import parse_suite

    suite = parse_suite({"name": "s", "options": {"dcgan": {"width": 16}, "wgan": {"clip": 0.02}}})
    assert suite.defaults["option"] == ["dcgan.width=16", "wgan.clip=0.02"]
    args = build_parser(suite.defaults).parse_args(["run", "--option", "dcgan.width=8"])
    assert args.option == ["dcgan.width=16", "wgan.clip=0.02", "dcgan.width=8"]  # the command line comes last: it wins


def test_builtin_option_defaults_match_the_constants_the_families_use(registry):
    import importlib

    for name in registry.names("model"):
        spec = registry.model(name)
        for option in spec.options:
            if option.default is None:  # the family's recipe decides; nothing to mirror
                continue
            module = importlib.import_module(f"ganbench_builtin.{name}")
            constant = {"gamma": "GAMMA", "lr_patience": "LR_PATIENCE", "grow_fraction": "GROW_FRACTION"}.get(
                option.name, option.name.upper())
            assert getattr(module, constant) == option.default, (name, option.name)


def test_what_a_plugin_needs_is_exported_and_every_export_resolves():
    import ganbench

    for name in ("Draw", "StepLogs", "MetricContext", "sample_images", "OptimizerRecipe", "PluginOption",
                 "ContractError", "API_VERSION"):
        assert name in ganbench.__all__, name
    for name in ganbench.__all__:
        assert getattr(ganbench, name) is not None, name


def test_sample_images_draws_reproducible_images_without_touching_training(registry):
    from ganbench import BuildContext, sample_images
    from ganbench.plugin.data import DataInfo

    ctx = BuildContext(DataInfo("d", 1, 16, 10), registry.objective("nonsaturating").build(),
                       TrainSettings(batch_size=8, options={"width": 8}), torch.device("cpu"), 0)
    model = registry.model("conditional").build(ctx)
    before = torch.random.get_rng_state()
    first = sample_images(model, 10, "cpu", seed=3, batch_size=4)
    assert first.shape == (10, 1, 16, 16) and first.min() >= -1 and first.max() <= 1
    assert torch.equal(first, sample_images(model, 10, "cpu", seed=3))
    assert torch.equal(before, torch.random.get_rng_state())
    assert all(net.training for net in model.networks().values())  # modes restored
