"""Leaderboards: pandas views over the ``run.json`` records of a results directory.

One row per (family, objective, dataset, budget), aggregated over seeds.
Runs that did not complete are never dropped: their status is shown and they
are left out of the means, so a diverging family cannot hide behind its one
lucky seed.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ganbench.scoring.diversity import is_diversity_key
from ganbench.errors import UsageError
from ganbench.plugin.naming import matching_scores
from ganbench.results.records import COMPLETED, EXTERNAL, RecordError, RunRecord, fraction_label
from ganbench.results.stats import intervals_overlap, summarize
from ganbench.results.store import write_text

#: What makes a leaderboard row; ``speed`` holds the non-default speed settings ('bf16+compile', '' for none),
#: ``recipe`` the recipe and non-default training options ('paper', 'matched+ema=10+sn');
#: ``hparams`` the hyperparameters set away from their defaults ('lr=0.001', '' for none);
#: ``pack`` the PacGAN packing ('2', '' for an unpacked discriminator).
GROUP = ["family", "objective", "dataset", "budget", "recipe", "speed", "hparams", "pack"]
#: The value of a GROUP key in records and baselines written before the key existed.
GROUP_DEFAULTS = {"speed": "", "recipe": "paper", "hparams": "", "pack": ""}
COUNTERS = {
    "steps": "steps",
    "images": "images",
    "g_updates": "g_updates",
    "d_updates": "d_updates",
    "gflops_g": "gflops_g",
    "gflops_d": "gflops_d",
    "train_seconds": "train_s",
    "images_per_second": "img_per_s",
    "relative_throughput": "rel_throughput",
    "eval_seconds": "eval_s",
}
#: Separates a score from the budget fraction of an intermediate evaluation: ``score:fid2k[lenet-…]@50%``.
AT = "@"
#: The label of the scores at the checkpoint chosen on held-out samples (``--select-best``): ``…@best``.
BEST = "best"
#: Per-value statistics columns next to each ``loss:``/``score:`` mean.
STAT_SUFFIXES = (":std", ":ci95", ":n")


def load_records(results: Path) -> list[RunRecord]:
    """Every run record under ``results`` (its ``runs/`` folder, or the folder itself)."""
    root = Path(results)
    paths = sorted(root.glob("runs/*/run.json")) or sorted(root.glob("*/run.json"))
    records = []
    for path in paths:
        try:
            records.append(RunRecord.read(path))
        except RecordError as exc:
            print(f"warning: skipped unreadable run record {exc}", file=sys.stderr)
    return records


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run, losses and scores flattened into columns."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.as_dict().items() if k not in ("losses", "scores", "scores_at", "best")}
        row.update({f"loss:{k}": v for k, v in r.losses.items()})
        row.update({f"score:{k}": v for k, v in r.scores.items()})
        for label, scores in r.scores_at.items():
            row.update({f"score:{k}{AT}{label}": v for k, v in scores.items()})
        if r.best:  # chosen on held-out samples (ganbench.scoring.selection); shown, never ranked
            row.update({f"score:{k}{AT}{BEST}": v for k, v in r.best.get("scores", {}).items()})
            row["best_fraction"] = r.best.get("fraction")
        rows.append(row)
    return pd.DataFrame(rows)


def _status(group: pd.DataFrame) -> str:
    if (group["status"] == EXTERNAL).all():  # scored with `ganbench score`, never trained here
        return EXTERNAL
    done = int((group["status"] == COMPLETED).sum())
    parts = [f"{done}/{len(group)} completed"]
    for _, row in group[group["status"] != COMPLETED].iterrows():
        where = f"@{int(row['diverged_at_step'])}" if pd.notna(row.get("diverged_at_step")) else ""
        parts.append(f"seed {row['seed']} {row['status']}{where}")
    return "; ".join(parts)


def _collapse(ok: pd.DataFrame) -> dict[str, object]:
    """``collapsed``: how many completed seeds lost their sample diversity (:mod:`ganbench.scoring.diversity`),
    ``collapsed:n`` how many were judged at all (NaN count when none was: no statistic recorded),
    ``collapse_note`` the statistics of the collapsed ones."""
    judged = ok[ok["collapsed"].notna()] if "collapsed" in ok else ok.iloc[0:0]
    flagged = judged[judged["collapsed"].astype(bool)] if len(judged) else judged
    notes = [f"seed {r['seed']}: {r.get('collapse_note') or 'collapsed'}" for _, r in flagged.iterrows()]
    return {"collapsed": float(len(flagged)) if len(judged) else float("nan"), "collapsed:n": len(judged),
            "collapse_note": "; ".join(notes)}


def collapsed_label(count: object, judged: object) -> str:
    """'' (no statistic), 'no', 'yes' (every judged seed) or '1/3 seeds'."""
    if count is None or pd.isna(count) or not judged:
        return ""
    count, judged = int(count), int(judged)  # type: ignore[call-overload]
    return "no" if count == 0 else "yes" if count == judged else f"{count}/{judged} seeds"

def mixed_devices(group: pd.DataFrame) -> bool:
    """Whether a row's seeds ran on different hardware models under a wall-clock budget, which then bought
    them different amounts of training (a step or kimg budget is the same budget on any device)."""
    from ganbench.training.budget import Budget

    if "device_model" not in group or group["status"].eq(EXTERNAL).any():  # an outside model has no budget
        return False
    if Budget.parse(str(group["budget"].iloc[0])).kind != "seconds":
        return False
    models = {m for m in group["device_model"].dropna() if m}
    return len(models) > 1


def higher_is_better(column: str) -> bool:
    """IS, precision/recall/F-score, the diversity statistics, modes covered, % high-quality samples and
    throughput rank descending; FID, KID, W1, KS, reverse KL, losses and times ascending."""
    key = column.split(":", 1)[-1]
    return key.startswith(("isc", "prc", "div", "modes", "hq")) or key == "img_per_s"


def compile_leaderboard(records: Iterable[RunRecord], rank_by: str | None = None) -> pd.DataFrame:
    """Aggregate runs over seeds.

    For every loss and score ``col`` the board holds ``col`` (mean over the
    completed seeds), ``col:std`` (sample standard deviation), ``col:ci95``
    (half-width of the 95 % Student-t interval of the mean) and ``col:n``
    (how many seeds had a finite value); std and ci95 are NaN for one seed.
    Scores are always those of the final evaluation (``RunRecord.scores``),
    never a best-so-far checkpoint. ``collapsed`` counts the completed seeds
    whose final samples lost their diversity (``collapsed:n`` the seeds that
    had a diversity statistic; NaN when none had), with their statistics in
    ``collapse_note``. With ``rank_by`` the rows are sorted and
    ranked (see :func:`rank_board`).
    """
    runs = runs_frame(records)
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP, "seeds", "status"])
    for key, default in GROUP_DEFAULTS.items():  # records from before the key existed
        runs[key] = runs[key].fillna(default) if key in runs else default
    value_columns = sorted((c for c in runs.columns if c.startswith(("loss:", "score:"))), key=_column_order)
    out = []
    for key, group in runs.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["seeds"] = len(group)
        row["status"] = _status(group)
        # external models have scores but no training counters: ganbench never trained them under a budget
        ok = group[group["status"].isin((COMPLETED, EXTERNAL))]
        row.update(_collapse(ok))
        trained = group[group["status"] == COMPLETED]
        for col, name in COUNTERS.items():
            values = pd.to_numeric(trained[col], errors="coerce") if col in trained else pd.Series(dtype=float)
            row[name] = values.mean() if len(trained) else float("nan")
        row["params_g"] = int(group["params_generator"].max())
        row["params_d"] = int(group["params_discriminator"].max())
        row["device"] = ", ".join(sorted(set(group["device"])))
        row["mixed_devices"] = mixed_devices(group)
        if "best_fraction" in ok and ok["best_fraction"].notna().any():  # where each seed's selection fell
            row["best_at"] = ", ".join(fraction_label(float(f)) for f in ok["best_fraction"].dropna())
        for col in value_columns:
            values = pd.to_numeric(ok[col], errors="coerce") if col in ok else pd.Series(dtype=float)
            summary = summarize(values.tolist())
            row[col] = summary.mean
            row[f"{col}:std"] = summary.std
            row[f"{col}:ci95"] = summary.ci95
            row[f"{col}:n"] = summary.n
        out.append(row)
    board = pd.DataFrame(out)
    if rank_by:
        board = rank_board(board, rank_by)
    return board.reset_index(drop=True)


def _column_order(column: str) -> tuple[int, float]:
    """Losses, then final scores, then intermediate scores by budget fraction; otherwise as found."""
    if column.startswith("loss:"):
        return (0, 0.0)
    if AT not in column:
        return (1, 0.0)
    label = column.rsplit(AT, 1)[1].rstrip("%")
    try:
        return (2, float(label))
    except ValueError:
        return (2, float("inf"))


def rank_board(board: pd.DataFrame, rank_by: str) -> pd.DataFrame:
    """Sort by ``rank_by`` and add ``rank`` and ``tied_with``.

    Direction follows :func:`higher_is_better`. ``rank`` is a competition rank:
    a row whose 95 % interval overlaps that of the row ranked just above it is
    tied with it, shares its rank and names it in ``tied_with`` (shown as
    ``2=``). Rows with one seed have no interval and are never called tied;
    rows without a value get no rank and go last.
    """
    column = rank_column(board, rank_by)
    board = board.sort_values(column, ascending=not higher_is_better(column), na_position="last", kind="stable")
    board = board.reset_index(drop=True)
    half = board.get(f"{column}:ci95", pd.Series(float("nan"), index=board.index))
    labels = _row_labels(board)
    ranks: list[float] = []
    tied_with: list[str] = []
    for i in range(len(board)):
        value = board.at[i, column]
        if pd.isna(value):
            ranks.append(float("nan"))
            tied_with.append("")
            continue
        if i > 0 and not pd.isna(board.at[i - 1, column]) and intervals_overlap(
            float(board.at[i - 1, column]), float(half.iloc[i - 1]), float(value), float(half.iloc[i])
        ):
            ranks.append(ranks[-1])
            tied_with.append(labels[i - 1])
        else:
            ranks.append(float(i + 1))
            tied_with.append("")
    board.insert(0, "rank", pd.array([None if pd.isna(r) else int(r) for r in ranks], dtype="Int64"))
    board.insert(1, "tied_with", tied_with)
    board.attrs["rank_by"] = column
    return board


def _row_labels(board: pd.DataFrame) -> list[str]:
    pairs = [f"{f}:{o}" for f, o in zip(board["family"], board["objective"])]
    if len(set(pairs)) == len(pairs):
        return pairs
    hparams = board["hparams"] if "hparams" in board else [""] * len(board)
    return [f"{p} {d} {b}" + (f" [{h}]" if h else "") for p, d, b, h in zip(pairs, board["dataset"], board["budget"], hparams)]


def rank_label(rank: object, tied: bool) -> str:
    """'3', or '3=' for a rank shared with the row above or below."""
    if rank is None or pd.isna(rank):
        return ""
    return f"{int(rank)}=" if tied else f"{int(rank)}"


def final_score_columns(board: pd.DataFrame) -> list[str]:
    """The mean columns of final scores: not their ``:std``/``:ci95``/``:n``, not intermediate or
    selected evaluations (``…@50%``, ``…@best``). Only these are ranked and gated."""
    return [c for c in board.columns if c.startswith("score:") and not c.endswith(STAT_SUFFIXES) and AT not in c]


def rank_column(board: pd.DataFrame, rank_by: str) -> str:
    """The column ``rank_by`` names: exact, ``score:<key>``, or the one final score it names
    (``fid`` -> ``score:fid10k[...]``; :func:`ganbench.plugin.naming.matching_scores`)."""
    for candidate in (rank_by, f"score:{rank_by}"):
        if candidate in board:
            return candidate
    known = final_score_columns(board)
    matches = [f"score:{key}" for key in matching_scores(rank_by.removeprefix("score:"),
                                                         [c.removeprefix("score:") for c in known])]
    if len(matches) == 1:
        return matches[0]
    raise UsageError(
        f"--rank-by {rank_by!r} matches {len(matches)} columns; use one of: "
        f"{', '.join(known) or 'steps, img_per_s (no scores recorded)'}."
    )


def display_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as people read it: 'mean ± std [95 % CI]' strings, rounded; ranks as '2='."""
    shown = board[[c for c in board.columns if not c.endswith(STAT_SUFFIXES)]].copy()
    nan = pd.Series(float("nan"), index=board.index)
    for col in list(shown.columns):
        if col.startswith(("loss:", "score:")):
            std, half = board.get(f"{col}:std", nan), board.get(f"{col}:ci95", nan)
            shown[col] = [_pm(m, s, h) for m, s, h in zip(board[col], std, half)]
    for col in ("train_s", "eval_s", "img_per_s", "steps", "images", "params_g", "params_d"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:,.1f}" if col.endswith("_s") else f"{v:,.0f}")
    if "collapsed" in shown:
        shown["collapsed"] = [collapsed_label(c, n) for c, n in zip(board["collapsed"], board["collapsed:n"])]
    if "rank" in shown:
        tied = [bool(t) for t in board["tied_with"]]
        shared = [t or (i + 1 < len(tied) and tied[i + 1]) for i, t in enumerate(tied)]
        shown["rank"] = [rank_label(r, s) for r, s in zip(board["rank"], shared)]
    # what a row is and how it scored first; counters next; losses (diagnostics) last
    first = [c for c in ("rank", "tied_with", *GROUP, "seeds", "status", "collapsed") if c in shown]
    scores = sorted((c for c in shown.columns if c.startswith("score:")), key=is_diversity_key)  # quality first
    losses = [c for c in shown.columns if c.startswith("loss:")]
    rest = [c for c in shown.columns if c not in {*first, *scores, *losses}]
    return shown[first + scores + rest + losses]


