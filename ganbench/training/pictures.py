"""Pictures of vector samples, the toy datasets' counterpart of a sample grid.

A grid of 64 images tells a person in a second whether a generator works; for
samples of a known 1-D or 2-D distribution the same glance is a histogram
over the true density (1-D) or a scatter over the mode centres (2-D, with
circles of PacGAN's 3σ high-quality radius). The loop saves one at every
grid fraction (``samples/fracNNN.png``) together with the points themselves
(``samples/fracNNN.npz``: ``points``, ``centres``, ``sigma``), from which
:func:`ganbench.results.plots.render_distribution` draws the run's
``plots/distribution.png`` and the report shows them. Drawn with matplotlib's
Agg canvas directly, like :mod:`ganbench.results.plots`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Points drawn in each picture (PacGAN scores and plots 2,500 samples).
PICTURE_POINTS = 2_500
#: PacGAN's high-quality radius, in sigmas (drawn around each mode centre).
HQ_SIGMAS = 3.0


def mixture_density(x: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    """The density of the equal-weight 1-D normal mixture at ``x``."""
    z = (x[:, None] - centres[None, :, 0]) / sigma
    return np.exp(-0.5 * z**2).mean(axis=1) / (sigma * np.sqrt(2 * np.pi))


def draw_points(ax: Any, points: np.ndarray, centres: np.ndarray | None, sigma: float | None, title: str) -> None:
    """Histogram over the true density (1-D) or scatter over the mode centres (2-D) on ``ax``."""
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    if points.shape[1] == 1:
        x = points[:, 0]
        ax.hist(x, bins=60, density=True, color="tab:blue", alpha=0.6, label="generated")
        if centres is not None and sigma:
            lo = min(x.min(), centres.min() - 4 * sigma)
            hi = max(x.max(), centres.max() + 4 * sigma)
            grid = np.linspace(lo, hi, 400)
            ax.plot(grid, mixture_density(grid, centres, sigma), color="tab:red", label="true density")
        ax.legend(fontsize=7)
        return
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], s=30, marker="x", color="tab:red", label="mode centres")
        if sigma:
            for c in centres:
                ax.add_patch(_circle(c, HQ_SIGMAS * sigma))
    ax.set_aspect("equal", adjustable="datalim")
    if points.shape[1] > 2:
        ax.set_xlabel(f"first 2 of {points.shape[1]} dimensions", fontsize=8)


def _circle(centre: np.ndarray, radius: float) -> Any:
    from matplotlib.patches import Circle

    return Circle((float(centre[0]), float(centre[1])), radius, fill=False, color="tab:red", lw=0.6)


def points_png(points: np.ndarray, centres: np.ndarray | None, sigma: float | None, title: str) -> bytes:
    fig = Figure(figsize=(4.2, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw_points(fig.add_subplot(), points, centres, sigma, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def points_npz(points: np.ndarray, centres: np.ndarray | None, sigma: float | None) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, points=points, centres=np.zeros((0, points.shape[1])) if centres is None else centres,
             sigma=np.array(sigma or 0.0))
    return buf.getvalue()


def read_npz(data: bytes) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    with np.load(io.BytesIO(data)) as z:
        centres = z["centres"] if len(z["centres"]) else None
        return z["points"], centres, float(z["sigma"]) or None
