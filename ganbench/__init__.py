"""ganbench: train GAN families under identical budgets, score them, rank them.

The public surface for plugin authors is re-exported here; everything else
is an implementation detail of the core.
"""

__version__ = "0.1.0"

from .budget import Budget, Counters
from .data import DataInfo, DatasetRequest, ImageDataset
from .errors import DatasetUnavailableError, GanbenchError, PluginError, UsageError
from .hookspecs import hookimpl
from .model import AdversarialModel, BuildContext, GanModel, StepContext, TrainSettings
from .objective import LOGIT, RECONSTRUCTION, CriticInputs, Objective
from .specs import DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec

__all__ = [
    "LOGIT",
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
    "StepContext",
    "TrainSettings",
    "UsageError",
    "__version__",
    "hookimpl",
]
