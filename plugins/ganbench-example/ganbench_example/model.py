"""tinygan's networks: a two-layer MLP generator and discriminator; a starting point, not from a paper.

Generator: z (32) -> 128 -> pixels, ReLU then tanh (images in [-1, 1]).
Discriminator: pixels -> 128 -> 1 logit per image, LeakyReLU 0.2.
Adam 2e-4, betas (0.5, 0.999). Weights are initialised on the CPU and then
moved to the run's device, so a seed gives the same start on every device.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import ganbench

LATENT_DIM = 32
HIDDEN = 128
LR = 2e-4
BETAS = (0.5, 0.999)


class Generator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(nn.Linear(LATENT_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, math.prod(shape)), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), HIDDEN), nn.LeakyReLU(0.2), nn.Linear(HIDDEN, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build(ctx: ganbench.BuildContext) -> ganbench.AdversarialModel:
    """The family for one run: ctx holds the data's shape, the chosen objective and the user's settings."""
    g = Generator(ctx.data.shape).to(ctx.device)
    d = Discriminator(ctx.data.shape).to(ctx.device)
    lr = ctx.settings.lr or LR
    return ganbench.AdversarialModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=BETAS),
        torch.optim.Adam(d.parameters(), lr=lr, betas=BETAS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="gaussian",
    )
