"""ganbench: train GAN families under identical budgets, score them, rank them.

The public surface for plugin authors is re-exported here; everything else
is an implementation detail of the core.
"""

__version__ = "0.1.0"
#: The plugin API this ganbench implements. A plugin declares the version it targets with a
#: module-level ``GANBENCH_API_VERSION = 1``; see docs/plugins.md, "Versions and deprecation".
API_VERSION = 1

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> "submodule" or "submodule:attribute" defining it. Imported on first use (PEP 562), so
#: that ``import ganbench`` (every plugin does it) costs nothing: ``ganbench --help`` and
#: ``ganbench plugins`` must not pay for importing torch. Grouped by the kind of plugin that needs them;
#: ``tests/test_public_api.py`` pins that the plugins in this repository import nothing else.
_EXPORTS = {
    # every plugin: registration, specs, errors
    "hookimpl": "plugin.hookspecs",
    "LOGIT": "plugin.specs", "RECONSTRUCTION": "plugin.specs", "IMAGE": "plugin.specs", "VECTOR": "plugin.specs",
    "DatasetSpec": "plugin.specs", "ExecutorSpec": "plugin.specs", "MetricSpec": "plugin.specs",
    "ModelSpec": "plugin.specs", "ObjectiveSpec": "plugin.specs", "PluginOption": "plugin.specs",
    "lazy": "plugin.specs", "lazy_mapping": "plugin.specs",
    "ContractError": "errors", "DatasetUnavailableError": "errors", "GanbenchError": "errors",
    "PluginError": "errors", "UsageError": "errors",
    "Cited": "plugin.citations", "render_table": "plugin.citations",
    # families and objectives
    "AdversarialModel": "plugin.model", "BuildContext": "plugin.model", "Draw": "plugin.model",
    "GanModel": "plugin.model", "StepContext": "plugin.model", "StepLogs": "plugin.model",
    "TrainSettings": "plugin.model",
    "CriticInputs": "plugin.objective", "Objective": "plugin.objective", "OptimizerRecipe": "plugin.objective",
    "Budget": "training.budget", "Counters": "training.budget",
    "frozen": "plugin.model", "device_dependent_init": "plugin.model", "SyncCounter": "training.syncs",
    "Choice": "study.search_space", "LogUniform": "study.search_space", "Uniform": "study.search_space",
    # datasets
    "DataInfo": "plugin.data", "DatasetRequest": "plugin.data", "ImageDataset": "plugin.data",
    "TRUTH": "plugin.data", "to_float": "plugin.data", "to_uint8": "plugin.data",
    # metrics: their context, score names, and the diversity statistics behind the collapse flag
    "MetricContext": "scoring.evaluation", "sample_images": "scoring.evaluation",
    "count_label": "plugin.naming", "score_key": "plugin.naming", "slug": "plugin.naming",
    "DIVERSITY_METRIC": "scoring.diversity:METRIC", "DIVERSITY_SPREAD": "scoring.diversity:SPREAD",
    "DIVERSITY_CLASSES": "scoring.diversity:CLASSES", "covariance_trace": "scoring.diversity",
    "spread_ratio": "scoring.diversity", "predicted_classes": "scoring.diversity",
    # listeners and extractors: files that a crash never leaves half-written
    "atomic_write": "results.store", "read_json": "results.store", "write_json": "results.store",
    "save_torch": "results.store",
    # executors: plan an invocation's runs, train some of them, return their records
    "Invocation": "execution.runner", "PlannedRun": "execution.runner", "plan_runs": "execution.runner:plan",
    "load_dataset": "execution.runner", "train_planned": "execution.runner", "run_locally": "execution.runner",
    "check_writable": "execution.runner", "Registry": "plugin.registry", "build_registry": "plugin.registry",
    "RunRecord": "results.records", "RUN_FAILED": "results.records:FAILED",
    # notebooks
    "Results": "results.frames", "load_results": "results.frames",
}

if TYPE_CHECKING:
    from ganbench.errors import ContractError, DatasetUnavailableError, GanbenchError, PluginError, UsageError
    from ganbench.execution.runner import (
        Invocation, PlannedRun, check_writable, load_dataset, plan as plan_runs, run_locally, train_planned,
    )
    from ganbench.plugin.citations import Cited, render_table
    from ganbench.plugin.data import TRUTH, DataInfo, DatasetRequest, ImageDataset, to_float, to_uint8
    from ganbench.plugin.hookspecs import hookimpl
    from ganbench.plugin.model import (
        AdversarialModel, BuildContext, Draw, GanModel, StepContext, StepLogs, TrainSettings, device_dependent_init,
        frozen,
    )
    from ganbench.plugin.naming import count_label, score_key, slug
    from ganbench.plugin.objective import CriticInputs, Objective, OptimizerRecipe
    from ganbench.plugin.registry import Registry, build_registry
    from ganbench.plugin.specs import (
        IMAGE, LOGIT, RECONSTRUCTION, VECTOR, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec,
        PluginOption, lazy, lazy_mapping,
    )
    from ganbench.results.frames import Results, load_results
    from ganbench.results.records import FAILED as RUN_FAILED, RunRecord
    from ganbench.results.store import atomic_write, read_json, save_torch, write_json
    from ganbench.scoring.diversity import (
        CLASSES as DIVERSITY_CLASSES, METRIC as DIVERSITY_METRIC, SPREAD as DIVERSITY_SPREAD, covariance_trace,
        predicted_classes, spread_ratio,
    )
    from ganbench.scoring.evaluation import MetricContext, sample_images
    from ganbench.study.search_space import Choice, LogUniform, Uniform
    from ganbench.training.budget import Budget, Counters
    from ganbench.training.syncs import SyncCounter


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(import_module(f".{module}", __name__), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["API_VERSION", "__version__", *sorted(_EXPORTS)]
