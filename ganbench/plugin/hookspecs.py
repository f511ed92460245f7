"""The hooks a ganbench plugin may implement.

A plugin is any importable module (or object) exposed under the entry-point
group ``ganbench`` whose functions are marked with ``@ganbench.hookimpl``
and named after a hook below. An implementation may accept fewer arguments
than the spec. Hooks come in two sections:

Registration (called once, when the registry is built, before any run):
    ganbench_models, ganbench_objectives, ganbench_datasets, ganbench_metrics,
    ganbench_executors

Run events (called by the runner, in this order for every run):
    ganbench_run_started -> ganbench_step_logged* -> ganbench_evaluation_done*
    -> ganbench_run_finished
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ganbench.results.records import RunInfo, RunRecord
    from ganbench.plugin.specs import DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec

PROJECT = "ganbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration ---------------------------------------------------------


@hookspec
def ganbench_models() -> Iterable[ModelSpec]:
    """Contribute GAN families.

    Called once while the registry is built. Return an iterable of
    :class:`ganbench.ModelSpec`; each name must be unique across all plugins.

    Example::

        @ganbench.hookimpl
        def ganbench_models():
            return [ModelSpec(name="mygan", build=build, description="...",
                              paper="Me et al. 2026", default_objective="hinge")]
    """


@hookspec
def ganbench_objectives() -> Iterable[ObjectiveSpec]:
    """Contribute losses (objectives).

    Called once while the registry is built. Return an iterable of
    :class:`ganbench.ObjectiveSpec`. A family trains with an objective when
    the objective's ``needs`` equals the family's ``provides``.
    """


@hookspec
def ganbench_datasets() -> Iterable[DatasetSpec]:
    """Contribute datasets.

    Called once while the registry is built. Return an iterable of
    :class:`ganbench.DatasetSpec`. ``load`` is called lazily, only for the
    dataset a run asks for, and must return a :class:`ganbench.ImageDataset`.
    """


@hookspec
def ganbench_metrics() -> Iterable[MetricSpec]:
    """Contribute scores computed on a trained generator.

    Called once while the registry is built. Return an iterable of
    :class:`ganbench.MetricSpec`.
    """


@hookspec
def ganbench_executors() -> Iterable[ExecutorSpec]:
    """Contribute executors: where the planned runs are trained (``--executor NAME``).

    Called once while the registry is built. Return an iterable of
    :class:`ganbench.ExecutorSpec`. ``local`` (one run after another in this
    process) and ``ray`` are built in; a SLURM or Kubernetes executor can come
    from another distribution.

    Example::

        @ganbench.hookimpl
        def ganbench_executors():
            return [ExecutorSpec(name="slurm", execute=submit_and_wait,
                                 description="one sbatch job per run")]
    """


# -- run events -----------------------------------------------------------


@hookspec
def ganbench_run_started(run: RunInfo) -> None:
    """A run is about to train.

    Called once per run when its config is resolved and its directory
    exists, before the first step (also when a run resumes from a
    checkpoint). ``run.log_to`` names the trackers the user asked for with
    ``--log-to``; a tracker listener acts only when its name is there.
    Return nothing.
    """


@hookspec
def ganbench_step_logged(run: RunInfo, record: Mapping[str, float]) -> None:
    """A row of curves was logged.

    Called every ``--log-every`` steps and once at the end. ``record`` holds step, kimg, seconds, budget fraction and every loss and
    diagnostic, averaged over the steps since the previous row. Called often:
    keep it cheap. Return nothing.
    """


@hookspec
def ganbench_evaluation_done(run: RunInfo, scores: Mapping[str, Any]) -> None:
    """Scores were computed for the generator at some budget fraction.

    Called after each evaluation (at the ``--eval-at`` fractions and at the
    end of the budget). ``scores`` holds the metric values plus 'fraction',
    'step' and 'kimg'. Return nothing.
    """


@hookspec
def ganbench_run_finished(run: RunInfo, record: RunRecord) -> None:
    """A run ended, whatever its status (completed, diverged, failed).

    Called once per run, after its record was written. Return nothing.
    """
