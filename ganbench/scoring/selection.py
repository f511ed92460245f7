"""An honest "best checkpoint": chosen on held-out samples, reported on others.

Picking the evaluation with the best FID and reporting that same FID is
selection on the test set: with noisy scores and several evaluations the
minimum is biased low, and a run that peaked and collapsed looks as good as
one that kept improving (StudioGAN's DCGAN log: best FID 49.0 at 42k steps,
137.4 at the final 200k; REFERENCES §1.4). ganbench's leaderboards therefore
rank final scores only. With ``--select-best METRIC`` a run also keeps a
*selected* checkpoint, and the rule is:

- at every evaluation, METRIC is computed a second time on generated samples
  from a held-out seed (``heldout_seed``), at one sample count for every
  fraction, so that the selection scores are comparable with each other;
- the selected evaluation is the one whose held-out score is best;
- what is reported for it (``RunRecord.best``, leaderboard columns
  ``…@best``) are the scores of the regular evaluation at that fraction,
  computed on samples the selection never saw.

The weights at the selected point are saved as ``best.pt`` (networks only,
``weights_only``-loadable) with ``best.json`` beside it. The regular
evaluation uses the same latent batch at every fraction, and so does the
held-out one, so the two differ only in which samples they drew.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from ganbench.scoring.diversity import is_diversity_key
from ganbench.scoring.evaluation import EvalOptions, Evaluator
from ganbench.training.budget import Counters
from ganbench.results.leaderboard import higher_is_better
from ganbench.plugin.model import GanModel
from ganbench.results.records import EVALUATION_META, FAILED_METRICS, HELDOUT
from ganbench.training.checkpoint import on_cpu
from ganbench.results.store import read_json, save_torch, write_json

BEST_WEIGHTS, BEST_INFO = "best.pt", "best.json"


def heldout_seed(seed: int) -> int:
    """The evaluation seed of the selection samples: never a run seed, so never the regular samples."""
    return 1_000_000 + seed


def selection_options(options: EvalOptions) -> EvalOptions:
    """Only the selection metric, at the intermediate sample count at every fraction (final included)."""
    count = options.intermediate_samples or options.num_samples
    return replace(options, metrics=(options.select_best,), num_samples=count, intermediate_samples=None)


def regular_scores(evaluation: dict[str, Any]) -> dict[str, float]:
    """An evaluation's reported scores: without its location and without the held-out selection scores."""
    return {k: v for k, v in evaluation.items() if k not in EVALUATION_META and not k.startswith(HELDOUT)}


def selection_key(evaluation: dict[str, Any], metric: str) -> str | None:
    """The held-out score that ranks evaluations: the metric's main value (``fid…``, not ``isc…_std``)."""
    keys = [k for k in evaluation if k.startswith(HELDOUT + metric)]
    main = [k for k in keys if "_std" not in k]
    return (main or keys or [None])[0]


def best_of(evaluations: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The selected evaluation as recorded in ``RunRecord.best``; None without held-out scores."""
    scored = []
    for e in evaluations:
        key = selection_key(e, metric)
        value = e.get(key) if key else None
        if value is not None and math.isfinite(float(value)):
            scored.append((float(value), e, key))
    if not scored:
        return None
    sign = -1.0 if higher_is_better(scored[0][2].removeprefix(HELDOUT)) else 1.0
    value, chosen, key = min(scored, key=lambda item: (sign * item[0], item[1]["fraction"]))
    return {
        "fraction": chosen["fraction"], "step": chosen["step"], "kimg": chosen["kimg"],
        "selected_by": key.removeprefix(HELDOUT), "selection_value": value,
        "rule": f"best held-out {key.removeprefix(HELDOUT)} over {len(scored)} evaluations; "
                "scores from the regular evaluation samples",
        "scores": regular_scores(chosen),
    }


def with_selection(evaluate: Evaluator, select: Evaluator, model: GanModel, directory: Path,
                   metric: str) -> Evaluator:
    """An evaluator that also scores the held-out samples and keeps the weights of the best point so far.

    Whether a point is the best so far is read from ``best.json``, not kept in
    memory, so a resumed run compares with what its first process recorded.
    """
    directory = Path(directory)

    def evaluate_and_select(fraction: float, counters: Counters) -> dict[str, float]:
        scores = evaluate(fraction, counters)
        # only the selection metric's own scores: the diversity statistics come with the regular ones
        held = {f"{HELDOUT}{k}": v for k, v in select(fraction, counters).items() if not is_diversity_key(k) and k != FAILED_METRICS}
        key = selection_key(held, metric)
        if key is not None and _improves(directory / BEST_INFO, key, float(held[key])):
            save_torch(directory / BEST_WEIGHTS,  # CPU copies: a GPU run's best.pt loads on any machine
                       on_cpu({name: net.state_dict() for name, net in model.networks().items()}))
            write_json(directory / BEST_INFO, {"fraction": fraction, "step": counters.steps, "kimg": counters.kimg,
                                              "selected_by": key.removeprefix(HELDOUT), "selection_value": held[key]})
        return {**scores, **held}

    return evaluate_and_select


def _improves(info: Path, key: str, value: float) -> bool:
    if not math.isfinite(value):
        return False
    best = read_json(info)
    if not isinstance(best, dict):
        return True
    previous = float(best.get("selection_value", math.nan))
    if not math.isfinite(previous):
        return True
    return value > previous if higher_is_better(key.removeprefix(HELDOUT)) else value < previous
