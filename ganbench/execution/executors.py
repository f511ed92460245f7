"""Choosing where runs train: executor options and the dispatch to an executor plugin.

Executors arrive through the ``ganbench_executors`` hook (see
:class:`ganbench.ExecutorSpec`). ``local``, the default, trains the runs one
after another in this process and needs nothing else; it is also what the
core falls back to when no plugin provides ``local``, so a registry built
without the built-in plugins still trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ganbench.errors import UsageError

if TYPE_CHECKING:
    from ganbench.plugin.registry import Registry
    from ganbench.results.records import RunRecord
    from ganbench.execution.runner import Invocation

LOCAL = "local"


@dataclass(frozen=True)
class ExecutorOptions:
    """How runs are spread out; never part of a run's identity (the same run may train anywhere).

    ``gpus_per_run`` None means the executor's default (for ``ray``: one GPU per
    run where the cluster has GPUs and the device is not ``cpu``); fractions let
    small models share a GPU. ``address`` joins an existing Ray cluster.
    """

    name: str = LOCAL
    gpus_per_run: float | None = None
    cpus_per_run: float = 1.0
    address: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.gpus_per_run is not None and self.gpus_per_run < 0:
            raise UsageError(f"--gpus-per-run must be 0 or more, got {self.gpus_per_run}.")
        if self.cpus_per_run <= 0:
            raise UsageError(f"--cpus-per-run must be more than 0, got {self.cpus_per_run}.")
        if self.max_retries < 0:
            raise UsageError(f"--max-retries must be 0 or more, got {self.max_retries}.")


def execute(registry: Registry, inv: Invocation) -> list[RunRecord]:
    """Train every run of ``inv`` with the executor it names; return their records in plan order."""
    from ganbench.execution.runner import run_locally

    name = inv.executor.name
    if name == LOCAL and LOCAL not in registry.specs["executor"]:
        return run_locally(registry, inv)
    return registry.executor(name).execute(registry, inv)


def many_at_once(registry: Registry, name: str) -> Callable[[Registry, list[Invocation]], list[list[RunRecord]]] | None:
    """The executor ``name``'s ``execute_many`` (the runs of several invocations trained together, one record
    list per invocation), or None when it trains one invocation at a time (``local``)."""
    if name == LOCAL and LOCAL not in registry.specs["executor"]:
        return None
    return registry.executor(name).execute_many
