"""What a model family hands to the shared training loop.

A family's ``build`` returns a :class:`GanModel`. Most families subclass
:class:`AdversarialModel`, which owns the usual alternating step (``n_critic``
discriminator updates, then one generator update) and delegates the loss to
the chosen :class:`~ganbench.plugin.objective.Objective`. A family with its own
training procedure (a Laplacian pyramid, progressive growing) overrides
:meth:`GanModel.train_step` and nothing else: budget, seeding, logging, grids
and checkpoints stay with the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganbench.plugin.contracts import check_critic_output
from ganbench.plugin.data import DataInfo
from ganbench.plugin.latent import sample_latent
from ganbench.plugin.objective import CriticInputs, Objective

#: Draws the next real batch: (images in [-1, 1], labels or None). The loop counts what it hands out.
Draw = Callable[[], tuple[torch.Tensor, "torch.Tensor | None"]]
#: What a step returns: every loss and diagnostic as a detached 0-dim tensor, read by the loop once per window.
StepLogs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """Choices the user makes for every run alike; recorded in each run's config.

    ``None`` means "the family's or objective's own default".
    """

    #: None: the family's recipe batch (``ModelSpec.batch_size``), else 64; see ``training_options.batch_for``.
    batch_size: int | None = None
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
    #: ``paper``: each family's published settings; ``matched``: the same, with the architecture knobs sized so
    #: that G and D hold one capacity target per resolution (ganbench.training.capacity; docs/recipes.md).
    recipe: str = "paper"
    #: Options applied by the core to every family alike (ganbench.training.options); None: the recipe's own.
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    lr_schedule: str = "constant"
    #: Half-life of an EMA of G's weights, in thousands of images (StyleGAN's ``ema_kimg``); None: no EMA.
    ema_kimg: float | None = None
    spectral_norm: bool = False
    #: The discriminator sees this many samples at once (PacGAN); applied by the runner (ganbench.training.packing).
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


@contextmanager
def frozen(network: nn.Module) -> Iterator[nn.Module]:
    """Stop ``network``'s parameters from collecting gradients while inside the block.

    The generator's update backpropagates through the discriminator, but only to
    reach the generator: D's own weight gradients would be thrown away by its next
    ``zero_grad``. Freezing D skips computing them (for a convolutional D, about
    half of its backward pass) and leaves G's gradients exactly as they were.
    Parameters that were already frozen stay frozen.
    """
    trainable = [p for p in network.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield network
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    """The parameters a family's optimiser trains, for an objective's recipe to train instead."""
    return [p for group in optimizer.param_groups for p in group["params"]]


class AdversarialModel(GanModel):
    """A generator, a discriminator, two Adam-style optimisers and an objective.

    The discriminator sees real and fake batches in separate forward passes by
    default (``settings.separate_batches``), so batch-norm statistics are never
    computed over a mix of the two.

    The objective's optimiser recipe (:attr:`Objective.optimizers`) replaces
    ``opt_g``/``opt_d`` over the same parameters, unless the family sets
    ``keeps_own_optimizers`` because its paper tuned its optimiser together
    with that objective. After each discriminator update the objective's
    :meth:`~ganbench.Objective.after_critic_step` runs.
    """

    keeps_own_optimizers: bool = False

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
        recipes = {} if self.keeps_own_optimizers else objective.optimizers
        # user option > objective recipe > family recipe (the family's own opt_g/opt_d); see ganbench.plugin.objective
        self.opt_g = recipes["generator"].build(_parameters(opt_g), ctx.settings.lr) if "generator" in recipes else opt_g
        self.opt_d = (recipes["discriminator"].build(_parameters(opt_d), ctx.settings.lr)
                      if "discriminator" in recipes else opt_d)
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
            pack = getattr(self.discriminator, "pack_size", 1)  # a PacGAN-packed D scores groups (ganbench.training.packing)
            check_critic_output(d_real, real, self.objective.needs, pack)
            check_critic_output(d_fake, fake, self.objective.needs, pack)
            loss_d, d_logs = self.objective.discriminator_loss(
                CriticInputs(real, fake, d_real, d_fake, lambda x, y=labels: self._d(x, y))
            )
            self.update(self.opt_d, loss_d)
            self.objective.after_critic_step(self.discriminator)
        with frozen(self.discriminator):  # D's weight gradients would be discarded: don't compute them
            fake = kept if kept is not None else self._g(self.sample_latent(real.shape[0], real.device), labels)
            loss_g, g_logs = self.objective.generator_loss(fake, self._d(fake, labels))
            self.update(self.opt_g, loss_g)
        logs.update(d_logs)
        logs.update(g_logs)
        logs["loss_d"] = loss_d.detach()
        logs["loss_g"] = loss_g.detach()
        return logs


def device_dependent_init(
    build: Callable[[BuildContext], GanModel], ctx: BuildContext, device: torch.device | str = "meta"
) -> str | None:
    """Why ``build`` would start from other weights on ``device`` than on the CPU, or None when it would not.

    The rule every family follows: create and initialise the networks on the
    CPU, then ``.to(ctx.device)``. Random initialisation drawn after the move
    comes from the device's own generator, so the same seed gives a GPU run
    other starting weights than a CPU run, and seeds stop meaning the same
    thing across machines. Without a GPU the rule is still checkable: a build
    for the ``meta`` device (no data, no generator) must draw exactly as many
    numbers from the CPU generator as a build for the CPU. Given a real device
    (a GPU), the starting weights themselves are compared too.
    """
    device = torch.device(device)

    def built(where: torch.device) -> tuple[GanModel, torch.Tensor]:
        torch.manual_seed(ctx.seed)
        model = build(BuildContext(ctx.data, ctx.objective, ctx.settings, where, ctx.seed))
        return model, torch.get_rng_state()

    with torch.random.fork_rng(devices=[]):
        on_cpu, cpu_after = built(torch.device("cpu"))
        elsewhere, after = built(device)
    if not torch.equal(cpu_after, after):
        return (f"building for {device} draws a different amount from the CPU generator than building for the "
                "CPU: some initialisation runs after .to(device), on the device's own generator. "
                "Initialise every network on the CPU, then move it.")
    if device.type == "meta":
        return None
    for name, net in on_cpu.networks().items():
        other = elsewhere.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            if not torch.equal(value, other[key].cpu()):
                return f"{name}.{key} starts from other values on {device} than on the CPU."
    return None
