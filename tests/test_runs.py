"""The shared loop and the runner: identical budgets, counters, isolation, and what a run leaves on disk."""

import csv
import json
import time
from pathlib import Path

import pytest
import torch

from ganbench.training.budget import Budget
from ganbench.cli import main
from ganbench.training.loop import TrainingLoop
from ganbench.plugin.model import TrainSettings
from ganbench.results.records import RunRecord
from ganbench.execution.runner import Invocation, execute, plan

TROUBLE = """
import math
import ganbench
from ganbench_builtin.vanilla import build as build_vanilla


class Diverging:
    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def train_step(self, draw, ctx):
        logs = self.model.train_step(draw, ctx)
        if ctx.step >= 3:
            logs["loss_g"] = math.nan
        return logs


def build_diverging(ctx):
    return Diverging(build_vanilla(ctx))


def build_crashing(ctx):
    raise RuntimeError("out of cheese")


@ganbench.hookimpl
def ganbench_models():
    return [
        ganbench.ModelSpec("nangan", build_diverging, "diverges at step 4", "test", "nonsaturating"),
        ganbench.ModelSpec("crashgan", build_crashing, "raises while building", "test", "nonsaturating"),
    ]


EVENTS = []


@ganbench.hookimpl
def ganbench_run_started(run):
    EVENTS.append(("started", run.config.family))


@ganbench.hookimpl
def ganbench_step_logged(run, record):
    EVENTS.append(("step", run.config.family))


@ganbench.hookimpl
def ganbench_run_finished(run, record):
    EVENTS.append(("finished", run.config.family, record.status))
"""


def run_dirs(results: Path) -> dict[str, Path]:
    return {json.loads((d / "config.json").read_text())["family"]: d for d in (results / "runs").iterdir()}


def test_diverged_and_failed_runs_are_recorded_and_others_complete(fake_dist, tmp_path, capsys):
    fake_dist("ganbench-trouble", {"trouble": "trouble_mod"}, {"trouble_mod": TROUBLE})
    code = main(["run", "--device", "cpu", "--metrics=", "--plugins", "nangan,crashgan,vanilla", "--budget", "12steps",
                 "--results", str(tmp_path), "--log-every", "2"])
    captured = capsys.readouterr()
    assert code == 1  # something did not complete, and the exit code says so
    records = {f: RunRecord.read(d / "run.json") for f, d in run_dirs(tmp_path).items()}
    assert records["nangan"].status == "diverged" and records["nangan"].diverged_at_step == 4
    assert records["crashgan"].status == "failed" and "out of cheese" in records["crashgan"].error
    assert (run_dirs(tmp_path)["crashgan"] / "traceback.txt").exists()
    assert records["vanilla"].status == "completed" and records["vanilla"].steps == 12
    board = (tmp_path / "leaderboard.md").read_text()
    assert "diverged@4" in board and "failed" in board  # shown, not dropped
    assert "out of cheese" in captured.err

    import trouble_mod

    families = [e[1] for e in trouble_mod.EVENTS if e[0] == "started"]
    assert families == ["nangan", "crashgan", "vanilla"]
    vanilla = [e[0] for e in trouble_mod.EVENTS if e[1] == "vanilla"]
    assert vanilla[0] == "started" and vanilla[-1] == "finished" and set(vanilla[1:-1]) == {"step"}
    assert len(vanilla) == 2 + 6


def test_every_budget_kind_records_all_three_counters(registry, tmp_path):
    for text in ("6steps", "384img", "1.5s"):
        inv = Invocation(device="cpu", plugins=("vanilla",), budget=Budget.parse(text), results=tmp_path / text,
                         settings=TrainSettings(batch_size=64), log_every=2)
        (record,) = execute(registry, inv)
        assert record.status == "completed"
        assert record.steps > 0 and record.images == record.steps * 64 and record.train_seconds > 0
        if text == "6steps":
            assert record.steps == 6
        if text == "384img":
            assert record.images == 384
        if text == "1.5s":
            assert record.train_seconds >= 1.5  # a wall-clock budget is spent in full; by how much it overshoots depends on the machine


