"""Runs survive: exact resume after SIGKILL, checkpoint integrity, locks and Ctrl-C."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganbench.training import checkpoint
from ganbench.training.budget import Budget
from ganbench.execution.lock import RunLock, RunLockedError
from ganbench.results.records import RunRecord
from ganbench.execution.runner import Invocation, execute
from helpers import once_per_session

ARGS = ["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "24steps", "--log-every", "2", "--checkpoint-every", "4",
        "--deterministic", "--batch-size", "32", "--metrics", "fid", "--eval-samples", "200", "--eval-at", "0.5"]

#: Runs ``ganbench`` with a fault injected: GANBENCH_TEST_KILL=checkpoint:N kills the process with SIGKILL
#: half-way through writing the step-N checkpoint; evaluation:F kills it inside the evaluation at fraction F,
#: after the scores are computed and before they are recorded; sidecar:N kills it after the step-N checkpoint
#: was renamed into place, before checkpoint.json describes it; after:N kills it once the step-N checkpoint and
#: its sidecar are complete; SIGINT:N and SIGTERM:N send that signal at the same point, as a user or a scheduler would.
BOOT = r"""
import io, os, signal, sys
point, _, at = os.environ.get("GANBENCH_TEST_KILL", "").partition(":")

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "checkpoint":
    import torch
    from ganbench.training import checkpoint
    from ganbench.results import store

    def save_torch(path, obj):
        if obj["counters"]["steps"] == int(at):
            buf = io.BytesIO()
            torch.save(obj, buf)
            data = buf.getvalue()

            def half_then_die(fh):
                fh.write(data[: len(data) // 2])
                fh.flush()
                die()

            store.atomic_write(path, half_then_die)
        store.save_torch(path, obj)

    checkpoint.save_torch = save_torch
elif point == "sidecar":
    from ganbench.training import checkpoint
    from ganbench.results import store

    def write_json(path, data):
        if data["checkpoint.pt"]["step"] == int(at):
            die()
        store.write_json(path, data)

    checkpoint.write_json = write_json
elif point in ("after", "SIGINT", "SIGTERM"):
    from ganbench.training import checkpoint
    from ganbench.results import store

    def write_json(path, data):
        store.write_json(path, data)
        if data["checkpoint.pt"]["step"] == int(at):
            os.kill(os.getpid(), signal.SIGKILL if point == "after" else getattr(signal, point))

    checkpoint.write_json = write_json
elif point == "evaluation":
    from ganbench.execution import runner

    make_evaluator = runner.make_evaluator

    def make(*args, **kwargs):
        evaluate = make_evaluator(*args, **kwargs)

        def dying(fraction, counters):
            scores = evaluate(fraction, counters)
            if fraction == float(at):
                die()
            return scores

        return dying

    runner.make_evaluator = make

from ganbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def ganbench(results: Path, *extra: str, kill: str = "") -> subprocess.Popen:
    env = {**os.environ, "GANBENCH_DISABLE_PLUGINS": "progress", "GANBENCH_TEST_KILL": kill}
    return subprocess.Popen([sys.executable, "-c", BOOT, *ARGS, "--results", str(results), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run_dir(results: Path) -> Path:
    (d,) = (results / "runs").iterdir()
    return d


def final_state(results: Path):
    d = run_dir(results)
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    with open(d / "curves.csv") as fh:
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]
    scores = json.loads((d / "scores.json").read_text())
    return state, rows, scores


def _train_uninterrupted(results: Path) -> None:
    proc = ganbench(results)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, digits_extractor):
    """The run every fault is compared with, trained once per session (for all xdist workers)."""
    return final_state(once_per_session(tmp_path_factory, "resume-clean", _train_uninterrupted))


def assert_same_as_uninterrupted(results: Path, uninterrupted) -> None:
    state, rows, scores = final_state(results)
    clean_state, clean_rows, clean_scores = uninterrupted
    for part in ("generator", "discriminator"):
        for key, value in clean_state["networks"][part].items():
            assert torch.equal(state["networks"][part][key], value), (part, key)
    exp_avg = state["optimizers"]["generator"]["state"][0]["exp_avg"]
    assert torch.equal(exp_avg, clean_state["optimizers"]["generator"]["state"][0]["exp_avg"])
    assert rows == clean_rows
    assert [e["fraction"] for e in scores] == [0.5, 1.0] and scores == clean_scores


@pytest.mark.parametrize("kill", ["after:8", "checkpoint:16", "sidecar:4", "evaluation:0.5"])
def test_sigkill_then_resume_is_bit_identical(tmp_path, uninterrupted, kill):
    """Killed just after a complete checkpoint, half-way through a checkpoint write, between the first
    checkpoint's rename and its sidecar, or inside an evaluation: each point chosen by an event, not a time."""
    proc = ganbench(tmp_path, kill=kill)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    record = RunRecord.read(run_dir(tmp_path) / "run.json")
    assert record.status == "running"  # killed: nothing was able to mark it
    if kill.startswith("evaluation"):  # the evaluation at 50 % was computed but never recorded
        assert not (run_dir(tmp_path) / "scores.json").exists()

    resumed = ganbench(tmp_path, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    record = RunRecord.read(run_dir(tmp_path) / "run.json")
    assert record.status == "completed" and record.steps == 24 and record.resumed_from_step >= 4
    if kill == "checkpoint:16":  # the half-written step-16 file never replaced the step-12 checkpoint
        assert record.resumed_from_step == 12
    if kill == "sidecar:4":  # the good file is used and its missing sidecar rewritten
        assert record.resumed_from_step == 4 and "checkpoint.json is missing for checkpoint.pt" in err
    if kill == "after:8":
        assert record.resumed_from_step == 8
    assert_same_as_uninterrupted(tmp_path, uninterrupted)


def test_rerun_skips_finished_runs(tmp_path):
    from ganbench.plugin.registry import build_registry

    registry = build_registry(disabled=["progress"])
    inv = Invocation(device="cpu", plugins=("vanilla",), budget=Budget.parse("4steps"), results=tmp_path)
    (first,) = execute(registry, inv)
    mtime = (tmp_path / "runs" / first.run_id / "checkpoint.pt").stat().st_mtime_ns
    (again,) = execute(registry, inv)
    assert again.finished_at == first.finished_at
    assert (tmp_path / "runs" / first.run_id / "checkpoint.pt").stat().st_mtime_ns == mtime
    (fresh,) = execute(registry, Invocation(device="cpu", plugins=("vanilla",), budget=Budget.parse("4steps"), results=tmp_path, fresh=True))
    assert fresh.status == "completed" and fresh.resumed_from_step is None


def _checkpoint(tmp_path, step):
    checkpoint.save(tmp_path, {"counters": {"steps": step}, "weights": torch.full((3,), float(step))})


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path):
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4)
    assert checkpoint.load_latest(tmp_path)["counters"]["steps"] == 4
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])  # truncated by a crash or a full disk
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        state = checkpoint.load_latest(tmp_path)
    assert state["counters"]["steps"] == 2


