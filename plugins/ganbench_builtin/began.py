"""began: boundary equilibrium GAN (Berthelot, Schumm & Metz 2017).

Registers the family ``began`` and the objective ``began``. The family's
discriminator is an auto-encoder that returns a reconstruction of its input
(``provides=RECONSTRUCTION``), so it trains only with objectives that need a
reconstruction, and the ``began`` objective only with such families: the core
refuses ``dcgan:began`` or ``began:hinge`` before training.

Sources: the paper (§3.4 the objective, k_t and M_global, §3.5 the
architecture, §4 the set-up) and carpedm20/BEGAN-tensorflow for what the
paper leaves open; see REFERENCES §2.5.

Objective (§3.4), with L(v) = mean |v - D(v)| (L1, eta = 1)::

    L_D = L(x) - k_t * L(G(z))        L_G = L(G(z))
    k_{t+1} = clip(k_t + lambda_k * (gamma * L(x) - L(G(z))), 0, 1)
    M_global = L(x) + |gamma * L(x) - L(G(z))|

lambda_k = 0.001, k_0 = 0, gamma = 0.5 (the common default; the paper explores
0.3-0.7; ``options["gamma"]`` changes it). L(G(z)) in the k update and in
M_global is the generator's loss on a fresh z after the discriminator update,
i.e. L(G(z_G)) as in the paper. Every step logs ``L(x)``, ``L(G(z))``,
``k_t`` (after this step's update), ``M_global``, ``balance``
(gamma L(x) - L(G(z))) and ``lr``.

Architecture (§3.5), no batch norm anywhere, 3x3 convolutions with ELU:

- Encoder: conv(C -> n); then per scale two convs, and between scales a
  stride-2 conv (sub-sampling) whose width grows linearly n, 2n, 3n, ...;
  down to 8x8 (to the resolution itself when it is <= 8); a fully connected
  bottleneck to h in R^64 (N_h = 64) with no non-linearity.
- Decoder: FC h -> 8x8xn, per scale two convs with ELU, nearest-neighbour
  up-sampling between scales, a final 3x3 conv to C channels with no
  activation (carpedm20): a reconstruction need not be bounded, the L1 loss
  pulls it into [-1, 1].
- Generator: the decoder's architecture from z ~ U[-1, 1]^64 (N_z = 64),
  plus a tanh on the output (see departures).
- Adapting to the dataset: the bottleneck map is the resolution halved while
  it is even and above 8: 16 -> 8, 32 -> 16 -> 8, 64 -> 32 -> 16 -> 8 and
  **28 -> 14 -> 7** (a 7x7 bottleneck map, no resizing). A size with no such
  halving keeps its own size (e.g. 9x9).

Optimiser: Adam lr 1e-4, betas (0.5, 0.999) for both networks (the paper gives
an initial lr in [5e-5, 1e-4] and no betas; carpedm20's config says beta1 0.5
but its trainer builds Adam from the lr alone, so TensorFlow's beta1 0.9
applies there; 0.9 measured worse here, see below). The paper halves the lr "when the
convergence measure stalls"; ganbench implements that with :class:`StallDecay`:
an exponential moving average of M_global (decay 0.99, about a 100-step
horizon) is tracked; when it has not improved on its best value by at least
1 % for ``lr_patience`` steps (default 1000, ``options["lr_patience"]``),
both learning rates are halved (never below 2e-5, carpedm20's
``lr_lower_boundary``, or the initial lr if that is lower) and the patience
count restarts. The decay state travels in ``extra_state``; the lr itself is
in the optimisers' state.

Why it collapsed on the digits (issue 18), and what was done:

- **One cause found and fixed: the noise was drowned by the init scale.** With
  PyTorch's default init (each conv/linear layer scales the variance by about
  1/3 and adds a random bias) the generator's output, through an FC and five
  ELU convs with no batch norm, varied across z by a per-pixel std of 0.015
  (real digits at 16 px: 0.37): G started as a single grey image. Within ~20
  steps the auto-encoder learnt the real digits' dark background, so it
  reconstructed that grey image worse than the reals (L(G(z)) 0.04 -> 0.43
  while L(x) fell 0.68 -> 0.42), the balance turned negative and k_t hit
  exactly 0 by step ~30 and stayed there (batch 64 and 16 alike). With
  k_t = 0 the discriminator never pushes on fakes, so G merely chases what
  the auto-encoder reconstructs best: one blob (FID2k ~700, worse than an
  untrained generator's ~500). carpedm20's TF layers start from Glorot
  weights and zero biases; :func:`glorot_init` does the same, giving a
  per-pixel std of 0.11-0.14 at initialisation and k_t > 0 for the first
  ~450 steps instead of ~30 (batch 16, n = 32). That fixes the plain bug but
  not the collapse: see the last point.
- **Ruled out.** The tanh output (removed, with clamping in ``generate``
  instead: traces identical to four digits at step 50 and the same outcome
  at 200); a wrong sign or a wrong L(G(z)) in the k update (the formulas are
  pinned by a test; the update uses L(G(z_G)) after the D step, §3.4); noise
  ignored in ``generate`` (it is ``generator(z)``); N_h (16 instead of 64:
  the same grey attractor); with the Glorot init in place, gamma 0.7 and a
  slower G (lr_G 4e-5, TTUR's ratio) keep the same grey attractor (per-pixel
  std falling to 0.04-0.07 by step 75-200, k_t back toward 0).
  Adam's beta1 0.9 (carpedm20's effective value): k_t reaches exactly 0 by
  step ~250 (seeds 0 and 1, batch 16, n = 32) instead of ~450 with 0.5, so
  0.5 stays. The generator's gradient path: L(G(z)) reaches G through D's
  encoder and decoder, and G's step leaves D's weights alone (pinned by a
  test). The lr decay: the stall rule never fired in these runs (lr 1e-4
  throughout; M_global keeps improving by more than 1 % per 1000 steps).
- **Not fixed; the likely remaining cause: the paper's k_t time scale is
  longer than a CPU minute.** With
  lambda_k = 0.001 and |balance| <= 0.05, k_t moves at most 5e-5 per step;
  it peaks at 0.006-0.011 within 150 steps, so the fake term is ~1 % of the
  discriminator's loss and the game stays in its k ~ 0 phase, where G is
  pulled toward the auto-encoder's reconstructions: a blurred average digit
  (a bright vertical blob) until L(x) falls. A 10x or 50x lambda_k
  (a departure) overshoots: k_t reaches 0.04-0.16, the auto-encoder rejects
  the blob, the balance goes negative and k_t returns to 0 by step 125
  (at 50x the samples become vertical blobs, per-pixel std 0.12, at step 350).
  Measured with ``--batch-size 16`` (the paper's), 1000 steps: k_t peaks at
  0.006 near step 175, falls back to exactly 0 from step ~475 to the end
  (k_t > 0 at 18 of 40 logged steps); FID2k 574 at 300 steps, 557 at 600
  and 532 at 1000, IS 1.00 on the lenet extractor (an untrained
  generator: 497 and 1.05); every sample the same faintly textured grey
  square. A higher lr (3e-4, outside the paper's range) collapses the same
  way. So BEGAN still collapses on the digits within a CPU minute.
- **Longer runs (issue 18, second pass): no sign of leaving the k = 0 phase
  in 5,300 steps.** Default recipe, ``--batch-size 16``, 16 px, a
  25-minute wall budget on a loaded box: k_t is 0 (below 1e-6) from step ~500 to
  the end and the lr never decays. Under the k = 0 pull the generator does
  move: L(G(z)) / L(x) goes 0.55 (step 200), 1.08 (1000), 0.77 (1600), 0.62
  (2400), then stays at 0.61-0.79 (2400-5300) while L(x) keeps falling
  (0.05 at step 1000, 0.020 at 5000); the samples go from one grey square
  (step ~900) to one blurred digit-like blob on a dark background (step
  ~1700), the same for every z. k_t leaves 0 only when the ratio is below
  gamma = 0.5, so the discriminator never starts to reject the blob, which is
  the mechanism that brings diversity. FID1k (lenet) 548, 448, 450 and 462
  at steps ~925, ~2125, ~3400 and 5,299, IS 1.00-1.03: no better than an
  untrained generator (FID2k 497, IS 1.05). ``--resolution 32`` (two
  sub-samplings, as the paper's structure) behaves the same within the 600
  steps it reached: k_t peaks at 0.008 near step 250 and is exactly 0 from
  step ~500. So the budget at which this recipe learns the digits is above
  5,300 steps of batch 16 (about 18 minutes of one core at the ~4.8
  steps/s measured late in that run), i.e. not measured.
  Not tried for lack of time: a faster k_t controller combined with a slower
  discriminator, n = 64/128 at 16 px, and several thousand more steps.

Departures, and why:
- Default n = 32 filters (``options["width"]``); the paper uses n = 64 or
  128, which is much slower on a CPU. ``width=64`` or ``128`` restores it.
- The generator ends in tanh, so its images lie in [-1, 1] as every ganbench
  family's must; the discriminator's decoder keeps the linear output.
  carpedm20 comments its tanh out, but TF-slim's conv and fully connected
  layers default to a ReLU activation, so its convs (ELU applied on a ReLU),
  FCs and output conv are effectively ReLU there; ganbench follows the
  paper's ELU and does not copy that quirk (untested as a collapse cause).
- No skip connections (the paper's optional variant with skip connections
  is left out); one discriminator step
  per generator step (``--n-critic`` may change it).
- The stall rule above is ganbench's own reading of "decayed by a factor of
  2 when M_global stalls"; carpedm20 simply halves every 100k steps.
- Batch size is the harness's (the same for every family); the paper used 16.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganbench import (
    RECONSTRUCTION,
    AdversarialModel,
    BuildContext,
    CriticInputs,
    Objective,
    StepContext,
)
from ganbench.model import Draw, StepLogs

LATENT_DIM = 64  # N_z
HIDDEN_DIM = 64  # N_h
WIDTH = 32  # n (paper: 64 or 128)
LR = 1e-4
BETAS = (0.5, 0.999)
GAMMA = 0.5
LAMBDA_K = 0.001
MIN_LR = 2e-5
LR_PATIENCE = 1000
EMA_DECAY = 0.99
MIN_IMPROVEMENT = 0.01


def geometry(resolution: int) -> tuple[int, int]:
    """(bottleneck map size, number of halvings): halve while even and above 8."""
    base, k = resolution, 0
    while base > 8 and base % 2 == 0:
        base //= 2
        k += 1
    return base, k


def glorot_init(net: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and linear layer, as carpedm20's TF layers start.

    PyTorch's default (Kaiming-uniform with a = sqrt(5), random biases) scales each
    layer's variance by about 1/3 and adds a constant: through this family's
    FC + five ELU convs without batch norm the generator's output at
    initialisation varied across z by a per-pixel std of 0.015 (real digits:
    0.37), i.e. the noise was drowned by the init scale. Glorot keeps the
    variance roughly constant per layer: 0.11 at initialisation.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


class Encoder(nn.Module):
    """x -> h: 3x3 convs with ELU, stride-2 sub-sampling, widths n, 2n, 3n, ..., linear FC bottleneck."""

    def __init__(self, channels: int, resolution: int, width: int, hidden: int) -> None:
        super().__init__()
        base, k = geometry(resolution)
        layers: list[nn.Module] = [_conv(channels, width), nn.ELU()]
        for i in range(k + 1):
            c = width * (i + 1)
            layers += [_conv(c, c), nn.ELU(), _conv(c, c), nn.ELU()]
            if i < k:
                layers += [_conv(c, c + width, stride=2), nn.ELU()]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(base * base * width * (k + 1), hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1))


class Decoder(nn.Module):
    """h (or z) -> image: FC to base x base x n, 3x3 convs with ELU, nearest-neighbour up-sampling."""

    def __init__(self, channels: int, resolution: int, width: int, hidden: int, tanh: bool) -> None:
        super().__init__()
        base, k = geometry(resolution)
        self.base, self.width = base, width
        self.fc = nn.Linear(hidden, base * base * width)
        layers: list[nn.Module] = []
        for i in range(k + 1):
            layers += [_conv(width, width), nn.ELU(), _conv(width, width), nn.ELU()]
            if i < k:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(_conv(width, channels))
        if tanh:
            layers.append(nn.Tanh())
        self.convs = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.convs(self.fc(h).view(-1, self.width, self.base, self.base))


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int = WIDTH) -> None:
        super().__init__()
        self.decoder = Decoder(channels, resolution, width, latent_dim, tanh=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class Discriminator(nn.Module):
    """The auto-encoder: returns a reconstruction of its input (same shape)."""

    def __init__(self, channels: int, resolution: int, width: int = WIDTH, hidden: int = HIDDEN_DIM) -> None:
        super().__init__()
        self.encoder = Encoder(channels, resolution, width, hidden)
        self.decoder = Decoder(channels, resolution, width, hidden, tanh=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def reconstruction_loss(v: torch.Tensor, d_v: torch.Tensor) -> torch.Tensor:
    """L(v) = mean |v - D(v)| (the paper's pixel-wise L1, averaged rather than summed)."""
    return (v - d_v).abs().mean()


class BeganObjective(Objective):
    """The boundary-equilibrium losses; stateful (k_t), see the module docstring."""

    name = "began"
    needs = RECONSTRUCTION
    n_critic = 1

    def __init__(self, gamma: float = GAMMA, lambda_k: float = LAMBDA_K, k: float = 0.0) -> None:
        self.gamma = gamma
        self.lambda_k = lambda_k
        #: a float until the first update, then a 0-dim tensor on the training device (updated without a read)
        self.k: float | torch.Tensor = k
        self._loss_real: torch.Tensor | None = None

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_real = reconstruction_loss(inputs.real, inputs.d_real)
        loss_fake = reconstruction_loss(inputs.fake, inputs.d_fake)
        self._loss_real = loss_real.detach()
        return loss_real - self.k * loss_fake, {"L(x)": self._loss_real}

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = reconstruction_loss(fake, d_fake)
        loss_fake = loss.detach()
        logs = {"L(G(z))": loss_fake}
        if self._loss_real is not None:  # the equilibrium update needs this step's L(x)
            balance = self.gamma * self._loss_real - loss_fake
            self.k = (self.k + self.lambda_k * balance).clamp(0.0, 1.0)
            logs.update(balance=balance, M_global=self._loss_real + balance.abs())
            self._loss_real = None
        logs["k_t"] = torch.as_tensor(self.k)
        return loss, logs

    def state_dict(self) -> dict[str, Any]:
        return {"k": float(self.k), "gamma": self.gamma, "lambda_k": self.lambda_k}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.k = float(state.get("k", self.k))
        self.gamma = float(state.get("gamma", self.gamma))
        self.lambda_k = float(state.get("lambda_k", self.lambda_k))


class StallDecay:
    """Says when a smoothed measure has stalled: no relative improvement of its EMA over ``patience`` updates.

    The measure, its EMA and the count since the best stay on the training
    device. The host reads the count only when a stall has become possible
    (``patience`` updates after it last knew the count to be 0; fewer when it
    was higher), so the rule is exact while a step reads nothing back almost
    always: at most about two reads per ``patience`` updates.
    """

    def __init__(
        self, patience: int = LR_PATIENCE, decay: float = EMA_DECAY, min_improvement: float = MIN_IMPROVEMENT
    ) -> None:
        self.patience = patience
        self.decay = decay
        self.min_improvement = min_improvement
        self.smoothed: torch.Tensor | None = None
        self.best: torch.Tensor | None = None
        self.since_best: torch.Tensor | int = 0
        self.halvings = 0
        self._quiet = patience  # updates that cannot end in a stall, known without a read

    def update(self, value: torch.Tensor | float) -> bool:
        """Feed one measurement; True when the measure has stalled (the counter then restarts)."""
        v = torch.as_tensor(value).double()
        self.smoothed = v if self.smoothed is None else self.decay * self.smoothed + (1 - self.decay) * v
        if self.best is None:
            self.best, self.since_best = self.smoothed, 0
        else:
            improved = self.smoothed < self.best * (1 - self.min_improvement)
            self.best = torch.where(improved, self.smoothed, self.best)
            self.since_best = torch.where(improved, 0, self.since_best + 1)
        self._quiet -= 1
        if self._quiet > 0:
            return False
        since = int(self.since_best)  # the only read: a stall is possible from here on
        if since >= self.patience:
            self.best, self.since_best, self._quiet = self.smoothed, 0, self.patience
            self.halvings += 1
            return True
        self._quiet = self.patience - since
        return False

    def state_dict(self) -> dict[str, Any]:
        def read(x: torch.Tensor | None) -> float | None:
            return None if x is None else float(x)

        return {"smoothed": read(self.smoothed), "best": read(self.best), "since_best": int(self.since_best),
                "halvings": self.halvings}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def tensor(x: float | None) -> torch.Tensor | None:
            return None if x is None else torch.tensor(x, dtype=torch.float64)

        self.smoothed = tensor(state.get("smoothed"))
        self.best = tensor(state.get("best"))
        self.since_best = int(state.get("since_best", 0))
        self.halvings = int(state.get("halvings", 0))
        self._quiet = self.patience - self.since_best


class BeganModel(AdversarialModel):
    """The shared alternating step, then BEGAN's lr decay when M_global stalls."""

    def __init__(self, *args: Any, stall: StallDecay, min_lr: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall = stall
        self.min_lr = min_lr

    @property
    def lr(self) -> float:
        return float(self.opt_d.param_groups[0]["lr"])

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        logs = super().train_step(draw, ctx)
        if "M_global" in logs and self.stall.update(logs["M_global"]):
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = max(self.min_lr, group["lr"] * 0.5)
        logs["lr"] = torch.tensor(self.lr)  # known on the host: stays there
        return logs

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "lr_decay": self.stall.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.stall.load_state_dict(state.get("lr_decay", {}))


def build(ctx: BuildContext) -> BeganModel:
    options = ctx.settings.options
    width = int(options.get("width", WIDTH))
    if isinstance(ctx.objective, BeganObjective):
        ctx.objective.gamma = float(options.get("gamma", GAMMA))
    g = glorot_init(Generator(LATENT_DIM, ctx.data.channels, ctx.data.resolution, width)).to(ctx.device)
    d = glorot_init(Discriminator(ctx.data.channels, ctx.data.resolution, width, HIDDEN_DIM)).to(ctx.device)
    lr = ctx.settings.lr or LR
    return BeganModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=BETAS),
        torch.optim.Adam(d.parameters(), lr=lr, betas=BETAS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="uniform",
        stall=StallDecay(patience=int(options.get("lr_patience", LR_PATIENCE))),
        min_lr=min(MIN_LR, lr),
    )


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "uniform(64)", "hidden": HIDDEN_DIM, "width": WIDTH, "lr": LR, "betas": BETAS,
            "gamma": GAMMA, "lambda_k": LAMBDA_K, "min_lr": MIN_LR,
            "lr_decay": f"x0.5 when M_global stalls ({LR_PATIENCE} steps)"}
