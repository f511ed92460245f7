"""progressive: progressive growing of GANs (Karras, Aila, Laine & Lehtinen 2017).

Sources: the paper (§2 growing and fade-in, §3 minibatch standard deviation,
§4.1 equalised learning rate, §4.2 pixel-wise feature normalisation, Table 2
and the appendix for architecture and training details) and the official
Theano config for the paper's CIFAR-10 result (REFERENCES §2.6).

Networks (paper Table 2, CIFAR config: the same width at every resolution):

- G: z on the sphere (``latent="sphere"``, 128 dimensions, the CIFAR
  config's latent size), pixel-normalised; a dense layer to a 4x4 map,
  LeakyReLU 0.2, pixel norm, a 3x3 conv; then per doubling nearest-neighbour
  up-sampling and two 3x3 convs, each followed by LeakyReLU 0.2 and pixel-wise
  feature normalisation; a 1x1 ``toRGB`` per resolution with a linear output
  (no tanh, as in the paper).
- D: a 1x1 ``fromRGB`` per resolution with LeakyReLU; per halving two 3x3
  convs with LeakyReLU then 2x2 average pooling; the last block appends the
  minibatch standard-deviation feature map (one map: the std over the batch of
  every feature and pixel, averaged), a 3x3 conv, a dense layer over the
  4x4 map ("4x4 conv") and a linear output. No normalisation in D.
- Equalised learning rate everywhere: weights drawn from N(0, 1) and scaled
  at run time by He's constant sqrt(2 / fan_in) (gain 1 for ``toRGB`` and
  D's output, as in the official code); biases start at zero.

Training:

- Loss: WGAN-GP (the ``wgan-gp`` objective, lambda 10) plus the drift term
  eps_drift * E[D(x)^2] with eps_drift = 0.001, added to the critic's loss by
  this family (logged as ``drift``). Only ``wgan-gp`` is accepted.
- One critic step per generator step (the CIFAR config's
  ``D_training_repeats`` 1), unless ``--n-critic`` is given.
- Adam lr 1e-3, betas (0, 0.99), eps 1e-8 for both networks; the optimisers'
  moments are reset whenever a new resolution is added (the official code's
  ``reset_opt_for_new_lod``).
- Growth and fade-in as **fractions of the run's budget**, so a run grows
  fully under any budget: the first ``grow_fraction`` (0.14, the CIFAR
  config's 2,800 of 20,000 kimg; ``options["grow_fraction"]``) of the budget
  is split evenly into ``1 + 2k`` phases for ``k`` doublings: stabilise at
  the base resolution, then for each new resolution a fade-in (alpha rising
  linearly 0 -> 1) and a stabilisation (alpha 1). The rest of the budget
  trains at full resolution. Equal phases follow the CIFAR config (400k
  images to fade, 400k to stabilise). Every step logs ``resolution``,
  ``alpha`` and ``full_resolution_fraction``, the share of the budget spent
  at full resolution with alpha 1 (:func:`full_resolution_fraction`: 0.88
  at 32 px, 0.89 at 16 px, as in the paper's 0.86-0.88).
- During a fade-in the new block's output is blended with the up-sampled
  output of the previous resolution (G), and the new ``fromRGB`` path with
  the down-sampled path (D). Real batches, served at full resolution, are
  average-pooled to the current resolution and, during a fade-in, blended in
  the same way with their up-sampled half-resolution version (§2, Fig. 2).
- ``generate`` always returns images at the dataset's resolution: the
  current output is up-sampled with nearest neighbour and clamped to
  [-1, 1] (training sees the unclamped output).

Adapting to the dataset: growth starts at the base size b with
resolution = b * 2**k and 4 <= b <= 7: 16 px grows 4 -> 8 -> 16, 32 px
4 -> 8 -> 16 -> 32, 64 px up to 64, and **28 px grows 7 -> 14 -> 28** (a 7x7
start instead of 4x4, so that the discriminator sees the real 28x28 images
and nothing is resized). Other sizes (e.g. 9) train at the next power of two
and are area-resized.

Departures, and why:
- Width 64 feature maps at every resolution by default (``options["width"]``);
  the CIFAR config uses 128, four times the cost of every conv on a CPU.
- The gradient penalty targets norm 1 (the shared ``wgan-gp`` objective) where
  the CIFAR config uses gamma = 750; every other configuration of the paper
  uses 1.
- The config's EMA of G's weights (0.999 per batch of 16, ``G_smoothing``)
  is opt-in, ``--ema 11.1`` (a half-life of 11.1 kimg; applied by the core
  to every family alike): under a short budget such an average lags the
  generator by most of the run. By default images come from the trained G.
- The schedule is a fraction of the budget rather than a number of images
  (the paper's ratio, whatever the budget); the harness's batch size is used
  (the paper's CIFAR run used 16).
- Sphere latents have radius sqrt(dim) (ganbench's ``sphere``); the pixel
  norm applied to z first makes the radius irrelevant.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench import AdversarialModel, BuildContext, CriticInputs, StepContext
from ganbench import Draw, StepLogs
from ganbench_builtin.recipes import PROGRESSIVE as RECIPE

LATENT_DIM = 128
WIDTH = RECIPE["width"].value  # paper's CIFAR config: 128
LR = RECIPE["lr"].value
BETAS = RECIPE["betas"].value
EPS = 1e-8
DRIFT = 0.001
GROW_FRACTION = RECIPE["grow fraction"].value
N_CRITIC = RECIPE["n_critic"].value


# -- geometry and schedule ------------------------------------------------------


def geometry(resolution: int) -> tuple[int, int]:
    """(base size, doublings) with base * 2**k == resolution and 4 <= base <= 7 when possible."""
    base, k = resolution, 0
    while base > 7 and base % 2 == 0:
        base //= 2
        k += 1
    if base < 4 or base > 7:  # no clean factorisation: grow 4 -> next power of two and resize
        k = max(0, math.ceil(math.log2(resolution / 4)))
        base = 4
    return base, k


def schedule(progress: float, doublings: int, grow_fraction: float = GROW_FRACTION) -> tuple[int, float]:
    """(level, alpha) at a budget fraction: level i means resolution base * 2**i.

    [0, grow_fraction) is split into 1 + 2k equal phases: stabilise at level 0,
    then fade in and stabilise each further level; full resolution afterwards.
    """
    if doublings == 0 or progress >= grow_fraction:
        return doublings, 1.0
    phase_len = grow_fraction / (1 + 2 * doublings)
    phase = min(int(max(progress, 0.0) / phase_len), 2 * doublings)
    if phase == 0:
        return 0, 1.0
    level = (phase + 1) // 2
    if phase % 2 == 1:  # fading in
        return level, min(1.0, max(0.0, progress / phase_len - phase))
    return level, 1.0


def full_resolution_fraction(doublings: int, grow_fraction: float = GROW_FRACTION) -> float:
    """The share of the budget :func:`schedule` spends at full resolution with alpha 1 (its last phase and after)."""
    if doublings == 0:
        return 1.0
    return 1.0 - grow_fraction + grow_fraction / (1 + 2 * doublings)


# -- equalised-learning-rate layers -------------------------------------------


class EqualConv2d(nn.Module):
    """A conv whose N(0, 1) weights are scaled at run time by gain * sqrt(1 / fan_in)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int = 0, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualLinear(nn.Module):
    def __init__(self, d_in: int, d_out: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.scale = gain / math.sqrt(d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit average square (§4.2)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: torch.Tensor) -> torch.Tensor:
    """Append one map holding the batch std of every feature and pixel, averaged (§3)."""
    std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, std.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# -- networks -------------------------------------------------------------------


class Generator(nn.Module):
    """All resolutions' blocks; ``forward(z, level, alpha)`` renders at base * 2**level."""

    def __init__(self, latent_dim: int, channels: int, base: int, doublings: int, width: int = WIDTH) -> None:
        super().__init__()
        self.base, self.width = base, width
        self.dense = EqualLinear(latent_dim, width * base * base)
        self.first_conv = EqualConv2d(width, width, 3, 1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(width, width, 3, 1), EqualConv2d(width, width, 3, 1)]) for _ in range(doublings)
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(width, channels, 1, gain=1.0) for _ in range(doublings + 1))

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        x = self.dense(pixel_norm(z.view(z.shape[0], -1, 1, 1)).flatten(1))
        x = pixel_norm(_lrelu(x.view(-1, self.width, self.base, self.base)))
        x = pixel_norm(_lrelu(self.first_conv(x)))
        previous = x
        for i in range(level):
            previous = x
            x = _upsample(x)
            for conv in self.blocks[i]:
                x = pixel_norm(_lrelu(conv(x)))
        out = self.to_rgb[level](x)
        if level > 0 and alpha < 1.0:
            out = alpha * out + (1 - alpha) * _upsample(self.to_rgb[level - 1](previous))
        return out


