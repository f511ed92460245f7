"""``ganbench tune``: an equal hyperparameter-search budget for every family (Lucic et al. 2018).

Lucic et al. ("Are GANs Created Equal?", 2018) found that most GAN families
reach similar scores once each gets the same number of hyperparameter trials
and restarts; a comparison that gives one family its paper's tuned settings
and another untuned defaults measures the tuning, not the family. A study
therefore gives every family the same K trials, drawn reproducibly from its
search space (:mod:`ganbench.study.search_space`), at the same budget, then re-runs
each family's best configuration on fresh seeds.

Every trial is an ordinary ``ganbench run`` of one configuration: it goes
through the invocation's executor (``local``, ``ray``) into an ordinary run
directory, so locks, resumes and the leaderboard work unchanged, and running
the same study again trains only what is missing. The study itself is a small
manifest, ``<results>/tune.json`` (which runs are whose trials); scores are
always read back from the runs' own ``run.json``. :mod:`ganbench.study.report`
turns it into the report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ganbench.errors import UsageError
from ganbench.plugin.naming import matching_scores
from ganbench.results.records import COMPLETED, RunRecord
from ganbench.study.search_space import LUCIC_WIDE, check_space, describe_space, draw_trials, format_params
from ganbench.results.store import read_json, write_json

#: The study manifest, next to ``runs/``.
MANIFEST = "tune.json"
SCHEMA_VERSION = 1
#: How the report names the default space when a family declares none.
LUCIC_SOURCE = "Lucic et al. 2018, wide space (REFERENCES §1.7)"


@dataclass(frozen=True)
class StudyRequest:
    """One ``ganbench tune``: the run options every trial shares, and the search itself.

    ``base`` is the invocation of an ordinary run (its ``plugins`` are the
    families to tune and its first seed the trials' seed); ``metric`` names the
    metric plugin whose final score picks the best trial; ``rank_at`` is the
    number of trials k at which families are ranked (default: all of them).
    """

    base: Any  # ganbench.execution.runner.Invocation; typed loosely so that this module imports no torch
    trials: int
    confirm_seeds: int = 0
    metric: str = "fid"
    rank_at: int | None = None

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1, got {self.trials}.")
        if self.confirm_seeds < 0:
            raise UsageError(f"--confirm-seeds must be 0 or more, got {self.confirm_seeds}.")
        if self.rank_at is not None and not 1 <= self.rank_at <= self.trials:
            raise UsageError(f"--rank-at must lie in 1..{self.trials} (the number of trials), got {self.rank_at}.")
        if self.metric not in self.base.evaluation.metrics:
            computed = ", ".join(self.base.evaluation.metrics) or "none"
            raise UsageError(f"--tune-metric {self.metric} is not computed by the runs (--metrics: {computed}); "
                             "add it to --metrics or pick one of those.")

    @property
    def seed(self) -> int:
        return self.base.seeds[0]


@dataclass(frozen=True)
class FamilyPlan:
    """One family's trials: the pair, its space and where it came from, and one invocation per trial."""

    pair: str
    space: Mapping[str, Any]
    space_source: str
    params: list[dict[str, Any]]
    invocations: list[Any]


def score_key(scores: Mapping[str, float], metric: str) -> str | None:
    """The key of ``metric``'s headline score among a run's scores (``fid`` -> ``fid2k[lenet-…]``,
    ``w1`` -> ``w1_10k``), found as the leaderboard finds ``--rank-by`` (:func:`matching_scores`)."""
    matches = matching_scores(metric, scores)
    return matches[0] if matches else None


def score_of(record: RunRecord | None, metric: str) -> float | None:
    """A run's final score for ``metric``, or None when it did not complete (diverged, failed, missing)."""
    if record is None or record.status != COMPLETED:
        return None
    key = score_key(record.scores, metric)
    return None if key is None else float(record.scores[key])


def plan_study(registry: Any, request: StudyRequest) -> list[FamilyPlan]:
    """Every trial of every family, drawn and checked before anything trains.

    Each trial is checked by planning it as an ordinary run, so a parameter a
    family cannot take is refused now, naming the family, not after the first
    trials have trained.
    """
    from ganbench.execution.runner import plan, resolve_pair

    plans: list[FamilyPlan] = []
    seen: set[str] = set()
    for text in request.base.plugins:
        model, objective = resolve_pair(registry, text)
        pair = f"{model.name}:{objective.name}"
        if pair in seen:
            continue
        seen.add(pair)
        owner = f"the family {model.name!r} ({registry.get('model', model.name).plugin})"
        if not isinstance(model.search_space or {}, Mapping):
            raise UsageError(f"The search space of {owner} is {model.search_space!r}; declare it as a mapping from "
                             "run-option names to distributions, e.g. {'lr': LogUniform(1e-5, 1e-2)}.")
        declared = dict(model.search_space or {})
        space = check_space(declared or LUCIC_WIDE, owner)
        source = f"declared by {model.name}" if declared else LUCIC_SOURCE
        params = draw_trials(space, request.trials, request.seed, pair)
        invocations = [trial_invocation(request.base, pair, p, (request.seed,)) for p in params]
        for p, inv in zip(params, invocations):
            try:
                plan(registry, inv)
            except UsageError as exc:
                raise UsageError(f"Trial {format_params(p)} of {owner} cannot run: {exc}") from None
        plans.append(FamilyPlan(pair, space, source, params, invocations))
    return plans


def trial_invocation(base: Any, pair: str, params: Mapping[str, Any], seeds: tuple[int, ...]) -> Any:
    """The ordinary invocation that trains one configuration of one family."""
    return replace(base, plugins=(pair,), seeds=seeds, settings=replace(base.settings, **params))


def run_study(registry: Any, request: StudyRequest,
              execute: Callable[[Any, Any], list[RunRecord]] | None = None) -> dict[str, Any]:
    """Train every trial (skipping finished ones), then re-run each family's best on fresh seeds.

    ``execute`` trains one invocation (default: :func:`ganbench.execution.runner.execute`, i.e. the executor the
    invocation names), one trial after another, and the manifest is rewritten after every trial, so an
    interrupted study shows what it has done and a re-run continues it. When ``execute`` is not given and
    the executor trains many invocations at once (``ExecutorSpec.execute_many``: ``ray``), every trial of
    every family goes to it together, then every family's re-runs, so they train side by side.
    Returns the manifest.
    """
    plans = plan_study(registry, request)
    manifest = _manifest(registry, request, plans)
    path = Path(request.base.results) / MANIFEST
    batch = None
    if execute is None:
        from ganbench.execution.executors import many_at_once
        from ganbench.execution.runner import execute

        batch = many_at_once(registry, request.base.executor.name)

    def train(jobs: list[tuple[str, Any]]) -> Iterator[list[RunRecord]]:
        """Each job's records, in order; one after another (saying which) unless the executor takes a batch."""
        if batch is not None:
            print(f"ganbench tune: {len(jobs)} invocation(s) to the {request.base.executor.name} executor at once",
                  file=sys.stderr, flush=True)
            yield from batch(registry, [inv for _, inv in jobs])
            return
        for label, inv in jobs:
            print(f"ganbench tune: {label}", file=sys.stderr, flush=True)
            yield execute(registry, inv)  # type: ignore[misc]

    trials = [(plan_, trial, inv) for plan_, family in zip(plans, manifest["families"])
              for trial, inv in zip(family["trials"], plan_.invocations)]
    labels = [f"{plan_.pair} trial {trial['index'] + 1}/{request.trials}: {format_params(trial['params'])}"
              for plan_, trial, _ in trials]
    for (_, trial, _), records in zip(trials, train([(label, inv) for label, (_, _, inv) in zip(labels, trials)])):
        trial["run_id"], trial["status"] = records[0].run_id, records[0].status
        write_json(path, manifest)
    if request.confirm_seeds:
        chosen = [(plan_, family, _best(registry, request, plan_, family))
                  for plan_, family in zip(plans, manifest["families"])]
        wanted = [(plan_, family, best) for plan_, family, best in chosen if best is not None]
        seeds = tuple(range(request.seed + 1, request.seed + 1 + request.confirm_seeds))
        jobs = [(f"{plan_.pair}: re-running the best trial ({format_params(best['params'])}) on seeds "
                 f"{', '.join(map(str, seeds))}", trial_invocation(request.base, plan_.pair, best["params"], seeds))
                for plan_, _, best in wanted]
        for (_, family, best), records in zip(wanted, train(jobs)):
            family["confirm"] = {"from_trial": best["index"], "params": best["params"],
                                 "runs": [{"seed": r.seed, "run_id": r.run_id, "status": r.status} for r in records]}
            write_json(path, manifest)
    write_json(path, manifest)
    return manifest


def _best(registry: Any, request: StudyRequest, plan_: FamilyPlan, family: dict[str, Any]) -> dict[str, Any] | None:
    """The family's best trial, to re-run on seeds it was not chosen on (so that its score is not a lucky
    draw's); None, noted in the manifest, when no trial completed with a score."""
    runs = Path(request.base.results) / "runs"
    scored = [(score_of(_read(runs, t["run_id"]), request.metric), t) for t in family["trials"]]
    scored = [(s, t) for s, t in scored if s is not None]
    if not scored:
        family["confirm"] = {"from_trial": None, "runs": [],
                             "note": "no trial completed with a score, so there is no best configuration to re-run"}
        return None
    higher = family_direction(registry, request.metric)
    return (max if higher else min)(scored, key=lambda st: st[0])[1]


def family_direction(registry: Any, metric: str) -> bool:
    """Whether a higher ``metric`` is better (from its plugin)."""
    return bool(registry.metric(metric).higher_is_better)


def _manifest(registry: Any, request: StudyRequest, plans: list[FamilyPlan]) -> dict[str, Any]:
    base = request.base
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": base.dataset,
        "budget": base.budget.text,
        "seed": request.seed,
        "trials": request.trials,
        "confirm_seeds": request.confirm_seeds,
        "rank_at": request.rank_at or request.trials,
        "metric": request.metric,
        "higher_is_better": family_direction(registry, request.metric),
        "executor": base.executor.name,
        "families": [
            {
                "pair": p.pair,
                "space": describe_space(p.space),
                "space_source": p.space_source,
                "trials": [{"index": i, "params": params, "run_id": None, "status": "pending"}
                           for i, params in enumerate(p.params)],
                "confirm": None,
            }
            for p in plans
        ],
    }


def _read(runs: Path, run_id: str | None) -> RunRecord | None:
    if not run_id:
        return None
    try:
        return RunRecord.read(runs / run_id / "run.json")
    except (OSError, ValueError, TypeError):
        return None


def read_study(results: Path) -> tuple[dict[str, Any], dict[str, RunRecord]]:
    """The manifest of the study in ``results`` and the records of every run it names (run id -> record)."""
    path = Path(results) / MANIFEST
    if not path.is_file():
        raise UsageError(f"No tuning study in {results}: {path} does not exist. Run one with "
                         f"`ganbench tune --results {results} ...`.")
    try:
        manifest = read_json(path)
        families = manifest["families"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"The study manifest {path} cannot be read ({type(exc).__name__}: {exc}); run the same "
                         "`ganbench tune` command again to rewrite it (finished trials are kept).") from None
    runs = Path(results) / "runs"
    ids = [t.get("run_id") for f in families for t in f["trials"]]
    ids += [r.get("run_id") for f in families for r in ((f.get("confirm") or {}).get("runs") or [])]
    records = {i: rec for i in ids if i and (rec := _read(runs, i)) is not None}
    return manifest, records
