"""``ganbench profile``: where a family's training step spends its time, and what makes the host wait.

For each family the step is taken exactly as the loop takes it
(``model.train_step(draw, ctx)`` with the run's :class:`~ganbench.plugin.data.BatchStream`),
after a few untimed warm-up steps, in two passes over the same number of steps:

1. **Timed.** The wall time of each step is split with hooks, not a sampling profiler
   (which would slow small operations down more than the step itself):

   - *data*: inside ``draw()`` (indexing, conversion to float, copies to the device);
   - *backward*: inside ``torch.autograd.backward`` and ``torch.autograd.grad``
     (``loss.backward()`` and gradient penalties), wrapped while profiling;
   - *optimiser*: between PyTorch's global optimiser step pre- and post-hooks;
   - *forward*: the rest of the step: forward passes, losses, latents, the family's
     own bookkeeping.

   On CUDA the device is synchronised at each boundary so that the time lands in
   the phase that queued the work; that makes the profiled step slower than a real
   one, so img/s here is a lower bound there. On the CPU nothing is added.
2. **Counted.** The same steps under :class:`~ganbench.training.syncs.SyncCounter`:
   device→host reads (``.item()``, ``float(t)``, copies to the CPU; optimiser
   internals left out) and host→device copies, per step.

Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on the CPU it is the
process's peak resident set (Linux ``VmHWM``, reset before each family), which
includes Python, torch and the dataset, so compare families by its growth.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ganbench.training import speed
from ganbench.plugin.data import BatchStream, ImageDataset, data_on_device
from ganbench.plugin.model import BuildContext, StepContext
from ganbench.plugin.registry import Registry
from ganbench.execution.runner import (Invocation, PlannedRun, build_objective, check_requirements, family_options, load_dataset, plan,
                     resolve_device)
from ganbench.training.options import settings_of
from ganbench.training.syncs import SyncCounter

WARMUP = 2
PHASES = ("data", "forward", "backward", "optimiser")


@dataclass
class FamilyProfile:
    """One family's profile; ``ms`` holds the mean milliseconds per step of each phase and their total."""

    family: str
    objective: str
    steps: int
    batch_size: int
    img_per_s: float
    ms: dict[str, float]
    host_syncs_per_step: float
    h2d_copies_per_step: float
    peak_memory_mb: float
    memory: str
    settings: dict[str, Any] = field(default_factory=dict)
    sync_ops: dict[str, int] = field(default_factory=dict)


class _PhaseClock:
    """Accumulates seconds spent in data, backward and optimiser phases (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._opened: list[float] = []

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def open(self, *args: Any) -> None:
        self.sync()
        self._opened.append(time.perf_counter())

    def close(self, phase: str) -> None:
        self.sync()
        start = self._opened.pop()
        if not self._opened:  # a backward inside an optimiser closure counts once, in the outer phase
            self.seconds[phase] += time.perf_counter() - start

    def timed(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.open()
            try:
                return fn(*args, **kwargs)
            finally:
                self.close(phase)

        return wrapper

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Backward and optimiser hooks for the duration of the timed pass; everything restored after."""
        saved = torch.autograd.backward, torch.autograd.grad
        handles = [register_optimizer_step_pre_hook(self.open),
                   register_optimizer_step_post_hook(lambda *a: self.close("optimiser"))]
        torch.autograd.backward = self.timed("backward", saved[0])
        torch.autograd.grad = self.timed("backward", saved[1])
        try:
            yield
        finally:
            torch.autograd.backward, torch.autograd.grad = saved
            for handle in handles:
                handle.remove()


