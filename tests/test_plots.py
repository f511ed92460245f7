"""Figures of runs and invocations, drawn from run directories the real runner wrote (``written_runs``),
and from copies of them damaged the ways a crash, a full disk or a diverged run leave them.

``make_run`` (a hand-made run directory) stays for the hostile-input catalogue in test_bad_inputs.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.results.plots import load_run, plot_invocation, plot_run, score_keys
from helpers import poison_curves, renamed

def assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 100
        extrema = im.convert("L").getextrema()
        assert extrema[0] != extrema[1], f"{path} is blank"


def runs_of(results: Path, family: str) -> list[Path]:
    return sorted((results / "runs").glob(f"{family}-*"))


def test_plot_run_writes_every_figure(results_copy):
    d = runs_of(results_copy, "dcgan")[0]
    written = plot_run(d)
    assert {p.name for p in written} == {"losses.png", "convergence.png", "quality.png"}
    for p in written:
        assert p.parent == d / "plots"
        assert_png(p)


def test_began_convergence_and_progressive_diagnostics(results_copy):
    began, prog = runs_of(results_copy, "began")[0], runs_of(results_copy, "progressive")[0]
    assert {"M_global", "k_t"} <= set(load_run(began).curves.columns)
    assert {"resolution", "alpha"} <= set(load_run(prog).curves.columns)
    assert "convergence.png" in {p.name for p in plot_run(began)}
    assert "convergence.png" in {p.name for p in plot_run(prog)}
    written = plot_invocation(results_copy, [began, prog])
    assert {p.name for p in written} == {"quality_over_budget.png", "losses.png", "m_global.png", "samples.png"}
    for p in written:
        assert_png(p)


def test_plot_invocation_with_seeds(results_copy):
    dirs = runs_of(results_copy, "dcgan") + runs_of(results_copy, "progressive")
    assert len(dirs) == 4
    written = plot_invocation(results_copy, dirs)
    names = {p.name for p in written}
    assert names == {"quality_over_budget.png", "losses.png", "samples.png"}  # no M_global logged: no m_global.png
    for p in written:
        assert p.parent == results_copy / "plots"
        assert_png(p)


def test_std_companion_keys_are_error_bars_not_panels(written_runs):
    run = load_run(runs_of(written_runs, "dcgan")[0])
    keys = score_keys(run.scores)
    stds = [k for e in run.scores for k in e if "_std[" in k]
    assert stds and not set(stds) & set(keys)  # recorded, and not drawn as panels of their own
    assert {k.split("[")[0] for k in keys} >= {"fid100", "isc100"}


def test_diverged_run_with_nans_and_infinities(results_copy):
    d = runs_of(results_copy, "dcgan")[0]
    poison_curves(d, from_row=2)
    written = plot_run(d)
    assert "losses.png" in {p.name for p in written}
    for p in written:
        assert_png(p)
    run = load_run(d)
    assert not np.isinf(run.curves.select_dtypes("number").to_numpy()).any()


def test_everything_missing_or_broken_is_skipped(results_copy):
    bare = results_copy / "runs" / "failed-run"
    bare.mkdir(parents=True)
    assert plot_run(bare) == []  # no files at all
    dcgan, began, prog = (runs_of(results_copy, f)[0] for f in ("dcgan", "began", "progressive"))
    broken = runs_of(results_copy, "dcgan")[1]
    (broken / "scores.json").write_text("{not json")
    (broken / "curves.csv").write_text("")
    assert plot_run(broken) == []
    poison_curves(began, from_row=0)
    (began / "scores.json").unlink()
    assert {p.name for p in plot_run(began)} <= {"losses.png", "convergence.png"}
    (prog / "samples" / "final.png").write_bytes(b"not a png")  # a corrupt grid is shown as missing
    written = plot_invocation(results_copy, [bare, broken, began, prog, results_copy / "runs" / "does-not-exist"])
    assert {"quality_over_budget.png", "samples.png"} <= {p.name for p in written}
    for p in written:
        assert_png(p)
    assert plot_invocation(results_copy / "empty", []) == []


def test_nan_scores_are_tolerated(results_copy):
    d = runs_of(results_copy, "dcgan")[0]
    key = next(k for k in json.loads((d / "scores.json").read_text())[0] if k.startswith("fid"))
    (d / "scores.json").write_text(json.dumps([{"fraction": 0.5, "step": 4, "kimg": 0.064, key: math.nan},
                                               {"fraction": 1.0, "step": 8, "kimg": 0.128, key: None}]))
    assert "quality.png" in {p.name for p in plot_run(d)}
    assert "quality_over_budget.png" in {p.name for p in plot_invocation(results_copy, [d])}


@pytest.mark.parametrize("n_runs", [1, 9])
def test_many_or_single_runs_layout(results_copy, tmp_path, n_runs):
    run = runs_of(results_copy, "dcgan")[0]
    dirs = [renamed(run, tmp_path / "many", f"fam{i}") for i in range(n_runs)]
    written = plot_invocation(tmp_path / "many", dirs)
    assert {p.name for p in written} == {"quality_over_budget.png", "losses.png", "samples.png"}
    for p in written:
        assert_png(p)
