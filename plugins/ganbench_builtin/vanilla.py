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

On vector data (a 1-D normal, PacGAN's 2-D ring and grid) it trains PacGAN's
networks for 2-D data (Lin et al. 2018, ``synthetic_data_experiments/*/config.py``;
REFERENCES §3), so the toy suites reproduce that protocol:

- G: z (2-D, Gaussian) -> 4 x [400, batch norm, ReLU] -> D outputs, linear
  (the data keep their own scale: the grid spans [-4, 4]).
- D: 3 maxout layers of 200 units with 5 pieces each -> 1 logit.
- Weights initialised N(0, 0.02), biases 0; Adam lr 1e-4, betas (0.8, 0.999).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganbench import VECTOR, AdversarialModel, BuildContext
from ganbench_builtin.recipes import VANILLA as RECIPE

LATENT_DIM = 100
LR = RECIPE["lr"].value
BETAS = RECIPE["betas"].value
HIDDEN_G = RECIPE["hidden_g"].value
HIDDEN_D = RECIPE["hidden_d"].value
DROPOUT = RECIPE["dropout_d"].value
#: PacGAN's configuration for 2-D data, used on any vector data.
TOY = {"latent_dim": 2, "hidden_g": (400, 400, 400, 400), "hidden_d": (200, 200, 200), "pieces": 5,
       "init_std": 0.02, "lr": 1e-4, "betas": (0.8, 0.999)}


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


class Maxout(nn.Module):
    """A linear layer whose every unit is the maximum of ``pieces`` affine pieces (Goodfellow et al. 2013)."""

    def __init__(self, width: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(width, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(dim=2)


def toy_generator(latent_dim: int, dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = latent_dim
    for hidden in TOY["hidden_g"]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, dim))
    return nn.Sequential(*layers)


class ToyDiscriminator(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for hidden in TOY["hidden_d"]:
            layers.append(Maxout(width, hidden, TOY["pieces"]))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def _init_normal(net: nn.Module) -> None:
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, TOY["init_std"])
            nn.init.zeros_(module.bias)


def build(ctx: BuildContext) -> AdversarialModel:
    if ctx.data.kind == VECTOR:
        return build_toy(ctx)
    g = Generator(LATENT_DIM, ctx.data.shape).to(ctx.device)
    d = Discriminator(ctx.data.shape).to(ctx.device)
    return _model(g, d, ctx, ctx.settings.lr or LR, BETAS, LATENT_DIM)


def build_toy(ctx: BuildContext) -> AdversarialModel:
    """PacGAN's networks for 2-D data (see the module docstring), for vectors of any length."""
    g, d = toy_generator(TOY["latent_dim"], ctx.data.dim), ToyDiscriminator(ctx.data.dim)
    for net in (g, d):
        _init_normal(net)
    return _model(g.to(ctx.device), d.to(ctx.device), ctx, ctx.settings.lr or TOY["lr"], TOY["betas"],
                  TOY["latent_dim"])


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
            "hidden_d": HIDDEN_D, "dropout": DROPOUT, "on_vectors": TOY}
