"""lapgan: a Laplacian pyramid of GANs (Denton, Chintala, Szlam & Fergus 2015).

An image is split into a coarse low-pass image and band-pass residuals
(:func:`build_pyramid`; :func:`reconstruct` inverts it exactly). Level 0 is
a plain GAN for the coarse image; each finer level k is a GAN for the
residual h_k, conditioned on the upsampled coarser image l_k. Sampling runs
coarse to fine: G0 -> upsample -> + G1 residual -> upsample -> + G2 residual.

Pyramid (paper §3.1; eyescream code; REFERENCES §2.2): downsampling is 2x2
average pooling, upsampling is bilinear (align_corners=False); both are
fixed, so h_k = image_k - up(down(image_k)) and reconstruction adds it back.
The levels follow the dataset's resolution: starting from it, keep halving
while the size is even and the half is at least 7 pixels. So 32 px gives
8 -> 16 -> 32 (eyescream's 8-16-32), 28 px gives 7 -> 14 -> 28 (the paper's
CIFAR crops), 16 px gives 8 -> 16, 64 px gives 8 -> ... -> 64; an odd or
small resolution is a single level (a plain MLP GAN at full size).

Networks (paper §4, eyescream):

- Level 0, an MLP: G z -> 1200 -> 1200 ReLU -> C*s*s tanh; D C*s*s -> 600
  -> 600 ReLU, dropout 0.5 after each hidden layer -> 1 logit; z in
  U[-1, 1]^100. These are the paper's widths, kept as they are.
- Level k >= 1: G takes the coarse image l_k and one U[-1, 1] noise plane
  (C + 1 channels) through conv 7x7 -> 64, ReLU, conv 7x7 -> 64, ReLU,
  conv 5x5 -> C (no output non-linearity: the residual is signed). D sees
  the residual added to the coarse image, h_k + l_k (C channels; paper
  §3.2, eyescream's ``CAddTable``): conv 5x5 ->
  64, ReLU, conv 5x5 stride 2 -> 64, ReLU, dropout 0.5, linear -> 1 logit.
  ``options["width"]`` scales the 64 channels (tests use fewer for speed).

Training: each level trains independently on the real pyramid (never on
generated coarse images), as in the paper and eyescream. One ``train_step``
draws one real batch per discriminator update (``n_critic``, 1 by default),
updates every level's D on it, then every level's G once; the losses come
back per level (``loss_d_0``, ``loss_g_0``, ``loss_d_1``, ...) with
``loss_d``/``loss_g`` their means over levels. Any logit objective given in
``ctx.objective`` is used at every level; the critic handed to a gradient
penalty has the coarse image bound, so it only varies the residual.

The latent vector carries every random input: its first 100 entries are
z for level 0 and the rest are the noise planes of the finer levels
(flattened, coarse to fine), so ``latent_dim`` is 100 + the pixels of every
finer level (356 at 16 px, 1380 at 32 px). ``generate(z)`` is thus a pure
function of z and the loop's fixed grids are reproducible. Each level's
image is clamped to [-1, 1] while sampling, so samples stay in range.

Why it shows collapsed samples on the embedded digits at the default budget
(issue 18; measured with ``OMP_NUM_THREADS=1``, batch 64, digits at 16 px,
seed 0, per-pixel std across 512 fixed latents on the [-1, 1] scale; the
real 8 px coarse digits have 0.35):

- Not a plain bug. Every part of z reaches the output: varying only the
  level-0 vector or only the noise plane each moves the output, and the
  levels train on the real pyramid with the right targets (both pinned in
  ``tests/test_lapgan.py``); the residual level only adds detail.
- The collapse is level 0's: the 8 px MLP GAN starts nearly constant (std
  0.039 at init; 0.031 at 16 px after the residual level) and stays
  collapsed, its one mode hopping between digits (std 0.03, lenet IS 1.01
  after 300 lock-step steps). Trained alone with this recipe it leaves
  collapse only after about 1,750 steps (std 0.03 at 500, 0.08 at 1,000,
  0.22 and IS 1.65 at 1,750, 0.22 at 2,000). ``vanilla``'s MLP on the same
  8 px digits is no quicker (std 0.14, IS 1.6 at 800 steps).
- Init is not the cause. With eyescream's init (G weights N(0, 0.05), D
  weights N(0, 0.005), zero biases) or He init for G, the noise does reach
  the output at init (std 0.27 / 0.41), but under Adam level 0 collapses
  within 150 steps (std 0.01 / 0.000) and stays there; with eyescream's SGD
  (lr 0.02, momentum 0.5) it keeps std 0.18 but its IS is 1.25 at 400 steps.
  No dropout in D, LeakyReLU, a linear output (eyescream's) or Gaussian z
  did not leave collapse within 400 steps either; LeakyReLU in G and D with
  no dropout did at about 600 (IS 2.2 at 800), a departure from the paper
  not taken.
- The budget is: one LAPGAN step costs 5-9x a ``vanilla`` step (the two 7x7
  64-channel convolutions of the residual generator at 16 px dominate), so
  where ``vanilla`` gets about 2,000 steps in 40 s, LAPGAN gets a few
  hundred, fewer than level 0 needs at Adam's usual 2e-4.
- The fix: level 0 trains at lr 1e-3. Alone on the 8 px digits it then
  leaves collapse within the few hundred steps a CPU minute buys (std 0.13
  at 100 steps, 0.24 and IS 2.35 at 350), where the paper's SGD at 0.02
  with this init stays collapsed (std 0.03 at 400). The whole family on
  digits, ``--budget 400steps --device cpu``, seed 0: lenet FID10k 490 and
  IS 1.04 at 200 steps, 164 and 2.72 at 400, varied digits in the grid
  (collapsed before: FID 560, IS 1.007).

Departures from the paper, and why:

- The pyramid operators. The paper's d(.) blurs and decimates and u(.)
  smooths and expands; ganbench uses the simplest fixed pair (2x2 average,
  bilinear). Any fixed pair gives an exactly invertible pyramid, which is
  all the method needs.
- Optimiser: Adam, betas (0.5, 0.999), instead of SGD (lr 0.02, momentum
  rising to 0.7-0.8, lr decay), so that an identical budget buys this family
  the same kind of optimisation as the others: lr 2e-4 at the residual
  levels, 1e-3 at level 0 (``LR_COARSE``; ``--lr`` sets every level). At
  2e-4 level 0 needs about 1,750 steps to leave collapse, at 1e-3 about 350
  (see above); the paper's own level-0 rate, SGD at 0.02, is 100x 2e-4.
- The levels train in lock-step within one budget, not as separate jobs;
  the paper's per-level model selection by validation Parzen likelihood is
  not done (ganbench compares final and tracked checkpoints instead).
- Unconditional only: the class-conditional LAPGAN variant (a label plane
  added to every level) is not implemented; see the ``conditional`` family.
- PyTorch's default initialisation (eyescream used Torch7's defaults).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench import BuildContext, CriticInputs, GanModel, StepContext, UsageError
from ganbench import Draw, StepLogs
from ganbench_builtin.recipes import LAPGAN as RECIPE

LATENT_DIM = 100
HIDDEN_G = RECIPE["hidden_g level 0"].value
HIDDEN_D = RECIPE["hidden_d level 0"].value
DROPOUT = 0.5
WIDTH = RECIPE["width levels >= 1"].value
MIN_COARSE = 7
LR = RECIPE["lr levels >= 1"].value
LR_COARSE = RECIPE["lr level 0"].value
BETAS = RECIPE["betas"].value


# -- the pyramid ------------------------------------------------------------------


def downsample(images: torch.Tensor) -> torch.Tensor:
    """Halve the resolution by 2x2 average pooling."""
    return F.avg_pool2d(images, 2)


def upsample(images: torch.Tensor) -> torch.Tensor:
    """Double the resolution by bilinear interpolation."""
    return F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)


def pyramid_sizes(resolution: int) -> list[int]:
    """Side of every level, coarse to fine: halve while even and the half is >= 7 pixels."""
    if resolution < 1:
        raise UsageError(f"Resolution must be positive, got {resolution}.")
    sizes = [resolution]
    while sizes[0] % 2 == 0 and sizes[0] // 2 >= MIN_COARSE:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def build_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``levels`` levels, coarse to fine.

    Element 0 is the low-pass image at 1/2**(levels-1) of the resolution;
    element k >= 1 is the band-pass residual image_k - up(down(image_k))
    at 1/2**(levels-1-k) of it. :func:`reconstruct` inverts it.
    """
    if levels < 1:
        raise UsageError(f"A pyramid needs at least one level, got {levels}.")
    side = images.shape[-1]
    if side % 2 ** (levels - 1):
        raise UsageError(f"A {side}-pixel image cannot be halved {levels - 1} times.")
    residuals: list[torch.Tensor] = []
    current = images
    for _ in range(levels - 1):
        coarse = downsample(current)
        residuals.append(current - upsample(coarse))
        current = coarse
    return [current, *reversed(residuals)]


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """The image a pyramid from :func:`build_pyramid` came from: upsample and add each residual."""
    image = pyramid[0]
    for residual in pyramid[1:]:
        image = upsample(image) + residual
    return image