def test_identical_budget_device_and_data_for_every_plugin(registry, tmp_path):
    inv = Invocation(device="cpu", plugins=("vanilla", "dcgan", "dcgan:hinge"), budget=Budget.parse("640img"),
                     seeds=(0, 1), results=tmp_path)
    planned = plan(registry, inv)
    assert [(p.config.pair, p.config.seed) for p in planned] == [
        ("vanilla:nonsaturating", 0), ("vanilla:nonsaturating", 1), ("dcgan:nonsaturating", 0),
        ("dcgan:nonsaturating", 1), ("dcgan:hinge", 0), ("dcgan:hinge", 1),
    ]
    assert {(p.config.budget, p.config.dataset, p.config.device, p.config.batch_size) for p in planned} == {
        ("640img", "digits", "cpu", 64)
    }


def test_evaluation_time_is_kept_off_the_training_clock(registry, tiny_dataset, tmp_path):
    from ganbench.plugin.data import BatchStream
    from ganbench.plugin.model import BuildContext
    from ganbench.results.records import RunConfig, RunInfo

    config = RunConfig("vanilla", "nonsaturating", "tiny", "0.5s", 0, "cpu", 8)
    info = RunInfo("r", config, tmp_path, 0.5, "seconds")
    ctx = BuildContext(tiny_dataset.info, registry.objective("nonsaturating").build(), TrainSettings(8), torch.device("cpu"))
    model = registry.model("vanilla").build(ctx)

    def slow_evaluator(fraction, counters):
        time.sleep(0.4)
        return {"score": fraction}

    loop = TrainingLoop(model, BatchStream(tiny_dataset, 8, 0, torch.device("cpu")), Budget.parse("0.5s"), info,
                        torch.device("cpu"), evaluator=slow_evaluator, eval_fractions=(0.5, 1.0))
    start = time.perf_counter()
    outcome = loop.run()
    wall = time.perf_counter() - start
    assert outcome.counters.eval_seconds >= 0.8  # two evaluations recorded...
    assert outcome.counters.train_seconds >= 0.5  # ...not charged to the budget, which still ran in full
    assert wall >= outcome.counters.train_seconds + outcome.counters.eval_seconds
    assert [e["fraction"] for e in loop.evaluations] == [0.5, 1.0]
    assert json.loads((tmp_path / "scores.json").read_text())[1]["score"] == 1.0


def test_without_checkpoint_every_a_checkpoint_is_written_every_60_seconds(registry, tiny_dataset, tmp_path):
    """The default cadence, on a clock that advances 13 s per batch drawn instead of waiting a minute."""
    from ganbench.plugin.data import BatchStream
    from ganbench.training.loop import CHECKPOINT_INTERVAL
    from ganbench.plugin.model import BuildContext
    from ganbench.results.records import RunConfig, RunInfo

    config = RunConfig("vanilla", "nonsaturating", "tiny", "12steps", 0, "cpu", 8)
    ctx = BuildContext(tiny_dataset.info, registry.objective("nonsaturating").build(), TrainSettings(8), torch.device("cpu"))
    stream = BatchStream(tiny_dataset, 8, 0, torch.device("cpu"))
    loop = TrainingLoop(registry.model("vanilla").build(ctx), stream, Budget.parse("12steps"),
                        RunInfo("r", config, tmp_path, 12, "steps"), torch.device("cpu"),
                        warmup=False, measure_cost=False)  # each would draw a batch, and move this clock, first
    now = [0.0]
    loop.wall_clock = lambda: now[0]
    draw = stream.next

    def slow_draw():
        now[0] += 13.0
        return draw()

    stream.next = slow_draw
    saved = []
    save = loop.checkpoint
    loop.checkpoint = lambda: (saved.append((loop.counters.steps, now[0])), save())
    loop.run()
    assert CHECKPOINT_INTERVAL == 60.0
    assert saved == [(5, 65.0), (10, 130.0), (12, 156.0)]  # 65 s and 130 s: the first draws past each minute; then the end
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["counters"]["steps"] == 12


