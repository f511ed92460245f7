"""The report of a tuning study: best score against the number of trials, best configurations, their seed spread.

Lucic et al. 2018 compare families by the distribution of the *best* score
found with a budget of k hyperparameter trials, estimated by resampling the
trials actually run (their Figure 4 and §5): for k = 1..K, draw k of the K
trials with replacement many times, keep the best of each draw, and report the
mean and a 95 % band of those bests. A family that needs luck to find a good
configuration has a curve that starts high and falls slowly; one that is good
almost anywhere in its space starts low. Families are ranked by the mean
best-of-k at the study's ``rank_at``.

A trial that diverged or failed counts as the worst possible score (infinite
FID), not as a missing one: a search that lands on an unstable setting has
spent a trial. The expected best-of-k is then infinite for small k when some
trials failed, and the report says so rather than hiding the failures.

The best configuration's own score was selected as the best of K, so it is
optimistic (the winner's curse); its re-runs on fresh seeds
(``--confirm-seeds``) give the score to expect from it, with their spread.

Written next to the study's ``tune.json``: ``tune-report.json`` (everything
below, machine-readable), ``tune-report.md``, ``tune-report.html`` (one page,
figure embedded) and ``plots/tune_best_of_k.png``.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from ganbench.results.records import RunRecord
from ganbench.study.search_space import format_params
from ganbench.results.stats import summarize
from ganbench.results.store import write_bytes, write_json, write_text
from ganbench.study.tuning import read_study, score_of

#: Resamples per k; the band's ends move by well under 1 % of its width between repeats at this count.
RESAMPLES = 2000
REPORT = "tune-report"
FIGURE = Path("plots") / "tune_best_of_k.png"


def best_of_k(scores: np.ndarray, higher_is_better: bool, seed: int = 0,
              resamples: int = RESAMPLES, max_k: int | None = None) -> list[dict[str, float]]:
    """For k = 1..max_k: mean, median and 95 % band of the best of k trials drawn with replacement.

    ``scores`` holds one value per trial, +-inf for a trial without a score
    (the worst for the metric's direction). Deterministic for a given ``seed``.
    """
    n = len(scores)
    if n == 0:
        return []
    sign = -1.0 if higher_is_better else 1.0
    losses = sign * np.asarray(scores, dtype=float)  # lower is better from here on
    rng = np.random.default_rng(seed)
    curve = []
    for k in range(1, (max_k or n) + 1):
        picks = losses[rng.integers(0, n, size=(resamples, k))].min(axis=1)
        with np.errstate(invalid="ignore"):
            mean = float(picks.mean())
        low, high = (float(np.quantile(picks, q, method=m)) for q, m in ((0.025, "lower"), (0.975, "higher")))
        if sign < 0:
            low, high = high, low
        curve.append({"k": k, "mean": sign * mean, "median": sign * float(np.quantile(picks, 0.5, method="lower")),
                      "low": sign * low, "high": sign * high, "all_failed": float(np.isinf(picks).mean())})
    return curve


def summarize_study(results: Path) -> dict[str, Any]:
    """Everything the report shows, from the manifest and the runs' records (nothing is trained)."""
    manifest, records = read_study(results)
    metric, higher = manifest["metric"], bool(manifest["higher_is_better"])
    rank_at = int(manifest.get("rank_at") or manifest["trials"])
    worst = -math.inf if higher else math.inf
    families = []
    for family in manifest["families"]:
        trials = []
        for t in family["trials"]:
            record = records.get(t.get("run_id") or "")
            score = score_of(record, metric)
            trials.append({**t, "status": record.status if record else t.get("status", "pending"), "score": score})
        ran = [t for t in trials if t["status"] != "pending"]
        scores = np.array([worst if t["score"] is None else t["score"] for t in ran], dtype=float)
        curve = best_of_k(scores, higher, seed=int(manifest["seed"]), max_k=int(manifest["trials"]))
        scored = [t for t in ran if t["score"] is not None]
        best = (max if higher else min)(scored, key=lambda t: t["score"]) if scored else None
        families.append({
            "pair": family["pair"], "space": family["space"], "space_source": family["space_source"],
            "trials": trials, "curve": curve, "best": best, "confirm": _confirm_summary(family, records, metric),
            "failed_trials": len(ran) - len(scored), "ran_trials": len(ran),
            "expected_best_at_rank_k": curve[rank_at - 1]["mean"] if len(curve) >= rank_at else None,
        })
    sign = -1.0 if higher else 1.0
    order = sorted(families, key=lambda f: (f["expected_best_at_rank_k"] is None,
                                            sign * (f["expected_best_at_rank_k"] if f["expected_best_at_rank_k"]
                                                    is not None else 0.0)))
    for rank, f in enumerate(order, 1):
        f["rank"] = rank
    return {**{k: v for k, v in manifest.items() if k != "families"}, "rank_at": rank_at, "families": order}


def _confirm_summary(family: dict[str, Any], records: dict[str, RunRecord], metric: str) -> dict[str, Any] | None:
    confirm = family.get("confirm")
    if not confirm:
        return None
    runs = []
    for r in confirm.get("runs") or []:
        record = records.get(r.get("run_id") or "")
        runs.append({**r, "status": record.status if record else r.get("status"), "score": score_of(record, metric)})
    stats = summarize([r["score"] for r in runs])
    return {**confirm, "runs": runs, "mean": stats.mean, "std": stats.std, "n": stats.n, "ci95": stats.ci95}


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞ (a trial failed)" if value > 0 else "−∞ (a trial failed)"
    return f"{value:.{digits}g}"


def _confirm_text(confirm: dict[str, Any] | None) -> str:
    if not confirm:
        return "not re-run (--confirm-seeds 0)"
    if confirm.get("from_trial") is None:
        return confirm.get("note", "not re-run")
    seeds = ", ".join(f"s{r['seed']} {_num(r['score'])}" for r in confirm["runs"])
    return f"{_num(confirm['mean'])} ± {_num(confirm['std'], 3)} over {confirm['n']} seed(s) ({seeds})"


def markdown(summary: dict[str, Any]) -> str:
    """The study as Markdown: the ranking, then per family its curve and its trials."""
    metric, k = summary["metric"], summary["rank_at"]
    better = "higher" if summary["higher_is_better"] else "lower"
    lines = [
        f"# Tuning study: {summary['dataset']}, budget {summary['budget']} per trial",
        "",
        f"{summary['trials']} trials per family drawn with seed {summary['seed']}; scores: final {metric} "
        f"({better} is better); best-of-k from {RESAMPLES} resamples of the trials with replacement "
        "(Lucic et al. 2018). A diverged or failed trial counts as the worst score.",
        "",
        f"| rank | family | expected best of {k} | 95 % band | best trial | best configuration | re-run on fresh seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in summary["families"]:
        point = f["curve"][k - 1] if len(f["curve"]) >= k else None
        band = f"[{_num(point['low'])}, {_num(point['high'])}]" if point else "–"
        best = f["best"]
        lines.append(f"| {f['rank']} | {f['pair']} | {_num(f['expected_best_at_rank_k'])} | {band} | "
                     f"{_num(best['score']) if best else '–'} | {format_params(best['params']) if best else '–'} | "
                     f"{_confirm_text(f['confirm'])} |")
    for f in summary["families"]:
        lines += ["", f"## {f['pair']}", "",
                  f"Search space ({f['space_source']}): "
                  + "; ".join(f"{name} {dist}" for name, dist in f["space"].items()) + ".",
                  f"{f['ran_trials']} trials ran, {f['failed_trials']} without a score (diverged or failed).", "",
                  "| k | mean best | median | 95 % band |", "|---|---|---|---|"]
        lines += [f"| {p['k']} | {_num(p['mean'])} | {_num(p['median'])} | [{_num(p['low'])}, {_num(p['high'])}] |"
                  for p in f["curve"]]
        lines += ["", "| trial | configuration | status | score | run |", "|---|---|---|---|---|"]
        lines += [f"| {t['index'] + 1} | {format_params(t['params'])} | {t['status']} | {_num(t['score'])} | "
                  f"{t.get('run_id') or '–'} |" for t in f["trials"]]
    return "\n".join(lines) + "\n"


def figure(summary: dict[str, Any]) -> bytes | None:
    """Best score against the number of trials, one line and band per family (PNG bytes)."""
    from matplotlib.ticker import MaxNLocator

    from ganbench.results.plots import _figure, _png, _style

    families = [f for f in summary["families"] if f["curve"]]
    if not families:
        return None
    fig, (ax,) = _figure(1, panel=(6.4, 4.2))
    for f in families:
        ks = np.array([p["k"] for p in f["curve"]])
        mean = np.array([p["mean"] for p in f["curve"]], dtype=float)
        low = np.array([p["low"] for p in f["curve"]], dtype=float)
        high = np.array([p["high"] for p in f["curve"]], dtype=float)
        finite = np.isfinite(mean)
        (line,) = ax.plot(ks[finite], mean[finite], marker="o", markersize=3, label=f["pair"])
        band = np.isfinite(low) & np.isfinite(high)
        ax.fill_between(ks[band], low[band], high[band], color=line.get_color(), alpha=0.2, linewidth=0)
    better = "higher" if summary["higher_is_better"] else "lower"
    _style(ax, f"best {summary['metric']} found with k trials (mean, 95 % band)", "trials k",
           f"best {summary['metric']} ({better} is better)")
    ax.axvline(summary["rank_at"], color="0.5", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return _png(fig)


def write_study_report(results: Path) -> dict[str, Path]:
    """Write the report files of the study in ``results``; returns them by kind."""
    results = Path(results)
    summary = summarize_study(results)
    png = figure(summary)
    paths = {"json": results / f"{REPORT}.json", "md": results / f"{REPORT}.md", "html": results / f"{REPORT}.html"}
    write_json(paths["json"], summary)
    text = markdown(summary)
    write_text(paths["md"], text)
    if png:
        paths["png"] = results / FIGURE
        write_bytes(paths["png"], png)
    write_text(paths["html"], _html(text, png))
    return paths


def _html(text: str, png: bytes | None) -> str:
    """The Markdown as one HTML page (headings, paragraphs, pipe tables; every piece of text escaped), figure embedded."""
    body = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = [r for r in table if not all(set(c) <= {"-"} for c in r)]
            body.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr></thead>"
                        + "<tbody>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                              for r in rows) + "</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
            if png:
                body.append(f'<img alt="best score against the number of trials" '
                            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
             "text-align:left}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>ganbench tuning study</title>"
            f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n")