class Discriminator(nn.Module):
    """The mirror of the generator; ``forward(x, level, alpha)`` scores images at base * 2**level."""

    def __init__(self, channels: int, base: int, doublings: int, width: int = WIDTH) -> None:
        super().__init__()
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, width, 1) for _ in range(doublings + 1))
        self.blocks = nn.ModuleList(  # blocks[i] takes level i+1 down to level i
            nn.ModuleList([EqualConv2d(width, width, 3, 1), EqualConv2d(width, width, 3, 1)]) for _ in range(doublings)
        )
        self.final_conv = EqualConv2d(width + 1, width, 3, 1)
        self.final_dense = EqualLinear(width * base * base, width)
        self.output = EqualLinear(width, 1, gain=1.0)

    def _block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        for conv in self.blocks[i]:
            x = _lrelu(conv(x))
        return F.avg_pool2d(x, 2)

    def forward(self, image: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        x = _lrelu(self.from_rgb[level](image))
        if level > 0:
            x = self._block(level - 1, x)
            if alpha < 1.0:
                skip = _lrelu(self.from_rgb[level - 1](F.avg_pool2d(image, 2)))
                x = alpha * x + (1 - alpha) * skip
            for i in range(level - 2, -1, -1):
                x = self._block(i, x)
        x = _lrelu(self.final_conv(minibatch_stddev(x)))
        x = _lrelu(self.final_dense(x.flatten(1)))
        return self.output(x).squeeze(1)


# -- the family -------------------------------------------------------------------


class ProgressiveModel(AdversarialModel):
    """Grows G and D with the budget; WGAN-GP with the drift term; see the module docstring."""

    #: Karras et al. tuned their Adam (lr 1e-3, betas (0, 0.99)) together with WGAN-GP and the equalised
    #: learning rate, which rescales every weight's gradient: Gulrajani's 1e-4 would undo that tuning.
    keeps_own_optimizers = True

    def __init__(
        self, *args: Any, resolution: int, base: int, doublings: int, grow_fraction: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.resolution = resolution
        self.base, self.doublings = base, doublings
        self.full = base * 2**doublings  # == resolution unless the size is awkward
        self.grow_fraction = grow_fraction
        self.level, self.alpha = 0, 1.0

    def _resolution(self, level: int) -> int:
        return self.base * 2**level

    def _real(self, images: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        """Real images at the current resolution, faded like the generator's output."""
        if images.shape[-1] != self.full:
            mode = "area" if images.shape[-1] > self.full else "bilinear"
            images = F.interpolate(images, size=(self.full, self.full), mode=mode)
        x = F.avg_pool2d(images, 2 ** (self.doublings - level)) if level < self.doublings else images
        if level > 0 and alpha < 1.0:
            x = alpha * x + (1 - alpha) * _upsample(F.avg_pool2d(x, 2))
        return x

    def _advance(self, progress: float) -> None:
        level, alpha = schedule(progress, self.doublings, self.grow_fraction)
        if level != self.level:  # a new resolution: start its optimiser moments afresh
            for opt in (self.opt_g, self.opt_d):
                opt.state.clear()
        self.level, self.alpha = level, alpha

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        self._advance(ctx.progress)
        level, alpha = self.level, self.alpha

        def critic(x: torch.Tensor) -> torch.Tensor:
            return self.discriminator(x, level, alpha)

        for _ in range(self.n_critic):
            images, _labels = draw()
            real = self._real(images, level, alpha)
            z = self.sample_latent(real.shape[0], real.device)
            with torch.no_grad():
                fake = self.generator(z, level, alpha)
            d_real, d_fake = critic(real), critic(fake)
            loss_d, d_logs = self.objective.discriminator_loss(CriticInputs(real, fake, d_real, d_fake, critic))
            drift = (d_real**2).mean()
            loss_d = loss_d + DRIFT * drift
            self.update(self.opt_d, loss_d)
            self.objective.after_critic_step(self.discriminator)
        z = self.sample_latent(real.shape[0], real.device)
        fake = self.generator(z, level, alpha)
        loss_g, g_logs = self.objective.generator_loss(fake, critic(fake))
        self.update(self.opt_g, loss_g)
        return {
            **d_logs, **g_logs,
            "drift": drift.detach(),
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            # known on the host: CPU tensors, never copied to the device
            "resolution": torch.tensor(float(self._resolution(level))),
            "alpha": torch.tensor(float(alpha)),
            "full_resolution_fraction": torch.tensor(full_resolution_fraction(self.doublings, self.grow_fraction)),
        }

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.generator(z, self.level, self.alpha)
        if x.shape[-1] != self.full:
            x = F.interpolate(x, size=(self.full, self.full), mode="nearest")
        if self.full != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        return x.clamp(-1.0, 1.0)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "level": self.level, "alpha": self.alpha}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.level = int(state.get("level", self.level))
        self.alpha = float(state.get("alpha", self.alpha))


def build(ctx: BuildContext) -> ProgressiveModel:
    options = ctx.settings.options
    width = int(options.get("width", WIDTH))
    grow_fraction = float(options.get("grow_fraction", GROW_FRACTION))
    base, k = geometry(ctx.data.resolution)
    g = Generator(LATENT_DIM, ctx.data.channels, base, k, width).to(ctx.device)
    d = Discriminator(ctx.data.channels, base, k, width).to(ctx.device)
    lr = ctx.settings.lr or LR
    model = ProgressiveModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=BETAS, eps=EPS),
        torch.optim.Adam(d.parameters(), lr=lr, betas=BETAS, eps=EPS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="sphere",
        resolution=ctx.data.resolution, base=base, doublings=k, grow_fraction=grow_fraction,
    )
    model.n_critic = ctx.settings.n_critic or N_CRITIC
    return model


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": f"sphere({LATENT_DIM})", "width": WIDTH, "lr": LR, "betas": BETAS, "n_critic": N_CRITIC,
            "drift": DRIFT, "gp_lambda": 10.0, "grow_fraction": GROW_FRACTION}
