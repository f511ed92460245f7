"""End to end: `ganbench run --metrics isc,fid` scores a run with labelled keys at every evaluation."""

from __future__ import annotations

import json

import pytest

from ganbench.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")


LISTENER = """
import ganbench

SEEN = []


@ganbench.hookimpl
def ganbench_evaluation_done(run, scores):
    SEEN.append((run.config.family, dict(scores)))
"""


def test_cli_run_records_labelled_scores(tmp_path, monkeypatch, fake_dist):
    fake_dist("ganbench-listener", {"listener": "listener_mod"}, {"listener_mod": LISTENER})
    monkeypatch.delenv("GANBENCH_INCEPTION_WEIGHTS", raising=False)
    code = main(["run", "--device", "cpu", "--plugins", "vanilla", "--dataset", "digits", "--budget", "20steps", "--results", str(tmp_path),
                 "--metrics", "isc,fid", "--eval-samples", "500", "--eval-at", "0.5"])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    scores = record["scores"]
    assert sorted(k.split("[")[0] for k in scores) == ["div500_classes", "div500_spread", "fid500", "isc500",
                                                        "isc500_std"]
    keys = sorted(k for k in scores if not k.startswith("div"))
    assert len({k.split("[")[1] for k in keys}) == 1 and keys[0].endswith("]") and "[lenet-digits-" in keys[0]
    assert scores[keys[0]] > 0 and 1.0 <= scores[keys[1]] <= 10  # FID, then IS: at most the number of classes
    evaluations = json.loads((run_dir / "scores.json").read_text())
    assert [e["fraction"] for e in evaluations] == [0.5, 1.0]
    assert {k: evaluations[-1][k] for k in scores} == scores  # the record holds the final evaluation, unchanged
    assert all(set(keys) <= set(e) for e in evaluations)
    import listener_mod  # the ganbench_evaluation_done hook saw each evaluation as it was recorded

    assert [family for family, _ in listener_mod.SEEN] == ["vanilla", "vanilla"]
    assert [seen for _, seen in listener_mod.SEEN] == evaluations
    board = (tmp_path / "leaderboard.csv").read_text().splitlines()[0]
    assert f"score:{keys[0]}" in board
    # the intermediate evaluation is in the record and on the leaderboard, labelled with its budget fraction;
    # ranking by a score prefix still means the final score
    assert record["scores_at"] == {"50%": {k: v for k, v in evaluations[0].items() if k in scores}}
    assert f"score:{keys[0]}@50%" in board
    from ganbench.results.leaderboard import compile_leaderboard, load_records, rank_column

    assert rank_column(compile_leaderboard(load_records(tmp_path)), "fid") == f"score:{keys[0]}"
    # the run's figures and the invocation's, and the report, were drawn
    assert {p.name for p in (run_dir / "plots").iterdir()} == {"losses.png", "convergence.png", "quality.png"}
    assert {"quality_over_budget.png", "losses.png", "samples.png"} <= {p.name for p in (tmp_path / "plots").iterdir()}
    assert "quality over the budget" in (tmp_path / "report.html").read_text().lower()


def test_score_takes_the_datasets_own_extractor_as_run_does(tmp_path, capsys, digits_extractor):
    import numpy as np

    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import Invocation, load_dataset

    digits = load_dataset(build_registry(), Invocation(dataset="digits"))
    np.save(tmp_path / "real.npy", digits.images[:300, 0].numpy())  # no --extractor: digits names lenet itself
    code = main(["score", str(tmp_path / "real.npy"), "--dataset", "digits", "--metrics", "fid", "--device", "cpu",
                 "--eval-samples", "300", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [k for k in json.loads(captured.out)["scores"] if k.startswith("fid")] == [f"fid300[{digits_extractor}]"]
