"""Deliberately broken plugins, one violation each, for the conformance kit's own test.

- family ``brokengan``: images in [-2, 2] (family.generate.range), a discriminator scoring
  three numbers per image (family.discriminator.output), losses returned as Python
  floats read back with ``.item()`` (family.train_step.logs and .no_host_sync), and a
  step counter its checkpoint forgets (family.resume);
- objective ``brokenloss``: declares ``n_critic = 0`` (objective.build);
- dataset ``brokenset``: labels beyond its class count (dataset.labels);
- metric ``brokenscore``: a score named without its sample count (metric.names).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import ganbench


class Generator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape, self.net = shape, nn.Linear(8, math.prod(shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2 * torch.tanh(self.net(z)).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.net = nn.Linear(math.prod(shape), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class BrokenModel(ganbench.AdversarialModel):
    noise_scale = 1.0

    def train_step(self, draw, ctx):
        real, labels = draw()
        real = real + self.noise_scale * 0.01 * torch.randn_like(real)
        self.noise_scale *= 0.5  # state a checkpoint must carry, but extra_state forgets it
        logs = super().train_step(lambda: (real, labels), ctx)
        return {key: value.item() for key, value in logs.items()}


def build(ctx: ganbench.BuildContext) -> BrokenModel:
    g, d = Generator(ctx.data.shape), Discriminator(ctx.data.shape)
    return BrokenModel(g, d, torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3),
                       ctx.objective, ctx, latent_dim=8, latent="gaussian")


class BrokenLoss(ganbench.Objective):
    name = "brokenloss"
    n_critic = 0

    def discriminator_loss(self, inputs):
        return (inputs.d_fake - inputs.d_real).mean(), {}

    def generator_loss(self, fake, d_fake):
        return -d_fake.mean(), {}


def load_set(request: ganbench.DatasetRequest) -> ganbench.ImageDataset:
    images = torch.zeros(8, 1, 16, 16, dtype=torch.uint8)
    return ganbench.ImageDataset("brokenset", images, torch.arange(8), num_classes=4)


def score(ctx) -> dict[str, float]:
    return {"brokenscore": 1.0}


@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("brokengan", build, "breaks family contracts", "none", default_objective="hinge")]


@ganbench.hookimpl
def ganbench_objectives():
    return [ganbench.ObjectiveSpec("brokenloss", BrokenLoss, "breaks objective contracts", "none")]


@ganbench.hookimpl
def ganbench_datasets():
    return [ganbench.DatasetSpec("brokenset", load_set, "breaks dataset contracts")]


@ganbench.hookimpl
def ganbench_metrics():
    return [ganbench.MetricSpec("brokenscore", score, "breaks metric contracts")]
