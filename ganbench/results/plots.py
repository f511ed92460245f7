"""Figures of runs: losses, convergence, quality over the budget, sample grids (PNG).

Two entry points:

``plot_run(run_dir)``
    writes ``run_dir/plots/``: ``losses.png`` (every loss and diagnostic of
    ``curves.csv`` over kimg, one panel each so that scales never crush each
    other), ``convergence.png`` (BEGAN's M_global and k_t when the run logged
    them; otherwise the closest generic signals it logged, labelled as such) and
    ``quality.png`` (each score over kimg, when ``scores.json`` holds an evaluation).

``plot_invocation(results_dir, run_dirs)``
    writes ``results_dir/plots/``: ``quality_over_budget.png`` (one axis per
    score, every run group on it, mean over seeds with a min-max band),
    ``losses.png`` (one panel per family:objective group), ``m_global.png``
    (runs that logged M_global) and ``samples.png`` (final sample grids side by side).

Both only read what is on disk and skip what is missing or unreadable: a run
that diverged (NaN or infinite losses) or failed (no curves at all) gives
fewer figures, never an exception. Figures are drawn with matplotlib's Agg
canvas directly (no pyplot, no global backend switch), so this module is safe
to import anywhere, and written atomically through :mod:`ganbench.results.store`.

The ``render_*`` functions return PNG bytes instead of writing files; the HTML
report (:mod:`ganbench.results.report`) embeds them.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ganbench.results.records import EVALUATION_META, HELDOUT
from ganbench.results.store import read_json, write_bytes

#: What M_global is, on every figure that draws it: a reading of the game, not of the samples.
M_GLOBAL_TITLE = "M_global (convergence of the BEGAN game)"
M_GLOBAL_CAPTION = ("M_global measures how close the BEGAN game is to its equilibrium "
                    "(reconstruction error of real images plus the imbalance |γ·L(x) − L(G(z))|), "
                    "not sample diversity: it can fall smoothly while every sample is the same.")
#: curves.csv columns that are counters, not losses or diagnostics.
META_COLUMNS = ("step", "kimg", "seconds", "fraction")
SCORE_META = EVALUATION_META
DPI = 100
PANEL = (4.2, 2.8)  # inches per subplot
MAX_COLS = 3


# -- reading ----------------------------------------------------------------------------------


@dataclass
class RunData:
    """What the figures need from one run directory; every part may be missing."""

    directory: Path
    record: dict[str, Any] = field(default_factory=dict)
    curves: pd.DataFrame | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def family(self) -> str:
        return str(self.record.get("family") or self.directory.name.split("-", 1)[0])

    @property
    def group(self) -> str:
        """Runs that differ only by seed share a group: family:objective (plus dataset/budget when known)."""
        r = self.record
        if not r:
            return re.sub(r"_s\d+_[0-9a-f]{8}$", "", self.directory.name)
        return f"{r.get('family', '?')}:{r.get('objective', '?')}"

    @property
    def group_key(self) -> tuple[str, ...]:
        r = self.record
        return (self.group, str(r.get("dataset", "")), str(r.get("budget", "")))

    @property
    def seed(self) -> Any:
        return self.record.get("seed", "?")

    @property
    def status(self) -> str:
        return str(self.record.get("status") or "unknown")

    @property
    def collapsed(self) -> bool:
        """Whether run.json marks the final samples as collapsed (:mod:`ganbench.scoring.diversity`)."""
        return self.record.get("collapsed") is True

    @property
    def label(self) -> str:
        if not self.record:
            return self.directory.name
        return f"{self.group} s{self.seed}"

    def loss_columns(self) -> list[str]:
        if self.curves is None:
            return []
        cols = [c for c in self.curves.columns if c not in META_COLUMNS and self.curves[c].notna().any()]
        return sorted(cols, key=lambda c: not c.lower().startswith("loss"))  # losses first, then diagnostics


def read_curves(path: Path) -> pd.DataFrame | None:
    """``curves.csv`` as numbers (infinities become NaN), or None when absent, empty or unreadable."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if frame.empty:
        return None
    frame = frame.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    if "kimg" not in frame or frame["kimg"].isna().all():
        frame["kimg"] = frame["step"] if "step" in frame else np.arange(len(frame), dtype=float)
    return frame


