"""The leaderboard as printed in a terminal: narrow enough to read.

The files (CSV, JSON, Markdown, HTML) carry every column under its full name.
A terminal is 80 to 200 characters wide, so the printed table keeps what ranks
runs and leaves the rest to the files: score columns lose the extractor label
when every score shares one, and a shared device is stated once, under the
table; losses (diagnostics, not results) are not printed; the scores of
intermediate evaluations move into one small table per score, quality over
the budget, with a row per (family, objective) and a column per budget fraction.
"""

from __future__ import annotations

import re

import pandas as pd

from ganbench.scoring.diversity import COLLAPSE_RULE, is_diversity_key
from ganbench.results.leaderboard import AT, BEST, STAT_SUFFIXES, final_score_columns, higher_is_better, shown_frame

#: How metric plugins name scores: metric, sample count, optional suffix, then the extractor in brackets
#: (``fid10k[lenet-digits-a47c01eb]``, ``isc500_std[inception-v3-compat]``). Other names are left as they are.
SCORE_KEY = re.compile(r"^(?P<metric>[a-z]+)(?P<count>\d+k?)(?P<suffix>_[a-z_]+)?\[(?P<extractor>[^\]]+)\]$")


def _parts(column: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``score:fid10k[x]@50%`` -> ('fid10k', 'x', ('fid', '', 'x')): the short name, the extractor, and the
    series the score belongs to whatever its sample count or budget fraction. Names of another form are
    their own series and have no extractor."""
    key = column.removeprefix("score:").partition(AT)[0]
    match = SCORE_KEY.match(key)
    if match is None:
        return key, None, (key,)
    suffix = match["suffix"] or ""
    return f"{match['metric']}{match['count']}{suffix}", match["extractor"], (match["metric"], suffix, match["extractor"])


def terminal_text(board: pd.DataFrame) -> str:
    """The main table, a note on extractors, and the quality-over-budget tables."""
    shown = shown_frame(board)
    # losses are diagnostics, not results: they stay in the files
    shown = shown[[c for c in shown.columns if AT not in c and not c.startswith("loss:") and c != "collapse_note"]]
    finals = final_score_columns(board)
    extractors = {_parts(c)[1] for c in finals} - {None}
    notes = []
    if len(extractors) == 1:
        shown = shown.rename(columns={c: _parts(c)[0] for c in finals if _parts(c)[1] is not None})
        notes.append(f"scores computed with the feature extractor {extractors.pop()} "
                     "(comparable only with scores from the same extractor and sample count)")
    if "device" in shown and shown["device"].nunique() == 1:
        notes.append(f"device: {shown['device'].iloc[0]}")
        shown = shown.drop(columns="device")
    if "mixed_devices" in shown:  # marked only where it happened: seeds on different device models
        mixed = shown["mixed_devices"].fillna(False).astype(bool)
        shown = shown.drop(columns="mixed_devices")
        if mixed.any():
            shown["status"] = [f"{s}; MIXED DEVICE MODELS" if m else s for s, m in zip(shown["status"], mixed)]
            notes.append("MIXED DEVICE MODELS: seeds ran on different hardware under a wall-clock budget, "
                         "so they trained for different amounts; `ganbench check` refuses such rows")
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 60):
        parts = [shown.to_string(index=False)]
    notes += collapse_notes(board)
    if notes:
        parts.append("\n".join(notes))
    if finals and board["seeds"].max() > 1:
        parts[-1] += "\nscores: mean ± standard deviation over completed seeds [95 % confidence interval of the mean]"
    parts += [table for table in (_over_budget(board, c) for c in sorted(finals, key=is_diversity_key)) if table]
    return "\n\n".join(parts)


def collapse_notes(board: pd.DataFrame) -> list[str]:
    """One line per row whose samples collapsed, with its statistics, so that no collapse goes unnoticed."""
    if "collapse_note" not in board:
        return []
    lines = [f"COLLAPSED {f}:{o} {d} {b}: {note}" for f, o, d, b, note in
             zip(board["family"], board["objective"], board["dataset"], board["budget"], board["collapse_note"])
             if isinstance(note, str) and note]
    if lines:
        lines.append(f"collapsed: the samples lack diversity, lost or never learnt ({COLLAPSE_RULE}); "
                     "its scores describe a broken run, not a GAN's quality (docs/metrics.md)")
    return lines


def _over_budget(board: pd.DataFrame, final: str) -> str:
    """One score at every evaluated budget fraction, mean over seeds; '' when it was evaluated only at the end."""
    short, _, series = _parts(final)
    if short.endswith("_std"):
        return ""
    by_label = {
        column.split(AT, 1)[1]: column for column in board.columns
        if column.startswith("score:") and AT in column and not column.endswith(STAT_SUFFIXES)
        and _parts(column)[2] == series
    }
    best = by_label.pop(BEST, None)
    if not by_label and best is None:
        return ""
    labels = sorted(by_label, key=lambda label: float(label.rstrip("%")))
    keys = ["family", "objective"] + [k for k in ("speed", "pack") if k in board and board[k].fillna("").astype(bool).any()]
    table = board[keys].copy()
    for label in labels:
        table[label] = board[by_label[label]].map(_number)
    table["100%"] = board[final].map(_number)
    if best is not None:
        table["best*"] = board[best].map(_number)
    direction = "higher is better" if higher_is_better(final) else "lower is better"
    title = f"{short} over the budget ({direction}; mean over completed seeds"
    cheaper = sorted({_parts(by_label[label])[0] for label in labels} - {short})
    title += f"; intermediate points measured as {', '.join(cheaper)})" if cheaper else ")"
    text = f"{title}\n{table.to_string(index=False)}"
    if best is not None:
        text += ("\nbest*: at the evaluation chosen on held-out samples (--select-best), scored on the regular "
                 "samples; not used for ranking")
    return text


def _number(value: object) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.4g}"
