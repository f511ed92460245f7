"""The one training loop every family runs in.

The loop owns what must be identical across runs for a comparison to be
fair: the budget and its three counters, seeding, the data order, the
logging cadence, the fixed latent batch behind every sample grid, and
checkpoints. Time spent on grids, checkpoints and evaluation is kept off the
training clock (and recorded separately), so a wall-clock budget buys every
family the same amount of optimisation.
"""

from __future__ import annotations

import copy
import math
import random
import time
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganbench.training.budget import Budget, Counters
from ganbench.training.clock import TrainClock
from ganbench.plugin.contracts import check_images, check_step_logs, check_vectors
from ganbench.plugin.data import IMAGE, RANGE, BatchStream
from ganbench.errors import DivergedError
from ganbench.training.grid import GRID_SIZE, picture_size, save_grid
from ganbench.plugin.model import GanModel, StepContext
from ganbench.results.records import COMPLETED, DIVERGED, RunInfo
from ganbench.training import checkpoint
from ganbench.execution import signals
from ganbench.training import speed
from ganbench.results.store import write_bytes, write_csv, write_json
from ganbench.training.options import GeneratorEma, LrSchedule, is_generator
from ganbench.training.cost import flops_by_network, gflops_per_image
from ganbench.training.window import Window

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


