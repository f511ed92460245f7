"""The original Wasserstein GAN: a critic kept Lipschitz by clipping its weights (Arjovsky et al. 2017).

Algorithm 1 of the paper: the critic maximises E[D(x)] - E[D(G(z))] for
``n_critic = 5`` updates per generator update, each followed by clipping
every critic weight to [-c, c] with c = 0.01; the generator minimises
-E[D(G(z))]; both networks train with RMSProp at lr 5e-5 (the paper found
momentum-based optimisers such as Adam unstable with this loss, §3). The
paper gives no smoothing constant for RMSProp, so PyTorch's default (0.99) is
used.

Written only against the public plugin API (``from ganbench import ...``):
it is the proof that an objective needing its own optimiser and a hook
after the optimiser step can come from a third-party package.
"""

from __future__ import annotations

import torch
from torch import nn

from ganbench import CriticInputs, Objective, OptimizerRecipe

#: Arjovsky et al. 2017, Algorithm 1: clipping parameter c and learning rate alpha.
CLIP = 0.01
LR = 5e-5
N_CRITIC = 5


class WassersteinClip(Objective):
    """Wasserstein critic loss; every critic weight clipped to [-clip, clip] after each critic update."""

    name = "wgan"
    n_critic = N_CRITIC
    optimizers = {"generator": OptimizerRecipe("rmsprop", LR), "discriminator": OptimizerRecipe("rmsprop", LR)}

    def __init__(self, clip: float = CLIP) -> None:
        self.clip = clip

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        distance = inputs.d_real.mean() - inputs.d_fake.mean()
        return -distance, {"wasserstein": distance.detach()}

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return -d_fake.mean(), {}

    @torch.no_grad()
    def after_critic_step(self, discriminator: nn.Module) -> None:
        for parameter in discriminator.parameters():
            parameter.clamp_(-self.clip, self.clip)
