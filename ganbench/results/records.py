"""The results schema: what a run directory holds, key by key.

A run directory (``<results>/runs/<run_id>/``) contains:

``config.json``       the resolved :class:`RunConfig` (everything that defines the run)
``environment.json``  versions of python, torch, ganbench and every plugin distribution; device
``curves.csv``        one row per logged interval: step, kimg, seconds, fraction, every loss/diagnostic
``samples/``          PNG grids of a fixed latent batch at budget fractions; ``final.png``
``checkpoint.pt``     final weights, optimisers and family state (safe to ``torch.load(weights_only=True)``)
``scores.json``       metric values at each evaluated budget fraction
``run.json``          the :class:`RunRecord`: status, counters, final losses and scores, the
                      hyperparameters set away from their defaults (``hparams``),
                      scores at intermediate budget fractions, and whether the final
                      samples collapsed (``collapsed``, ``collapse_note``)
``checkpoint.prev.pt``  the previous good checkpoint, used when the latest is corrupt
``checkpoint.json``   size and sha256 of each checkpoint, to detect a truncated or altered file
``run.lock``          held while a process trains the run (a second process is refused)
``traceback.txt``     the full traceback of a run that failed with an unexpected error
``best.pt``, ``best.json``  with ``--select-best``: weights and place of the checkpoint chosen on held-out samples
``plots/``            losses.png, convergence.png (M_global or generic signals), quality.png
``trackers.json``     with ``--log-to``: each tracker's own run id and the last step, evaluation and grids it was
                      sent, so a resumed run continues the tracker run without sending a point twice
``tensorboard/``, ``wandb/``  with ``--log-to tensorboard`` / ``wandb``: the trackers' own files
``external.json``     only in ``runs/external-<name>/``, written by ``ganbench score --results``: the source and
                      protocol of a model ganbench did not train (its ``run.json`` has status ``external``)

Leaderboards are pandas views over ``run.json`` files; nothing else is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

#: Keys of a ``scores.json`` entry that locate an evaluation rather than score it.
#: The key of an evaluation (in scores.json) naming each metric that failed there, with its error text.
FAILED_METRICS = "errors"
EVALUATION_META = ("fraction", "step", "kimg", FAILED_METRICS)
#: Prefix of the held-out selection scores in ``scores.json`` (:mod:`ganbench.scoring.selection`); never reported as scores.
HELDOUT = "heldout:"


def fraction_label(fraction: float) -> str:
    """0.25 -> '25%': how an evaluation's budget fraction names it in records and leaderboards."""
    return f"{fraction * 100:.4g}%"


#: Run statuses. Only 'completed' runs are ranked; the others are shown, never dropped.
COMPLETED, DIVERGED, FAILED, RUNNING, INTERRUPTED = "completed", "diverged", "failed", "running", "interrupted"
#: A model ganbench did not train, scored with ``ganbench score --results``: ranked by its scores, never
#: counted as trained under a budget (its budget is 'external' too).
EXTERNAL = "external"
#: Not a stored status: the run was being trained by another process, so this invocation left it alone.
LOCKED = "locked"
#: Statuses a re-run of the same command leaves alone; the others are resumed.
FINAL = (COMPLETED, DIVERGED)


def short_dataset_name(dataset: str) -> str:
    """'imagefolder:/home/me/faces' -> 'imagefolder:faces': a path's last part, never the path itself,
    in run ids and labels (the same data elsewhere, or on another machine, gets the same name)."""
    name, sep, argument = dataset.partition(":")
    if sep and ("/" in argument or "\\" in argument):
        return f"{name}:{Path(argument.rstrip('/')).name or 'root'}"
    return dataset


#: Training hyperparameters a run config records and their defaults: runs that differ in one of them are
#: different leaderboard rows (``hparams``), never seeds of one row (``ganbench tune`` trials, ``--lr`` sweeps).
HPARAM_DEFAULTS: dict[str, Any] = {"lr": None, "n_critic": None, "batch_size": 64, "latent": None}
#: Speed settings of a run and their defaults; a setting at its default is left out of the config hash.
SPEED_DEFAULTS: dict[str, Any] = {"precision": "fp32", "compile": False, "channels_last": False, "reuse_fakes": False}
#: The recipe and the training options applied to every family (ganbench.training.options), with their defaults;
#: like the speed settings, a value at its default is left out of the config hash so older run ids stay valid.
RECIPE_DEFAULTS: dict[str, Any] = {"recipe": "paper", "lr_g": None, "lr_d": None, "betas": None,
                                   "lr_schedule": "constant", "ema_kimg": None, "spectral_norm": False}
#: How each non-default option is written in the recipe label ('paper+lr_g=0.0001+ema=10+sn').
_LABELS = {"lr_g": "lr_g", "lr_d": "lr_d", "betas": "betas", "lr_schedule": "lr", "ema_kimg": "ema"}