def test_a_run_directory_holds_everything(tmp_path):
    assert main(["run", "--device", "cpu", "--metrics=", "--plugins", "dcgan", "--budget", "8steps", "--results", str(tmp_path), "--log-every", "2",
                 "--seed", "5"]) == 0
    (d,) = run_dirs(tmp_path).values()
    config = json.loads((d / "config.json").read_text())
    assert config["family"] == "dcgan" and config["objective"] == "nonsaturating" and config["seed"] == 5
    assert config["budget"] == "8steps" and config["batch_size"] == 64
    env = json.loads((d / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["plugins"]["ganbench"] == "0.1.0" and env["device"] == "cpu"
    with open(d / "curves.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert {"step", "kimg", "seconds", "fraction", "loss_d", "loss_g", "D(x)", "D(G(z))"} <= set(rows[0])
    assert float(rows[-1]["kimg"]) == pytest.approx(8 * 64 / 1000)
    assert sorted(p.name for p in (d / "samples").glob("*.png")) == [
        "final.png", "frac000.png", "frac025.png", "frac050.png", "frac075.png", "frac100.png"
    ]
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    assert set(state["networks"]) == {"generator", "discriminator"} and state["counters"]["steps"] == 8
    record = RunRecord.read(d / "run.json")
    assert record.status == "completed" and record.params_generator > 0 and record.images_per_second > 0
    assert not list(d.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_training_settings_and_seeds_are_recorded(tmp_path):
    """``--joint-batches``, ``--n-critic`` and ``--latent`` reach config.json (and so the run's identity);
    ``--seed 3 --seeds 2`` trains seeds 3 and 4, which start from different weights."""
    common = ["run", "--device", "cpu", "--metrics=", "--plugins", "vanilla", "--budget", "2steps", "--batch-size", "8"]
    assert main([*common, "--results", str(tmp_path / "plain")]) == 0
    assert main([*common, "--joint-batches", "--n-critic", "3", "--latent", "uniform", "--seed", "3", "--seeds", "2",
                 "--results", str(tmp_path / "set")]) == 0
    (plain,) = [json.loads((d / "config.json").read_text()) for d in (tmp_path / "plain" / "runs").iterdir()]
    assert (plain["separate_batches"], plain["n_critic"], plain["latent"], plain["seed"]) == (True, None, None, 0)
    configs = {c["seed"]: c for c in (json.loads((d / "config.json").read_text())
                                      for d in (tmp_path / "set" / "runs").iterdir())}
    assert sorted(configs) == [3, 4]
    for config in configs.values():
        assert (config["separate_batches"], config["n_critic"], config["latent"]) == (False, 3, "uniform")
    records = {r.seed: r for r in (RunRecord.read(p) for p in (tmp_path / "set").glob("runs/*/run.json"))}
    assert {r.status for r in records.values()} == {"completed"}
    assert len({r.run_id for r in records.values()} | {d.name for d in (tmp_path / "plain" / "runs").iterdir()}) == 3
    weights = [torch.load(tmp_path / "set" / "runs" / records[seed].run_id / "checkpoint.pt",
                          weights_only=True)["networks"]["generator"] for seed in (3, 4)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_same_seed_same_weights(registry, tmp_path):
    def weights(results):
        inv = Invocation(device="cpu", plugins=("dcgan",), budget=Budget.parse("4steps"), results=results)
        (record,) = execute(registry, inv)
        return torch.load(results / "runs" / record.run_id / "checkpoint.pt", weights_only=True)["networks"]

    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
