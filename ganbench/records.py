"""The results schema: what a run directory holds, key by key.

A run directory (``<results>/runs/<run_id>/``) contains:

``config.json``       the resolved :class:`RunConfig` (everything that defines the run)
``environment.json``  versions of python, torch, ganbench and every plugin distribution; device
``curves.csv``        one row per logged interval: step, kimg, seconds, fraction, every loss/diagnostic
``samples/``          PNG grids of a fixed latent batch at budget fractions; ``final.png``
``checkpoint.pt``     final weights, optimisers and family state (safe to ``torch.load(weights_only=True)``)
``scores.json``       metric values at each evaluated budget fraction
``run.json``          the :class:`RunRecord`: status, counters, final losses and scores,
                      scores at intermediate budget fractions
``checkpoint.prev.pt``  the previous good checkpoint, used when the latest is corrupt
``checkpoint.json``   size and sha256 of each checkpoint, to detect a truncated or altered file
``run.lock``          held while a process trains the run (a second process is refused)
``traceback.txt``     the full traceback of a run that failed with an unexpected error
``best.pt``, ``best.json``  with ``--select-best``: weights and place of the checkpoint chosen on held-out samples
``plots/``            losses.png, convergence.png (M_global or generic signals), quality.png

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
EVALUATION_META = ("fraction", "step", "kimg")
#: Prefix of the held-out selection scores in ``scores.json`` (:mod:`ganbench.selection`); never reported as scores.
HELDOUT = "heldout:"


def fraction_label(fraction: float) -> str:
    """0.25 -> '25%': how an evaluation's budget fraction names it in records and leaderboards."""
    return f"{fraction * 100:.4g}%"


#: Run statuses. Only 'completed' runs are ranked; the others are shown, never dropped.
COMPLETED, DIVERGED, FAILED, RUNNING, INTERRUPTED = "completed", "diverged", "failed", "running", "interrupted"
#: Not a stored status: the run was being trained by another process, so this invocation left it alone.
LOCKED = "locked"
#: Statuses a re-run of the same command leaves alone; the others are resumed.
FINAL = (COMPLETED, DIVERGED)


#: Speed settings of a run and their defaults; a setting at its default is left out of the config hash.
SPEED_DEFAULTS: dict[str, Any] = {"precision": "fp32", "compile": False, "channels_last": False, "reuse_fakes": False}


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
    #: Speed settings (see docs/performance.md). Part of the identity only when not the default,
    #: so runs made before they existed keep their run ids.
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    reuse_fakes: bool = False

    @property
    def pair(self) -> str:
        return f"{self.family}:{self.objective}"

    @property
    def run_id(self) -> str:
        """Readable and stable: re-running the same command maps to the same directory."""
        safe_dataset = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.dataset)[:40]
        return f"{self.family}-{self.objective}_{safe_dataset}_{self.budget}_s{self.seed}_{self.config_hash[:8]}"

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grid_fractions"] = list(self.grid_fractions)
        d["metrics"] = list(self.metrics)
        for name, default in SPEED_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

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
    images_per_second: float = 0.0
    #: ganbench's step rate over a hand-written step's on the same networks, same process (ganbench.calibration);
    #: None when the family has no plain equivalent or the run did not complete.
    relative_throughput: float | None = None
    #: With a wall-clock budget: training seconds beyond it (settled at sync points; at most one logging window).
    overshoot_seconds: float = 0.0
    #: Whether the dataset was kept on the training device (``--data-on-device``); batches are the same either way.
    data_on_device: bool | None = None
    #: Non-default speed settings ('bf16+compile'), from the config; '' for the defaults.
    speed: str = ""
    device: str = ""
    params_generator: int = 0
    params_discriminator: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    #: Scores of the intermediate evaluations, by budget fraction label ("50%"); final ones are ``scores``.
    scores_at: dict[str, dict[str, float]] = field(default_factory=dict)
    #: With ``--select-best``: the evaluation chosen on held-out samples and its (regular) scores;
    #: see :func:`ganbench.selection.best_of`. Never what the leaderboard ranks.
    best: dict[str, Any] | None = None
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
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class RunInfo:
    """What listeners are told about a run."""

    run_id: str
    config: RunConfig
    directory: Path
    budget_total: float
    budget_kind: str