def _label_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run; its hash names the run's identity."""

    family: str
    objective: str
    dataset: str
    budget: str
    seed: int
    device: str
    batch_size: int
    n_critic: int | None = None
    latent: str | None = None
    separate_batches: bool = True
    lr: float | None = None
    resolution: int | None = None
    log_every: int = 10
    grid_fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    metrics: tuple[str, ...] = ()
    evaluation: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    #: Content fingerprint of a dataset that can change under the same name (an image folder); None otherwise.
    data_fingerprint: str | None = None
    #: Speed settings (see docs/performance.md). Part of the identity only when not the default,
    #: so runs made before they existed keep their run ids.
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    reuse_fakes: bool = False
    #: The objective's optimiser recipe per network (``OptimizerRecipe.as_dict``), applied unless the family
    #: keeps its own; left out when the objective has none, so those runs keep their run ids.
    objective_optimizers: dict[str, Any] = field(default_factory=dict)
    #: The recipe and the options every family gets alike (see RECIPE_DEFAULTS and docs/recipes.md).
    recipe: str = "paper"
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    lr_schedule: str = "constant"
    ema_kimg: float | None = None
    spectral_norm: bool = False
    #: ``--pack M`` (PacGAN): the discriminator sees M samples at once. Left out of the identity when 1.
    pack: int = 1

    @property
    def pair(self) -> str:
        return f"{self.family}:{self.objective}"

    @property
    def run_id(self) -> str:
        """Readable and stable: re-running the same command maps to the same directory."""
        safe_dataset = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_"
                               for c in short_dataset_name(self.dataset))[:40]
        return f"{self.family}-{self.objective}_{safe_dataset}_{self.budget}_s{self.seed}_{self.config_hash[:8]}"

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grid_fractions"] = list(self.grid_fractions)
        d["metrics"] = list(self.metrics)
        if not d["objective_optimizers"]:
            del d["objective_optimizers"]
        if d["data_fingerprint"] is None:  # datasets without one keep the run ids they had before it existed
            del d["data_fingerprint"]
        for name, default in {**SPEED_DEFAULTS, **RECIPE_DEFAULTS, "pack": 1}.items():
            if d[name] == default:
                del d[name]
        if "betas" in d:
            d["betas"] = list(d["betas"])
        return d

    @property
    def recipe_label(self) -> str:
        """The recipe and every non-default option, as the leaderboard shows them ('paper+lr_d=0.0004+ema=10+sn')."""
        parts = [self.recipe]
        for name, short in _LABELS.items():
            value = getattr(self, name)
            if value != RECIPE_DEFAULTS[name]:
                parts.append(f"{short}={_label_value(value)}")
        if self.spectral_norm:
            parts.append("sn")
        return "+".join(parts)

    @property
    def hparams_label(self) -> str:
        """The hyperparameters set away from their defaults, as the leaderboard shows them ('' for none)."""
        return ", ".join(f"{name}={getattr(self, name):g}" if isinstance(getattr(self, name), float)
                         else f"{name}={getattr(self, name)}"
                         for name, default in HPARAM_DEFAULTS.items() if getattr(self, name) != default)

    @property
    def speed_label(self) -> str:
        """The non-default speed settings, as the leaderboard shows them ('' for the defaults)."""
        parts = [self.precision] if self.precision != "fp32" else []
        parts += [name.replace("_", "-") for name in ("compile", "channels_last", "reuse_fakes") if getattr(self, name)]
        return "+".join(parts)


