"""Leaderboards: pandas views over the ``run.json`` records of a results directory.

One row per (family, objective, dataset, budget), aggregated over seeds.
Runs that did not complete are never dropped: their status is shown and they
are left out of the means, so a diverging family cannot hide behind its one
lucky seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .errors import UsageError
from .records import COMPLETED, RunRecord
from .store import write_text

GROUP = ["family", "objective", "dataset", "budget"]
COUNTERS = {
    "steps": "steps",
    "images": "images",
    "train_seconds": "train_s",
    "images_per_second": "img_per_s",
    "eval_seconds": "eval_s",
}


def load_records(results: Path) -> list[RunRecord]:
    """Every run record under ``results`` (its ``runs/`` folder, or the folder itself)."""
    root = Path(results)
    paths = sorted(root.glob("runs/*/run.json")) or sorted(root.glob("*/run.json"))
    records = []
    for path in paths:
        try:
            records.append(RunRecord.read(path))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            print(f"warning: skipped unreadable run record {path}: {exc}")
    return records


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run, losses and scores flattened into columns."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.as_dict().items() if k not in ("losses", "scores")}
        row.update({f"loss:{k}": v for k, v in r.losses.items()})
        row.update({f"score:{k}": v for k, v in r.scores.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _status(group: pd.DataFrame) -> str:
    done = int((group["status"] == COMPLETED).sum())
    parts = [f"{done}/{len(group)} completed"]
    for _, row in group[group["status"] != COMPLETED].iterrows():
        where = f"@{int(row['diverged_at_step'])}" if pd.notna(row.get("diverged_at_step")) else ""
        parts.append(f"seed {row['seed']} {row['status']}{where}")
    return "; ".join(parts)


def higher_is_better(column: str) -> bool:
    """IS, precision/recall/F-score and throughput rank descending; FID, KID, losses and times ascending."""
    key = column.split(":", 1)[-1]
    return key.startswith(("isc", "prc")) or key == "img_per_s"


def compile_leaderboard(records: Iterable[RunRecord], rank_by: str | None = None) -> pd.DataFrame:
    """Aggregate runs over seeds: mean and standard deviation of every counter, loss and score."""
    runs = runs_frame(records)
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP, "seeds", "status"])
    value_columns = [c for c in runs.columns if c.startswith(("loss:", "score:"))]
    out = []
    for key, group in runs.groupby(GROUP, sort=False):
        row = dict(zip(GROUP, key))
        row["seeds"] = len(group)
        row["status"] = _status(group)
        ok = group[group["status"] == COMPLETED]
        for col, name in COUNTERS.items():
            row[name] = ok[col].mean() if len(ok) else float("nan")
        row["params_g"] = int(group["params_generator"].max())
        row["params_d"] = int(group["params_discriminator"].max())
        row["device"] = ", ".join(sorted(set(group["device"])))
        for col in value_columns:
            values = pd.to_numeric(ok[col], errors="coerce") if col in ok else pd.Series(dtype=float)
            row[col] = values.mean()
            row[f"{col}:std"] = values.std(ddof=1) if values.count() > 1 else float("nan")
        out.append(row)
    board = pd.DataFrame(out)
    if rank_by:
        board = board.sort_values(rank_column(board, rank_by), ascending=not higher_is_better(rank_by), na_position="last")
    return board.reset_index(drop=True)


def rank_column(board: pd.DataFrame, rank_by: str) -> str:
    """The column ``rank_by`` names: exact, ``score:<key>``, or the one score starting with it (``fid``)."""
    for candidate in (rank_by, f"score:{rank_by}"):
        if candidate in board:
            return candidate
    matches = [c for c in board.columns if c.startswith(f"score:{rank_by}") and not c.endswith(":std")]
    if len(matches) == 1:
        return matches[0]
    known = [c for c in board.columns if c.startswith("score:") and not c.endswith(":std")]
    raise UsageError(
        f"--rank-by {rank_by!r} matches {len(matches)} columns; use one of: "
        f"{', '.join(known) or 'steps, img_per_s (no scores recorded)'}."
    )


def display_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as people read it: 'mean ± std' strings, rounded."""
    shown = board[[c for c in board.columns if not c.endswith(":std")]].copy()
    for col in list(shown.columns):
        if col.startswith(("loss:", "score:")):
            std = board.get(f"{col}:std")
            shown[col] = [
                _pm(m, s) for m, s in zip(board[col], std if std is not None else [float("nan")] * len(board))
            ]
    for col in ("train_s", "eval_s", "img_per_s", "steps", "images"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:,.1f}" if col.endswith("_s") else f"{v:,.0f}")
    return shown


def _pm(mean: float, std: float) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g} ± {std:.2g}"


def write_leaderboard(board: pd.DataFrame, results: Path) -> dict[str, Path]:
    """Write CSV (numbers) and Markdown (for people) next to the runs."""
    root = Path(results)
    paths = {"csv": root / "leaderboard.csv", "md": root / "leaderboard.md"}
    write_text(paths["csv"], board.to_csv(index=False))
    write_text(paths["md"], display_frame(board).to_markdown(index=False) + "\n")
    return paths
