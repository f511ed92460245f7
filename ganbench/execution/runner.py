"""From an invocation to run records: plan every run, then train them one by one.

Planning resolves and checks every name, pair and option *before* any data
is loaded or any step is taken, so a typo in the third plugin never wastes
the first two runs. Execution isolates runs from each other: one that
diverges or raises is recorded with its status and the rest go on.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ganbench import __version__
from ganbench.training.budget import Budget
from ganbench.plugin.data import DATA_PLACEMENTS, BatchStream, DatasetRequest, ImageDataset, check_image_limits, data_on_device
from ganbench.execution.environment import capture, device_model, device_name
from ganbench.execution.executors import ExecutorOptions
from ganbench.scoring.evaluation import EvalOptions, Evaluator, make_evaluator, preflight
from ganbench.plugin.contracts import OBJECTIVE_METHODS, check_built
from ganbench.errors import ContractError, GanbenchError, UnknownNameError, UsageError
from ganbench.training.loop import TrainingLoop
from ganbench.plugin.model import BuildContext, GanModel, TrainSettings
from ganbench.plugin.objective import Objective
from ganbench.training.capacity import check_matchable, matched_context, matched_options
from ganbench.training.options import (
    batch_for, build_model, check_training_options, recorded_settings, settings_of,
)
from ganbench.plugin.registry import Registry
from ganbench.training import backends
from ganbench.training import checkpoint
from ganbench.plugin import options
from ganbench.execution import signals
from ganbench.execution.lock import RunLock, RunLockedError
from ganbench.results.plots import plot_run
from ganbench.training.speed import check_precision
from ganbench.plugin.datakinds import refuse_mismatches
from ganbench.training.packing import check_pack
from ganbench.scoring.selection import (
    BEST_INFO, BEST_WEIGHTS, best_of, heldout_seed, regular_scores, selection_options, with_selection,
)
from ganbench.scoring.diversity import judge
from ganbench.results.records import COMPLETED, FAILED, FAILED_METRICS, FINAL, INTERRUPTED, LOCKED, RunConfig, RunInfo, RunRecord, fraction_label
from ganbench.plugin.specs import DatasetSpec, ModelSpec, ObjectiveSpec
from ganbench.results import store
from ganbench.results.store import write_json, write_text


@dataclass(frozen=True)
class Invocation:
    """What one ``ganbench run`` asks for, validated at the edge."""

    plugins: tuple[str, ...] = ("vanilla", "dcgan")
    dataset: str = "digits"
    budget: Budget = field(default_factory=lambda: Budget.parse("60s"))
    seeds: tuple[int, ...] = (0,)
    results: Path = Path("results")
    data_dir: Path = Path(".")
    device: str = "auto"
    settings: TrainSettings = field(default_factory=TrainSettings)
    resolution: int | None = None
    log_every: int = 10
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    download: bool = True
    checkpoint_every: int | None = None
    fresh: bool = False
    #: A run another process is training is waited for (after every other run) rather than skipped.
    wait_for_locks: bool = True
    deterministic: bool = False
    #: Experiment trackers (listener plugins) to log to, e.g. ('tensorboard', 'mlflow'); see ganbench.tracking.
    log_to: tuple[str, ...] = ()
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    #: auto, yes or no: keep the uint8 dataset on the training device (see ganbench.plugin.data.data_on_device).
    data_on_device: str = "auto"
    #: Per-plugin options by family or objective name (``--option NAME.KEY=VALUE``); see ganbench.plugin.options.
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``--pack``: every family trains once per pack size (1: the plain discriminator; see ganbench.training.packing).
    packs: tuple[int, ...] = (1,)
    #: ``--plugin-module`` targets (and ``GANBENCH_PLUGIN_MODULES``'s), files as absolute paths
    #: (``ganbench.plugin.registry.module_targets``): an executor's workers load them before resolving any plugin.
    plugin_modules: tuple[str, ...] = ()

    @property
    def runs_dir(self) -> Path:
        return Path(self.results) / "runs"


@dataclass(frozen=True)
class PlannedRun:
    config: RunConfig
    model: ModelSpec
    objective: ObjectiveSpec

    @property
    def directory_name(self) -> str:
        return self.config.run_id


def resolve_device(requested: str) -> torch.device:
    """'auto' picks CUDA when present; any other name must be a device this machine has.

    Asking for CUDA without one, or for a GPU index beyond those visible, is a
    usage error listing what is present, never a silent fallback or a failure
    deep inside a run.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"Unknown device {requested!r}; use auto, cpu, cuda or cuda:N. {present_devices()}") from None
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index not in (None, 0)):
        raise UsageError(f"Unsupported device {requested!r}; use auto, cpu, cuda or cuda:N. {present_devices()}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--device {requested} was requested but no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). Use --device cpu, or run on a machine with a GPU."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {requested} names a GPU this machine does not have. {present_devices()}")
    return device


def present_devices() -> str:
    """The devices torch sees here, as a sentence for error messages (CUDA_VISIBLE_DEVICES applied)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" with CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return f"Devices present{where}: {', '.join(names)}."


def split_name(text: str) -> tuple[str, str | None]:
    name, sep, argument = text.partition(":")
    return name.strip(), (argument if sep else None)


def resolve_pair(registry: Registry, text: str) -> tuple[ModelSpec, ObjectiveSpec]:
    """'family' or 'family:objective' to checked specs; incompatible pairs are refused with the reason."""
    family_name, objective_name = split_name(text)
    model = registry.model(family_name)
    objective = registry.objective(objective_name or model.default_objective)
    compatible = [
        name for name in registry.names("objective")
        if registry.objective(name).needs == model.provides and (not model.objectives or name in model.objectives)
    ]
    if objective.name not in compatible:
        why = (
            f"its discriminator provides a {model.provides!r} but {objective.name!r} needs a {objective.needs!r}"
            if objective.needs != model.provides
            else f"the family supports only {', '.join(model.objectives)}"
        )
        raise UsageError(
            f"The family {model.name!r} cannot train with the objective {objective.name!r}: {why}. "
            f"Objectives that work with {model.name!r}: {', '.join(compatible) or '(none installed)'}."
        )
    return model, objective


def plan(registry: Registry, inv: Invocation, device_type: str | None = None) -> list[PlannedRun]:
    """Every run of the invocation, checked; raises before anything is trained.

    ``device_type`` ('cpu' or 'cuda') is where the runs will train when that is
    not this machine (an executor's workers); by default ``inv.device`` resolved here.
    """
    if not inv.plugins:
        raise UsageError("No plugins to run; name at least one with --plugins (see `ganbench plugins`).")
    if not inv.seeds:
        raise UsageError("No seeds to run; --seeds must be at least 1.")
    dataset_name, _ = split_name(inv.dataset)
    registry.dataset(dataset_name)
    for metric in inv.evaluation.metrics:
        registry.metric(metric)
    select = inv.evaluation.select_best
    if select is not None and select not in inv.evaluation.metrics:
        raise UsageError(
            f"--select-best {select} names a metric that is not computed; add it to --metrics "
            f"(now: {', '.join(inv.evaluation.metrics) or 'none'}) or choose one of those."
        )
    listeners = {info.name for info in registry.listeners}
    for name in inv.log_to:  # a misspelt tracker is refused now, not discovered after hours of training
        if name not in listeners:
            raise UnknownNameError("listener", name, listeners,
                                   "--log-to names listener plugins such as tensorboard, mlflow and wandb.")
    kind = device_type or resolve_device(inv.device).type
    if inv.data_on_device not in DATA_PLACEMENTS:
        raise UsageError(f"--data-on-device must be one of {', '.join(DATA_PLACEMENTS)}, not {inv.data_on_device!r}.")
    check_training_options(inv.settings)
    planned: list[PlannedRun] = []
    seen: set[tuple[str, str, int]] = set()
    pairs = [resolve_pair(registry, text) for text in inv.plugins]
    options.check_targets(inv.plugin_options, [spec.name for pair in pairs for spec in pair])
    refuse_mismatches(registry, dataset_name, [m.name for m, _ in pairs], inv.evaluation.metrics)
    for model, _ in pairs:
        if inv.settings.recipe == "matched":
            check_matchable(model, inv.plugin_options.get(model.name, {}), str(registry.get("model", model.name).plugin))
        for m in inv.packs:
            check_pack(model.name, model.packable, m, batch_for(model, inv.settings))
    for (model, objective), m in ((pair, m) for pair in pairs for m in inv.packs):
        if (model.name, objective.name, m) in seen:
            continue
        seen.add((model.name, objective.name, m))
        chosen = options.resolve(inv.plugin_options, (model, objective))
        recipes = {role: recipe.as_dict() for role, recipe in build_objective(objective, chosen).optimizers.items()}
        for seed in inv.seeds:
            s = inv.settings
            config = RunConfig(**{
                **recorded_settings(s),  # every setting, under its own name; then what planning resolves
                "family": model.name,
                "objective": objective.name,
                "dataset": inv.dataset,
                "budget": inv.budget.text,
                "seed": seed,
                "device": kind,
                "batch_size": batch_for(model, s),
                "precision": check_precision(s.precision),
                "pack": m,
                "resolution": inv.resolution,
                "log_every": inv.log_every,
                "metrics": inv.evaluation.metrics,
                "evaluation": _evaluation_config(inv.evaluation),
                "options": chosen,
                "objective_optimizers": recipes,
            })
            planned.append(PlannedRun(config, model, objective))
    return planned


def build_objective(spec: ObjectiveSpec, chosen: dict[str, dict[str, Any]]) -> Objective:
    """A fresh objective built with its options (its declared defaults, then what the user chose)."""
    given = options.with_defaults(spec, chosen.get(spec.name, {}))
    return spec.build(**given) if given else spec.build()


def family_options(spec: ModelSpec, config: RunConfig) -> dict[str, Any]:
    """What ``BuildContext.settings.options`` holds for a run's family: its declared defaults, then the user's."""
    return options.with_defaults(spec, config.options.get(config.family, {}))


def _evaluation_config(options: EvalOptions) -> dict[str, Any]:
    """The scoring protocol as recorded in the run config (the cache location is not part of it)."""
    if not options.metrics:
        return {}
    return {
        "extractor": options.extractor,
        "num_samples": options.num_samples,
        "intermediate_samples": options.intermediate_samples,
        "fractions": list(options.fractions),
        "inception_weights": str(options.inception_weights) if options.inception_weights else None,
        # only when set, so that runs without selection keep the run ids they had before the option existed
        **({"select_best": options.select_best} if options.select_best else {}),
    }


def load_dataset(registry: Registry, inv: Invocation) -> ImageDataset:
    name, argument = split_name(inv.dataset)
    spec: DatasetSpec = registry.dataset(name)
    request = DatasetRequest(name, argument, Path(inv.data_dir), inv.download, inv.resolution or spec.default_resolution)
    dataset = spec.load(request)
    if not isinstance(dataset, ImageDataset):
        raise GanbenchError(f"The dataset plugin {name!r} returned {type(dataset).__name__}, not an ImageDataset.")
    if dataset.kind != spec.data_kind:
        raise GanbenchError(f"The dataset plugin {name!r} ({registry.get('dataset', name).plugin}) declares "
                            f"{spec.data_kind} data but returned {dataset.kind} data; its DatasetSpec.data_kind is wrong.")
    if dataset.kind != "image":
        if inv.resolution:
            raise UsageError(f"The dataset {name!r} holds {dataset.dim}-D vectors, not images; --resolution "
                             "applies to images only. Leave it out.")
        return dataset
    if request.resolution:
        dataset = dataset.resized(request.resolution)
    check_image_limits(dataset.name, len(dataset), dataset.channels, dataset.resolution)
    return dataset


def check_requirements(planned: list[PlannedRun], dataset: ImageDataset) -> None:
    """What the runs need of the data (labels, enough images for a batch), checked before any of them trains."""
    for run in planned:
        if run.model.requires_labels and dataset.labels is None:
            raise UsageError(
                f"The family {run.model.name!r} needs class labels, but the dataset {dataset.name!r} has none. "
                "Pick a labelled dataset (digits, mnist, cifar10, or an imagefolder with one sub-folder per class)."
            )
    batch = max((run.config.batch_size for run in planned), default=0)
    if batch > len(dataset):  # a smaller batch than the config records would make it lie
        raise UsageError(
            f"--batch-size {batch} is larger than the dataset {dataset.name!r}, which holds "
            f"{len(dataset):,} images. Use --batch-size {len(dataset)} or less."
        )


def size_matched(registry: Registry, planned: list[PlannedRun], dataset: ImageDataset) -> None:
    """Under ``--recipe matched``, size every family for the data now (cached for training), so that one which
    cannot be matched is refused with its reasons before any run trains (ganbench.training.capacity)."""
    for run in planned:
        if run.config.recipe != "matched":
            continue
        settings = settings_of(run.config, family_options(run.model, run.config))
        objective = build_objective(run.objective, run.config.options)
        ctx = BuildContext(dataset.info, objective, settings, torch.device("cpu"), run.config.seed)
        matched_options(run.model, ctx, str(registry.get("model", run.model.name).plugin))


def with_data_fingerprint(run: PlannedRun, dataset: ImageDataset) -> PlannedRun:
    """The run with the dataset's content fingerprint in its identity, when the dataset plugin gives one.

    A folder of the user's images can change under the same name; a finished
    run on the old content must not be taken for a run on the new one.
    """
    fingerprint = dataset.meta.get("fingerprint")
    if not fingerprint:
        return run
    return replace(run, config=replace(run.config, data_fingerprint=str(fingerprint)))


def with_dataset_extractor(registry: Registry, inv: Invocation) -> Invocation:
    """The invocation with the dataset's ``default_extractor`` when the user named none.

    Applied when scoring, not when planning: the run config keeps recording what
    the user asked for, so the ids of existing runs do not change.
    """
    return replace(inv, evaluation=dataset_extractor(registry, inv.dataset, inv.evaluation))


def dataset_extractor(registry: Registry, dataset: str, options: EvalOptions) -> EvalOptions:
    """``options`` with ``dataset``'s ``default_extractor`` (its ``DatasetSpec`` field) when they name none.

    The one place the default is read, for ``ganbench run`` and ``ganbench score`` alike; with
    neither, the metric plugin uses its own default (Inception for torch-fidelity's metrics).
    """
    if options.extractor is not None:
        return options
    extractor = registry.dataset(split_name(dataset)[0]).default_extractor
    return options if extractor is None else replace(options, extractor=extractor)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_writable(results: Path) -> None:
    """Fail before training, not after, when results cannot be written."""
    store.check_writable(Path(results) / "runs", "results", "Choose a writable directory with --results DIR.")


def execute(registry: Registry, inv: Invocation) -> list[RunRecord]:
    """Train every run of the invocation with its executor (``local`` unless it names another)."""
    from ganbench.execution.executors import execute as dispatch

    return dispatch(registry, inv)


def run_locally(registry: Registry, inv: Invocation) -> list[RunRecord]:
    """The ``local`` executor: plan, load the data once, and train every run here, one after another."""
    planned = plan(registry, inv)
    check_writable(inv.results)
    return train_planned(registry, inv, planned, load_dataset(registry, inv))


def train_planned(registry: Registry, inv: Invocation, planned: list[PlannedRun], dataset: ImageDataset) -> list[RunRecord]:
    """Train planned runs in this process, one after another (how every executor's worker trains)."""
    check_requirements(planned, dataset)
    size_matched(registry, planned, dataset)
    inv = with_dataset_extractor(registry, inv)
    planned = [with_data_fingerprint(run, dataset) for run in planned]
    backends.configure(inv.deterministic)  # before anything runs on the device: cuBLAS reads its setting at start
    device = resolve_device(inv.device)
    if inv.evaluation.metrics:
        preflight([registry.metric(m) for m in inv.evaluation.metrics], dataset, inv.evaluation, device)
    environment = capture(device, registry.distributions())
    records: dict[int, RunRecord] = {}
    held_elsewhere: list[tuple[int, RunLockedError]] = []
    for index, run in enumerate(planned):
        try:
            records[index] = train_one(registry, run, dataset, inv, device, environment)
        except RunLockedError as exc:  # another process owns this run; the others still go ahead
            if inv.wait_for_locks:
                held_elsewhere.append((index, exc))
            else:
                print(f"skipped: {exc}", file=sys.stderr)
                records[index] = _locked_record(planned[index].config, exc)
    for index, held in held_elsewhere:  # only now, so that waiting never delays a run nobody else is training
        run = planned[index]
        print(f"waiting for {run.config.run_id}: {held.holder} is training it; its result is used once it "
              "lets go (Ctrl-C stops waiting; --no-wait skips runs another process holds)", file=sys.stderr, flush=True)
        try:
            records[index] = train_one(registry, run, dataset, inv, device, environment, wait=True)
        except RunLockedError as exc:  # a lease on a filesystem without shared flock: waiting cannot settle it
            print(f"skipped: {exc}", file=sys.stderr)
            records[index] = _locked_record(run.config, exc)
    return [records[index] for index in range(len(planned))]


def _locked_record(config: RunConfig, exc: RunLockedError) -> RunRecord:
    return RunRecord(
        run_id=config.run_id, family=config.family, objective=config.objective, dataset=config.dataset,
        budget=config.budget, seed=config.seed, status=LOCKED, error=str(exc),
    )


def train_one(
    registry: Registry,
    run: PlannedRun,
    dataset: ImageDataset,
    inv: Invocation,
    device: torch.device,
    environment: dict[str, Any],
    wait: bool = False,
) -> RunRecord:
    """Train and record one run. Errors inside the run become its status, never the others' problem.

    A run that already finished with the same config is skipped; one with a
    checkpoint continues from it exactly (unless ``inv.fresh``). With ``wait``,
    a run another process holds is waited for, then treated the same way.
    """
    config = run.config
    directory = inv.runs_dir / config.run_id
    directory.mkdir(parents=True, exist_ok=True)
    with RunLock(directory, wait=wait):
        previous = _previous_record(directory, config)
        if previous is not None and previous.status in FINAL and not inv.fresh:
            return previous
        return _train_locked(registry, run, dataset, inv, device, environment, directory)


def _previous_record(directory: Path, config: RunConfig) -> RunRecord | None:
    try:
        record = RunRecord.read(directory / "run.json")
    except (OSError, ValueError, TypeError):
        return None
    return record if record.config_hash == config.config_hash else None


def _train_locked(
    registry: Registry,
    run: PlannedRun,
    dataset: ImageDataset,
    inv: Invocation,
    device: torch.device,
    environment: dict[str, Any],
    directory: Path,
) -> RunRecord:
    config = run.config
    if inv.fresh:  # gone before anything else is written: an interrupted --fresh must not resume the old weights
        for name in FRESH_DISCARDS:
            (directory / name).unlink(missing_ok=True)
    (directory / "traceback.txt").unlink(missing_ok=True)  # an old failure's traceback must not outlive it
    write_json(directory / "config.json", config.as_dict())
    write_json(directory / "environment.json", environment)
    info = RunInfo(config.run_id, config, directory, inv.budget.amount, inv.budget.kind, inv.log_to, inv.fresh)
    record = RunRecord(
        run_id=config.run_id, family=config.family, objective=config.objective, dataset=config.dataset,
        budget=config.budget, seed=config.seed, device=device_name(device), device_model=device_model(device),
        started_at=_now(),
        config_hash=config.config_hash, ganbench_version=__version__, speed=config.speed_label,
        recipe=config.recipe_label, ema=config.ema_kimg is not None, hparams=config.hparams_label,
        pack=str(config.pack) if config.pack > 1 else "",
    )
    write_json(directory / "run.json", record.as_dict())
    registry.notify("ganbench_run_started", run=info)
    loop: TrainingLoop | None = None
    try:
        resume = None if inv.fresh else _resumable(checkpoint.load_latest(directory), directory)
        torch.manual_seed(config.seed)
        settings = settings_of(config, family_options(run.model, config))
        objective = build_objective(run.objective, config.options)
        check_built(objective, Objective, OBJECTIVE_METHODS, kind="objective")
        ctx = BuildContext(dataset.info, objective, settings, device, config.seed)
        ctx = matched_context(run.model, ctx, str(registry.get("model", run.model.name).plugin))
        if config.recipe == "matched":  # the sizes ganbench chose (ganbench.training.capacity), for the record
            record.capacity_knobs = {k: ctx.settings.options[k] for k in run.model.capacity_knobs}
        model = build_model(run.model, ctx)
        counts = model.parameter_counts()
        record.params_generator = sum(v for k, v in counts.items() if k.startswith("generator"))
        record.params_discriminator = sum(v for k, v in counts.items() if not k.startswith("generator"))
        record.data_on_device = data_on_device(inv.data_on_device, dataset, device)
        stream = BatchStream(dataset, config.batch_size, config.seed, device, on_device=record.data_on_device)
        evaluator, fractions = None, ()
        if inv.evaluation.metrics:
            specs = [registry.metric(name) for name in inv.evaluation.metrics]
            origins = {name: str(registry.get("metric", name).plugin) for name in inv.evaluation.metrics}
            evaluator = make_evaluator(specs, model, dataset, inv.evaluation, device, config.seed, origins)
            fractions = tuple(sorted(set(inv.evaluation.fractions) | {1.0}))
            if inv.evaluation.select_best:
                evaluator = _selecting(registry, evaluator, model, dataset, inv, device, config.seed, directory,
                                       fresh_start=resume is None)

        def on_eval(fraction: float, counters: Any, scores: dict[str, float]) -> None:
            numbers = {k: v for k, v in scores.items() if k != FAILED_METRICS}  # the failures are in scores.json
            row = {"fraction": fraction, "step": counters.steps, "kimg": counters.kimg, **numbers}
            registry.notify("ganbench_evaluation_done", run=info, scores=row)

        loop = TrainingLoop(
            model, stream, inv.budget, info, device,
            on_row=lambda row: registry.notify("ganbench_step_logged", run=info, record=row),
            evaluator=evaluator, eval_fractions=fractions, on_eval=on_eval,
            checkpoint_every=inv.checkpoint_every,
        )
        with signals.stop_at_step_end():
            outcome = loop.run(resume=resume)
        record.status = outcome.status
        record.losses = outcome.losses
        record.diverged_at_step = outcome.diverged_at_step
        record.error = outcome.error
        record.resumed_from_step = int(resume["counters"]["steps"]) if resume else None
        if outcome.status == COMPLETED:
            record.relative_throughput = _relative_throughput(model, dataset, config, device, outcome.counters.steps)
    except KeyboardInterrupt as exc:
        who = "a SIGTERM (a scheduler stopping the job)" if isinstance(exc, signals.Terminated) else "the user"
        record.status, record.error = INTERRUPTED, f"interrupted by {who}; run the same command again to resume"
        _finish(registry, info, record, loop, directory)
        raise
    except ContractError as exc:  # a plugin's fault: name it and where it came from
        name = config.family if exc.kind == "model" else config.objective
        origin = registry.get(exc.kind, name).plugin
        what = "family" if exc.kind == "model" else exc.kind
        broke = str(exc) if exc.contract else f"contract: {exc}"  # "contract <id>: <detail>" when it has an id
        record.status, record.error = FAILED, f"The {what} {name!r} ({origin}) broke the plugin {broke}"
        write_text(directory / "traceback.txt", traceback.format_exc())
    except GanbenchError as exc:
        record.status, record.error = FAILED, str(exc)
    except BaseException as exc:  # noqa: BLE001 - isolate the run (out-of-memory, a plugin's SystemExit); the
        # traceback is kept next to its record, and run.json never stays at 'running'
        record.status, record.error = FAILED, f"{type(exc).__name__}: {exc}"
        write_text(directory / "traceback.txt", traceback.format_exc())
    _finish(registry, info, record, loop, directory)
    return record


def _relative_throughput(model: GanModel, dataset: ImageDataset, config: RunConfig, device: torch.device,
                         step: int) -> float | None:
    """The gate's machine-independent speed figure (:mod:`.calibration`); a failure costs the figure, not the run."""
    from ganbench.training.calibration import MIN_RUN_STEPS, relative_throughput

    if step < MIN_RUN_STEPS:
        return None
    try:
        value = relative_throughput(model, dataset, config.batch_size, device, config.seed, step=step)
    except Exception as exc:  # noqa: BLE001 - the run itself completed; see the docstring
        print(f"warning: could not measure the relative throughput of {config.run_id}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return None
    return None if value is None else round(value, 4)


#: What ``--fresh`` deletes before training: every file a later resume or report could take for this attempt's.
FRESH_DISCARDS = (checkpoint.CURRENT, checkpoint.PREVIOUS, checkpoint.SIDECAR, "scores.json", BEST_INFO, BEST_WEIGHTS)
#: Keys every ganbench checkpoint holds (see ``TrainingLoop.state_dict``).
CHECKPOINT_KEYS = ("networks", "optimizers", "extra", "counters", "stream", "rows", "evaluations", "pending", "rng")


def _resumable(state: Any, directory: Path) -> dict | None:
    """A checkpoint that loads but lacks what the loop restores gets a hint instead of a ``KeyError``."""
    if state is None:
        return None
    missing = [k for k in CHECKPOINT_KEYS if k not in state] if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if missing:
        raise checkpoint.CheckpointError(
            f"{directory / checkpoint.CURRENT} loads but is not a ganbench checkpoint (no {', '.join(missing)}). "
            "Rerun with --fresh to train the run again from scratch, or delete that run directory."
        )
    return state


def _finish(registry: Registry, info: RunInfo, record: RunRecord, loop: TrainingLoop | None, directory: Path) -> None:
    select_best = info.config.evaluation.get("select_best")
    if loop is not None:
        c = loop.counters
        record.steps, record.images = c.steps, c.images
        record.g_updates, record.d_updates = round(c.g_updates, 3), round(c.d_updates, 3)
        record.gflops_g, record.gflops_d = loop.gflops
        record.train_seconds, record.eval_seconds = round(c.train_seconds, 4), round(c.eval_seconds, 4)
        record.warmup_seconds, record.compile_seconds = round(c.warmup_seconds, 4), round(c.compile_seconds, 4)
        record.images_per_second = round(c.images_per_second, 2)
        record.overshoot_seconds = c.overshoot_seconds
        if loop.evaluations:
            write_json(directory / "scores.json", loop.evaluations)
            # only the evaluation at 100 % is "final": a diverged run has intermediate scores, no final ones
            final = [e for e in loop.evaluations if e["fraction"] >= 1.0]
            record.scores = regular_scores(final[-1]) if final else {}
            record.collapsed, record.collapse_note = judge(record.scores)
            record.scores_at = {fraction_label(e["fraction"]): regular_scores(e)
                                for e in loop.evaluations if e["fraction"] < 1.0}
            if select_best:
                record.best = best_of(loop.evaluations, select_best)
    record.finished_at = _now()
    write_json(directory / "run.json", record.as_dict())
    if record.status != INTERRUPTED:  # the user wants out now; `ganbench report` draws them later
        _plot(directory)
    registry.notify("ganbench_run_finished", run=info, record=record)


def _plot(directory: Path) -> None:
    """Draw the run's figures; a figure that cannot be drawn never costs a result."""
    try:
        plot_run(directory)
    except Exception as exc:  # matplotlib failures must not turn a completed run into a failed one
        print(f"warning: could not draw the plots of {directory.name}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _selecting(registry: Registry, evaluator: Evaluator, model: GanModel, dataset: ImageDataset, inv: Invocation,
               device: torch.device, seed: int, directory: Path, fresh_start: bool) -> Evaluator:
    """The evaluator, also scoring held-out samples to select a best checkpoint (see :mod:`.selection`)."""
    if fresh_start:  # a previous attempt's selection must not outlive its weights
        for name in (BEST_INFO, BEST_WEIGHTS):
            (directory / name).unlink(missing_ok=True)
    metric = inv.evaluation.select_best
    select = make_evaluator([registry.metric(metric)], model, dataset, selection_options(inv.evaluation),
                            device, heldout_seed(seed))
    return with_selection(evaluator, select, model, directory, metric)


def all_completed(records: list[RunRecord]) -> bool:
    return all(r.status == COMPLETED for r in records)
