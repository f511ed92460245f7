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
from ganbench.records import RunRecord  # noqa: E402

#: One Ray runtime at a time: under pytest-xdist (``--dist loadgroup``) this module's tests all run on one worker,
#: so two workers never start two 2-CPU runtimes on the same cores.
pytestmark = pytest.mark.xdist_group("ray")

COMMON = ["run", "--device", "cpu", "--executor", "ray", "--cpus-per-run", "1", "--metrics=", "--plugins", "vanilla",
          "--batch-size", "16", "--log-every", "5", "--checkpoint-every", "5", "--deterministic"]


def _kill_after_checkpoint() -> None:
    """Worker setup hook (shipped by value): wrap checkpoint.save to die after the chosen checkpoint."""
    import os
    import signal

    from ganbench import checkpoint

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
    from ganbench.plugins import build_registry
    from ganbench.runner import Invocation, plan
    from ganbench_builtin.executors.ray_executor import check_nodes

    registry = build_registry(disabled=["progress"])
    inv = Invocation(device="cpu", plugins=("vanilla",), results=tmp_path)
    registry.disabled.add("vanilla")  # the workers build their registry without it, as on a node that lacks it
    with pytest.raises(UsageError, match=r"lacks the model 'vanilla': install the distribution ganbench there"):
        check_nodes(ray, registry, plan(registry, inv, device_type="cpu"), inv)
    assert not list((tmp_path / "runs").glob(".ray-probe-*"))
