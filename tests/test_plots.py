"""Figures of runs and invocations, from synthetic run directories (no training)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.plots import load_run, plot_invocation, plot_run, score_keys
from ganbench.records import RunRecord

FID = "fid500[lenet-digits-a47c01eb]"
ISC = "isc500[lenet-digits-a47c01eb]"


def _grid_png(seed: int, size: int = 34) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_run(
    results: Path,
    family: str = "dcgan",
    objective: str = "nonsaturating",
    seed: int = 0,
    status: str = "completed",
    columns: tuple[str, ...] = ("loss_d", "loss_g", "D(x)", "D(G(z))"),
    rows: int = 8,
    evaluations: int = 3,
    grids: bool = True,
    nan_from: int | None = None,
    extra: dict[str, list[float]] | None = None,
) -> Path:
    """A run directory as the runner leaves it: run.json, curves.csv, scores.json, samples/*.png."""
    run_id = f"{family}-{objective}_digits_60steps_s{seed}_{seed:08x}"
    d = results / "runs" / run_id
    (d / "samples").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    record = RunRecord(run_id=run_id, family=family, objective=objective, dataset="digits", budget="60steps",
                       seed=seed, status=status, steps=rows * 10, images=rows * 640, train_seconds=12.5,
                       images_per_second=400.0, device="cpu", params_generator=1000, params_discriminator=900,
                       losses={"loss_d": 0.5, "loss_g": 1.5},
                       scores={FID: 500.0 - 10 * seed, ISC: 1.05} if evaluations else {},
                       diverged_at_step=rows * 10 if status == "diverged" else None)
    (d / "run.json").write_text(json.dumps(record.as_dict()))
    (d / "environment.json").write_text(json.dumps({"ganbench": "0.1.0", "torch": "2.15.0", "device": "cpu",
                                                     "device_name": "cpu (test)", "plugins": {"ganbench": "0.1.0"}}))
    if rows:
        with (d / "curves.csv").open("w", newline="") as fh:
            names = ["step", "kimg", "seconds", "fraction", *columns, *(extra or {})]
            w = csv.writer(fh)
            w.writerow(names)
            for i in range(rows):
                values = [rng.normal() for _ in columns] + [v[i] for v in (extra or {}).values()]
                if nan_from is not None and i >= nan_from:
                    values = ["nan" if j % 2 == 0 else "inf" for j in range(len(values))]
                w.writerow([(i + 1) * 10, (i + 1) * 0.64, i * 1.5, (i + 1) / rows, *values])
    if evaluations:
        scores = [{"fraction": f, "step": int(60 * f), "kimg": 3.84 * f, FID: 600 - 100 * f + seed,
                   ISC: 1 + f / 10, ISC.replace("[", "_std[", 1): 0.01}
                  for f in np.linspace(1 / evaluations, 1, evaluations)]
        (d / "scores.json").write_text(json.dumps(scores))
    if grids:
        for name in ("frac000", "frac050", "frac100", "final"):
            (d / "samples" / f"{name}.png").write_bytes(_grid_png(seed))
    return d


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