def shown_frame(board: pd.DataFrame) -> pd.DataFrame:
    """:func:`display_frame` without the columns that are empty in every row, as every rendering for people
    shows it (terminal, Markdown, HTML, report): ``speed``, ``hparams``, ``pack`` and ``tied_with`` hold
    something only for non-default settings and ties, and a column of blanks says nothing. The CSV and
    JSON files keep every column."""
    shown = display_frame(board)
    if shown.empty:
        return shown
    return shown[[c for c in shown.columns if not shown[c].map(_blank).all()]]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (pd.api.types.is_scalar(value)
                                                                               and bool(pd.isna(value)))


def _pm(mean: float, std: float, half: float = float("nan")) -> str:
    if pd.isna(mean):
        return ""
    if pd.isna(std):
        return f"{mean:.4g}"
    text = f"{mean:.4g} ± {std:.2g}"
    return text if pd.isna(half) else f"{text} [{mean - half:.4g}, {mean + half:.4g}]"


EXPORTS = ("csv", "md", "json", "html")


def write_leaderboard(board: pd.DataFrame, results: Path) -> dict[str, Path]:
    """Write the leaderboard next to the runs, in every export format.

    ``leaderboard.csv`` and ``leaderboard.json`` (a list of records) hold the
    numbers, with ``:std``, ``:ci95`` and ``:n`` columns; ``leaderboard.md`` and
    ``leaderboard.html`` (one self-contained page) are for people.
    """
    root = Path(results)
    paths = {fmt: root / f"leaderboard.{fmt}" for fmt in EXPORTS}
    board = _encodable(board)
    write_text(paths["csv"], board.to_csv(index=False))
    write_text(paths["md"], markdown_table(board))
    write_text(paths["json"], board.to_json(orient="records", indent=2) + "\n")
    write_text(paths["html"], html_page(board))
    return paths