def read_scores(path: Path) -> list[dict[str, Any]]:
    """The evaluations in ``scores.json``: dicts with ``fraction``, ``step``, ``kimg`` and numeric scores."""
    data = read_json(path)
    if not isinstance(data, list):
        return []
    out = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        clean = {k: _number(v) for k, v in entry.items()}
        if any(k not in SCORE_META for k in clean):
            out.append(clean)
    return sorted(out, key=lambda e: (_sortable(e.get("fraction")), _sortable(e.get("kimg"))))


def _number(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _sortable(value: Any) -> float:
    return value if isinstance(value, float) and not math.isnan(value) else math.inf


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    record = read_json(run_dir / "run.json")
    if not isinstance(record, dict):
        config = read_json(run_dir / "config.json")
        record = {k: config[k] for k in ("family", "objective", "dataset", "budget", "seed") if k in config} if isinstance(config, dict) else {}
    return RunData(run_dir, record, read_curves(run_dir / "curves.csv"), read_scores(run_dir / "scores.json"))


def score_keys(evaluations: Iterable[dict[str, Any]]) -> list[str]:
    """Score keys in first-seen order, without the ``*_std`` companions (they become error bars)."""
    keys: dict[str, None] = {}
    for e in evaluations:  # held-out selection scores (ganbench.scoring.selection) only choose a checkpoint
        keys.update(dict.fromkeys(k for k in e if k not in SCORE_META and not k.startswith(HELDOUT)))
    return [k for k in keys if not _is_std_companion(k, keys)]


def std_key(key: str) -> str:
    """``isc500[x]`` → ``isc500_std[x]``: the key a metric uses for its own spread, if it follows that pattern."""
    name, bracket, rest = key.partition("[")
    return f"{name}_std{bracket}{rest}"


def _is_std_companion(key: str, keys: Iterable[str]) -> bool:
    name, bracket, rest = key.partition("[")
    return name.endswith("_std") and f"{name[:-4]}{bracket}{rest}" in keys


def final_grid(run_dir: Path) -> tuple[Path | None, str]:
    """The run's last sample grid: ``final.png``, else the latest ``frac*.png`` (noted in the second value)."""
    samples = Path(run_dir) / "samples"
    final = samples / "final.png"
    if final.is_file():
        return final, "final"
    fracs = sorted(samples.glob("frac*.png"))
    if fracs:
        return fracs[-1], f"last grid: {fracs[-1].stem.replace('frac', '')}% of budget"
    return None, "no sample grid"


# -- drawing helpers ----------------------------------------------------------------------------


def _figure(n_panels: int, ncols: int = MAX_COLS, panel: tuple[float, float] = PANEL) -> tuple[Figure, list[Any]]:
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, math.ceil(n_panels / ncols))
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _style(ax: Any, title: str, xlabel: str, ylabel: str | None = None) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)


def _note_empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4", wrap=True)


def _series(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    x = frame["kimg"].to_numpy(dtype=float)
    y = frame[column].to_numpy(dtype=float)
    return x, y


def _mark_divergence(ax: Any, run: RunData) -> None:
    """A red line where a diverged run was stopped (its last logged kimg)."""
    if run.status != "diverged" or run.curves is None or run.curves["kimg"].dropna().empty:
        return
    ax.axvline(float(run.curves["kimg"].dropna().iloc[-1]), color="tab:red", lw=1, ls=":", label="diverged")


def _mark_collapse(ax: Any, x: np.ndarray, y: np.ndarray, run: RunData, color: Any = "tab:red") -> None:
    """Say next to a BEGAN run's M_global curve that its samples collapsed, whatever the curve does."""
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return
    ax.annotate(f"samples collapsed\n({run.record.get('collapse_note', '').split(': ', 1)[-1]})",
                (x[finite][-1], y[finite][-1]), xytext=(-8, 30), textcoords="offset points", ha="right",
                fontsize=7, color=color, wrap=True,
                arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8})


def _better(key: str) -> str:
    from ganbench.results.leaderboard import higher_is_better

    return "higher is better" if higher_is_better(key) else "lower is better"


def _score_title(key: str) -> str:
    name, bracket, rest = key.partition("[")
    return f"{name}  [{rest}" if bracket else key


# -- one run ------------------------------------------------------------------------------------


def render_losses(run: RunData) -> bytes | None:
    columns = run.loss_columns()
    if not columns or run.curves is None:
        return None
    fig, axes = _figure(len(columns))
    for ax, col in zip(axes, columns):
        x, y = _series(run.curves, col)
        ax.plot(x, y, lw=1.2, marker="." if len(x) < 30 else None)
        _mark_divergence(ax, run)
        _style(ax, col, "kimg")
    fig.suptitle(f"{run.label}: losses and diagnostics ({run.status})", fontsize=11)
    return _png(fig)