# -- networks -------------------------------------------------------------------------


class CoarseGenerator(nn.Module):
    """Level 0: z -> 1200 -> 1200 ReLU -> C*s*s, tanh."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], hidden: tuple[int, ...] = HIDDEN_G) -> None:
        super().__init__()
        self.shape = shape
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(True)]
            width = h
        layers += [nn.Linear(width, math.prod(shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class CoarseDiscriminator(nn.Module):
    """Level 0: C*s*s -> 600 -> 600 ReLU with dropout -> 1 logit."""

    def __init__(self, shape: tuple[int, int, int], hidden: tuple[int, ...] = HIDDEN_D) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(True), nn.Dropout(DROPOUT)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


class ResidualGenerator(nn.Module):
    """Level k: (coarse image l_k, noise plane) -> band-pass residual h_k."""

    def __init__(self, channels: int, width: int = WIDTH) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1, width, 7, padding=3), nn.ReLU(True),
            nn.Conv2d(width, width, 7, padding=3), nn.ReLU(True),
            nn.Conv2d(width, channels, 5, padding=2),
        )

    def forward(self, coarse: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([coarse, noise], dim=1))


class ResidualDiscriminator(nn.Module):
    """Level k: (residual h_k, coarse image l_k) -> one logit, judging the sum l_k + h_k.

    The paper (§3.2) and eyescream (``nn.CAddTable`` as D's first layer) add
    the coarse image to the residual, so D judges the full-resolution image
    the pair makes: a residual is real or fake only as detail on l_k.
    """

    def __init__(self, channels: int, size: int, width: int = WIDTH) -> None:
        super().__init__()
        half = (size + 1) // 2
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(True),
            nn.Conv2d(width, width, 5, stride=2, padding=2), nn.ReLU(True),
            nn.Dropout(DROPOUT), nn.Flatten(), nn.Linear(width * half * half, 1),
        )

    def forward(self, residual: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.net(residual + coarse).squeeze(1)


# -- the model ----------------------------------------------------------------------------


def _optimizer(ctx: BuildContext, role: str, net: nn.Module, rate: float) -> torch.optim.Optimizer:
    """A level's optimiser: the objective's recipe when it has one (the user's --lr still wins), else Adam."""
    recipe = ctx.objective.optimizers.get(role)
    if recipe is not None:
        return recipe.build(net.parameters(), ctx.settings.lr)
    return torch.optim.Adam(net.parameters(), lr=rate, betas=BETAS)


class LapGanModel(GanModel):
    """One GAN per pyramid level, trained independently, sampled coarse to fine."""

    def __init__(self, ctx: BuildContext) -> None:
        data = ctx.data
        self.channels = data.channels
        self.sizes = pyramid_sizes(data.resolution)
        self.levels = len(self.sizes)
        self.objective = ctx.objective
        self.n_critic = ctx.settings.n_critic or ctx.objective.n_critic
        self.device = ctx.device
        self.latent = ctx.settings.latent or "uniform"
        self.z_dim = LATENT_DIM
        self.latent_dim = LATENT_DIM + sum(s * s for s in self.sizes[1:])
        width = int(ctx.settings.options.get("width", WIDTH))
        lr = ctx.settings.lr or LR
        c, s0 = data.channels, self.sizes[0]
        self.generators: list[nn.Module] = [CoarseGenerator(LATENT_DIM, (c, s0, s0))]
        self.discriminators: list[nn.Module] = [CoarseDiscriminator((c, s0, s0))]
        for size in self.sizes[1:]:
            self.generators.append(ResidualGenerator(c, width))
            self.discriminators.append(ResidualDiscriminator(c, size, width))
        for net in (*self.generators, *self.discriminators):
            net.to(ctx.device)
        rates = [ctx.settings.lr or LR_COARSE] + [lr] * (self.levels - 1)
        self.opt_g = [_optimizer(ctx, "generator", g, r) for g, r in zip(self.generators, rates)]
        self.opt_d = [_optimizer(ctx, "discriminator", d, r) for d, r in zip(self.discriminators, rates)]

    # -- contract ---------------------------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        nets = {f"generator_{k}": g for k, g in enumerate(self.generators)}
        nets.update({f"discriminator_{k}": d for k, d in enumerate(self.discriminators)})
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {f"generator_{k}": o for k, o in enumerate(self.opt_g)}
        opts.update({f"discriminator_{k}": o for k, o in enumerate(self.opt_d)})
        return opts

    def extra_state(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict(), "sizes": list(self.sizes)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        sizes = state.get("sizes")
        if sizes is not None and list(sizes) != list(self.sizes):
            raise UsageError(f"The checkpoint's pyramid {sizes} does not match this model's {self.sizes}.")
        self.objective.load_state_dict(state.get("objective", {}))

    # -- pieces -----------------------------------------------------------------------

    def split_latent(self, z: torch.Tensor) -> list[torch.Tensor]:
        """z into [level-0 vector, noise plane of level 1, noise plane of level 2, ...]."""
        parts = [z[:, : self.z_dim]]
        start = self.z_dim
        for size in self.sizes[1:]:
            parts.append(z[:, start : start + size * size].reshape(-1, 1, size, size))
            start += size * size
        return parts

    def _fake(self, level: int, noise: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        if level == 0:
            return self.generators[0](noise)
        return self.generators[level](coarse, noise)

    def _critic(self, level: int, x: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        if level == 0:
            return self.discriminators[0](x)
        return self.discriminators[level](x, coarse)

    def _real_levels(self, real: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per level, (what D sees as real, the coarse image it is conditioned on)."""
        images = [real]
        for _ in range(self.levels - 1):
            images.insert(0, downsample(images[0]))
        out: list[tuple[torch.Tensor, torch.Tensor | None]] = [(images[0], None)]
        for lower, image in zip(images, images[1:]):
            coarse = upsample(lower)
            out.append((image - coarse, coarse))  # the same residual build_pyramid computes
        return out

    # -- training and sampling --------------------------------------------------------------

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        del ctx
        logs: StepLogs = {}
        loss_d: list[torch.Tensor] = [torch.zeros(())] * self.levels
        for _ in range(self.n_critic):
            real, _labels = draw()
            levels = self._real_levels(real)
            z = self.split_latent(self.sample_latent(real.shape[0], real.device))
            for k, (target, coarse) in enumerate(levels):
                with torch.no_grad():
                    fake = self._fake(k, z[k], coarse)
                d_real, d_fake = self._critic(k, target, coarse), self._critic(k, fake, coarse)
                loss, d_logs = self.objective.discriminator_loss(
                    CriticInputs(target, fake, d_real, d_fake, lambda x, k=k, c=coarse: self._critic(k, x, c))
                )
                self.update(self.opt_d[k], loss)
                self.objective.after_critic_step(self.discriminators[k])
                loss_d[k] = loss.detach()
                logs.update({f"{name}_{k}": v for name, v in d_logs.items()})
        z = self.split_latent(self.sample_latent(real.shape[0], real.device))
        loss_g: list[torch.Tensor] = [torch.zeros(())] * self.levels
        for k, (_target, coarse) in enumerate(levels):
            fake = self._fake(k, z[k], coarse)
            loss, g_logs = self.objective.generator_loss(fake, self._critic(k, fake, coarse))
            self.update(self.opt_g[k], loss)
            loss_g[k] = loss.detach()
            logs.update({f"{name}_{k}": v for name, v in g_logs.items()})
        for k in range(self.levels):
            logs[f"loss_d_{k}"] = loss_d[k]
            logs[f"loss_g_{k}"] = loss_g[k]
        logs["loss_d"] = torch.stack(loss_d).mean()
        logs["loss_g"] = torch.stack(loss_g).mean()
        return logs

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        del labels
        parts = self.split_latent(z)
        image = self.generators[0](parts[0]).clamp(-1, 1)
        for k in range(1, self.levels):
            coarse = upsample(image)
            image = (coarse + self.generators[k](coarse, parts[k])).clamp(-1, 1)
        return image


def build(ctx: BuildContext) -> LapGanModel:
    return LapGanModel(ctx)


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "uniform(100) + one noise plane per finer level",
            "pyramid": "halve while even and >= 7 px",
            "downsample": "2x2 average", "upsample": "bilinear", "hidden_g0": HIDDEN_G, "hidden_d0": HIDDEN_D,
            "dropout": DROPOUT, "width": WIDTH, "lr": LR, "lr_level0": LR_COARSE, "betas": BETAS}
