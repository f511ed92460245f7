"""What a model family hands to the shared training loop.

A family's ``build`` returns a :class:`GanModel`. Most families subclass
:class:`AdversarialModel`, which owns the usual alternating step (``n_critic``
discriminator updates, then one generator update) and delegates the loss to
the chosen :class:`~ganbench.objective.Objective`. A family with its own
training procedure (a Laplacian pyramid, progressive growing) overrides
:meth:`GanModel.train_step` and nothing else: budget, seeding, logging, grids
and checkpoints stay with the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .data import DataInfo
from .latent import sample_latent
from .objective import CriticInputs, Objective

#: Draws the next real batch: (images in [-1, 1], labels or None). The loop counts what it hands out.
Draw = Callable[[], tuple[torch.Tensor, "torch.Tensor | None"]]
#: What a step returns: every loss and diagnostic as a detached 0-dim tensor, read by the loop once per window.
StepLogs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """Choices the user makes for every run alike; recorded in each run's config.

    ``None`` means "the family's or objective's own default".
    """

    batch_size: int = 64
    n_critic: int | None = None
    latent: str | None = None
    separate_batches: bool = True
    lr: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: The G step reuses the D step's fake batch (the reference DCGAN loop) instead of a fresh z
    #: (Goodfellow et al. 2014, Algorithm 1, the default).
    reuse_fakes: bool = False
    #: fp32, bf16 or fp16 (autocast; fp16 with a gradient scaler). Applied by the loop.
    precision: str = "fp32"
    #: torch.compile of every network. Applied by the loop.
    compile: bool = False
    #: Channels-last memory format for every network. Applied by the loop.
    channels_last: bool = False
    #: The discriminator sees this many samples at once (PacGAN); applied by the runner (ganbench.packing).
    pack: int = 1


@dataclass(frozen=True)
class BuildContext:
    """Everything a family may use to build itself for one run."""

    data: DataInfo
    objective: Objective
    settings: TrainSettings
    device: torch.device
    seed: int = 0


@dataclass(frozen=True)
class StepContext:
    """Where training stands when a step begins. ``progress`` is the budget fraction used, in [0, 1]."""

    step: int
    progress: float


class GanModel:
    """The contract between a family and the loop.

    Attributes the loop reads: ``latent_dim``, ``latent`` (distribution name),
    ``conditional`` and ``num_classes``. Subclasses fill :meth:`networks` and
    :meth:`optimizers` so that checkpoints and parameter counts need no
    family-specific code.
    """

    latent_dim: int = 100
    latent: str = "gaussian"
    conditional: bool = False
    num_classes: int = 0
    #: Set by the loop: the run's own generator on the training device, so that latents are drawn there,
    #: reproducibly, and its state goes into checkpoints. ``None`` (outside the loop): torch's global one.
    latent_generator: torch.Generator | None = None
    #: Set by the loop with ``--precision fp16``: scales losses so that fp16 gradients do not underflow.
    grad_scaler: torch.amp.GradScaler | None = None

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        """Run one generator update (and its discriminator updates); return every loss and diagnostic.

        Values are detached 0-dim tensors, left where they were computed
        (``loss.detach()``, never ``float(loss)`` or ``loss.item()``): the loop
        reads them all once per logging window, so a step never makes the host
        wait for the device. A number the host already knows (a learning rate)
        may be a 0-dim CPU tensor, ``torch.tensor(lr)``; it stays on the host.
        """
        raise NotImplementedError

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] for latents ``z`` (and class labels when conditional)."""
        raise NotImplementedError

    def sample_latent(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        generator = generator if generator is not None else self.latent_generator
        return sample_latent(self.latent, n, self.latent_dim, device=device, generator=generator)

    def update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One optimiser update from ``loss``: zero the gradients, backpropagate, step.

        Families call this rather than ``loss.backward(); optimizer.step()`` so that
        ``--precision fp16`` can scale the loss (a scaled step reads one flag back per
        update to skip steps with overflowing gradients; see docs/performance.md).
        """
        optimizer.zero_grad(set_to_none=True)
        if self.grad_scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.step(optimizer)

    def extra_state(self) -> dict[str, Any]:
        """Family state beyond weights and optimisers (schedules, phases) for checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    def train(self, mode: bool = True) -> GanModel:
        for net in self.networks().values():
            net.train(mode)
        return self

    def eval(self) -> GanModel:
        return self.train(False)

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks().items()}


class AdversarialModel(GanModel):
    """A generator, a discriminator, two Adam-style optimisers and an objective.

    The discriminator sees real and fake batches in separate forward passes by
    default (``settings.separate_batches``), so batch-norm statistics are never
    computed over a mix of the two.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        objective: Objective,
        ctx: BuildContext,
        latent_dim: int,
        latent: str,
    ) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.opt_g = opt_g
        self.opt_d = opt_d
        self.objective = objective
        self.latent_dim = latent_dim
        self.latent = ctx.settings.latent or latent
        self.n_critic = ctx.settings.n_critic or objective.n_critic
        self.separate_batches = ctx.settings.separate_batches
        self.reuse_fakes = ctx.settings.reuse_fakes
        self.device = ctx.device

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def extra_state(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.objective.load_state_dict(state.get("objective", {}))

    def _g(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z, labels) if self.conditional else self.generator(z)

    def _d(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(x, labels) if self.conditional else self.discriminator(x)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self._g(z, labels)

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        logs: StepLogs = {}
        kept: torch.Tensor | None = None
        for i in range(self.n_critic):
            real, labels = draw()
            z = self.sample_latent(real.shape[0], real.device)
            if self.reuse_fakes and i == self.n_critic - 1:  # keep the graph: the G step reuses this batch
                kept = self._g(z, labels)
                fake = kept.detach()
            else:
                with torch.no_grad():
                    fake = self._g(z, labels)
            if self.separate_batches:
                d_real, d_fake = self._d(real, labels), self._d(fake, labels)
            else:
                both_labels = None if labels is None else torch.cat([labels, labels])
                d_real, d_fake = self._d(torch.cat([real, fake]), both_labels).split(real.shape[0])
            loss_d, d_logs = self.objective.discriminator_loss(
                CriticInputs(real, fake, d_real, d_fake, lambda x, y=labels: self._d(x, y))
            )
            self.update(self.opt_d, loss_d)
        fake = kept if kept is not None else self._g(self.sample_latent(real.shape[0], real.device), labels)
        loss_g, g_logs = self.objective.generator_loss(fake, self._d(fake, labels))
        self.update(self.opt_g, loss_g)
        logs.update(d_logs)
        logs.update(g_logs)
        logs["loss_d"] = loss_d.detach()
        logs["loss_g"] = loss_g.detach()
        return logs
