"""The one training loop every family runs in.

The loop owns what must be identical across runs for a comparison to be
fair: the budget and its three counters, seeding, the data order, the
logging cadence, the fixed latent batch behind every sample grid, and
checkpoints. Time spent on grids, checkpoints and evaluation is kept off the
training clock (and recorded separately), so a wall-clock budget buys every
family the same amount of optimisation.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .budget import Budget, Counters
from .clock import TrainClock
from .data import BatchStream
from .errors import DivergedError
from .grid import save_grid
from .model import GanModel, StepContext
from .records import COMPLETED, DIVERGED, RunInfo
from . import checkpoint, signals, speed
from .store import write_bytes, write_csv, write_json
from .window import Window

GRID_SIZE = 64
#: Without ``checkpoint_every`` (steps), intermediate checkpoints are written this often (seconds).
CHECKPOINT_INTERVAL = 60.0

#: Called with (fraction, counters); returns scores. Its time is charged to evaluation, not training.
Evaluator = Callable[[float, Counters], dict[str, float]]


@dataclass
class LoopOutcome:
    status: str
    counters: Counters
    losses: dict[str, float] = field(default_factory=dict)
    diverged_at_step: int | None = None
    error: str | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fixed_inputs(model: GanModel, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latent batch (and labels) shown in every grid of a run: one row per class when conditional.

    Drawn on the device from a generator of its own, so the grid is the same at every mark
    and after a resume (on the CPU, the same numbers as before latents moved to the device).
    """
    g = torch.Generator(device).manual_seed(10_000 + seed)
    if model.conditional and model.num_classes > 0:
        per_row = 8
        labels = torch.arange(model.num_classes, device=device).repeat_interleave(per_row)
        return model.sample_latent(len(labels), device, generator=g), labels
    return model.sample_latent(GRID_SIZE, device, generator=g), None


def latent_seed(seed: int) -> int:
    """The seed of a run's training latents: apart from the grid's and the data order's."""
    return 20_000 + seed


