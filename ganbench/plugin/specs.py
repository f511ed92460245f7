"""The typed records plugins return from the registration hooks.

A plugin never registers a bare function or class: it returns one of these
records, so the core can check names, describe the plugin in
``ganbench plugins`` and refuse an incompatible combination before training.

Building a record must be cheap: ``ganbench plugins`` and ``ganbench --help``
load every plugin, and importing torch alone costs seconds. A plugin therefore
names its heavy callables with :func:`lazy` (``build=lazy("pkg.nets:build")``),
which imports the implementation module only when a run first calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ganbench.errors import PluginError

if TYPE_CHECKING:
    from ganbench.plugin.data import DatasetRequest, ImageDataset
    from ganbench.plugin.model import BuildContext, GanModel
    from ganbench.plugin.objective import Objective

#: The kinds of data a dataset holds: uint8 images (N, C, H, W) or float vectors (N, D) (see ganbench.plugin.data).
IMAGE = "image"
VECTOR = "vector"
DATA_KINDS = (IMAGE, VECTOR)

#: What a discriminator returns: one score per image, or a reconstruction.
LOGIT = "logit"
RECONSTRUCTION = "reconstruction"

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class PluginOption:
    """An option a family or objective accepts (``--option NAME.KEY=VALUE``, a suite's ``[options.NAME]``).

    ``type`` is int, float, str or bool; ``default`` is what the plugin gets
    when the user gives nothing; ``help`` is shown when a key is misspelt.
    """

    name: str
    type: type
    default: Any
    help: str


@dataclass(frozen=True)
class ModelSpec:
    """A GAN family.

    ``provides`` says what its discriminator outputs (an objective ``needs``
    the same); ``objectives``, when not empty, narrows further to the named
    ones. ``requires_labels`` refuses unlabelled datasets up front.
    ``defaults`` documents the paper's settings the family uses.
    ``search_space`` is what ``ganbench tune`` may vary: run-option name ->
    distribution (:mod:`ganbench.study.search_space`); empty means Lucic et al.'s wide
    space (:data:`ganbench.study.search_space.LUCIC_WIDE`).

    ``data_kinds`` says which kinds of data it can train on (a convolutional
    family needs images); a run on another kind is refused before training.
    ``packable``: the family accepts ``--pack M`` (its discriminator is an
    ordinary module on unlabelled samples, see :mod:`ganbench.training.packing`).

    ``capacity_knobs`` lets ``--recipe matched`` size the family (see the
    field's comment and docs/plugins.md); ``batch_size`` is its recipe's batch
    (BEGAN's paper trains with 16), which ``--batch-size`` overrides.
    """

    name: str
    build: Callable[[BuildContext], GanModel]
    description: str
    paper: str
    default_objective: str
    provides: str = LOGIT
    objectives: tuple[str, ...] = ()
    requires_labels: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: The options it accepts; it reads them from ``BuildContext.settings.options``.
    options: tuple[PluginOption, ...] = ()
    #: What ``ganbench tune`` searches for this family: a TrainSettings field -> a distribution
    #: (ganbench.study.search_space); empty means Lucic et al.'s wide space.
    search_space: Mapping[str, Any] = field(default_factory=dict)
    data_kinds: tuple[str, ...] = (IMAGE,)
    packable: bool = False
    #: The architecture knobs ``--recipe matched`` may turn: a family option (declared in ``options``) -> its
    #: allowed values, ordered so that capacity grows with them (``{"width": tuple(range(8, 513, 4))}``).
    #: The core searches them until parameters and forward FLOPs per image of G and of D are within ±10 % of
    #: a per-resolution target (ganbench.training.capacity); empty: the family is refused under ``matched``.
    capacity_knobs: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The batch size of the family's recipe, used unless the user gives ``--batch-size``; None: the harness's
    #: default (64). Recorded in every run's config like a batch size given by hand.
    batch_size: int | None = None
    kind: str = "model"


@dataclass(frozen=True)
class ObjectiveSpec:
    """A loss. ``build`` makes a fresh (possibly stateful) objective per run."""

    name: str
    build: Callable[[], Objective]
    description: str
    paper: str
    needs: str = LOGIT
    #: The options it accepts; they are passed to ``build`` as keyword arguments.
    options: tuple[PluginOption, ...] = ()
    kind: str = "objective"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset. ``load`` may raise DatasetUnavailableError with instructions.

    ``argument`` names what may follow a colon (``imagefolder:PATH``); empty
    means the dataset takes no argument beyond an optional split.
    ``default_extractor`` names the feature extractor the metrics use when the
    user gives no ``--extractor`` (``"lenet"`` for digit-like data, where an
    ImageNet Inception sees nothing meaningful); None leaves it to the metric.

    ``data_kind`` is what ``load`` returns (images or vectors), known before
    loading so that a family or metric that cannot use it is refused at once;
    ``default_metrics`` are computed when the user names none (``--metrics``
    left out), because the image scores mean nothing for a 2-D distribution.
    """

    name: str
    load: Callable[[DatasetRequest], ImageDataset]
    description: str
    argument: str = ""
    default_resolution: int | None = None
    default_extractor: str | None = None
    data_kind: str = IMAGE
    default_metrics: tuple[str, ...] = ()
    kind: str = "dataset"


@dataclass(frozen=True)
class MetricSpec:
    """A score computed after training (and at intermediate budget fractions).

    ``compute`` receives a metric context (:class:`ganbench.scoring.evaluation.MetricContext`)
    and returns named floats. ``higher_is_better`` lets leaderboards rank without
    knowing the metric. ``prepare``, when given, is called once with the context
    before training starts, so that a missing file or a bad option fails the run
    up front (and slow set-up, such as training a feature extractor, is not
    charged to the first evaluation). ``data_kinds`` says which kinds of data
    it can score (IS and FID need images; the exact toy metrics need vectors).
    """

    name: str
    compute: Callable[..., dict[str, float]]
    description: str
    higher_is_better: bool = False
    prepare: Callable[..., None] | None = None
    data_kinds: tuple[str, ...] = (IMAGE,)
    kind: str = "metric"


def _resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    try:
        value = import_module(module)
        for part in attribute.split("."):
            value = getattr(value, part)
    except Exception as exc:  # an ImportError deep inside a plugin, a renamed function: say which plugin target
        raise PluginError(f"The plugin implementation {target!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    return value


def _check_target(target: str) -> str:
    module, sep, attribute = target.partition(":")
    if not (sep and module and attribute):
        raise PluginError(f"lazy({target!r}): name the implementation as 'package.module:attribute'.")
    return target


@dataclass(frozen=True)
class Lazy:
    """A callable named by ``"package.module:attribute"``, imported on its first call."""

    target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _resolve(self.target)(*args, **kwargs)


@dataclass(frozen=True)
class LazyMapping(Mapping):
    """A mapping named by ``"package.module:NAME"`` (a family's documented defaults), imported on first read."""

    target: str

    def _mapping(self) -> Mapping[str, Any]:
        return _resolve(self.target)

    def __getitem__(self, key: str) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


def lazy(target: str) -> Lazy:
    """``build``/``load``/``compute`` for a spec, imported from ``target`` only when first called.

    Example: ``ModelSpec("mygan", build=lazy("ganbench_mygan.nets:build"), ...)``.
    """
    return Lazy(_check_target(target))


def lazy_mapping(target: str) -> LazyMapping:
    """A spec's ``defaults`` kept in the implementation module (``"ganbench_mygan.nets:DEFAULTS"``)."""
    return LazyMapping(_check_target(target))


@dataclass(frozen=True)
class ExecutorSpec:
    """Where and how the planned runs of an invocation are trained.

    ``execute(registry, invocation)`` trains every run the invocation plans and
    returns their :class:`ganbench.results.records.RunRecord` list, one per run, in plan
    order; it must write ordinary run directories (see :mod:`ganbench.results.records`)
    so that leaderboards, reports and reruns work whatever trained them. The
    built-in ``local`` trains them one by one in this process; ``ray`` spreads
    them over a Ray cluster. A SLURM or Kubernetes executor can come from a
    third-party package the same way.

    ``execute_many(registry, invocations)``, optional, trains the runs of several
    invocations at once (the trials of a ``ganbench tune`` study, which differ in
    their settings) and returns one record list per invocation, in order. Without
    it, the invocations go to ``execute`` one after another.
    """

    name: str
    execute: Callable[..., list[Any]]
    description: str
    kind: str = "executor"
    execute_many: Callable[..., list[list[Any]]] | None = None


SPEC_TYPES: dict[str, type] = {
    "model": ModelSpec,
    "objective": ObjectiveSpec,
    "dataset": DatasetSpec,
    "metric": MetricSpec,
    "executor": ExecutorSpec,
}


#: What a discriminator may provide and an objective may need.
OUTPUTS = (LOGIT, RECONSTRUCTION)
#: The field of each kind that holds the callable a run uses.
CALLABLE_FIELD = {"model": "build", "objective": "build", "dataset": "load", "metric": "compute", "executor": "execute"}


def spec_problems(kind: str, spec: Any) -> list[str]:
    """Everything wrong with one spec on its own (cross-references are checked once every plugin is loaded).

    Each message starts with the spec's kind and name, so a plugin with several
    bad records gets every one of them reported, not just the first.
    """
    expected = SPEC_TYPES[kind]
    if not isinstance(spec, expected):
        return [f"a {kind} record is {type(spec).__name__}, not {expected.__name__}"]
    label = f"{kind} {spec.name!r}"
    problems = []
    name_problem = check_name(spec.name)
    if name_problem:
        problems.append(f"{label}: the name is not valid: {name_problem}")
    if not callable(getattr(spec, CALLABLE_FIELD[kind])):
        problems.append(f"{label}: {CALLABLE_FIELD[kind]} is not callable")
    if kind == "executor" and not (spec.execute_many is None or callable(spec.execute_many)):
        problems.append(f"{label}: execute_many is neither None nor callable")
    for field_name in ("provides", "needs"):
        value = getattr(spec, field_name, None)
        if value is not None and value not in OUTPUTS:
            problems.append(f"{label}: {field_name}={value!r} is not one of {', '.join(map(repr, OUTPUTS))}")
    for option in getattr(spec, "options", ()):
        if not isinstance(option, PluginOption) or option.type not in (int, float, str, bool):
            problems.append(f"{label}: options holds {option!r}; declare PluginOption(name, type, default, help) "
                            "with type int, float, str or bool")
    if kind == "model":
        problems += _model_problems(label, spec)
    return problems


def _model_problems(label: str, spec: ModelSpec) -> list[str]:
    problems = []
    if not isinstance(spec.objectives, tuple):
        problems.append(f"{label}: objectives must be a tuple of objective names, not {type(spec.objectives).__name__}")
    declared = {option.name for option in spec.options if isinstance(option, PluginOption)}
    for knob, values in dict(spec.capacity_knobs).items():
        if knob not in declared:
            problems.append(f"{label}: capacity_knobs names {knob!r}, which is not one of its options; declare "
                            f"PluginOption({knob!r}, ...) too")
        if not isinstance(values, tuple) or not values:
            problems.append(f"{label}: capacity_knobs[{knob!r}] must be a non-empty tuple of values, growing in capacity")
    if spec.batch_size is not None and (not isinstance(spec.batch_size, int) or spec.batch_size < 1):
        problems.append(f"{label}: batch_size must be a positive int or None, not {spec.batch_size!r}")
    return problems


def check_name(name: str) -> str | None:
    """Why ``name`` is not a usable plugin name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "the name is empty"
    if name != name.lower() or not set(name) <= _NAME_CHARS:
        return "names use lower-case letters, digits, '-', '_' and '.' only"
    return None
