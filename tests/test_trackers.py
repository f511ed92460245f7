"""Tracker listeners for real: TensorBoard event files, an MLflow file store and a W&B offline run,
through an interrupted run and its resume, read back with each tool's own reader."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.cli import main

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

#: Stops the first attempt at step 15, after its checkpoint at step 10, the way Ctrl-C would; runs after
#: the trackers (trylast) so they have seen step 15, which the resumed attempt then replays.
INTERRUPTER = """
import os
import ganbench

@ganbench.hookimpl(trylast=True)
def ganbench_step_logged(run, record):
    if record["step"] == 15 and not os.path.exists(os.path.join(run.directory, "interrupted-once")):
        open(os.path.join(run.directory, "interrupted-once"), "w").close()
        raise KeyboardInterrupt
"""
RUN = ["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "20steps", "--log-every", "5", "--checkpoint-every", "10",
       "--metrics", "isc,fid", "--eval-samples", "200", "--eval-at", "0.5", "--log-to", "tensorboard,mlflow,wandb"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One run logged to all three trackers, interrupted at step 15 and resumed to the end."""
    root = tmp_path_factory.mktemp("tracked")
    site = root / "site"
    (site / "interrupter-1.0.dist-info").mkdir(parents=True)
    (site / "interrupter_mod.py").write_text(textwrap.dedent(INTERRUPTER))
    (site / "interrupter-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: interrupter\nVersion: 1.0\n")
    (site / "interrupter-1.0.dist-info" / "entry_points.txt").write_text("[ganbench]\ninterrupter = interrupter_mod\n")
    results = root / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        mp.setenv("WANDB_MODE", "offline")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("WANDB_SILENT", "true")
        first = main([*RUN, "--results", str(results)])
        second = main([*RUN, "--results", str(results)])
        sys.modules.pop("interrupter_mod", None)
    (run_dir,) = (results / "runs").iterdir()
    return first, second, results, run_dir


def curves(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "curves.csv") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def evaluations(run_dir: Path) -> list[dict[str, float]]:
    return json.loads((run_dir / "scores.json").read_text())


def test_the_run_was_interrupted_then_resumed_to_completion(tracked):
    first, second, _, run_dir = tracked
    assert (first, second) == (130, 0)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["resumed_from_step"] == 10


def test_tensorboard_events_read_back_hold_every_point_once(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, _, run_dir = tracked
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    rows = curves(run_dir)
    series = [k for k in rows[0] if k not in ("step", "seconds")]
    for name in series:  # losses, diagnostics, kimg and fraction, one point per logging window
        events = acc.Scalars(name)
        assert [e.step for e in events] == [int(r["step"]) for r in rows], name
        assert [e.value for e in events] == pytest.approx([r[name] for r in rows], rel=1e-6), name
    for evaluation in evaluations(run_dir):
        for key, value in evaluation.items():
            if key not in ("fraction", "step", "kimg"):
                (event,) = [e for e in acc.Scalars(f"score/{key}") if e.step == evaluation["step"]]
                assert event.value == pytest.approx(value, rel=1e-6)
    record = json.loads((run_dir / "run.json").read_text())
    for key, value in record["scores"].items():
        assert [e.value for e in acc.Scalars(f"final/{key}")] == pytest.approx([value], rel=1e-6)
    grids = sorted(p.stem for p in (run_dir / "samples").glob("*.png"))
    assert sorted(acc.Tags()["images"]) == [f"samples/{g}" for g in grids]
    for grid in grids:
        (event,) = acc.Images(f"samples/{grid}")
        width, height = Image.open(run_dir / "samples" / f"{grid}.png").size
        assert (event.width, event.height) == (width, height)
    assert acc.PluginTagToContent("hparams")  # the config as hyperparameters
    statuses = [(e.step, e.tensor_proto.string_val) for e in acc.Tensors("status/text_summary")]
    assert statuses == [(15, [b"interrupted"]), (20, [b"completed"])]  # each attempt's end


def test_mlflow_file_store_read_back_through_its_client(tracked):
    from mlflow.tracking import MlflowClient

    _, _, results, run_dir = tracked
    client = MlflowClient(tracking_uri=(results / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("ganbench")
    (run,) = client.search_runs([experiment.experiment_id])  # one tracker run across the two attempts
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    config = json.loads((run_dir / "config.json").read_text())
    assert run.data.params["batch_size"] == str(config["batch_size"])
    assert run.data.params["evaluation.num_samples"] == "200" and run.data.params["family"] == "vanilla"
    assert run.data.tags["ganbench.status"] == "completed"
    rows = curves(run_dir)
    for name in ("loss_d", "loss_g", "kimg"):
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [m.step for m in history] == [int(r["step"]) for r in rows]
        assert [m.value for m in history] == pytest.approx([r[name] for r in rows])
    record = json.loads((run_dir / "run.json").read_text())
    fid = next(k for k in record["scores"] if k.startswith("fid"))
    scored = client.get_metric_history(run.info.run_id, "score/" + fid.replace("[", "_").replace("]", "_"))
    assert sorted(m.step for m in scored) == [e["step"] for e in evaluations(run_dir)]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"images"}


def test_wandb_writes_its_offline_run_directory(tracked):
    _, _, _, run_dir = tracked
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert offline, "no offline run directory"
    ids = {p.name.rsplit("-", 1)[1] for p in offline}
    assert len(ids) == 1  # the resumed attempt continued the same W&B run
    (run_id,) = ids
    assert all((p / f"run-{run_id}.wandb").stat().st_size > 0 for p in offline)


def test_an_unreachable_or_missing_tracker_is_a_warning_and_never_costs_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if ganbench[wandb] were not installed
    code = main(["run", "--device", "cpu", "--metrics=", "--plugins", "vanilla", "--budget", "4steps", "--log-every", "2",
                 "--results", str(tmp_path), "--log-to", "mlflow,wandb"])
    assert code == 0
    err = capsys.readouterr().err
    assert "tracker 'mlflow' start failed" in err
    assert "tracker 'wandb' start failed" in err and "pip install 'ganbench[wandb]'" in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_a_misspelt_tracker_is_refused_before_training(tmp_path, capsys):
    code = main(["run", "--device", "cpu", "--metrics=", "--plugins", "vanilla", "--budget", "4steps", "--results", str(tmp_path),
                 "--log-to", "tensorbord"])
    assert code == 2
    assert "Did you mean 'tensorboard'?" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_image_array_is_what_the_grid_holds(tmp_path):
    from ganbench_builtin.listeners.tracking import image_array

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    rgb = image_array(tmp_path / "g.png")
    assert rgb.shape == (3, 4, 3) and (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()
