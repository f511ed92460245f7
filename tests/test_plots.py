"""Figures of runs and invocations, drawn from run directories the real runner wrote (``written_runs``),
and from copies of them damaged the ways a crash, a full disk or a diverged run leave them.

``make_run`` (a hand-made run directory) stays for the hostile-input catalogue in test_bad_inputs.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
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


def runs_of(results: Path, family: str) -> list[Path]:
    return sorted((results / "runs").glob(f"{family}-*"))


def renamed(run: Path, results: Path, family: str) -> Path:
    """A copy of a real run under another family name, as another plugin's run would look."""
    copy = Path(shutil.copytree(run, results / "runs" / run.name.replace(run.name.split("-")[0], family, 1)))
    record = json.loads((copy / "run.json").read_text())
    record["family"], record["run_id"] = family, copy.name
    (copy / "run.json").write_text(json.dumps(record))
    return copy


def poison_curves(run: Path, from_row: int) -> None:
    """Losses become NaN and +/-inf from ``from_row`` on, as a diverging run logs them."""
    with (run / "curves.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    losses = [k for k in rows[0] if k.startswith("loss")]
    for row in rows[from_row:]:
        for i, key in enumerate(losses):
            row[key] = ("nan", "inf", "-inf")[i % 3]
    with (run / "curves.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
