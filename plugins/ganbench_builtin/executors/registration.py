"""The built-in executors, as registration records: ``local`` (the default) and ``ray``.

Each names its implementation with :func:`ganbench.lazy`, so that listing plugins
imports neither torch (``local`` trains through the runner) nor Ray.
"""

from __future__ import annotations

from ganbench import ExecutorSpec, hookimpl, lazy


class _Executors:
    """One entry point's executor records; pluggy registers an instance as it would a module."""

    def __init__(self, *specs: ExecutorSpec) -> None:
        self.specs = list(specs)

    @hookimpl
    def ganbench_executors(self) -> list[ExecutorSpec]:
        return self.specs


local = _Executors(ExecutorSpec(
    name="local", execute=lazy("ganbench.runner:run_locally"),
    description="one run after another in this process; needs nothing else"))

ray = _Executors(ExecutorSpec(
    name="ray", execute=lazy("ganbench_builtin.executors.ray_executor:execute_on_ray"),
    description="one Ray task per run, on this machine or a Ray cluster (ganbench[ray])"))
