"""Objectives (losses) for discriminators that output one logit per image.

Each objective is a pair of losses over discriminator outputs; see
:class:`ganbench.Objective`. Sources:

- minimax: Goodfellow et al. 2014, eq. 1 (G minimises log(1 - D(G(z)))).
- nonsaturating: the same paper, §3 (G maximises log D(G(z)) instead, for
  stronger early gradients); what its released code actually trains.
- lsgan: Mao et al. 2017, eq. 2 with a=0, b=c=1 (0-1 coding).
- hinge: Lim & Ye 2017; Miyato et al. 2018 (SN-GAN), eq. 16-17.
- wgan-gp: Gulrajani et al. 2017, Algorithm 1: lambda=10, n_critic=5, and
  its optimiser, Adam with lr 1e-4 and betas (0, 0.9) for both networks.
  The paper advises against batch norm in the critic (§4), so it sets
  ``batchnorm_safe = False`` and families swap in layer normalisation.

The original WGAN (weight clipping) lives in :mod:`ganbench_builtin.wgan`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench import CriticInputs, Objective, OptimizerRecipe


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.detach().mean()


class _Logistic(Objective):
    """D is trained as a logistic classifier, real=1 and fake=0."""

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = F.softplus(-inputs.d_real).mean() + F.softplus(inputs.d_fake).mean()
        return loss, {"D(x)": _mean(torch.sigmoid(inputs.d_real)), "D(G(z))": _mean(torch.sigmoid(inputs.d_fake))}


class Minimax(_Logistic):
    name = "minimax"

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return -F.softplus(d_fake).mean(), {}  # log(1 - sigmoid(l)) = -softplus(l)


class NonSaturating(_Logistic):
    name = "nonsaturating"

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return F.softplus(-d_fake).mean(), {}  # -log sigmoid(l)


class LeastSquares(Objective):
    name = "lsgan"

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = 0.5 * ((inputs.d_real - 1) ** 2).mean() + 0.5 * (inputs.d_fake**2).mean()
        return loss, {"D(x)": _mean(inputs.d_real), "D(G(z))": _mean(inputs.d_fake)}

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return 0.5 * ((d_fake - 1) ** 2).mean(), {}


class Hinge(Objective):
    name = "hinge"

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = F.relu(1 - inputs.d_real).mean() + F.relu(1 + inputs.d_fake).mean()
        return loss, {"D(x)": _mean(inputs.d_real), "D(G(z))": _mean(inputs.d_fake)}

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return -d_fake.mean(), {}


#: Gulrajani et al. 2017, Algorithm 1: alpha = 1e-4, beta1 = 0, beta2 = 0.9.
GP_ADAM = OptimizerRecipe("adam", 1e-4, betas=(0.0, 0.9))


class WassersteinGP(Objective):
    name = "wgan-gp"
    n_critic = 5
    batchnorm_safe = False
    optimizers = {"generator": GP_ADAM, "discriminator": GP_ADAM}

    def __init__(self, penalty: float = 10.0) -> None:
        self.penalty = penalty

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real, fake = inputs.real, inputs.fake
        eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(inputs.critic(mixed).sum(), mixed, create_graph=True)
        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        distance = inputs.d_real.mean() - inputs.d_fake.mean()
        return -distance + self.penalty * gp, {"wasserstein": distance.detach(), "gradient_penalty": gp.detach()}

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return -d_fake.mean(), {}
