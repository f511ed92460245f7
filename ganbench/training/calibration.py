"""A speed figure that does not depend on the machine: ganbench's step against a plain one on the same networks.

Raw throughput (img/s) says as much about the machine and its load as about
ganbench, so the regression gate compares it only on the baseline's device.
What can be compared anywhere is a ratio measured in one process: ganbench's
training step (the family's ``train_step`` fed by the run's
:class:`~ganbench.plugin.data.BatchStream`) against a hand-written PyTorch step over
the *same* networks, optimisers and objective (random indices into a float
tensor, ``torch.randn`` latents, the textbook alternation). The two run
step by step in alternation and each side's median step time is kept, so a
change in machine speed or load during the measurement hits both sides alike.
Both sides run without autocast whatever the run's ``--precision`` (the
networks keep their memory format and compilation), so the figure isolates
what ganbench adds around the networks.

``relative_throughput`` near 1 means the harness costs nothing over plain
code; it falls when ganbench's own work per step (data, latents, a family's
bookkeeping) grows relative to the networks'. Families that are not an
:class:`~ganbench.plugin.model.AdversarialModel` (their step is their own procedure,
with no plain equivalent) get no figure, and neither do runs shorter than
``MIN_RUN_STEPS`` (the measurement would cost a noticeable share of them).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch

from ganbench.plugin.data import BatchStream, ImageDataset, to_float
from ganbench.plugin.model import AdversarialModel, GanModel, StepContext
from ganbench.plugin.objective import CriticInputs

#: Timed steps per side, after WARMUP untimed ones (lazy allocations, first-call overheads).
STEPS = 12
WARMUP = 2
#: Runs shorter than this are not measured: 2 x (STEPS + WARMUP) extra steps would cost more than 7 % of the run.
MIN_RUN_STEPS = 400


def _timed(work: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":  # the measurement, not the training loop: one sync per timed step on each side alike
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def plain_step(model: AdversarialModel, images: torch.Tensor, labels: torch.Tensor | None, batch: int) -> None:
    """One generator update with its ``n_critic`` discriminator updates, written as a tutorial would."""
    g, d, device = model.generator, model.discriminator, images.device

    def critic(x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return d(x, y) if model.conditional else d(x)

    for _ in range(model.n_critic):
        index = torch.randint(len(images), (batch,), device=device)
        real, y = images[index], (labels[index] if model.conditional and labels is not None else None)
        z = torch.randn(batch, model.latent_dim, device=device)
        with torch.no_grad():
            fake = g(z, y) if model.conditional else g(z)
        loss_d, _ = model.objective.discriminator_loss(
            CriticInputs(real, fake, critic(real, y), critic(fake, y), lambda x, y=y: critic(x, y)))
        model.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        model.opt_d.step()
    z = torch.randn(batch, model.latent_dim, device=device)
    fake = g(z, y) if model.conditional else g(z)
    loss_g, _ = model.objective.generator_loss(fake, critic(fake, y))
    model.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    model.opt_g.step()


def relative_throughput(model: GanModel, dataset: ImageDataset, batch_size: int, device: torch.device,
                        seed: int, step: int = 0, steps: int = STEPS) -> float | None:
    """ganbench's steps per second over the plain step's, on a copy of ``model``; None when there is no plain step.

    The model itself, and every random-number generator, are left as they were.
    """
    if not isinstance(model, AdversarialModel):
        return None
    twin = copy.deepcopy(model)  # networks, optimisers and objective state together, so they stay linked
    stream = BatchStream(dataset, batch_size, seed, device)
    batch = stream.batch_size  # a dataset smaller than the batch gives smaller batches, on both sides
    images = to_float(dataset.images.to(device))
    labels = None if dataset.labels is None else dataset.labels.to(device)
    ours: list[float] = []
    plain: list[float] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for i in range(WARMUP + steps):
            ctx = StepContext(step + i, 1.0)
            t_ours = _timed(lambda: twin.train_step(stream.next, ctx), device)
            t_plain = _timed(lambda: plain_step(twin, images, labels, batch), device)
            if i >= WARMUP:
                ours.append(t_ours)
                plain.append(t_plain)
    return statistics.median(plain) / statistics.median(ours)