def convergence_signals(run: RunData) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """(title, kimg, values, note) per panel: BEGAN's own measure, else the closest generic signal logged."""
    c = run.curves
    if c is None:
        return []
    has = lambda col: col in c and c[col].notna().any()  # noqa: E731
    x = c["kimg"].to_numpy(dtype=float)
    panels = []
    if has("M_global"):
        panels.append((M_GLOBAL_TITLE, x, c["M_global"].to_numpy(float),
                       "lower = nearer equilibrium; not a measure of sample diversity"))
        if has("k_t"):
            panels.append(("k_t (BEGAN equilibrium control)", x, c["k_t"].to_numpy(float), ""))
        return panels
    if has("wasserstein"):
        panels.append(("critic's Wasserstein estimate E[D(x)] − E[D(G(z))]", x, c["wasserstein"].to_numpy(float),
                       "generic signal, not M_global; tends to fall as G improves"))
    if has("D(x)") and has("D(G(z))"):
        gap = c["D(x)"].to_numpy(float) - c["D(G(z))"].to_numpy(float)
        panels.append(("D(x) − D(G(z)) (discriminator margin)", x, gap, "generic signal, not M_global; 0 = D cannot tell"))
    if has("loss_d") and has("loss_g"):
        proxy = c["loss_d"].to_numpy(float) + np.abs(c["loss_g"].to_numpy(float))
        panels.append(("loss_d + |loss_g|", x, proxy, "generic proxy, not M_global; no proven link to quality"))
    return panels


def render_convergence(run: RunData) -> bytes | None:
    fig = convergence_figure(run)
    return None if fig is None else _png(fig)


def convergence_figure(run: RunData) -> Figure | None:
    """The run's convergence panels; a BEGAN run flagged collapsed says so on its M_global curve."""
    panels = convergence_signals(run)
    if not panels:
        return None
    fig, axes = _figure(len(panels), ncols=2, panel=(5.0, 3.0))
    for ax, (title, x, y, note) in zip(axes, panels):
        ax.plot(x, y, lw=1.3, color="tab:purple")
        _mark_divergence(ax, run)
        _style(ax, title, "kimg")
        if note:
            ax.text(0.99, 0.97, note, transform=ax.transAxes, ha="right", va="top", fontsize=7.5, color="0.35")
    began = panels[0][0] == M_GLOBAL_TITLE
    if began and run.collapsed:
        _mark_collapse(axes[0], panels[0][1], panels[0][2], run)
    kind = "BEGAN convergence" if began else "convergence signals (generic; no M_global logged)"
    fig.suptitle(f"{run.label}: {kind}" + (" (samples COLLAPSED)" if began and run.collapsed else ""), fontsize=11)
    return fig


def render_quality(run: RunData) -> bytes | None:
    keys = score_keys(run.scores)
    if not keys:
        return None
    fig, axes = _figure(len(keys), ncols=2, panel=(5.0, 3.0))
    for ax, key in zip(axes, keys):
        pts = [(e.get("kimg", math.nan), e.get(key, math.nan), e.get(std_key(key), math.nan), e.get("fraction", math.nan))
               for e in run.scores]
        kimg, val, err, frac = (np.array(v, dtype=float) for v in zip(*pts))
        ok = ~np.isnan(kimg) & ~np.isnan(val)
        if not ok.any():
            _note_empty(ax, "no finite values")
        else:
            yerr = np.where(np.isnan(err[ok]), 0.0, err[ok]) if not np.isnan(err[ok]).all() else None
            ax.errorbar(kimg[ok], val[ok], yerr=yerr, marker="o", ms=4, lw=1.3, capsize=3)
            for xk, yv, fr in zip(kimg[ok], val[ok], frac[ok]):
                if not np.isnan(fr):
                    ax.annotate(f"{fr:.0%}", (xk, yv), textcoords="offset points", xytext=(0, 6), ha="center",
                                fontsize=7, color="0.35")
        _style(ax, f"{_score_title(key)}\n({_better(key)})", "kimg (point labels: budget fraction)")
        ax.margins(y=0.18)
    fig.suptitle(f"{run.label}: quality over the budget", fontsize=11)
    return _png(fig)