class TrainingLoop:
    """Trains one model under one budget; see the module docstring for what it owns."""

    def __init__(
        self,
        model: GanModel,
        stream: BatchStream,
        budget: Budget,
        info: RunInfo,
        device: torch.device,
        on_row: Callable[[dict[str, float]], None] | None = None,
        evaluator: Evaluator | None = None,
        eval_fractions: tuple[float, ...] = (),
        on_eval: Callable[[float, Counters, dict[str, float]], None] | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        self.model = model
        self.stream = stream
        self.budget = budget
        self.info = info
        self.config = info.config
        self.directory = Path(info.directory)
        self.device = device
        self.on_row = on_row or (lambda row: None)
        self.evaluator = evaluator
        self.eval_fractions = sorted(eval_fractions)
        self.on_eval = on_eval or (lambda fraction, counters, scores: None)
        self.checkpoint_every = checkpoint_every
        #: The wall clock the checkpoint cadence reads; a test replaces it to cross 60 s without waiting.
        self.wall_clock: Callable[[], float] = time.perf_counter
        self._last_checkpoint = (self.wall_clock(), 0)
        self.counters = Counters()
        self.rows: list[dict[str, float]] = []
        self.evaluations: list[dict[str, float]] = []
        self._sums: dict[str, float] = {}
        self._n = 0
        self.window = Window(f"family {self.config.family!r} (objective {self.config.objective!r})")
        #: (steps, images) after each step still in the window, to place a divergence exactly
        self._step_marks: list[tuple[int, int]] = []
        self.clock = TrainClock(device)
        self.z_fixed, self.labels_fixed = fixed_inputs(model, device, self.config.seed)
        model.latent_generator = torch.Generator(device).manual_seed(latent_seed(self.config.seed))
        c = self.config
        speed.prepare(model, c.precision, c.compile, c.channels_last, device)

    # -- pieces ---------------------------------------------------------------

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = self.stream.next()
        self.counters.images += int(images.shape[0])
        return images, labels

    def _row(self) -> dict[str, float]:
        c = self.counters
        row = {
            "step": c.steps,
            "kimg": round(c.kimg, 6),
            "seconds": round(c.train_seconds, 4),
            "fraction": round(self.budget.fraction(c), 6),
        }
        row.update({k: v / self._n for k, v in self._sums.items()} if self._n else {})
        return row

    def _log(self) -> None:
        if not self._n:
            return
        row = self._row()
        self.rows.append(row)
        self._sums, self._n = {}, 0
        self.on_row(row)

    def save_grid(self, *names: str) -> None:
        """Draw the fixed latent batch once and save it under every name given."""
        self.model.eval()
        with torch.no_grad():
            images = self.model.generate(self.z_fixed, self.labels_fixed)
        self.model.train()
        first, *others = [self.directory / "samples" / f"{name}.png" for name in names]
        save_grid(first, images, nrow=8)
        for path in others:
            write_bytes(path, first.read_bytes())

    def state_dict(self) -> dict:
        """Everything the next step depends on (see ganbench.checkpoint)."""
        return {
            "networks": {k: v.state_dict() for k, v in self.model.networks().items()},
            "optimizers": {k: v.state_dict() for k, v in self.model.optimizers().items()},
            "extra": self.model.extra_state(),
            "counters": self.counters.as_dict(),
            "stream": self.stream.state_dict(),
            "rng": checkpoint.rng_state(),
            "latent_rng": self.model.latent_generator.get_state(),
            **({"grad_scaler": self.model.grad_scaler.state_dict()} if self.model.grad_scaler is not None else {}),
            "rows": self.rows,
            "evaluations": self.evaluations,
            "pending": {"sums": dict(self._sums), "n": self._n},
            "config": self.config.as_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.model.networks().items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.model.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.model.load_extra_state(state["extra"])
        self.counters = Counters(**state["counters"])
        self.stream.load_state_dict(state["stream"])
        self.rows = list(state["rows"])
        self.evaluations = list(state["evaluations"])
        self._sums, self._n = dict(state["pending"]["sums"]), int(state["pending"]["n"])
        checkpoint.set_rng_state(state["rng"])
        if self.model.grad_scaler is not None and "grad_scaler" in state:
            self.model.grad_scaler.load_state_dict(state["grad_scaler"])
        if "latent_rng" in state:  # checkpoints from before latents had their own generator lack it
            self.model.latent_generator.set_state(state["latent_rng"])

    def checkpoint(self) -> None:
        checkpoint.save(self.directory, self.state_dict())
        self._last_checkpoint = (self.wall_clock(), self.counters.steps)

    def _checkpoint_due(self) -> bool:
        when, step = self._last_checkpoint
        if self.checkpoint_every is not None:
            return self.counters.steps - step >= self.checkpoint_every
        return self.wall_clock() - when >= CHECKPOINT_INTERVAL

    def flush_curves(self) -> None:
        write_csv(self.directory / "curves.csv", self.rows)

    # -- the loop -------------------------------------------------------------

    def _estimate(self) -> float:
        """The budget fraction used, without waiting for the device (exact except for a time budget on a GPU)."""
        c = self.counters
        seconds = c.train_seconds + self.clock.elapsed_so_far()
        return self.budget.fraction(Counters(c.steps, c.images, seconds, c.eval_seconds))

    def _settle(self) -> LoopOutcome | None:
        """A sync point: stop the clock, read the window, and stop the run at the first non-finite step."""
        seconds = self.clock.stop()
        rows = self.window.read()
        marks, self._step_marks = self._step_marks, []
        for i, values in enumerate(rows):
            for k, v in values.items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._n += 1
            if not all(math.isfinite(v) for v in values.values()):
                step, images = marks[i]
                # the steps queued after the diverging one are dropped, and their share of the time with them
                self.counters.train_seconds += seconds * (i + 1) / len(rows)
                self.counters.steps, self.counters.images = step, images
                self._log()
                self.flush_curves()
                return LoopOutcome(DIVERGED, self.counters, values, step, str(DivergedError(step, values)))
        self.counters.train_seconds += seconds
        return None

    def run(self, resume: dict | None = None) -> LoopOutcome:
        """Train until the budget is spent; ``resume`` is a checkpoint to continue from exactly.

        Nothing is read from the device inside a step: see :mod:`ganbench.window`
        and :mod:`ganbench.clock` for how losses and time are still exact.
        """
        self.model.train()
        if resume is None:
            seed_everything(self.config.seed)
            self.save_grid("frac000")
        else:
            self.load_state_dict(resume)
        fraction = self.budget.fraction(self.counters)
        grid_marks = [f for f in sorted(self.config.grid_fractions) if fraction < f < 1]
        eval_marks = [f for f in self.eval_fractions if fraction < f < 1]
        timed = self.budget.kind == "seconds"
        last_flush = time.perf_counter()
        self._last_checkpoint = (self.wall_clock(), self.counters.steps)
        self.clock.start()
        while not self.budget.exhausted(self.counters):
            with speed.autocast(self.config.precision, self.device):
                losses = self.model.train_step(self._draw, StepContext(self.counters.steps, fraction))
            if self.model.grad_scaler is not None:
                self.model.grad_scaler.update()
            self.counters.steps += 1
            self.window.add(losses)
            self._step_marks.append((self.counters.steps, self.counters.images))
            fraction = self._estimate()
            boundary = self.counters.steps % self.config.log_every == 0
            if not (boundary or fraction >= 1.0 or (grid_marks and fraction >= grid_marks[0])
                    or (eval_marks and fraction >= eval_marks[0]) or self._checkpoint_due()
                    or signals.stop_requested()):
                continue
            diverged = self._settle()
            if diverged is not None:
                return diverged
            if boundary:
                self._log()
            fraction = self.budget.fraction(self.counters)
            while grid_marks and fraction >= grid_marks[0]:
                self.save_grid(f"frac{round(grid_marks.pop(0) * 100):03d}")
            while eval_marks and fraction >= eval_marks[0]:
                self._evaluate(eval_marks.pop(0))
            if time.perf_counter() - last_flush > 5.0:
                self.flush_curves()
                last_flush = time.perf_counter()
            if self._checkpoint_due() and not self.budget.exhausted(self.counters):
                self.checkpoint()
            if signals.stop_requested():  # Ctrl-C or SIGTERM: resume exactly from here
                self.flush_curves()
                self.checkpoint()
                signals.stop()
            self.clock.start()
        diverged = self._settle()
        if diverged is not None:
            return diverged
        if timed:
            self.counters.overshoot_seconds = round(max(0.0, self.counters.train_seconds - self.budget.amount), 6)
        self._log()
        self.flush_curves()
        self.save_grid("frac100", "final")
        if self.eval_fractions and self.eval_fractions[-1] >= 1.0 and not any(e["fraction"] >= 1.0 for e in self.evaluations):
            self._evaluate(1.0)
        self.checkpoint()
        final = self.rows[-1] if self.rows else {}
        losses = {k: v for k, v in final.items() if k not in ("step", "kimg", "seconds", "fraction")}
        return LoopOutcome(COMPLETED, self.counters, losses)

    def _evaluate(self, fraction: float) -> dict[str, float]:
        if self.evaluator is None:
            return {}
        start = time.perf_counter()
        self.model.eval()
        try:
            # Scoring draws random numbers; fork the generators so training continues exactly as if it had not.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.config.seed * 7919 + round(fraction * 1e6))
                scores = self.evaluator(fraction, self.counters)
        finally:
            self.model.train()
        self.counters.eval_seconds += time.perf_counter() - start
        self.evaluations.append({"fraction": fraction, "step": self.counters.steps, "kimg": self.counters.kimg, **scores})
        write_json(self.directory / "scores.json", self.evaluations)
        self.on_eval(fraction, self.counters, scores)
        return scores
