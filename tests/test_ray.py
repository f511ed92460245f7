"""The ray executor on a real local Ray runtime (2 CPUs), shared by the tests of this module.

The runtime's workers run a setup hook that can kill them: when the file named
by GANBENCH_TEST_FAULT holds "RESULTS STEP", a worker SIGKILLs itself right
after writing the step-STEP checkpoint of a run under RESULTS. The retry
resumes from that checkpoint and never writes step STEP again, so the fault
fires once: the kill point is an event, never a time.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # read by Ray on import; see the executor
ray = pytest.importorskip("ray")

from ganbench.cli import main  # noqa: E402
from ganbench.errors import UsageError  # noqa: E402
from ganbench.results.records import RunRecord  # noqa: E402

#: One Ray runtime at a time: under pytest-xdist (``--dist loadgroup``) this module's tests all run on one worker,
#: so two workers never start two 2-CPU runtimes on the same cores.
pytestmark = pytest.mark.xdist_group("ray")

COMMON = ["run", "--device", "cpu", "--executor", "ray", "--cpus-per-run", "1", "--metrics=", "--plugins", "vanilla",
          "--batch-size", "16", "--log-every", "5", "--checkpoint-every", "5", "--deterministic"]


def _kill_after_checkpoint() -> None:
    """Worker setup hook (shipped by value): wrap checkpoint.save to die after the chosen checkpoint."""
    import os
    import signal

    from ganbench.training import checkpoint

    save = checkpoint.save

    def save_then_maybe_die(directory, state):
        save(directory, state)
        try:
            results, step = open(os.environ["GANBENCH_TEST_FAULT"]).read().split()
        except (OSError, KeyError, ValueError):
            return
        if str(directory).startswith(results) and state["counters"]["steps"] == int(step):
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.save = save_then_maybe_die


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory):
    from ray import cloudpickle

    path = tmp_path_factory.mktemp("fault") / "fault.txt"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"worker_process_setup_hook": _kill_after_checkpoint,
                          "env_vars": {"GANBENCH_TEST_FAULT": str(path), "GANBENCH_DISABLE_PLUGINS": "progress"}})
    yield path
    ray.shutdown()


def test_two_runs_train_as_ray_tasks_with_progress_lines_and_a_leaderboard(fault_file, tmp_path, capsys):
    code = main([*COMMON, "--budget", "10steps", "--seeds", "2", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    records = [RunRecord.read(p) for p in sorted(tmp_path.glob("runs/*/run.json"))]
    assert [(r.seed, r.status, r.steps) for r in records] == [(0, "completed", 10), (1, "completed", 10)]
    assert all(r.device_model and (tmp_path / "runs" / r.run_id / "curves.csv").exists() for r in records)
    assert sum(f"{r.run_id}: completed" in out for r in records) == 2  # one progress line per finished run
    assert "step 10 (100% of 10steps)" in out and (tmp_path / "leaderboard.csv").exists()
    assert not list((tmp_path / "runs").glob(".ray-probe-*"))  # the shared-directory probe cleaned up


def test_a_killed_worker_is_retried_and_resumes_bit_identically(fault_file, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert main([*COMMON, "--budget", "30steps", "--results", str(clean)]) == 0
    fault_file.write_text(f"{killed} 10")
    assert main([*COMMON, "--budget", "30steps", "--results", str(killed)]) == 0
    (run,) = (killed / "runs").iterdir()
    record = RunRecord.read(run / "run.json")
    assert record.status == "completed" and record.steps == 30 and record.resumed_from_step == 10
    (clean_run,) = (clean / "runs").iterdir()
    a = torch.load(run / "checkpoint.pt", weights_only=True)["networks"]
    b = torch.load(clean_run / "checkpoint.pt", weights_only=True)["networks"]
    for part in b:
        for key in b[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)


def test_a_missing_plugin_on_the_workers_is_named_before_training(fault_file, tmp_path):
    from ganbench.errors import UsageError
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import Invocation, plan
    from ganbench_builtin.executors.ray_executor import check_nodes

    registry = build_registry(disabled=["progress"])
    inv = Invocation(device="cpu", plugins=("vanilla",), results=tmp_path)
    registry.disabled.add("vanilla")  # the workers build their registry without it, as on a node that lacks it
    with pytest.raises(UsageError, match=r"lacks the model 'vanilla': install the distribution ganbench there"):
        check_nodes(ray, registry, plan(registry, inv, device_type="cpu"), inv)
    assert not list((tmp_path / "runs").glob(".ray-probe-*"))


MODULE_PLUGIN = '''
import ganbench
from ganbench_builtin import vanilla

GANBENCH_API_VERSION = 1


@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("filegan", vanilla.build, "vanilla, from a file never installed", "nobody",
                               "nonsaturating")]
'''


def test_workers_load_the_plugin_modules_of_the_command_line(fault_file, tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(MODULE_PLUGIN)
    monkeypatch.chdir(tmp_path)  # given relative to here; the workers start elsewhere
    results = tmp_path / "results"
    assert main(["--plugin-module", "my_plugin.py", *COMMON, "--plugins", "filegan", "--budget", "5steps",
                 "--results", str(results)]) == 0
    (path,) = results.glob("runs/*/run.json")
    record = RunRecord.read(path)
    assert (record.family, record.status, record.steps) == ("filegan", "completed", 5)


@pytest.mark.slow  # about a minute on 2 busy cores: three Ray tasks that each start torch
def test_a_tuning_study_submits_every_trial_at_once(fault_file, tmp_path, capsys):
    from ganbench.training.budget import Budget
    from ganbench.scoring.evaluation import EvalOptions
    from ganbench.execution.executors import ExecutorOptions
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import Invocation
    from ganbench.study.tuning import StudyRequest, run_study

    base = Invocation(plugins=("vanilla",), dataset="gauss1d", budget=Budget.parse("5steps"), results=tmp_path,
                      device="cpu", evaluation=EvalOptions(metrics=("ks",), cache_dir=tmp_path / "cache"),
                      executor=ExecutorOptions(name="ray", cpus_per_run=1))
    manifest = run_study(build_registry(disabled=["progress"]),
                         StudyRequest(base=base, trials=2, confirm_seeds=1, metric="ks"))
    out = capsys.readouterr().out
    (family,) = manifest["families"]
    assert [t["status"] for t in family["trials"]] == ["completed"] * 2
    assert len({t["run_id"] for t in family["trials"]}) == 2
    assert [r["status"] for r in family["confirm"]["runs"]] == ["completed"]
    # two dispatches: both trials side by side, then the re-run of the best; not one dispatch per trial
    assert [line.split(" on ")[0] for line in out.splitlines() if line.startswith("ray: ")] == ["ray: 2 runs",
                                                                                                 "ray: 1 runs"]


def test_a_batch_of_invocations_with_different_executor_options_is_refused_before_ray_starts(tmp_path):
    """One cluster and one set of resources serve a batch: mixed options would silently take the first's."""
    from ganbench.training.budget import Budget
    from ganbench.execution.executors import ExecutorOptions
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import Invocation
    from ganbench_builtin.executors.ray_executor import execute_many_on_ray

    def inv(cpus: float) -> Invocation:
        return Invocation(plugins=("vanilla",), dataset="gauss1d", budget=Budget.parse("2steps"),
                          results=tmp_path / str(cpus), device="cpu",
                          executor=ExecutorOptions(name="ray", cpus_per_run=cpus))

    was_running = ray.is_initialized()
    with pytest.raises(UsageError, match=r"one set of executor options.*cpus_per_run=1\.0.*cpus_per_run=2\.0"):
        execute_many_on_ray(build_registry(disabled=["progress"]), [inv(1.0), inv(1.0), inv(2.0)])
    assert ray.is_initialized() == was_running and not (tmp_path / "1.0").exists()
