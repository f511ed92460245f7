"""vanilla: the original GAN as a multilayer perceptron (Goodfellow et al. 2014).

The paper's MNIST networks used maxout units and SGD with momentum (see
REFERENCES §2.1); ganbench follows the MLP that became the standard
re-implementation of "the original GAN", as the brief specifies:

- G: z (100, Gaussian) -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU 0.2, tanh output.
- D: C*H*W -> 1024 -> 512 -> 256 -> 1, LeakyReLU 0.2, dropout 0.3 after each hidden layer.
- Adam, lr 2e-4, betas (0.5, 0.999) (DCGAN's betas; the paper used SGD).
- Objective: non-saturating binary cross-entropy, which is what the paper's
  own code trains (§3 of the paper recommends it over the minimax form).

Works on any image dataset by flattening; the layer widths do not change with
the resolution, only the input and output layers do.

It takes no part in ``--recipe matched`` (it declares no capacity knobs): an
MLP does about 2 FLOPs per parameter per image, the target's conv nets 20-200,
so no width holds both the target's parameters and its FLOPs; an MLP sized to
either would be another model, not this one resized (docs/recipes.md).

On vector data (a 1-D normal, PacGAN's 2-D ring and grid) it trains
:mod:`ganbench_builtin.vanilla_vectors`: PacGAN's networks for 2-D data, so the
toy suites reproduce that protocol, or on 1-D data a small MLP in standardised
units (the option ``net`` picks either).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganbench import VECTOR, AdversarialModel, BuildContext
from ganbench_builtin import vanilla_vectors as vectors
from ganbench_builtin.recipes import VANILLA as RECIPE

LATENT_DIM = 100
LR = RECIPE["lr"].value
BETAS = RECIPE["betas"].value
HIDDEN_G = RECIPE["hidden_g"].value
HIDDEN_D = RECIPE["hidden_d"].value
DROPOUT = RECIPE["dropout_d"].value


class Generator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in HIDDEN_G:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers += [nn.Linear(width, math.prod(shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(shape)
        for hidden in HIDDEN_D:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2), nn.Dropout(DROPOUT)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def build(ctx: BuildContext) -> AdversarialModel:
    if ctx.data.kind == VECTOR:
        return build_toy(ctx)
    g = Generator(LATENT_DIM, ctx.data.shape).to(ctx.device)
    d = Discriminator(ctx.data.shape).to(ctx.device)
    return _model(g, d, ctx, ctx.settings.lr or LR, BETAS, LATENT_DIM)


def build_toy(ctx: BuildContext) -> AdversarialModel:
    """The vector configuration ``net`` names (by default, by the sample's length; see vanilla_vectors)."""
    data = ctx.data
    net = vectors.choose_net(ctx.settings.options.get(vectors.NET_OPTION), data.dim // data.pack)
    g, d, config = vectors.networks(net, data.dim, data.loc, data.scale)
    return _model(g.to(ctx.device), d.to(ctx.device), ctx, ctx.settings.lr or config["lr"], config["betas"],
                  config["latent_dim"])


def _model(g: nn.Module, d: nn.Module, ctx: BuildContext, lr: float, betas: tuple[float, float],
           latent_dim: int) -> AdversarialModel:
    return AdversarialModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=betas),
        torch.optim.Adam(d.parameters(), lr=lr, betas=betas),
        ctx.objective, ctx, latent_dim=latent_dim, latent="gaussian",
    )


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "gaussian(100)", "lr": LR, "betas": BETAS, "hidden_g": HIDDEN_G,
            "hidden_d": HIDDEN_D, "dropout": DROPOUT,
            "on_vectors": {vectors.PACGAN: vectors.PACGAN_NETS, vectors.MLP: vectors.MLP_NETS}}