def _encodable(board: pd.DataFrame) -> pd.DataFrame:
    """Text that UTF-8 can hold: a folder name that is not valid UTF-8 reaches Python as lone surrogates,
    which every encoder refuses; they become ``\\udcXX`` escapes (the bytes stay recoverable)."""
    def fix(value: object) -> object:
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value

    out = board.map(fix)
    out.attrs = dict(board.attrs)
    return out


def markdown_table(board: pd.DataFrame) -> str:
    """The display frame as a Markdown table in which names taken from runs (a dataset path) stay text:
    Markdown renderers pass raw HTML through, so ``<``, ``>`` and ``&`` are escaped, and so are the
    characters that make links, images, code spans and cell breaks."""
    shown = shown_frame(board).copy()
    shown.columns = [_md_cell(c) for c in shown.columns]
    shown = shown.map(lambda v: _md_cell(v) if isinstance(v, str) else v)
    return shown.to_markdown(index=False) + "\n"


def _md_cell(text: str) -> str:
    out = html.escape(str(text), quote=False)
    for char in "|`[]":  # cell splits, code spans, links and images
        out = out.replace(char, "\\" + char)
    return out


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
p.note{max-width:60em;color:#555}"""


def html_page(board: pd.DataFrame, title: str = "ganbench leaderboard") -> str:
    """One HTML page with the leaderboard table; no scripts, stylesheets or images from elsewhere."""
    table = shown_frame(board).to_html(index=False, escape=True, na_rep="", border=0, classes="leaderboard")
    ranked = board.attrs.get("rank_by")
    note = (
        "One row per (family, objective, dataset, budget). Scores are those of the final checkpoint, "
        "as mean ± standard deviation over completed seeds, with the 95 % confidence interval of the mean "
        "(Student t) in brackets; a single seed has neither."
    )
    if ranked:
        note += (f" Ranked by {html.escape(ranked)}; a rank marked '=' is shared with a neighbour "
                 "whose 95 % interval overlaps.")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p class=\"note\">{note}</p>\n{table}\n</body>\n</html>\n"
    )
