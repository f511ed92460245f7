"""A results directory as pandas DataFrames, for notebooks: ``ganbench.load_results(DIR)``.

The files of a results directory are made for ganbench (one JSON record and
one CSV per run). A researcher comparing runs in a notebook wants tables
instead, shaped so that one line of pandas plots them:

- ``leaderboard``: exactly what ``ganbench leaderboard DIR`` ranks (one row
  per family, objective, dataset and budget, aggregated over seeds);
- ``runs``: one row per run, its record flattened (``loss:…``/``score:…``
  columns as on the leaderboard) plus every config key (nested ones as
  ``evaluation.extractor``, ``options.…``);
- ``curves``: every logged loss and diagnostic in long format, one row per
  (run, step, series), with step, kimg, seconds and budget fraction as axes;
- ``scores``: every evaluation over the budget in long format, one row per
  (run, budget fraction, metric).

Long tables plot with ``pivot_table(...).plot()`` or seaborn's ``hue=``
without reshaping, whatever set of losses or metrics the runs logged. Heavy
imports happen inside the function, so importing ganbench stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganbench.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

#: Columns that identify a run in the long tables.
RUN_KEYS = ("run_id", "family", "objective", "dataset", "budget", "seed", "status")
AXES = ("step", "kimg", "seconds", "fraction")


@dataclass(frozen=True)
class Results:
    """The four tables of a results directory; see the module docstring."""

    leaderboard: pd.DataFrame
    runs: pd.DataFrame
    curves: pd.DataFrame
    scores: pd.DataFrame


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list):
        out[prefix] = ",".join(str(v) for v in value)  # one cell, comparable and groupable
    else:
        out[prefix] = value


def load_results(results: str | Path) -> Results:
    """Read every run under ``results`` (``DIR/runs/*``) into :class:`Results`.

    Example::

        r = ganbench.load_results("results")
        r.scores.pivot_table(index="kimg", columns="family", values="value").plot()
    """
    import pandas as pd

    from ganbench.results.leaderboard import compile_leaderboard, load_records, runs_frame
    from ganbench.results.plots import read_curves, read_scores
    from ganbench.results.records import HELDOUT
    from ganbench.results.store import read_json

    root = Path(results)
    if not root.is_dir():
        raise UsageError(f"No results directory at {root}; pass the --results directory of `ganbench run`.")
    records = load_records(root)
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    runs = runs_frame(records)
    config_rows, curve_frames, score_rows = [], [], []
    for record in records:
        directory = runs_dir / record.run_id
        ident = {k: getattr(record, k) for k in RUN_KEYS}
        config = read_json(directory / "config.json")
        flat: dict[str, Any] = {}
        _flatten("", config if isinstance(config, dict) else {}, flat)
        config_rows.append({"run_id": record.run_id, **{k: v for k, v in flat.items() if k not in ident}})
        curves = read_curves(directory / "curves.csv")
        if curves is not None:
            axes = [a for a in AXES if a in curves]
            long = curves.melt(id_vars=axes, var_name="series", value_name="value").dropna(subset=["value"])
            curve_frames.append(long.assign(**ident))
        for evaluation in read_scores(directory / "scores.json"):
            where = {k: evaluation.get(k) for k in ("fraction", "step", "kimg")}
            score_rows += [{**ident, **where, "metric": k, "value": v} for k, v in evaluation.items()
                           if k not in where and not k.startswith(HELDOUT)]
    if config_rows and not runs.empty:
        runs = runs.merge(pd.DataFrame(config_rows), on="run_id", how="left")
    curves_columns = [*RUN_KEYS, *AXES, "series", "value"]
    curves = (pd.concat(curve_frames, ignore_index=True) if curve_frames else pd.DataFrame(columns=curves_columns))
    curves = curves[[c for c in curves_columns if c in curves]]
    scores = pd.DataFrame(score_rows, columns=[*RUN_KEYS, "fraction", "step", "kimg", "metric", "value"])
    return Results(compile_leaderboard(records), runs, curves, scores)