def _plain_text(render: Callable[..., dict[str, bytes]]) -> Callable[..., dict[str, bytes]]:
    """Draw with every label as plain text: names come from runs (a folder called ``$x_{$``), and
    matplotlib would parse text between dollar signs as mathtext and fail on it."""
    @functools.wraps(render)
    def plain(*args: Any, **kwargs: Any) -> dict[str, bytes]:
        with matplotlib.rc_context({"text.parse_math": False}):
            return render(*args, **kwargs)
    return plain


def render_distribution(run: RunData) -> bytes | None:
    """Vector samples at each grid fraction over the true distribution (:mod:`ganbench.training.pictures`); None for images."""
    from ganbench.training.pictures import draw_points, read_npz

    saved = sorted((run.directory / "samples").glob("frac*.npz"))
    if not saved:
        return None
    fig, axes = _figure(len(saved), ncols=min(len(saved), 5), panel=(3.2, 3.0))
    for ax, path in zip(axes, saved):
        points, centres, sigma = read_npz(path.read_bytes())
        draw_points(ax, points, centres, sigma, f"{path.stem.replace('frac', '')}% of the budget")
    return _png(fig)


@_plain_text
def render_run(run_dir: Path) -> dict[str, bytes]:
    """PNG bytes of a run's figures by file name; figures without data are left out."""
    run = load_run(run_dir)
    out = {}
    for name, render in (("losses.png", render_losses), ("convergence.png", render_convergence),
                         ("quality.png", render_quality), ("distribution.png", render_distribution)):
        data = render(run)
        if data is not None:
            out[name] = data
    return out


def write_figures(directory: Path, figures: dict[str, bytes]) -> list[Path]:
    """Write PNG bytes by file name into ``directory``; return the paths written."""
    written = []
    for name, data in figures.items():
        path = Path(directory) / name
        write_bytes(path, data)
        written.append(path)
    return written


def plot_run(run_dir: Path) -> list[Path]:
    """Write ``run_dir/plots/{losses,convergence,quality}.png`` (those with data); return the paths written."""
    return write_figures(Path(run_dir) / "plots", render_run(run_dir))


