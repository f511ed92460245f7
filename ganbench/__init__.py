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

#: public name -> the submodule defining it. Imported on first use (PEP 562), so that
#: ``import ganbench`` (every plugin does it) costs nothing: ``ganbench --help`` and
#: ``ganbench plugins`` must not pay for importing torch.
_EXPORTS = {
    "Budget": "budget", "Counters": "budget",
    "DataInfo": "data", "DatasetRequest": "data", "ImageDataset": "data",
    "ContractError": "errors", "DatasetUnavailableError": "errors", "GanbenchError": "errors", "PluginError": "errors", "UsageError": "errors",
    "Results": "frames", "load_results": "frames", "count_label": "naming",
    "MetricContext": "evaluation", "sample_images": "evaluation",
    "hookimpl": "hookspecs",
    "AdversarialModel": "model", "BuildContext": "model", "Draw": "model", "GanModel": "model", "StepContext": "model",
    "StepLogs": "model", "TrainSettings": "model",
    "CriticInputs": "objective", "Objective": "objective", "OptimizerRecipe": "objective",
    "LOGIT": "specs", "RECONSTRUCTION": "specs", "IMAGE": "specs", "VECTOR": "specs", "DatasetSpec": "specs", "ExecutorSpec": "specs", "MetricSpec": "specs", "ModelSpec": "specs",
    "ObjectiveSpec": "specs", "PluginOption": "specs", "lazy": "specs", "lazy_mapping": "specs",
}

if TYPE_CHECKING:
    from .budget import Budget, Counters
    from .data import DataInfo, DatasetRequest, ImageDataset
    from .errors import ContractError, DatasetUnavailableError, GanbenchError, PluginError, UsageError
    from .naming import count_label
    from .frames import Results, load_results
    from .evaluation import MetricContext, sample_images
    from .hookspecs import hookimpl
    from .model import AdversarialModel, BuildContext, Draw, GanModel, StepContext, StepLogs, TrainSettings
    from .objective import CriticInputs, Objective, OptimizerRecipe
    from .specs import (
        IMAGE, LOGIT, RECONSTRUCTION, VECTOR, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec,
        PluginOption, lazy, lazy_mapping,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "API_VERSION",
    "IMAGE",
    "LOGIT",
    "VECTOR",
    "RECONSTRUCTION",
    "AdversarialModel",
    "Budget",
    "BuildContext",
    "ContractError",
    "Counters",
    "CriticInputs",
    "DataInfo",
    "DatasetRequest",
    "DatasetSpec",
    "DatasetUnavailableError",
    "Draw",
    "GanModel",
    "GanbenchError",
    "ImageDataset",
    "MetricContext",
    "ExecutorSpec",
    "MetricSpec",
    "ModelSpec",
    "Objective",
    "ObjectiveSpec",
    "OptimizerRecipe",
    "PluginError",
    "PluginOption",
    "Results",
    "StepContext",
    "StepLogs",
    "TrainSettings",
    "UsageError",
    "__version__",
    "count_label",
    "hookimpl",
    "lazy",
    "lazy_mapping",
    "load_results",
    "sample_images",
]
