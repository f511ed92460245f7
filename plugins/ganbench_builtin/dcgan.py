"""dcgan: deep convolutional GAN (Radford, Metz & Chintala 2015).

Follows the paper's architecture guidelines (§3) and training details (§4):
strided (transposed) convolutions instead of pooling, batch norm in both
networks except the generator output and the discriminator input, ReLU in
G with a tanh output, LeakyReLU 0.2 in D, weights from N(0, 0.02), Adam
lr 2e-4 with beta1 0.5, z of 100 dimensions.

Adapting to the dataset: the generator starts from a ``base`` x ``base``
map (4 for 16/32/64 px, 7 for 28 px) and doubles its size until it reaches
the dataset's resolution; widths halve at each doubling and end at ``width``
channels: 64 at 64 px, the paper's 1024-free PyTorch-reference net
(512-256-128-64), and 128 at 32 px, the common CIFAR-10 variant
(512-256-128; REFERENCES §2.4); other sizes (16, 28 px) extrapolate the
64 px net by dropping its first stages. The discriminator mirrors it.
Every value and its source: ``ganbench_builtin.recipes`` (docs/recipes.md).

Departures, and why:
- z is Gaussian (dcgan.torch, the authors' code, draws ``noise:normal()``);
  the paper says uniform. ``--latent uniform`` restores the paper.
- With an objective whose gradient penalty is ill-defined under batch norm
  (wgan-gp) the discriminator uses layer normalisation instead, as
  Gulrajani et al. 2017 (§4) advise.
"""

from __future__ import annotations

import torch
from torch import nn

from ganbench import AdversarialModel, BuildContext
from ganbench_builtin.resize import Resize
from ganbench_builtin.recipes import DCGAN as RECIPE
from ganbench_builtin.recipes import dcgan_width

LATENT_DIM = 100
WIDTH = RECIPE["width at 64 px"].value
LR = RECIPE["lr"].value
BETAS = RECIPE["betas"].value


def geometry(resolution: int) -> tuple[int, int]:
    """(base size, number of doublings) with base * 2**k == resolution and base in 3..7 where possible."""
    k = 0
    while resolution % (2 ** (k + 1)) == 0 and resolution // 2 ** (k + 1) >= 3:
        k += 1
    base = resolution // 2**k
    if base > 7:  # an awkward size (e.g. 9): build for the next power of two and resize
        k = max(1, (resolution - 1).bit_length() - 2)
        base = 4
    return base, k


def widths(k: int, width: int) -> list[int]:
    """Channels at each generator stage, coarse to fine: ..., 4w, 2w, w."""
    return [min(width * 8, width * 2 ** (k - 1 - i)) for i in range(k)]


def init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int = WIDTH) -> None:
        super().__init__()
        self.resolution = resolution
        base, k = geometry(resolution)
        chans = widths(k, width)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, chans[0], base, 1, 0, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU(True)
        ]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.out_size = base * 2**k
        # an awkward size is built larger and area-averaged down (a deterministic resize: see .resize)
        self.resize = Resize(self.out_size, resolution, "area") if self.out_size != resolution else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z.view(z.shape[0], -1, 1, 1))
        return x if self.resize is None else self.resize(x)


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int = WIDTH, norm: str = "batch") -> None:
        super().__init__()
        self.resolution = resolution
        base, k = geometry(resolution)
        self.in_size = base * 2**k
        chans = list(reversed(widths(k, width)))  # fine to coarse: w, 2w, 4w, ...
        layers: list[nn.Module] = [nn.Conv2d(channels, chans[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(chans, chans[1:]):
            normalise = nn.BatchNorm2d(c_out) if norm == "batch" else nn.GroupNorm(1, c_out)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), normalise, nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(chans[-1], 1, base, 1, 0))
        self.net = nn.Sequential(*layers)
        self.resize = Resize(resolution, self.in_size, "bilinear") if self.in_size != resolution else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is not None:
            x = self.resize(x)
        return self.net(x).flatten()


def build(ctx: BuildContext) -> AdversarialModel:
    width = int(ctx.settings.options.get("width", dcgan_width(ctx.data.resolution)))
    norm = "batch" if getattr(ctx.objective, "batchnorm_safe", True) else "layer"
    # initialised on the CPU, then moved: the same starting weights on every device (ganbench.plugin.model)
    g = Generator(LATENT_DIM, ctx.data.channels, ctx.data.resolution, width).apply(init_weights).to(ctx.device)
    d = Discriminator(ctx.data.channels, ctx.data.resolution, width, norm).apply(init_weights).to(ctx.device)
    lr = ctx.settings.lr or LR
    return AdversarialModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=BETAS),
        torch.optim.Adam(d.parameters(), lr=lr, betas=BETAS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="gaussian",
    )


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "gaussian(100)", "lr": LR, "betas": BETAS, "width": "128 at 32 px (512-256-128), else 64", "init": "N(0, 0.02)"}