# -- an invocation ------------------------------------------------------------------------------


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _groups(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    """Runs by group; dataset and budget join the label only when they differ between runs."""
    datasets = {r.group_key[1] for r in runs}
    budgets = {r.group_key[2] for r in runs}
    out: dict[str, list[RunData]] = {}
    for r in runs:
        label = r.group
        extra = [v for v, many in ((r.group_key[1], len(datasets) > 1), (r.group_key[2], len(budgets) > 1)) if many and v]
        if extra:
            label += f" ({', '.join(extra)})"
        out.setdefault(label, []).append(r)
    return out


def render_quality_over_budget(runs: Sequence[RunData]) -> bytes | None:
    keys = score_keys(e for r in runs for e in r.scores)
    if not keys:
        return None
    groups = _groups([r for r in runs if r.scores])
    colors = dict(zip(groups, _colors(len(groups))))
    fig, axes = _figure(len(keys), ncols=2, panel=(5.5, 3.4))
    for ax, key in zip(axes, keys):
        drawn = False
        for label, members in groups.items():
            rows = [(round(e["fraction"], 4), e.get(key, math.nan)) for r in members for e in r.scores
                    if not math.isnan(e.get("fraction", math.nan))]
            if not rows:
                continue
            frame = pd.DataFrame(rows, columns=["fraction", "value"]).dropna()
            if frame.empty:
                continue
            stats = frame.groupby("fraction")["value"].agg(["mean", "min", "max", "count"]).reset_index()
            seeds = len(members)
            ax.plot(stats["fraction"], stats["mean"], marker="o", ms=4, lw=1.5, color=colors[label],
                    label=f"{label} (n={seeds})" if seeds > 1 else label)
            if (stats["count"] > 1).any():
                ax.fill_between(stats["fraction"], stats["min"], stats["max"], color=colors[label], alpha=0.18, lw=0)
            drawn = True
        if not drawn:
            _note_empty(ax, "no finite values")
        _style(ax, f"{_score_title(key)}\n({_better(key)})", "budget fraction")
        ax.set_xlim(-0.02, 1.02)
        if drawn:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle("Quality over the budget (mean over seeds; band: min–max across seeds)", fontsize=11)
    return _png(fig)


def _main_loss_columns(run: RunData) -> list[str]:
    cols = run.loss_columns()
    losses = [c for c in cols if c.lower().startswith("loss")]
    return losses or cols[:2]


def render_invocation_losses(runs: Sequence[RunData]) -> bytes | None:
    groups = {k: [r for r in v if r.curves is not None and _main_loss_columns(r)] for k, v in _groups(runs).items()}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    fig, axes = _figure(len(groups), ncols=MAX_COLS, panel=(4.6, 3.0))
    styles = ["-", "--", ":", "-."]
    for ax, (label, members) in zip(axes, groups.items()):
        columns = list(dict.fromkeys(c for r in members for c in _main_loss_columns(r)))
        colors = dict(zip(columns, _colors(len(columns))))
        for i, run in enumerate(members):
            for col in columns:
                if col not in run.curves:
                    continue
                x, y = _series(run.curves, col)
                ax.plot(x, y, lw=1.1, ls=styles[i % len(styles)], color=colors[col],
                        label=col if i == 0 else None)
            _mark_divergence(ax, run)
        seeds = ", ".join(f"s{r.seed}" + ("" if r.status == "completed" else f" {r.status}") for r in members)
        _style(ax, f"{label}\n({seeds}; line style = seed)", "kimg")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Losses over the budget, per family:objective", fontsize=11)
    return _png(fig)


def render_m_global(runs: Sequence[RunData]) -> bytes | None:
    fig = m_global_figure(runs)
    return None if fig is None else _png(fig)


def _has_m_global(run: RunData) -> bool:
    return run.curves is not None and "M_global" in run.curves and bool(run.curves["M_global"].notna().any())


def logs_m_global(run_dir: Path) -> bool:
    """Whether the run logged BEGAN's M_global (so that it has an M_global curve)."""
    return _has_m_global(load_run(run_dir))


def m_global_figure(runs: Sequence[RunData]) -> Figure | None:
    """M_global (and k_t) of every BEGAN run on one axis, captioned with what M_global measures;
    runs flagged collapsed are labelled so next to their curve."""
    began = [r for r in runs if _has_m_global(r)]
    if not began:
        return None
    with_k = [r for r in began if "k_t" in r.curves and r.curves["k_t"].notna().any()]
    fig, axes = _figure(2 if with_k else 1, ncols=2, panel=(5.5, 3.4))
    colors = _colors(len(began))
    for run, color in zip(began, colors):
        x, y = _series(run.curves, "M_global")
        axes[0].plot(x, y, lw=1.3, color=color, label=run.label + (" (samples collapsed)" if run.collapsed else ""))
        if run.collapsed:
            _mark_collapse(axes[0], x, y, run, color)
        if with_k and run in with_k:
            x, k = _series(run.curves, "k_t")
            axes[1].plot(x, k, lw=1.3, color=color, label=run.label)
    _style(axes[0], f"{M_GLOBAL_TITLE}; lower = nearer equilibrium", "kimg")
    axes[0].legend(fontsize=7)
    if with_k:
        _style(axes[1], "k_t (equilibrium control)", "kimg")
        axes[1].legend(fontsize=7)
    fig.suptitle(f"BEGAN convergence. {M_GLOBAL_CAPTION}", fontsize=10, wrap=True)
    return fig


def _load_image(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError):
        return None


def render_samples(runs: Sequence[RunData]) -> bytes | None:
    tiles = []
    for run in runs:
        path, note = final_grid(run.directory)
        image = _load_image(path) if path else None
        title = f"{run.label}\n{run.status}" + ("" if note == "final" else f" ({note})")
        tiles.append((title, image))
    if not any(image is not None for _, image in tiles):
        return None
    ncols = min(4, len(tiles))
    fig, axes = _figure(len(tiles), ncols=ncols, panel=(3.2, 3.6))
    for ax, (title, image) in zip(axes, tiles):
        if image is not None:
            ax.imshow(image, interpolation="nearest")
        else:
            _note_empty(ax, "no sample grid")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Final sample grids (fixed latent batch)", fontsize=11)
    return _png(fig)


@_plain_text
def render_invocation(run_dirs: Sequence[Path]) -> dict[str, bytes]:
    """PNG bytes of the combined figures by file name; figures without data are left out."""
    runs = [load_run(d) for d in run_dirs]
    out = {}
    for name, render in (("quality_over_budget.png", render_quality_over_budget), ("losses.png", render_invocation_losses),
                         ("m_global.png", render_m_global), ("samples.png", render_samples)):
        data = render(runs) if runs else None
        if data is not None:
            out[name] = data
    return out


def plot_invocation(results_dir: Path, run_dirs: Sequence[Path]) -> list[Path]:
    """Write the combined figures into ``results_dir/plots/``; return the paths written."""
    return write_figures(Path(results_dir) / "plots", render_invocation([Path(d) for d in run_dirs]))
