"""vanilla on vector data: two configurations, chosen by the option ``net``.

``pacgan`` (the default for vectors of 2 or more features): PacGAN's networks
for 2-D data (Lin et al. 2018, ``synthetic_data_experiments/*/config.py``;
REFERENCES §3), so that the ring and grid suites reproduce that protocol:

- G: z (2-D, Gaussian) -> 4 x [400, batch norm, ReLU] -> D outputs, linear
  (the data keep their own scale: the grid spans [-4, 4]).
- D: 3 maxout layers of 200 units with 5 pieces each -> 1 logit.
- Weights initialised N(0, 0.02), biases 0; Adam lr 1e-4, betas (0.8, 0.999).

``mlp`` (the default for 1-D data): a small MLP that works in standardised
units, ganbench's own configuration for the seed's 1-D example (no paper gives
one; REFERENCES §3 names only the data and the metrics):

- G: z (2-D, Gaussian) -> 32 -> 32 -> D outputs, LeakyReLU 0.2, then
  ``x = loc + scale * y`` with the training set's per-feature mean and
  standard deviation (``DataInfo.loc``/``scale``), fixed buffers.
- D: ``(x - loc) / scale`` -> 64 -> 64 -> 1 logit, LeakyReLU 0.2.
- torch's default initialisation; Adam lr 1e-3, betas (0.5, 0.999) (DCGAN's
  betas, Radford et al. 2015).

Why a second configuration: PacGAN's networks on N(16, 5) did not hold W1
below 0.5 within a CPU-minute under any of about fifteen recipes (their 890k
parameters cost ~37 ms a step on one core, so a minute buys ~1,600 steps, and
their N(0, 0.02) output starts 3 standard deviations from the data). The small
MLP in standardised units, with the suite's linear learning-rate decay, ends at
W1 0.05-0.3 on every seed tried in about 10 CPU-seconds (results/toys/README.md).
Without standardisation it also fails; that is what ``loc``/``scale`` are for.
"""

from __future__ import annotations

import torch
from torch import nn

from ganbench import UsageError

#: The option that picks a configuration, and its values.
NET_OPTION = "net"
PACGAN, MLP = "pacgan", "mlp"
#: PacGAN's configuration for 2-D data.
PACGAN_NETS = {"latent_dim": 2, "hidden_g": (400, 400, 400, 400), "hidden_d": (200, 200, 200), "pieces": 5,
               "init_std": 0.02, "lr": 1e-4, "betas": (0.8, 0.999)}
#: ganbench's small standardised MLP, the default on 1-D data.
MLP_NETS = {"latent_dim": 2, "hidden_g": (32, 32), "hidden_d": (64, 64), "slope": 0.2, "lr": 1e-3,
            "betas": (0.5, 0.999)}


def choose_net(option: str | None, sample_dim: int) -> str:
    """The configuration a run uses: the user's ``net``, else ``mlp`` for 1-D samples and ``pacgan`` otherwise."""
    if option is None:
        return MLP if sample_dim == 1 else PACGAN
    if option not in (PACGAN, MLP):
        raise UsageError(f"vanilla: net={option!r} is not a configuration; use {PACGAN!r} (PacGAN's 2-D networks) "
                         f"or {MLP!r} (a small MLP in standardised units).")
    return option


class Maxout(nn.Module):
    """A linear layer whose every unit is the maximum of ``pieces`` affine pieces (Goodfellow et al. 2013)."""

    def __init__(self, width: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(width, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(dim=2)


def toy_generator(latent_dim: int, dim: int) -> nn.Sequential:
    """PacGAN's generator: 4 x [400, batch norm, ReLU], linear output."""
    layers: list[nn.Module] = []
    width = latent_dim
    for hidden in PACGAN_NETS["hidden_g"]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, dim))
    return nn.Sequential(*layers)


class ToyDiscriminator(nn.Module):
    """PacGAN's discriminator: 3 maxout layers of 200 units, 5 pieces, one logit."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for hidden in PACGAN_NETS["hidden_d"]:
            layers.append(Maxout(width, hidden, PACGAN_NETS["pieces"]))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def init_normal(net: nn.Module) -> None:
    """PacGAN's initialisation: weights N(0, 0.02), biases 0."""
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, PACGAN_NETS["init_std"])
            nn.init.zeros_(module.bias)


class Affine(nn.Module):
    """``x * scale + loc`` per feature with fixed buffers (saved in checkpoints, never trained).

    ``inverse=True`` computes ``(x - loc) / scale``. A constant feature (scale 0) is
    left unscaled rather than divided by zero.
    """

    def __init__(self, loc: tuple[float, ...], scale: tuple[float, ...], dim: int, inverse: bool = False) -> None:
        super().__init__()
        loc_t = torch.tensor(loc, dtype=torch.float32) if loc else torch.zeros(dim)
        scale_t = torch.tensor(scale, dtype=torch.float32) if scale else torch.ones(dim)
        if loc_t.shape != (dim,) or scale_t.shape != (dim,):
            raise UsageError(f"vanilla: the data's loc/scale have {loc_t.numel()}/{scale_t.numel()} entries "
                             f"for {dim}-D vectors.")
        self.register_buffer("loc", loc_t)
        self.register_buffer("scale", torch.where(scale_t > 0, scale_t, torch.ones_like(scale_t)))
        self.inverse = inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.loc) / self.scale if self.inverse else x * self.scale + self.loc


def mlp(width: int, hidden: tuple[int, ...], out: int, slope: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(slope)]
        width = h
    layers.append(nn.Linear(width, out))
    return layers


def mlp_generator(dim: int, loc: tuple[float, ...], scale: tuple[float, ...]) -> nn.Sequential:
    """The small MLP's G: standardised outputs mapped back to the data's units."""
    c = MLP_NETS
    return nn.Sequential(*mlp(c["latent_dim"], c["hidden_g"], dim, c["slope"]), Affine(loc, scale, dim))


class MlpDiscriminator(nn.Module):
    """The small MLP's D: standardises its input, then one logit per sample."""

    def __init__(self, dim: int, loc: tuple[float, ...], scale: tuple[float, ...]) -> None:
        super().__init__()
        c = MLP_NETS
        self.net = nn.Sequential(Affine(loc, scale, dim, inverse=True), *mlp(dim, c["hidden_d"], 1, c["slope"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def networks(net: str, dim: int, loc: tuple[float, ...], scale: tuple[float, ...]) -> tuple[nn.Module, nn.Module, dict]:
    """G, D and their configuration (latent size, lr, betas) for ``dim``-D vectors."""
    if net == MLP:
        return mlp_generator(dim, loc, scale), MlpDiscriminator(dim, loc, scale), MLP_NETS
    g, d = toy_generator(PACGAN_NETS["latent_dim"], dim), ToyDiscriminator(dim)
    for module in (g, d):
        init_normal(module)
    return g, d, PACGAN_NETS
