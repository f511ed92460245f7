"""Regression gate: compare a leaderboard with a committed baseline.

A baseline (``results/baselines/<suite>.json``, written by ``ganbench
baseline``) stores, per leaderboard row (family, objective, dataset, budget),
the mean, standard deviation and count over seeds of every score, the
training throughput, and a tolerance for each, stated with how it was derived:

- a score may get worse by at most ``max(k * std, rel_floor * |mean|)``
  (``k`` = 2 by default: the spread between seeds, with a floor so that a
  score that happened to agree across seeds still gets some slack); with a
  single seed there is no spread and the tolerance is ``rel_floor_single * |mean|``;
- throughput (img/s) may drop to ``min_ratio`` of the baseline (0.5 by
  default: CPU timing is noisy); it is compared only on the same device;
- relative throughput (ganbench's step rate over a hand-written step's on the
  same networks, measured in the same process: :mod:`ganbench.training.calibration`)
  may drop to ``min_ratio`` of the baseline's (0.8 by default). It does not
  depend on the machine, so it is gated on any device, CI included. A
  baseline written before the figure existed has none, and the check says so.

A baseline row also stores ``collapsed``: how many of its seeds' samples had
lost their diversity (:mod:`ganbench.scoring.diversity`; a baseline written before
that existed has no such key, read as 0).

``ganbench check`` fails (exit 1) on a score worse than the baseline beyond its
tolerance, a throughput drop beyond its ratio, a baseline row or score that is
missing, a row whose runs did not all complete, or a row with more collapsed
seeds than the baseline's (a newly collapsed row). Improvements beyond the
tolerance are reported (time to refresh the baseline) but pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench import __version__
from ganbench.errors import UsageError
from ganbench.scoring.diversity import is_diversity_key
from ganbench.results.leaderboard import GROUP, GROUP_DEFAULTS, final_score_columns, higher_is_better
from ganbench.results.store import write_json

FORMAT = "ganbench-baseline/1"
DEFAULT_K = 2.0
DEFAULT_REL_FLOOR = 0.05
DEFAULT_REL_FLOOR_SINGLE = 0.10
DEFAULT_THROUGHPUT_RATIO = 0.5
DEFAULT_RELATIVE_RATIO = 0.8

PASS, FAIL, IMPROVED, SKIPPED = "ok", "REGRESSED", "improved", "skipped"


def gated_scores(board: pd.DataFrame) -> list[str]:
    """Score columns that are gated: final means only, not within-run spreads (``isc10k_std``) nor
    intermediate evaluations (``…@50%``), which are curves, not results."""
    return [c for c in final_score_columns(board)
            if "_std" not in c.split(":", 1)[1] and not is_diversity_key(c)]  # diversity: gated as `collapsed`


def score_tolerance(mean: float, std: float, n: int, k: float, rel_floor: float,
                    rel_floor_single: float) -> tuple[float, str]:
    """The tolerance and a sentence saying how it was derived."""
    if n >= 2 and math.isfinite(std):
        spread, floor = k * std, rel_floor * abs(mean)
        tol = max(spread, floor)
        rule = f"max({k:g}*std = {spread:.4g}, {rel_floor:g}*|mean| = {floor:.4g}) over {n} seeds"
        return tol, rule
    tol = rel_floor_single * abs(mean)
    return tol, f"{rel_floor_single:g}*|mean| = {tol:.4g} (one seed: no spread to derive it from)"


def make_baseline(board: pd.DataFrame, suite: str, *, k: float = DEFAULT_K, rel_floor: float = DEFAULT_REL_FLOOR,
                  rel_floor_single: float = DEFAULT_REL_FLOOR_SINGLE,
                  throughput_ratio: float = DEFAULT_THROUGHPUT_RATIO,
                  relative_ratio: float = DEFAULT_RELATIVE_RATIO) -> dict[str, Any]:
    """A baseline document from a compiled leaderboard (see the module docstring)."""
    if board.empty:
        raise UsageError("No runs to make a baseline from; run the suite first (ganbench run SUITE.toml).")
    rows = []
    for _, row in board.iterrows():
        scores = {}
        for col in gated_scores(board):
            mean = row[col]
            if pd.isna(mean):
                continue
            std, n = row.get(f"{col}:std", float("nan")), int(row.get(f"{col}:n", 1))
            tol, rule = score_tolerance(float(mean), float(std), n, k, rel_floor, rel_floor_single)
            scores[col.split(":", 1)[1]] = {
                "mean": float(mean), "std": _num(std), "n": n, "ci95": _num(row.get(f"{col}:ci95")),
                "higher_is_better": higher_is_better(col), "tolerance": tol, "derived": rule,
            }
        rows.append({
            **{g: row[g] for g in GROUP},
            "seeds": int(row["seeds"]),
            "status": row["status"],
            "collapsed": _count(row.get("collapsed")),
            "device": row["device"],
            "scores": scores,
            "throughput": {
                "img_per_s": _num(row.get("img_per_s")),
                "min_ratio": throughput_ratio,
                "derived": f"fail below {throughput_ratio:g} x the baseline img/s, same device only",
            },
            "relative_throughput": {
                "value": _num(row.get("rel_throughput")),
                "min_ratio": relative_ratio,
                "derived": f"fail below {relative_ratio:g} x the baseline's ganbench/hand-written step rate, any device",
            },
        })
    return {
        "format": FORMAT,
        "suite": suite,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ganbench_version": __version__,
        "device": sorted(set(board["device"])),
        "policy": {"k_std": k, "rel_floor": rel_floor, "rel_floor_single_seed": rel_floor_single,
                   "throughput_min_ratio": throughput_ratio, "relative_throughput_min_ratio": relative_ratio,
                   "scores": "final-checkpoint scores, mean over completed seeds"},
        "rows": rows,
    }


def write_baseline(baseline: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    write_json(path, baseline)  # creates the folder, and turns an OSError into a message
    return path


def read_baseline(path: Path) -> dict[str, Any]:
    """The baseline document; a usage error (exit 2, never 1: that means a regression) when it is not one."""
    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"The baseline {path} does not exist; write one with `ganbench baseline --results DIR --out {path}`.") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot read the baseline {path}: {exc}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("rows"), list):
        raise UsageError(f"{path} is not a ganbench baseline (expected \"format\": \"{FORMAT}\" and a list of rows).")
    for i, row in enumerate(data["rows"]):
        problem = _row_problem(row)
        if problem:
            raise UsageError(f"The baseline {path} is malformed: row {i + 1} {problem}. Write it again with "
                             f"`ganbench baseline --results DIR --out {path}`.")
    return data


def _row_problem(row: Any) -> str:
    """What is wrong with one baseline row, or '' (only what :func:`check` relies on)."""
    if not isinstance(row, dict):
        return "is not an object"
    missing = [g for g in GROUP if not isinstance(row.get(g, GROUP_DEFAULTS.get(g)), str)]
    if missing:
        return f"has no {', '.join(missing)}"
    if not isinstance(row.get("scores", {}), dict) or not isinstance(row.get("throughput", {}), dict):
        return "has 'scores' or 'throughput' that is not an object"
    if any(row["throughput"].get(k) is not None and _num(row["throughput"][k]) is None
           for k in ("img_per_s", "min_ratio") if "throughput" in row):
        return "has a throughput that is not a number"
    for name, ref in row.get("scores", {}).items():
        if not isinstance(ref, dict) or _num(ref.get("mean")) is None or _num(ref.get("tolerance")) is None:
            return f"score {name!r} has no finite 'mean' and 'tolerance'"
    return ""


@dataclass
class Finding:
    row: str
    check: str
    baseline: float | None
    current: float | None
    tolerance: str
    verdict: str
    note: str = ""


@dataclass
class GateReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.verdict == FAIL for f in self.findings)

    def frame(self) -> pd.DataFrame:
        rows = []
        for f in self.findings:
            change = ""
            if f.baseline is not None and f.current is not None and math.isfinite(f.baseline) and math.isfinite(f.current):
                delta = f.current - f.baseline
                pct = f" ({delta / abs(f.baseline):+.1%})" if f.baseline else ""
                change = f"{delta:+.4g}{pct}"
            rows.append({"row": f.row, "check": f.check, "baseline": _fmt(f.baseline), "current": _fmt(f.current),
                         "change": change, "tolerance": f.tolerance, "verdict": f.verdict, "note": f.note})
        return pd.DataFrame(rows, columns=["row", "check", "baseline", "current", "change", "tolerance", "verdict", "note"])

    def text(self) -> str:
        frame = self.frame()
        if frame.empty:
            return "nothing to check: the baseline has no rows"
        with pd.option_context("display.max_colwidth", 60, "display.width", 250):
            table = frame.to_string(index=False)
        bad = sum(f.verdict == FAIL for f in self.findings)
        verdict = f"FAILED: {bad} regression{'s' if bad != 1 else ''}" if bad else "passed: no regression beyond tolerance"
        return f"{table}\n\n{verdict}"


def check(board: pd.DataFrame, baseline: dict[str, Any], *, throughput_ratio: float | None = None,
          check_throughput: bool = True) -> GateReport:
    """Compare a compiled leaderboard with a baseline document.

    A row whose seeds ran on different device models is refused: under a
    wall-clock budget they trained for different amounts, so their mean is not
    a result of one protocol.
    """
    if "mixed_devices" in board and board["mixed_devices"].fillna(False).astype(bool).any():
        rows = board[board["mixed_devices"].fillna(False).astype(bool)]
        names = "; ".join(f"{r['family']}:{r['objective']} {r['dataset']} {r['budget']} ({r['device']})"
                          for _, r in rows.iterrows())
        raise UsageError(
            f"Cannot check these results: the seeds of {names} ran on different device models, so a wall-clock "
            "budget bought them different amounts of training and their scores are not one comparison. Rerun those "
            "runs on one kind of device (with --executor ray, on nodes of one GPU model), or use a step or kimg budget."
        )
    report = GateReport()
    current = {tuple(str(r[g]) for g in GROUP): r for _, r in board.iterrows()} if not board.empty else {}
    expected = set()
    for base in baseline["rows"]:
        key = tuple(str(base.get(g, GROUP_DEFAULTS.get(g, ""))) for g in GROUP)  # baselines from before a key existed
        expected.add(key)
        label = f"{base['family']}:{base['objective']} {base['dataset']} {base['budget']}"
        row = current.get(key)
        if row is None:
            report.findings.append(Finding(label, "row", None, None, "", FAIL, "missing from the results"))
            continue
        if not str(row["status"]).startswith(f"{row['seeds']}/{row['seeds']} "):
            report.findings.append(Finding(label, "runs", None, None, "", FAIL, f"not all completed: {row['status']}"))
        collapse = _check_collapse(label, base, row)
        if collapse is not None:
            report.findings.append(collapse)
        for name, ref in base.get("scores", {}).items():
            report.findings.append(_check_score(label, name, ref, row))
        report.findings.append(_check_throughput(label, base, row, throughput_ratio, check_throughput))
        report.findings.append(_check_relative(label, base, row, check_throughput))
    for key in current:
        if key not in expected:
            report.findings.append(Finding(" ".join([f"{key[0]}:{key[1]}", key[2], key[3]]), "row", None, None, "",
                                           SKIPPED, "not in the baseline"))
    return report


def _check_score(label: str, name: str, ref: dict[str, Any], row: pd.Series) -> Finding:
    col = f"score:{name}"
    tol = float(ref["tolerance"])
    base_mean = float(ref["mean"])
    tol_text = f"±{tol:.3g}"
    value = row.get(col)
    if value is None or pd.isna(value):
        return Finding(label, name, base_mean, None, tol_text, FAIL, "score missing from the results")
    value = float(value)
    worse_by = (base_mean - value) if ref.get("higher_is_better", higher_is_better(col)) else (value - base_mean)
    if worse_by > tol:
        return Finding(label, name, base_mean, value, tol_text, FAIL, f"worse by {worse_by:.4g} > {tol:.3g}")
    if -worse_by > tol:
        return Finding(label, name, base_mean, value, tol_text, IMPROVED, "better beyond tolerance: refresh the baseline?")
    return Finding(label, name, base_mean, value, tol_text, PASS)


def _check_collapse(label: str, base: dict[str, Any], row: pd.Series) -> Finding | None:
    """More collapsed seeds than the baseline had is a regression; a baseline without collapse
    information (written before ganbench measured diversity) had none. No finding when the
    results have no diversity statistic."""
    now = row.get("collapsed")
    if now is None or pd.isna(now):
        return None
    now, before = int(now), _count(base.get("collapsed"))
    judged = int(row.get("collapsed:n") or now)
    if now > before:
        return Finding(label, "collapsed", before, now, f"<= {before}", FAIL,
                       f"newly collapsed: {now} of {judged} seeds have samples that lack diversity "
                       f"({row.get('collapse_note') or 'see run.json'})")
    note = ("fewer collapsed seeds than the baseline: refresh the baseline?" if now < before
            else "collapsed in the baseline too" if now else "")
    return Finding(label, "collapsed", before, now, f"<= {before}", IMPROVED if now < before else PASS, note)


def _count(value: Any) -> int:
    """A collapsed-seed count from a board or baseline: missing or NaN counts as 0."""
    number = _num(value)
    return int(number) if number is not None else 0


def _check_throughput(label: str, base: dict[str, Any], row: pd.Series, ratio: float | None, enabled: bool) -> Finding:
    ref = base.get("throughput", {})
    base_ips = ref.get("img_per_s")
    ratio = float(ratio if ratio is not None else ref.get("min_ratio", DEFAULT_THROUGHPUT_RATIO))
    value = row.get("img_per_s")
    current = None if value is None or pd.isna(value) else float(value)
    tol_text = f">= {ratio:g}x"
    if not enabled:
        return Finding(label, "img_per_s", base_ips, current, tol_text, SKIPPED, "throughput not gated (--no-throughput)")
    if base_ips is None or current is None:
        return Finding(label, "img_per_s", base_ips, current, tol_text, SKIPPED, "no throughput to compare")
    if str(row.get("device")) != str(base.get("device")):
        return Finding(label, "img_per_s", base_ips, current, tol_text, SKIPPED,
                       f"device differs (baseline {base.get('device')}); timings not comparable")
    if current < ratio * base_ips:
        return Finding(label, "img_per_s", base_ips, current, tol_text, FAIL,
                       f"{current / base_ips:.2f}x the baseline < {ratio:g}x")
    return Finding(label, "img_per_s", base_ips, current, tol_text, PASS)


def _check_relative(label: str, base: dict[str, Any], row: pd.Series, enabled: bool) -> Finding:
    """The machine-independent speed figure, gated whatever the device (see the module docstring)."""
    ref = base.get("relative_throughput") or {}
    base_value = _num(ref.get("value"))
    ratio = float(ref.get("min_ratio", DEFAULT_RELATIVE_RATIO))
    current = _num(row.get("rel_throughput"))
    tol_text = f">= {ratio:g}x"
    if not enabled:
        return Finding(label, "rel_throughput", base_value, current, tol_text, SKIPPED, "throughput not gated (--no-throughput)")
    if not ref:
        return Finding(label, "rel_throughput", None, current, tol_text, SKIPPED,
                       "the baseline predates relative throughput; rewrite it with `ganbench baseline` to gate it")
    if base_value is None or current is None:
        return Finding(label, "rel_throughput", base_value, current, tol_text, SKIPPED,
                       "no relative throughput to compare (a family with its own step has no plain equivalent)")
    if current < ratio * base_value:
        return Finding(label, "rel_throughput", base_value, current, tol_text, FAIL,
                       f"{current / base_value:.2f}x the baseline < {ratio:g}x")
    return Finding(label, "rel_throughput", base_value, current, tol_text, PASS)


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"
