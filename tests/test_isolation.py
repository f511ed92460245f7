"""A plugin's fault costs only what it owns: a listener is disabled, a metric loses its score, a run fails alone."""

import json

import pytest

from ganbench import MetricSpec, hookimpl
from ganbench.training.budget import Budget
from ganbench.scoring.evaluation import EvalOptions
from ganbench.plugin.model import TrainSettings
from ganbench.plugin.registry import PluginInfo, build_registry
from ganbench.execution.runner import Invocation, execute

pytestmark = pytest.mark.usefixtures("one_thread")


def _invocation(results, plugins=("vanilla",), metrics=(), seeds=(0,)):
    return Invocation(plugins=plugins, dataset="digits", budget=Budget.parse("4steps"), results=results, device="cpu",
                      seeds=seeds, log_every=1, settings=TrainSettings(batch_size=16),
                      evaluation=EvalOptions(metrics=metrics, fractions=(0.5,)))


class BrokenListener:
    """Raises at its second row of curves."""

    def __init__(self):
        self.rows = 0

    @hookimpl
    def ganbench_step_logged(self, run, record):
        self.rows += 1
        if self.rows == 2:
            raise RuntimeError("my listener is broken")


class CountingListener:
    def __init__(self):
        self.finished = []

    @hookimpl
    def ganbench_run_finished(self, run, record):
        self.finished.append(record.status)


def test_a_raising_listener_is_disabled_with_a_warning_and_the_runs_go_on(tmp_path):
    broken, counting = BrokenListener(), CountingListener()
    registry = build_registry(disabled=["progress"], extra=[
        (PluginInfo("shaky", "shaky_mod", "ganbench-shaky", "0.4"), broken),
        (PluginInfo("counter", "counter_mod", "ganbench-counter", "1.0"), counting)])
    with pytest.warns(UserWarning, match=r"disabled the listener .*'shaky'.*ganbench-shaky 0.4.*my listener is broken"):
        records = execute(registry, _invocation(tmp_path, seeds=(0, 1)))
    assert [r.status for r in records] == ["completed", "completed"]
    assert broken.rows == 2  # never called again, in this run or the next
    assert counting.finished == ["completed", "completed"]


class ExitingListener:
    @hookimpl
    def ganbench_run_started(self, run):
        raise SystemExit(3)


def test_a_listener_raising_system_exit_is_disabled_not_the_invocation(tmp_path):
    registry = build_registry(disabled=["progress"], extra=[(PluginInfo("exiter", "m", "ganbench-exiter", "1"),
                                                              ExitingListener())])
    with pytest.warns(UserWarning, match="SystemExit"):
        [record] = execute(registry, _invocation(tmp_path))
    assert record.status == "completed"


def _mean_pixel(ctx):
    import torch

    with torch.no_grad():
        return {"meanpix": float(ctx.model.generate(ctx.model.sample_latent(8, ctx.device)).mean())}


def _fails(ctx):
    raise ValueError("no reference statistics")


class Metrics:
    GANBENCH_API_VERSION = 1

    @hookimpl
    def ganbench_metrics(self):
        return [MetricSpec("meanpix", _mean_pixel, "mean pixel"), MetricSpec("flaky", _fails, "always fails")]


def test_a_raising_metric_is_recorded_as_failed_and_the_others_and_the_run_go_on(tmp_path, capsys):
    registry = build_registry(disabled=["progress"], extra=[(PluginInfo("mets", "mets_mod", "ganbench-mets", "2.0"),
                                                              Metrics())])
    [record] = execute(registry, _invocation(tmp_path, metrics=("flaky", "meanpix")))
    assert record.status == "completed"
    assert set(record.scores) == {"meanpix"}
    scores = json.loads((tmp_path / "runs" / record.run_id / "scores.json").read_text())
    assert [e["fraction"] for e in scores] == [0.5, 1.0]
    for evaluation in scores:
        assert evaluation["errors"] == {"flaky": "ValueError: no reference statistics"}
        assert "meanpix" in evaluation
    err = capsys.readouterr().err
    assert "the metric 'flaky' (entry point 'mets' (mets_mod) from ganbench-mets 2.0) failed at 50%" in err


def _exits(ctx):
    raise SystemExit("a plugin called sys.exit")


def test_system_exit_from_plugin_code_fails_that_run_only_and_never_leaves_it_running(tmp_path, monkeypatch):
    import ganbench_builtin.vanilla as vanilla

    real_build = vanilla.build
    calls = []

    def build_then_exit_once(ctx):
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit("a plugin called sys.exit")
        return real_build(ctx)

    monkeypatch.setattr(vanilla, "build", build_then_exit_once)
    registry = build_registry(disabled=["progress"])
    first, second = execute(registry, _invocation(tmp_path, seeds=(0, 1)))
    assert first.status == "failed" and "SystemExit: a plugin called sys.exit" in first.error
    assert second.status == "completed"
    stored = json.loads((tmp_path / "runs" / first.run_id / "run.json").read_text())
    assert stored["status"] == "failed"
