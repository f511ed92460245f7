"""ganbench: train GAN families under identical budgets, score them, rank them.

The public surface for plugin authors is re-exported here; everything else
is an implementation detail of the core.
"""

__version__ = "0.1.0"

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> the submodule defining it. Imported on first use (PEP 562), so that
#: ``import ganbench`` (every plugin does it) costs nothing: ``ganbench --help`` and
#: ``ganbench plugins`` must not pay for importing torch.
_EXPORTS = {
    "Budget": "budget", "Counters": "budget",
    "DataInfo": "data", "DatasetRequest": "data", "ImageDataset": "data",
    "DatasetUnavailableError": "errors", "GanbenchError": "errors", "PluginError": "errors", "UsageError": "errors",
    "Results": "frames", "load_results": "frames",
    "hookimpl": "hookspecs",
    "AdversarialModel": "model", "BuildContext": "model", "GanModel": "model", "StepContext": "model",
    "TrainSettings": "model",
    "CriticInputs": "objective", "Objective": "objective",
    "LOGIT": "specs", "RECONSTRUCTION": "specs", "IMAGE": "specs", "VECTOR": "specs", "DatasetSpec": "specs", "ExecutorSpec": "specs", "MetricSpec": "specs", "ModelSpec": "specs",
    "ObjectiveSpec": "specs", "lazy": "specs", "lazy_mapping": "specs",
}

if TYPE_CHECKING:
    from .budget import Budget, Counters
    from .data import DataInfo, DatasetRequest, ImageDataset
    from .errors import DatasetUnavailableError, GanbenchError, PluginError, UsageError
    from .frames import Results, load_results
    from .hookspecs import hookimpl
    from .model import AdversarialModel, BuildContext, GanModel, StepContext, TrainSettings
    from .objective import CriticInputs, Objective
    from .specs import (
        IMAGE, LOGIT, RECONSTRUCTION, VECTOR, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec, lazy, lazy_mapping,
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
    "IMAGE",
    "LOGIT",
    "VECTOR",
    "RECONSTRUCTION",
    "AdversarialModel",
    "Budget",
    "BuildContext",
    "Counters",
    "CriticInputs",
    "DataInfo",
    "DatasetRequest",
    "DatasetSpec",
    "DatasetUnavailableError",
    "GanModel",
    "GanbenchError",
    "ImageDataset",
    "ExecutorSpec",
    "MetricSpec",
    "ModelSpec",
    "Objective",
    "ObjectiveSpec",
    "PluginError",
    "Results",
    "StepContext",
    "TrainSettings",
    "UsageError",
    "__version__",
    "hookimpl",
    "lazy",
    "lazy_mapping",
    "load_results",
]