def _status_kib(field_name: str) -> int | None:
    try:
        found = re.search(rf"{field_name}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


@contextlib.contextmanager
def _peak_memory(device: torch.device) -> Iterator[dict[str, Any]]:
    out: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        out.update(mb=torch.cuda.max_memory_allocated(device) / 2**20, kind="CUDA max_memory_allocated")
        return
    try:  # Linux: writing 5 to clear_refs resets the peak resident set to the current one
        Path("/proc/self/clear_refs").write_text("5")
        kind = "peak RSS of the process during these steps (VmHWM)"
    except OSError:
        kind = "peak RSS of the process since it started (ru_maxrss)"
    yield out
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.update(mb=kib / 1024, kind=kind)


def profile_run(run: PlannedRun, dataset: ImageDataset, inv: Invocation, device: torch.device,
                steps: int) -> FamilyProfile:
    """Profile one planned run's family for ``steps`` steps (plus warm-up), as the module docstring says."""
    torch.manual_seed(run.config.seed)
    # built as a run builds it, with the family's and the objective's --option values (and their defaults)
    s = settings_of(run.config, family_options(run.model, run.config))
    ctx = BuildContext(dataset.info, build_objective(run.objective, run.config.options), s, device, run.config.seed)
    model = run.model.build(ctx)
    model.train()
    speed.prepare(model, s.precision, s.compile, s.channels_last, device)  # as the loop does
    model.latent_generator = torch.Generator(device).manual_seed(run.config.seed)
    on_device = data_on_device(inv.data_on_device, dataset, device)
    stream = BatchStream(dataset, run.config.batch_size, run.config.seed, device, on_device=on_device)
    clock = _PhaseClock(device)
    images = 0

    def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
        nonlocal images
        batch = stream.next()
        images += int(batch[0].shape[0])
        return batch

    def step(fetch: Callable[[], Any], i: int) -> None:
        with speed.autocast(s.precision, device):
            model.train_step(fetch, StepContext(i, 0.0))
        if model.grad_scaler is not None:
            model.grad_scaler.update()

    timed_draw = clock.timed("data", draw)
    for i in range(WARMUP):
        step(draw, i)
    images = 0
    with _peak_memory(device) as memory:
        with clock.installed():
            clock.sync()
            start = time.perf_counter()
            for i in range(steps):
                step(timed_draw, WARMUP + i)
            clock.sync()
            total = time.perf_counter() - start
        timed_images = images
        with SyncCounter() as counter:
            for i in range(steps):
                step(draw, WARMUP + steps + i)
    clock.seconds["forward"] = max(0.0, total - sum(clock.seconds[p] for p in PHASES if p != "forward"))
    ms = {p: 1000 * clock.seconds[p] / steps for p in PHASES}
    ms["total"] = 1000 * total / steps
    settings = {k: v for k, v in asdict(inv.settings).items() if k != "options"}
    settings.update({f"{plugin}.{key}": value for plugin, given in run.config.options.items()
                     for key, value in given.items()},
                    data_on_device=on_device, device=str(device), threads=torch.get_num_threads())
    return FamilyProfile(
        family=run.config.family, objective=run.config.objective, steps=steps, batch_size=stream.batch_size,
        img_per_s=timed_images / total if total > 0 else float("nan"), ms=ms,
        host_syncs_per_step=counter.reads / steps, h2d_copies_per_step=counter.h2d / steps,
        peak_memory_mb=memory["mb"], memory=memory["kind"], settings=settings, sync_ops=dict(counter.by_op),
    )


def profile(registry: Registry, inv: Invocation, steps: int) -> tuple[list[FamilyProfile], dict[str, str]]:
    """Every family of ``inv.plugins`` (first seed only) on ``inv.dataset``, one after the other.

    Returns the profiles and, by ``family:objective``, the error of each family that raised:
    one broken family never costs the others their profile.
    """
    planned = [r for r in plan(registry, inv) if r.config.seed == inv.seeds[0]]
    dataset = load_dataset(registry, inv)
    check_requirements(planned, dataset)
    device = resolve_device(inv.device)
    profiles, failures = [], {}
    for run in planned:
        try:
            profiles.append(profile_run(run, dataset, inv, device, steps))
        except Exception as exc:  # noqa: BLE001 - reported by the caller, with the plugin's name
            failures[run.config.pair] = f"{type(exc).__name__}: {exc}"
    return profiles, failures


def profile_table(profiles: list[FamilyProfile]) -> str:
    """The profiles as printed by ``ganbench profile``: one row per family, then what was measured and how."""
    head = ["family", "objective", "img/s", "ms/step", "data", "forward", "backward", "optimiser",
            "syncs/step", "h2d/step", "peak MB"]
    rows = [[p.family, p.objective, f"{p.img_per_s:,.0f}", f"{p.ms['total']:.2f}",
             *(f"{p.ms[phase]:.2f}" for phase in PHASES),
             f"{p.host_syncs_per_step:.2f}", f"{p.h2d_copies_per_step:.2f}", f"{p.peak_memory_mb:,.0f}"]
            for p in profiles]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(v.rjust(w) if i > 1 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip()
             for r in [head, *rows]]
    if profiles:
        first = profiles[0]
        lines += [
            "",
            f"{first.steps} steps per family after {WARMUP} warm-up steps, batch {first.batch_size}; ms are means per "
            "step (data: draw(); backward: autograd.backward/grad; optimiser: optimizer.step(); forward: the rest).",
            "syncs/step: device->host reads inside train_step (optimiser internals excluded); h2d/step: host->device "
            "copies.",
            f"peak MB: {first.memory}.",
            "settings: " + ", ".join(f"{k}={v}" for k, v in first.settings.items()),
        ]
    return "\n".join(lines)