def test_same_size_corruption_that_still_loads_is_caught_by_the_sha256(tmp_path):
    """A flipped byte inside the weights keeps the size and the file still loads: only the digest can tell."""
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4)
    data = bytearray((tmp_path / "checkpoint.pt").read_bytes())
    at = data.find(torch.full((3,), 4.0).numpy().tobytes())
    assert at > 0
    data[at + 3] ^= 0xFF  # 4.0 becomes another float of the same width
    (tmp_path / "checkpoint.pt").write_bytes(bytes(data))
    assert checkpoint.load_file(tmp_path / "checkpoint.pt")["weights"][0] != 4.0  # it loads, damaged
    with pytest.warns(UserWarning, match="SHA-256 differs"):
        state = checkpoint.load_latest(tmp_path)
    assert state["counters"]["steps"] == 2 and torch.equal(state["weights"], torch.full((3,), 2.0))


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    _checkpoint(tmp_path, 2)
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="Delete the run directory"):
        checkpoint.load_latest(tmp_path)


class Evil:
    """Stands for any object that only arbitrary unpickling could rebuild."""


def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path):
    torch.save({"counters": {"steps": 1}, "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(checkpoint.CheckpointError, match="arbitrary unpickling"):
        checkpoint.load_file(tmp_path / "evil.pt")


def test_rng_state_round_trips():
    import random

    import numpy as np

    state = checkpoint.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_the_same_run_twice_is_refused_by_a_lock(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match="already being trained by process"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # released: free again


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_and_sigterm_checkpoint_mark_the_run_interrupted_and_a_rerun_resumes(tmp_path, uninterrupted, sig, code):
    """The signal arrives just after the step-8 checkpoint; the run stops at its next step boundary."""
    proc = ganbench(tmp_path, kill=f"{sig}:8")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code and "run the same command again" in err.lower()
    record = RunRecord.read(run_dir(tmp_path) / "run.json")
    assert record.status == "interrupted" and 8 <= record.steps < 24
    # the checkpoint was written where the run stopped, so a rerun loses no step
    assert json.loads((run_dir(tmp_path) / "checkpoint.json").read_text())["checkpoint.pt"]["step"] == record.steps
    assert not list(run_dir(tmp_path).rglob("*.tmp"))
    if sig == "SIGINT":  # the same command again finishes it, exactly as if it had never stopped
        stopped_at = record.steps
        rerun = ganbench(tmp_path)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        record = RunRecord.read(run_dir(tmp_path) / "run.json")
        assert record.status == "completed" and record.steps == 24 and record.resumed_from_step == stopped_at
        assert_same_as_uninterrupted(tmp_path, uninterrupted)


def test_two_processes_share_a_results_directory(tmp_path):
    env = {**os.environ, "GANBENCH_DISABLE_PLUGINS": "progress"}
    common = ["run", "--device", "cpu", "--metrics=", "--budget", "30steps", "--results", str(tmp_path), "--checkpoint-every", "5"]
    procs = [subprocess.Popen([sys.executable, "-m", "ganbench.cli", *common, "--plugins", plugins],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for plugins in ("vanilla", "dcgan,dcgan:hinge")]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    records = [RunRecord.read(p) for p in tmp_path.glob("runs/*/run.json")]
    assert sorted(r.run_id.split("_")[0] for r in records) == ["dcgan-hinge", "dcgan-nonsaturating", "vanilla-nonsaturating"]
    assert all(r.status == "completed" and r.steps == 30 for r in records)
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("run.lease"))
    assert all(lock.read_text() == "" for lock in tmp_path.rglob("run.lock"))  # every lock released
    from ganbench.cli import main

    assert main(["leaderboard", str(tmp_path)]) == 0
    assert len((tmp_path / "leaderboard.csv").read_text().strip().splitlines()) == 4


def _first_run_directory(tmp_path: Path) -> Path:
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import plan

    inv = Invocation(device="cpu", plugins=("vanilla", "dcgan"), budget=Budget.parse("3steps"), results=tmp_path)
    directory = tmp_path / "runs" / plan(build_registry(), inv)[0].config.run_id
    directory.mkdir(parents=True)
    return directory


def test_a_run_another_process_trains_is_waited_for_after_the_others(tmp_path, capfd):
    """Two identical invocations both end with the run's result: the second waits for the first (issue 13, 15f)."""
    import threading

    from ganbench.cli import main

    held = _first_run_directory(tmp_path)
    lock = RunLock(held).acquire()
    codes = []
    second = threading.Thread(target=lambda: codes.append(main(
        ["run", "--device", "cpu", "--metrics=", "--plugins", "vanilla,dcgan", "--budget", "3steps", "--results", str(tmp_path)])))
    second.start()
    try:  # the other run trains first, while the held one waits
        while second.is_alive() and not list(tmp_path.glob("runs/dcgan-*/run.json")):
            time.sleep(0.05)
        while second.is_alive() and RunRecord.read(next(tmp_path.glob("runs/dcgan-*/run.json"))).status != "completed":
            time.sleep(0.05)
        assert not (held / "run.json").exists()  # not trained behind the holder's back
    finally:
        lock.release()
    second.join(timeout=300)
    assert codes == [0]
    assert f"waiting for {held.name}: process {os.getpid()} on " in capfd.readouterr().err
    assert RunRecord.read(held / "run.json").status == "completed"


def test_with_no_wait_a_locked_run_is_skipped_and_the_others_train(tmp_path, capsys):
    from ganbench.cli import main

    locked = _first_run_directory(tmp_path).name
    with RunLock(tmp_path / "runs" / locked):
        code = main(["run", "--device", "cpu", "--metrics=", "--no-wait", "--plugins", "vanilla,dcgan", "--budget", "3steps",
                     "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "already being trained by process" in err
    assert RunRecord.read(next(tmp_path.glob("runs/dcgan-*/run.json"))).status == "completed"
    assert not (tmp_path / "runs" / locked / "run.json").exists()


STOPPER = """
import os
import signal

import ganbench


@ganbench.hookimpl
def ganbench_step_logged(run, record):
    if int(record["step"]) == int(os.environ.get("GANBENCH_TEST_STOP_AT", "0")):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in the middle of the run
"""


@pytest.mark.parametrize("family", ["vanilla", "dcgan", "conditional", "began", "progressive", "lapgan"])
def test_every_family_resumes_exactly_after_ctrl_c(family, fake_dist, tmp_path, monkeypatch, capsys):
    """Weights, optimisers and the family's own state (BEGAN's k_t and learning-rate halving, progressive's
    level and alpha, LAPGAN's levels) after a Ctrl-C at step 7 of 12 and a rerun equal those of a run never
    stopped; 7 is past the first checkpoint (4), so the run resumes from the one Ctrl-C wrote."""
    from ganbench.cli import main

    fake_dist("ganbench-stopper", {"stopper": "stopper_mod"}, {"stopper_mod": STOPPER})
    argv = ["--no-plugin", "progress", "run", "--device", "cpu", "--deterministic", "--plugins", family, "--budget",
            "12steps", "--batch-size", "8", "--log-every", "1", "--checkpoint-every", "4", "--metrics="]
    assert main([*argv, "--results", str(tmp_path / "clean")]) == 0
    monkeypatch.setenv("GANBENCH_TEST_STOP_AT", "7")
    assert main([*argv, "--results", str(tmp_path / "stopped")]) == 130
    (stopped,) = (tmp_path / "stopped" / "runs").iterdir()
    assert RunRecord.read(stopped / "run.json").status == "interrupted"
    monkeypatch.delenv("GANBENCH_TEST_STOP_AT")
    assert main([*argv, "--results", str(tmp_path / "stopped")]) == 0
    record = RunRecord.read(stopped / "run.json")
    assert record.status == "completed" and record.resumed_from_step == 7 and record.steps == 12

    clean, resumed = (torch.load(run_dir(tmp_path / name) / "checkpoint.pt", weights_only=True)
                      for name in ("clean", "stopped"))
    for part, weights in clean["networks"].items():
        for key, value in weights.items():
            assert torch.equal(resumed["networks"][part][key], value), (family, part, key)
    for part, optimizer in clean["optimizers"].items():
        assert optimizer["param_groups"] == resumed["optimizers"][part]["param_groups"]  # learning rates included
        for index, slots in optimizer["state"].items():
            for name, value in slots.items():
                assert torch.equal(resumed["optimizers"][part]["state"][index][name], value), (family, part, name)
    assert set(clean["extra"]) >= EXTRA.get(family, set())
    torch.testing.assert_close(resumed["extra"], clean["extra"], rtol=0, atol=0)  # k_t, level, alpha, ...
    assert _without_seconds(resumed["rows"]) == _without_seconds(clean["rows"])


#: The family state each family's checkpoint must carry for its resume to be exact.
EXTRA = {"progressive": {"level", "alpha"}, "lapgan": {"sizes"}, "began": {"objective", "lr_decay"}}


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]
