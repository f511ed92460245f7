"""Figures of runs and invocations, from synthetic run directories (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.plots import load_run, plot_invocation, plot_run, score_keys
from helpers import RUN_FID as FID, RUN_ISC as ISC, make_run

def assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 100
        extrema = im.convert("L").getextrema()
        assert extrema[0] != extrema[1], f"{path} is blank"


def test_plot_run_writes_every_figure(tmp_path):
    d = make_run(tmp_path)
    written = plot_run(d)
    assert {p.name for p in written} == {"losses.png", "convergence.png", "quality.png"}
    for p in written:
        assert p.parent == d / "plots"
        assert_png(p)


def test_began_convergence_and_progressive_diagnostics(tmp_path):
    began = make_run(tmp_path, "began", "began", columns=("loss_d", "loss_g", "L(x)", "L(G(z))"),
                     extra={"M_global": list(np.linspace(0.3, 0.1, 8)), "k_t": list(np.linspace(0, 0.02, 8))})
    prog = make_run(tmp_path, "progressive", "wgan-gp", columns=("loss_d", "loss_g", "wasserstein", "gradient_penalty"),
                    extra={"resolution": [4, 4, 8, 8, 8, 16, 16, 16], "alpha": [1, 1, .3, .6, 1, .3, .6, 1]})
    assert "convergence.png" in {p.name for p in plot_run(began)}
    assert "convergence.png" in {p.name for p in plot_run(prog)}
    written = plot_invocation(tmp_path, [began, prog])
    assert {p.name for p in written} == {"quality_over_budget.png", "losses.png", "m_global.png", "samples.png"}
    for p in written:
        assert_png(p)


def test_plot_invocation_with_seeds(tmp_path):
    dirs = [make_run(tmp_path, fam, seed=s) for fam in ("vanilla", "dcgan") for s in (0, 1)]
    written = plot_invocation(tmp_path, dirs)
    names = {p.name for p in written}
    assert names == {"quality_over_budget.png", "losses.png", "samples.png"}  # no M_global logged: no m_global.png
    for p in written:
        assert p.parent == tmp_path / "plots"
        assert_png(p)


def test_std_companion_keys_are_error_bars_not_panels(tmp_path):
    run = load_run(make_run(tmp_path))
    assert score_keys(run.scores) == [FID, ISC]


def test_diverged_run_with_nans_and_infinities(tmp_path):
    d = make_run(tmp_path, status="diverged", nan_from=5)
    written = plot_run(d)
    assert "losses.png" in {p.name for p in written}
    for p in written:
        assert_png(p)
    run = load_run(d)
    assert not np.isinf(run.curves.select_dtypes("number").to_numpy()).any()


def test_everything_missing_or_broken_is_skipped(tmp_path):
    bare = tmp_path / "runs" / "failed-run"
    bare.mkdir(parents=True)
    assert plot_run(bare) == []  # no files at all
    broken = make_run(tmp_path, "vanilla", status="failed", rows=0, evaluations=0, grids=False)
    (broken / "scores.json").write_text("{not json")
    (broken / "curves.csv").write_text("")
    assert plot_run(broken) == []
    all_nan = make_run(tmp_path, "lapgan", nan_from=0, evaluations=0)
    assert {p.name for p in plot_run(all_nan)} <= {"losses.png", "convergence.png"}
    ok = make_run(tmp_path, "dcgan", seed=3)
    (ok / "samples" / "final.png").write_bytes(b"not a png")  # a corrupt grid is shown as missing
    written = plot_invocation(tmp_path, [bare, broken, all_nan, ok, tmp_path / "runs" / "does-not-exist"])
    assert {"quality_over_budget.png", "samples.png"} <= {p.name for p in written}
    for p in written:
        assert_png(p)
    assert plot_invocation(tmp_path / "empty", []) == []


def test_nan_scores_are_tolerated(tmp_path):
    d = make_run(tmp_path)
    (d / "scores.json").write_text(json.dumps([{"fraction": 0.5, "step": 30, "kimg": 1.9, FID: math.nan},
                                               {"fraction": 1.0, "step": 60, "kimg": 3.8, FID: None}]))
    assert "quality.png" in {p.name for p in plot_run(d)}
    assert "quality_over_budget.png" in {p.name for p in plot_invocation(tmp_path, [d])}


@pytest.mark.parametrize("n_runs", [1, 9])
def test_many_or_single_runs_layout(tmp_path, n_runs):
    dirs = [make_run(tmp_path, f"fam{i}", seed=0) for i in range(n_runs)]
    for p in plot_invocation(tmp_path, dirs):
        assert_png(p)
