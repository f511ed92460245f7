"""tinygan: a deliberately small MLP GAN, the example third-party plugin.

Generator: z (32) -> 128 -> pixels, ReLU then tanh. Discriminator:
pixels -> 128 -> 1, LeakyReLU 0.2. Adam 2e-4, betas (0.5, 0.999).
Not from a paper: it is a template, and a fast model for CI pipelines.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import ganbench

LATENT_DIM = 32
HIDDEN = 128


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
    g = Generator(ctx.data.shape).to(ctx.device)
    d = Discriminator(ctx.data.shape).to(ctx.device)
    lr = ctx.settings.lr or 2e-4
    return ganbench.AdversarialModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999)),
        torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999)),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="gaussian",
    )


@ganbench.hookimpl
def ganbench_models() -> list[ganbench.ModelSpec]:
    return [
        ganbench.ModelSpec(
            name="tinygan",
            build=build,
            description="example third-party plugin: a two-layer MLP GAN",
            paper="ganbench-example (template)",
            default_objective="nonsaturating",
        )
    ]
