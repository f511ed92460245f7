"""The contracts of listeners (``listener.*``) and executors (``executor.*``)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from ganbench.training.budget import Budget
from ganbench.execution.executors import ExecutorOptions
from ganbench.plugin.model import TrainSettings
from ganbench.plugin.registry import EVENT_HOOKS, PluginInfo
from ganbench.results.records import COMPLETED, RunConfig, RunInfo, RunRecord
from ganbench.plugin.specs import ExecutorSpec
from .contract import Contract, expect, fail


def _events(run: RunInfo) -> dict[str, dict[str, Any]]:
    """One run's events, in the order the runner sends them, with plausible arguments."""
    c = run.config
    record = RunRecord(run.run_id, c.family, c.objective, c.dataset, c.budget, c.seed, status=COMPLETED, steps=2,
                       images=16, losses={"loss_d": 1.2, "loss_g": 0.8})
    return {
        "ganbench_run_started": {"run": run},
        "ganbench_step_logged": {"run": run, "record": {"step": 2, "kimg": 0.016, "seconds": 0.1, "fraction": 1.0,
                                                        "loss_d": 1.2, "loss_g": 0.8}},
        "ganbench_evaluation_done": {"run": run, "scores": {"fid32": 123.4, "fraction": 1.0, "step": 2, "kimg": 0.016}},
        "ganbench_run_finished": {"run": run, "record": record},
    }


def _replay(registry: Any, info: PluginInfo) -> dict[str, str]:
    """Send one listener every event of a run; what each hook raised (empty: nothing did)."""
    plugin = registry.pm.get_plugin(info.name)
    raised: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as directory:
        config = RunConfig("vanilla", "nonsaturating", "digits", "2steps", 0, "cpu", 8, log_every=1)
        run = RunInfo(config.run_id, config, Path(directory), 2, "steps", log_to=(info.name,))
        for hook, kwargs in _events(run).items():
            for impl in getattr(registry.pm.hook, hook).get_hookimpls():
                if impl.plugin is plugin:
                    try:
                        impl.function(**{name: kwargs[name] for name in impl.argnames})
                    except Exception as exc:
                        raised[hook] = f"{type(exc).__name__}: {exc}"
    return raised


def listener_contracts(registry: Any, info: PluginInfo) -> list[Contract]:
    replay = functools.cache(lambda: _replay(registry, info))  # one run's events, shared by the four contracts

    def check(hook: str) -> None:
        error = replay().get(hook)
        expect(error is None, f"listener.{hook.removeprefix('ganbench_')}", info.name, f"{hook} raised {error}")
    return [Contract(f"listener.{hook.removeprefix('ganbench_')}", info.name, lambda hook=hook: check(hook))
            for hook in EVENT_HOOKS]


def _trivial_plan(registry: Any, spec: ExecutorSpec) -> None:
    from ganbench.execution.runner import Invocation

    with tempfile.TemporaryDirectory() as results:
        inv = Invocation(plugins=("vanilla",), dataset="digits", budget=Budget.parse("2steps"), seeds=(0,),
                         results=Path(results), device="cpu", settings=TrainSettings(batch_size=8), log_every=1,
                         executor=ExecutorOptions(name=spec.name))
        records = spec.execute(registry, inv)
        if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], RunRecord):
            raise fail("executor.trivial_plan", spec.name, f"execute must return one RunRecord per planned run (1), "
                       f"got {records!r:.200}")
        record = records[0]
        expect(record.status == COMPLETED and record.steps == 2, "executor.trivial_plan", spec.name,
               f"vanilla for 2 steps ended {record.status!r} after {record.steps} steps ({record.error or 'no error'})")
        expect((Path(results) / "runs" / record.run_id / "run.json").is_file(), "executor.trivial_plan", spec.name,
               f"no run directory with run.json under {results}/runs/{record.run_id}: write ordinary run directories")


def executor_contracts(registry: Any, spec: ExecutorSpec) -> list[Contract]:
    return [Contract("executor.trivial_plan", spec.name, lambda: _trivial_plan(registry, spec))]
