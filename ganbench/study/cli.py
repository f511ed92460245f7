"""The ``ganbench tune`` command: its options and what it prints (the study itself is :mod:`ganbench.study.tuning`).

``tune`` takes every option of ``ganbench run`` (a trial *is* a run, so
everything a run can be told, a trial can be told too, including options added
to ``run`` later) plus the few that describe the search.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from ganbench.errors import UsageError

DEFAULT_RESULTS = "results"
#: Where a study goes inside the results directory ``run`` would use: results/tune, results/suites/NAME/tune.
STUDY_FOLDER = "tune"
DEFAULT_TRIALS = 8
#: Re-runs of each family's best configuration on fresh seeds; Lucic et al. re-run theirs many times (phase 3).
DEFAULT_CONFIRM_SEEDS = 3
DEFAULT_METRIC = "fid"
#: ``run`` options whose meaning differs for ``tune``: the help says how.
TUNE_HELP = {
    "plugins": "comma-separated families to tune, each optionally family:objective",
    "seed": "seed of the trials' draws and of their training runs; re-runs of the best use the next seeds",
    "seeds": "not used by tune: trials train on --seed, re-runs of the best on --confirm-seeds more",
    "results": "results directory of the study (runs go under DIR/runs; the report is DIR/tune-report.html)",
}


def add_tune_parser(sub: Any, run: argparse.ArgumentParser, suite_defaults: dict | None) -> argparse.ArgumentParser:
    """``tune``: the options of ``run`` (copied, so that changing them here leaves ``run`` alone) and the search's."""
    tune = sub.add_parser("tune", help="an equal hyperparameter-search budget per family (Lucic et al. 2018): K "
                          "trials each, best-of-k curves, the best configuration re-run on fresh seeds",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for action in run._actions:  # argparse's `parents` would share the action objects with `run`
        if action.dest != "help":
            mine = copy.copy(action)
            mine.help = TUNE_HELP.get(action.dest, action.help)
            tune._add_action(mine)
    search = tune.add_argument_group("search (see docs/tuning.md)")
    search.add_argument("--trials", type=_at_least(1), default=DEFAULT_TRIALS,
                        help="configurations drawn per family from its search space (the same ones for the same --seed)")
    search.add_argument("--confirm-seeds", type=_at_least(0), default=DEFAULT_CONFIRM_SEEDS,
                        help="re-run each family's best configuration on this many fresh seeds (0: none)")
    search.add_argument("--rank-at", type=_at_least(1), default=None,
                        help="rank families by the expected best score of this many trials (default: --trials)")
    search.add_argument("--tune-metric", default=DEFAULT_METRIC,
                        help="the metric (one of --metrics) whose final score picks the best trial")
    if suite_defaults:
        tune.set_defaults(**suite_defaults)
    # a study's runs are trials, not the suite's or `run`'s rows: they live apart, in a tune/ folder of the results
    tune.set_defaults(results=str(Path((suite_defaults or {}).get("results", DEFAULT_RESULTS)) / STUDY_FOLDER))
    return tune


def _at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def cmd_tune(args: argparse.Namespace, registry: Any) -> int:
    """Run (or continue) the study, write its report, print the ranking; 1 when a trial could not run."""
    from dataclasses import replace

    from ganbench.cli import check_run_numbers, invocation_from_args
    from ganbench.results.records import COMPLETED, DIVERGED
    from ganbench.study.report import markdown, summarize_study, write_study_report
    from ganbench.study.tuning import StudyRequest, run_study

    if args.resume and args.fresh:
        raise UsageError("--resume and --fresh contradict each other; choose one.")
    check_run_numbers(args)
    base = replace(invocation_from_args(args), seeds=(args.seed,))
    request = StudyRequest(base=base, trials=args.trials, confirm_seeds=args.confirm_seeds,
                           metric=args.tune_metric, rank_at=args.rank_at)
    print(f"ganbench tune: {', '.join(base.plugins)} on {base.dataset}, {args.trials} trials per family at "
          f"{base.budget.text} each, {args.confirm_seeds} confirming seed(s); results in {base.results}",
          file=sys.stderr, flush=True)
    run_study(registry, request)
    paths = write_study_report(base.results)
    summary = summarize_study(base.results)
    print(markdown(summary).split("\n## ")[0])
    print(f"report: {paths['html']} (also {paths['md'].name}, {paths['json'].name})")
    statuses = [t["status"] for f in summary["families"] for t in f["trials"]]
    statuses += [r["status"] for f in summary["families"] for r in ((f["confirm"] or {}).get("runs") or [])]
    bad = [s for s in statuses if s not in (COMPLETED, DIVERGED)]  # a diverged trial is a result of the search
    return 1 if bad else 0
