"""``ganbench.load_results``: a real results directory as pandas tables a notebook plots in one line."""

from __future__ import annotations

import csv
import json

import matplotlib
import pytest

import ganbench

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def loaded(finished_run):
    return ganbench.load_results(finished_run)


def run_dir(results):
    (d,) = (results / "runs").iterdir()
    return d


def test_leaderboard_and_one_row_per_run_with_its_config(finished_run, loaded):
    d = run_dir(finished_run)
    record, config = json.loads((d / "run.json").read_text()), json.loads((d / "config.json").read_text())
    assert list(loaded.leaderboard["family"]) == ["vanilla"]
    assert loaded.leaderboard["seeds"].tolist() == [1]
    assert len(loaded.runs) == 1
    row = loaded.runs.iloc[0]
    assert row["run_id"] == record["run_id"] and row["status"] == "completed" and row["steps"] == 20
    assert row["batch_size"] == config["batch_size"] and row["log_every"] == 5
    assert row["evaluation.extractor"] == config["evaluation"]["extractor"]
    assert row["evaluation.num_samples"] == 200
    for key, value in record["scores"].items():
        assert row[f"score:{key}"] == pytest.approx(value)


def test_curves_in_long_format_hold_every_logged_value(finished_run, loaded):
    with open(run_dir(finished_run) / "curves.csv") as fh:
        rows = list(csv.DictReader(fh))
    series = set(rows[0]) - {"step", "kimg", "seconds", "fraction"}
    assert set(loaded.curves["series"]) == series and {"loss_d", "loss_g"} <= series
    assert len(loaded.curves) == len(rows) * len(series)
    for name in series:
        got = loaded.curves[loaded.curves["series"] == name].sort_values("step")
        assert got["step"].tolist() == [int(r["step"]) for r in rows]
        assert got["value"].tolist() == pytest.approx([float(r[name]) for r in rows])
    assert set(loaded.curves["family"]) == {"vanilla"}


def test_scores_over_the_budget_in_long_format(finished_run, loaded):
    evaluations = json.loads((run_dir(finished_run) / "scores.json").read_text())
    assert sorted(loaded.scores["fraction"].unique()) == [0.5, 1.0]
    expected = {(e["fraction"], k): v for e in evaluations for k, v in e.items() if k not in ("fraction", "step", "kimg")}
    got = {(r.fraction, r.metric): r.value for r in loaded.scores.itertuples()}
    assert got == pytest.approx(expected)


def test_each_table_plots_in_one_line(loaded):
    ax = loaded.scores[loaded.scores.metric.str.startswith("fid")].pivot_table(
        index="fraction", columns="family", values="value").plot()
    assert [line.get_label() for line in ax.get_lines()] == ["vanilla"]
    assert list(ax.get_lines()[0].get_xdata()) == [0.5, 1.0]
    ax = loaded.curves.query("series == 'loss_d'").plot(x="kimg", y="value")
    assert len(ax.get_lines()[0].get_xdata()) == 4


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ganbench.UsageError, match="No results directory"):
        ganbench.load_results(tmp_path / "nowhere")