def fixed_inputs(model: GanModel, device: torch.device, seed: int,
                 count: int = GRID_SIZE) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latent batch (and labels) shown in every grid of a run: one row per class when conditional.

    Drawn on the device from a generator of its own, so the grid is the same at every mark
    and after a resume (on the CPU, the same numbers as before latents moved to the device).
    """
    g = torch.Generator(device).manual_seed(10_000 + seed)
    if model.conditional and model.num_classes > 0:
        per_row = 8
        labels = torch.arange(model.num_classes, device=device).repeat_interleave(per_row)
        return model.sample_latent(len(labels), device, generator=g), labels
    return model.sample_latent(count, device, generator=g), None


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
        warmup: bool = True,
        measure_cost: bool = True,
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
        self.warmup = warmup
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
        self._images_checked = False
        self.z_fixed, self.labels_fixed = fixed_inputs(model, device, self.config.seed,
                                                       picture_size(stream.dataset.kind))
        model.latent_generator = torch.Generator(device).manual_seed(latent_seed(self.config.seed))
        c = self.config
        self.ema: GeneratorEma | None = None
        self.schedule: LrSchedule | None = None
        #: GFLOPs per image of one training step, generator side and discriminator side (ganbench.training.cost).
        self.gflops: tuple[float | None, float | None] = self._measure_cost() if measure_cost else (None, None)
        self.ema = GeneratorEma(model, c.batch_size, c.ema_kimg) if c.ema_kimg is not None else None
        optimizers = model.optimizers()
        self.schedule = LrSchedule(c.lr_schedule, list(optimizers.values())) if c.lr_schedule != "constant" else None
        self._update_hooks = self._count_updates(optimizers)
        speed.prepare(model, c.precision, c.compile, c.channels_last, device)

    # -- pieces ---------------------------------------------------------------

    def _measure_cost(self) -> tuple[float | None, float | None]:
        """One training step under a FLOP counter, on state that is put back afterwards (see ganbench.training.cost)."""
        saved = copy.deepcopy(self.state_dict())
        try:
            by_network = flops_by_network(self.model.networks(),
                                          lambda: self.model.train_step(self._draw, StepContext(0, 0.0)))
        finally:
            self.load_state_dict(saved)
        return gflops_per_image(by_network, self.config.batch_size)

    def _count_updates(self, optimizers: dict[str, torch.optim.Optimizer]) -> list:
        """Count every optimiser step into ``counters.g_updates`` / ``d_updates``, per network of that side."""
        sides = [is_generator(name) for name in optimizers]
        share = {True: 1.0 / max(1, sides.count(True)), False: 1.0 / max(1, sides.count(False))}

        def hook(generator: bool) -> Callable[..., None]:
            def count(*_: object) -> None:
                if generator:
                    self.counters.g_updates += share[True]
                else:
                    self.counters.d_updates += share[False]
            return count

        return [opt.register_step_post_hook(hook(g)) for opt, g in zip(optimizers.values(), sides)]

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """Networks in eval mode and, with ``--ema``, the averaged generator in place; training mode after."""
        self.model.eval()
        try:
            with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
                yield
        finally:
            self.model.train()

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
        """Draw the fixed latent batch once and save it under every name given (a grid, or a picture of points)."""
        with self.sampling(), torch.no_grad():
            images = self.model.generate(self.z_fixed, self.labels_fixed)
        data = self.stream.dataset
        # shape and dtype at every grid (free); the values, one read, at this process's first grid only
        if data.kind != IMAGE:
            check_vectors(images, len(self.z_fixed), data.dim, values=not self._images_checked,
                          value_range=data.meta.get(RANGE))
        else:
            check_images(images, len(self.z_fixed), data.channels, data.resolution, values=not self._images_checked)
        self._images_checked = True
        # drawn once (vectors: points over the true distribution, with their .npz beside), copied to the other names
        first, *others = [self.directory / "samples" / f"{name}.png" for name in names]
        save_grid(first, images, nrow=8, meta=data.meta)
        for path in others:
            write_bytes(path, first.read_bytes())
            if data.kind != IMAGE:
                write_bytes(path.with_suffix(".npz"), first.with_suffix(".npz").read_bytes())

    def state_dict(self) -> dict:
        """Everything the next step depends on (see ganbench.training.checkpoint)."""
        return {
            "networks": {k: v.state_dict() for k, v in self.model.networks().items()},
            "optimizers": {k: v.state_dict() for k, v in self.model.optimizers().items()},
            "extra": self.model.extra_state(),
            "counters": self.counters.as_dict(),
            "stream": self.stream.state_dict(),
            "rng": checkpoint.rng_state(self.device),
            "latent_rng": self.model.latent_generator.get_state(),
            **({"grad_scaler": self.model.grad_scaler.state_dict()} if self.model.grad_scaler is not None else {}),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            **({"lr_factor": self.schedule.factor} if self.schedule is not None else {}),
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
        checkpoint.set_rng_state(state["rng"], self.device)
        if self.model.grad_scaler is not None and "grad_scaler" in state:
            self.model.grad_scaler.load_state_dict(state["grad_scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.schedule is not None:
            self.schedule.factor = float(state["lr_factor"])
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

        Nothing is read from the device inside a step: see :mod:`ganbench.training.window`
        and :mod:`ganbench.training.clock` for how losses and time are still exact.
        """
        try:
            return self._run(resume)
        finally:  # later optimiser steps (the throughput calibration) are not this run's updates
            for handle in self._update_hooks:
                handle.remove()

    def _run(self, resume: dict | None) -> LoopOutcome:
        self.model.train()
        if resume is None:
            seed_everything(self.config.seed)
            self.save_grid("frac000")
        else:
            self.load_state_dict(resume)
        fraction = self.budget.fraction(self.counters)
        if self.warmup:
            self.warm_up(fraction)
        grid_marks = [f for f in sorted(self.config.grid_fractions) if fraction < f < 1]
        eval_marks = [f for f in self.eval_fractions if fraction < f < 1]
        timed = self.budget.kind == "seconds"
        last_flush = time.perf_counter()
        self._last_checkpoint = (self.wall_clock(), self.counters.steps)
        self.clock.start()
        while not self.budget.exhausted(self.counters):
            if self.schedule is not None:
                self.schedule.apply(fraction)
            with speed.autocast(self.config.precision, self.device):
                losses = self.model.train_step(self._draw, StepContext(self.counters.steps, fraction))
            check_step_logs(losses)
            if self.ema is not None:
                self.ema.update()
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

    def warm_up(self, fraction: float) -> None:
        """Train untimed steps that pay the one-off costs, then undo every trace of them.

        The first step on a device pays for its start-up (CUDA context, cuBLAS
        handles, cuDNN autotuning) and, with ``--compile``, for compiling every
        network: seconds that have nothing to do with the family and that a
        wall-clock budget would charge each family differently. So it runs
        before the clock starts, and afterwards everything it touched is put
        back from a copy taken before it: weights and batch-norm statistics,
        optimiser moments, family and objective state, every random generator,
        the data position and the gradient scaler (all of a checkpoint's
        state). Training then continues exactly as it would have without it
        (tests/test_warmup.py). With ``--compile`` there are two steps: the
        first compiles (``compile_seconds``), the second pays what is left.
        """
        saved = checkpoint.on_cpu(self.state_dict())
        clock = TrainClock(self.device)
        timings = []
        try:
            with torch.random.fork_rng(devices=[checkpoint.cuda_index(self.device)] if self.device.type == "cuda" else []):
                for _ in range(2 if self.config.compile else 1):
                    clock.start()
                    with speed.autocast(self.config.precision, self.device):
                        self.model.train_step(self.stream.next, StepContext(self.counters.steps, fraction))
                    if self.model.grad_scaler is not None:
                        self.model.grad_scaler.update()
                    timings.append(clock.stop())
        finally:
            self.load_state_dict(saved)
            for net in self.model.networks().values():
                for param in net.parameters():
                    param.grad = None
        if self.config.compile:
            self.counters.compile_seconds += timings.pop(0)
        self.counters.warmup_seconds += sum(timings)

    def _evaluate(self, fraction: float) -> dict[str, float]:
        if self.evaluator is None:
            return {}
        start = time.perf_counter()
        with self.sampling():
            # Scoring draws random numbers; fork the generators so training continues exactly as if it had not.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.config.seed * 7919 + round(fraction * 1e6))
                scores = self.evaluator(fraction, self.counters)
        self.counters.eval_seconds += time.perf_counter() - start
        self.evaluations.append({"fraction": fraction, "step": self.counters.steps, "kimg": self.counters.kimg, **scores})
        write_json(self.directory / "scores.json", self.evaluations)
        self.on_eval(fraction, self.counters, scores)
        return scores