@dataclass
class RunRecord:
    """The summary of one run, as written to ``run.json``."""

    run_id: str
    family: str
    objective: str
    dataset: str
    budget: str
    seed: int
    status: str = RUNNING
    steps: int = 0
    images: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    #: The untimed warm-up (device start-up, autotuning) and, with --compile, compilation: outside the budget.
    warmup_seconds: float = 0.0
    compile_seconds: float = 0.0
    images_per_second: float = 0.0
    #: ganbench's step rate over a hand-written step's on the same networks, same process (ganbench.training.calibration);
    #: None when the family has no plain equivalent or the run did not complete.
    relative_throughput: float | None = None
    #: With a wall-clock budget: training seconds beyond it (settled at sync points; at most one logging window).
    overshoot_seconds: float = 0.0
    #: Whether the dataset was kept on the training device (``--data-on-device``); batches are the same either way.
    data_on_device: bool | None = None
    #: Non-default speed settings ('bf16+compile'), from the config; '' for the defaults.
    speed: str = ""
    #: Hyperparameters set away from their defaults ('lr=0.001, n_critic=2'), from the config; '' for none.
    hparams: str = ""
    #: ``--pack M`` as text ('2'); '' for an unpacked discriminator. A leaderboard row of its own.
    pack: str = ""
    device: str = ""
    #: The device's hardware model (GPU name, CPU model), without thread counts: seeds that ran on different
    #: models had different wall-clock budgets, and the leaderboard marks such a row.
    device_model: str = ""
    params_generator: int = 0
    params_discriminator: int = 0
    #: The recipe and non-default training options (:attr:`RunConfig.recipe_label`); runs recorded before recipes
    #: existed trained with their families' own settings, which is the paper recipe.
    recipe: str = "paper"
    #: Whether grids and scores come from the EMA of the generator's weights (``--ema``) rather than G itself.
    ema: bool = False
    #: Generator and discriminator updates per network (see :class:`ganbench.training.budget.Counters`).
    g_updates: float = 0.0
    d_updates: float = 0.0
    #: Measured FLOPs of one training step (forward and backward) in each side's networks, per image of the
    #: batch, in GFLOP (torch.utils.flop_counter, once at build; ganbench.training.cost). None: not measured.
    gflops_g: float | None = None
    gflops_d: float | None = None
    #: Under ``--recipe matched``: the architecture knob values ganbench chose (ganbench.training.capacity); {} otherwise.
    capacity_knobs: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    #: Scores of the intermediate evaluations, by budget fraction label ("50%"); final ones are ``scores``.
    scores_at: dict[str, dict[str, float]] = field(default_factory=dict)
    #: With ``--select-best``: the evaluation chosen on held-out samples and its (regular) scores;
    #: see :func:`ganbench.scoring.selection.best_of`. Never what the leaderboard ranks.
    best: dict[str, Any] | None = None
    #: Whether the final samples lost their diversity (:func:`ganbench.scoring.diversity.judge` of ``scores``);
    #: None when the run has no diversity statistic (not evaluated, or recorded before ganbench measured it).
    collapsed: bool | None = None
    #: The statistics behind ``collapsed``, in words (``feature spread 0.02 of the real data's (< 0.25)``).
    collapse_note: str = ""
    diverged_at_step: int | None = None
    resumed_from_step: int | None = None
    error: str | None = None
    started_at: str = ""
    finished_at: str = ""
    config_hash: str = ""
    ganbench_version: str = ""
    schema: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record in ``data``; :class:`RecordError` when it is not one (see :func:`check_record`)."""
        check_record(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """Read ``run.json``; any unreadable or malformed file raises :class:`RecordError` naming it."""
        try:
            return cls.from_dict(json.loads(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:  # RecordError, JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RecordError(f"{path}: {exc}") from exc


class RecordError(ValueError):
    """A ``run.json`` that is not a run record: readers skip it with a warning instead of crashing."""


#: Fields whose type the readers (leaderboard, report, gate) rely on.
_DICT_FIELDS = ("losses", "scores", "scores_at")


def check_record(data: Any) -> None:
    """Refuse what would crash a reader later: a non-object, missing identity, wrongly typed fields.

    A results directory may hold files damaged by hand, by a full disk or by
    someone else; every command must keep working and name the file instead.
    """
    if not isinstance(data, dict):
        raise RecordError(f"a run record is a JSON object, this is {type(data).__name__}")
    for key in ("run_id", "family", "objective", "dataset", "budget"):
        if not isinstance(data.get(key), str):
            raise RecordError(f"{key!r} is missing or not a string")
    if not isinstance(data.get("seed"), int) or isinstance(data.get("seed"), bool):
        raise RecordError("'seed' is missing or not a whole number")
    if not isinstance(data.get("status", RUNNING), str):
        raise RecordError("'status' is not a string")
    for key in _DICT_FIELDS:
        if not isinstance(data.get(key, {}), dict):
            raise RecordError(f"{key!r} is a {type(data[key]).__name__}, not an object")
    for key in ("losses", "scores"):
        _check_numbers(key, data.get(key, {}))
    for label, scores in data.get("scores_at", {}).items():
        if not isinstance(scores, dict):
            raise RecordError(f"'scores_at' entry {label!r} is not an object")
        _check_numbers(f"scores_at[{label!r}]", scores)
    for key in ("steps", "images", "train_seconds", "eval_seconds", "warmup_seconds", "compile_seconds",
                "images_per_second", "params_generator", "params_discriminator", "g_updates", "d_updates"):
        _check_number(key, data.get(key, 0))
    best = data.get("best")
    if best is not None:
        if not isinstance(best, dict) or not isinstance(best.get("scores", None), dict):
            raise RecordError("'best' is not an object with 'fraction' and 'scores'")
        _check_number("best fraction", best.get("fraction"))
        _check_numbers("best scores", best["scores"])


def _check_numbers(where: str, values: dict[str, Any]) -> None:
    for key, value in values.items():
        _check_number(f"{where}[{key!r}]", value, allow_none=True)


def _check_number(where: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where} is {value!r}, not a number")


@dataclass(frozen=True)
class RunInfo:
    """What listeners are told about a run."""

    run_id: str
    config: RunConfig
    directory: Path
    budget_total: float
    budget_kind: str
    #: Experiment trackers asked for with ``--log-to`` (listener plugins act only when named here).
    log_to: tuple[str, ...] = ()
    #: True when the run was asked to start over (``--fresh``), so listeners drop what they kept of an earlier attempt.
    fresh: bool = False
