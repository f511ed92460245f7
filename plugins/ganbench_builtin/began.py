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

k_0 = 0. L(G(z)) in the k update and in M_global is the generator's loss on
a fresh z after the discriminator update, i.e. L(G(z_G)) as in the paper.
Every step logs ``L(x)``, ``L(G(z))``, ``k_t`` (after this step's update),
``M_global``, ``balance`` (gamma L(x) - L(G(z))), ``lr`` (D's) and ``lr_g``.

Architecture (§3.5), no batch norm anywhere, 3x3 convolutions with ELU:

- Encoder: conv(C -> n); then per scale two convs, and between scales a
  stride-2 conv (sub-sampling) whose width grows linearly n, 2n, 3n, ...;
  down to 8x8 (to the resolution itself when it is <= 8); a fully connected
  bottleneck to h in R^{N_h} with no non-linearity.
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
- Weights: Glorot-uniform, zero biases (TF's defaults, which carpedm20
  uses): with PyTorch's default init the generator's output varied across z
  by a per-pixel std of 0.015, i.e. it ignored its noise (issue 18's first
  finding; see :func:`glorot_init`).

Recipe (:func:`recipe`; ``--lr`` sets both lrs, and the family's options
``width``, ``hidden``, ``gamma``, ``lambda_k``, ``lr_g`` and ``lr_d`` override
single values):

==============  ============================  ==================================
setting         from 32 px (the paper's)      below 32 px (ganbench's, digits)
==============  ============================  ==================================
n (width)       64 (§4; REFERENCES §2.5)      32
N_h (hidden)    64 (§4)                       8
gamma           0.5 (carpedm20, TTUR)         0.75 (Lucic et al.; §1.5)
lambda_k        0.001 (§3.4)                  0.01
lr_g / lr_d     1e-4 / 1e-4 (carpedm20)       3e-4 / 1e-4
batch           16 (carpedm20, TTUR)          16
==============  ============================  ==================================

The batch is the family's recipe value (``ModelSpec.batch_size``): every run
uses the paper's 16 unless ``--batch-size`` is given, as the measurements
below did.

Adam betas (0.5, 0.999) for both networks (the paper gives an initial lr in
[5e-5, 1e-4] and no betas; carpedm20's config says beta1 0.5 but its trainer
builds Adam from the lr alone, so TensorFlow's beta1 0.9 applies there; 0.9
measured worse here). ``--lr`` sets both lrs. The paper halves the lr "when
the convergence measure stalls"; ganbench implements that with
:class:`StallDecay`: an exponential moving average of M_global (decay 0.99,
about a 100-step horizon) is tracked; when it has not improved on its best
value by at least 1 % for a quarter of the run's budget
(``lr_patience_fraction``, default 0.25; the budget's length in steps is read
from the loop's progress, at least 20 steps) both learning rates are halved
(never below 2e-5, carpedm20's ``lr_lower_boundary``, or an initial lr below
that) and the patience count restarts. ``lr_patience=N`` fixes the patience
at N steps instead. A patience tied to the budget makes the rule able to fire
within any suite's budget; the earlier fixed 1000 steps never fired in CPU
runs. The decay state travels in ``extra_state``.

Why it collapsed on the digits (issue 18), and the fix:

- **A plain bug, fixed first: the noise was drowned by the init scale**
  (Glorot init above). That alone left k_t > 0 for ~450 steps instead of
  ~30, but every sample was still one grey square (FID1k 575, IS 1.00, per-
  pixel std across z 0.035 after 300 steps of batch 16, against 0.37 for
  the real digits).
- **The cause: the auto-encoder did not compress the digits, so the
  generator's cheapest answer was a flat grey image, and k_t was too slow to
  stop it.** The embedded digits are 8x8 images upscaled to 16x16: at most
  64 numbers each, exactly the paper's N_h = 64. The auto-encoder therefore
  never has to learn what a digit looks like: trained alone on real digits
  for 400 steps (batch 16) it reconstructs a flat grey image about as well as
  a held-out digit (L1 0.109 against 0.077, the mean digit 0.080; at 100
  steps the grey image was the *easier*: 0.072 against 0.128). While k_t is
  near 0 the generator only minimises L(G(z)), so every z goes to the flat
  image the auto-encoder reconstructs best; with lambda_k = 0.001 k_t moves
  at most ~5e-5 per step and peaked at 0.006, far below the ~0.05 at which
  the discriminator rejects the fakes, and once the auto-encoder had
  specialised on the digits (L(G(z)) above gamma L(x)) k_t fell back to 0 for
  good (the 5,300-step run: k_t at 0 from step ~500, one blob, FID1k 462).
  The faces of the paper are 32x32x3 = 3,072 numbers squeezed into 64.
- **The fix, measured one factor at a time (seed 0, batch 16, n = 32, 16
  px, 300 steps; FID1k and IS on the lenet extractor; an untrained generator
  scores FID1k 494, IS 1.05):** gamma 0.75 alone: FID 540, IS 1.01, one
  class. N_h = 16 alone: 542. lambda_k 0.01 with gamma 0.75 (N_h 64):
  k_t reaches 0.06 by step 50, the auto-encoder rejects the fakes (L(G(z))
  0.33 against L(x) 0.16) and k_t is back at 0 by step 100 (FID 419 there).
  N_h = 8 with gamma 0.75 and lambda_k 0.01: varied digits at step 100 (FID
  234, IS 2.24, 7 classes) but the controller overshoots, k_t is 0 from step
  ~110 to ~220 and the samples fall back to one vertical stroke (FID 357 at
  300): the generator, at the discriminator's lr, could not follow the
  auto-encoder's rejections, so L(G(z)) stayed above gamma L(x). A 3x faster
  generator (lr_g 3e-4, lr_d 1e-4) follows them: k_t settles at 0.05-0.07
  and stays there. lambda_k 0.003 instead: k_t only 0.03, FID 509 at 100.
  The defaults below 32 px are therefore N_h 8, gamma 0.75, lambda_k 0.01
  and lr_g = 3 lr_d. Measured with them (the run as a whole, with the
  stall rule at its default patience of 75 steps; it did not fire): k_t > 0
  at every one of 300 steps, settling at 0.05-0.12; FID 320 / 343 / 279 and
  IS 1.82 / 1.63 / 1.88 at steps 100 / 200 / 300 (500, 500 and 1,000
  samples), 5 classes, blurred but varied digits.
  ``test_began_learns_the_digits_with_k_t_in_equilibrium`` pins the 150-step
  version. A CPU minute is about 300-600 such steps; at that budget the
  digits are still far from DCGAN's quality. At the harness's default batch
  of 64, 80 steps (the same 5,120 images as 320 steps of 16): k_t > 0 at
  every step (0.06-0.10), FID1k 267, IS 1.94, 5 classes. Not measured for
  lack of time: other seeds, n = 64 at 16 px.
- **Ruled out earlier** (kept for the record): the tanh output (removed:
  the same traces); the sign of the k update and its L(G(z_G)) (pinned by
  a test); noise ignored in ``generate``; the gradient path through D (pinned
  by a test); Adam beta1 0.9 (k_t at 0 sooner); a slower generator (lr_g
  4e-5, TTUR's ratio: the grey attractor sooner); lr 3e-4 for both; 32 px
  with the old recipe.

Departures, and why:
- Below 32 px, the recipe above (the paper publishes nothing below 32 px).
  From 32 px the paper's values are kept; whether they learn within a CPU
  minute there was not measured.
- The generator ends in tanh, so its images lie in [-1, 1] as every ganbench
  family's must; the discriminator's decoder keeps the linear output.
  carpedm20 comments its tanh out, but TF-slim's conv and fully connected
  layers default to a ReLU activation, so its layers are effectively ReLU;
  ganbench follows the paper's ELU.
- No skip connections (the paper's optional variant); one discriminator step
  per generator step (``--n-critic`` may change it).
- The stall rule is ganbench's own reading of "decayed by a factor of 2 when
  M_global stalls"; carpedm20 simply halves every 100k steps.
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
from ganbench import Draw, StepLogs
from ganbench_builtin.recipes import BEGAN as RECIPE
from ganbench_builtin.recipes import began_recipe

LATENT_DIM = 64  # N_z
BETAS = RECIPE["betas"].value
MIN_LR = RECIPE["lr floor"].value
LR_PATIENCE = 1000
#: The default patience, as a fraction of the run's budget, so that the decay can fire within a suite's budget.
LR_PATIENCE_FRACTION = 0.25
MIN_PATIENCE = 20
EMA_DECAY = 0.99
MIN_IMPROVEMENT = 0.01
#: The paper's smallest published resolution; below it the small-image recipe applies.
PAPER_MIN_RESOLUTION = 32

#: The paper's recipe (REFERENCES §2.5), used from 32 px up: n = 64 (§4), N_h = 64, gamma 0.5,
#: lambda_k 0.001 (§3.4), one lr of 1e-4 for both networks (carpedm20). Every value with its source:
#: ``ganbench_builtin.recipes.BEGAN`` (docs/recipes.md).
PAPER_RECIPE = began_recipe(small=False)
#: Below 32 px (the digits at 16 px, MNIST at 28): ganbench's own values, measured on the digits (see
#: "Why it collapsed"): a compressing bottleneck, Lucic et al.'s gamma for MNIST (REFERENCES §1.5), a
#: controller and a generator fast enough for a few hundred steps, and n = 32 for a CPU's budget.
SMALL_RECIPE = began_recipe(small=True)


def recipe(resolution: int, options: dict[str, Any], lr: float | None = None) -> dict[str, float]:
    """The settings of one run: the recipe for its resolution, then ``--lr`` (both networks), then options."""
    values: dict[str, float] = dict(PAPER_RECIPE if resolution >= PAPER_MIN_RESOLUTION else SMALL_RECIPE)
    if lr:
        values.update(lr_g=lr, lr_d=lr)
    values.update({k: float(options[k]) for k in values if k in options})
    return values


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
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        self.decoder = Decoder(channels, resolution, width, latent_dim, tanh=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class Discriminator(nn.Module):
    """The auto-encoder: returns a reconstruction of its input (same shape)."""

    def __init__(self, channels: int, resolution: int, width: int, hidden: int) -> None:
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

    def __init__(self, gamma: float = PAPER_RECIPE["gamma"], lambda_k: float = PAPER_RECIPE["lambda_k"],
                 k: float = 0.0) -> None:
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

    def set_patience(self, patience: int) -> None:
        """Change the patience without a read: the count is at most the old patience minus the quiet updates left,
        so a stall under the new patience cannot come sooner than the new patience minus that bound."""
        self._quiet = max(1, patience - self.patience + self._quiet)
        self.patience = patience

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

    def __init__(self, *args: Any, stall: StallDecay, min_lr: float, patience_fraction: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall = stall
        #: each optimiser's floor: 2e-5 (carpedm20's ``lr_lower_boundary``), or its initial lr if that is lower
        self.floors = {id(opt): min(min_lr, opt.param_groups[0]["lr"]) for opt in (self.opt_g, self.opt_d)}
        self.patience_fraction = patience_fraction

    @property
    def lr(self) -> float:
        return float(self.opt_d.param_groups[0]["lr"])

    def _scale_patience(self, ctx: StepContext) -> None:
        """Patience as a fraction of the budget: the budget's length in steps is step / progress.

        Exact under a step budget; under a time or image budget the estimate is
        refreshed each step and applied when it moves by more than a quarter.
        """
        if self.patience_fraction is None or ctx.progress <= 0:
            return
        patience = max(MIN_PATIENCE, round(self.patience_fraction * ctx.step / ctx.progress))
        if abs(patience - self.stall.patience) > 0.25 * self.stall.patience:
            self.stall.set_patience(patience)

    def train_step(self, draw: Draw, ctx: StepContext) -> StepLogs:
        self._scale_patience(ctx)
        logs = super().train_step(draw, ctx)
        if "M_global" in logs and self.stall.update(logs["M_global"]):
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = max(self.floors[id(opt)], group["lr"] * 0.5)
        logs["lr"] = torch.tensor(self.lr)  # known on the host: stays there
        logs["lr_g"] = torch.tensor(float(self.opt_g.param_groups[0]["lr"]))
        return logs

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "lr_decay": self.stall.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.stall.load_state_dict(state.get("lr_decay", {}))


def build(ctx: BuildContext) -> BeganModel:
    options = ctx.settings.options
    r = recipe(ctx.data.resolution, options, ctx.settings.lr)
    width, hidden = int(r["width"]), int(r["hidden"])
    if isinstance(ctx.objective, BeganObjective):
        ctx.objective.gamma, ctx.objective.lambda_k = r["gamma"], r["lambda_k"]
    g = glorot_init(Generator(LATENT_DIM, ctx.data.channels, ctx.data.resolution, width)).to(ctx.device)
    d = glorot_init(Discriminator(ctx.data.channels, ctx.data.resolution, width, hidden)).to(ctx.device)
    fraction = None if "lr_patience" in options else float(options.get("lr_patience_fraction", LR_PATIENCE_FRACTION))
    return BeganModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=r["lr_g"], betas=BETAS),
        torch.optim.Adam(d.parameters(), lr=r["lr_d"], betas=BETAS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="uniform",
        stall=StallDecay(patience=int(options.get("lr_patience", LR_PATIENCE))),
        min_lr=MIN_LR, patience_fraction=fraction,
    )


#: The settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "uniform(64)", "betas": BETAS, "min_lr": MIN_LR, "batch_size": RECIPE["batch_size"].value,
            f"recipe from {PAPER_MIN_RESOLUTION} px (paper)": PAPER_RECIPE,
            f"recipe below {PAPER_MIN_RESOLUTION} px (ganbench, measured on the digits)": SMALL_RECIPE,
            "lr_decay": f"x0.5 when M_global stalls for {LR_PATIENCE_FRACTION:g} of the budget"}
