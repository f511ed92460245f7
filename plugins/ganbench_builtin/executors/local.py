"""The ``local`` executor: every run in this process, one after another (the default)."""

from __future__ import annotations

from ganbench import ExecutorSpec, hookimpl
from ganbench.runner import run_locally


@hookimpl
def ganbench_executors() -> list[ExecutorSpec]:
    return [ExecutorSpec(name="local", execute=run_locally,
                         description="one run after another in this process; needs nothing else")]
