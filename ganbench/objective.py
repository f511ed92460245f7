"""The narrow interface through which a loss plugs into training.

An objective sees discriminator outputs (and, for penalties, the critic
itself); it never sees the training loop, the optimisers or the budget. That
is what lets ``--plugins dcgan:hinge`` swap the loss of any family whose
discriminator produces what the objective needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .specs import LOGIT, RECONSTRUCTION

if TYPE_CHECKING:
    import torch

__all__ = ["LOGIT", "RECONSTRUCTION", "CriticInputs", "Objective"]


@dataclass
class CriticInputs:
    """One discriminator step's worth of tensors.

    ``fake`` is detached from the generator. ``critic`` is the discriminator
    with any conditioning already bound, for objectives that need to evaluate
    it elsewhere (a gradient penalty on interpolates, for example).
    """

    real: torch.Tensor
    fake: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor
    critic: Callable[[torch.Tensor], torch.Tensor]


class Objective:
    """Base class for losses. Subclasses override the two loss methods.

    Each returns the loss and a dict of diagnostics as detached 0-dim tensors
    (``x.detach().mean()``, never ``float(...)``), which the loop reads once
    per logging window.

    ``n_critic`` is the number of discriminator steps per generator step the
    objective's paper prescribes; the loop honours it unless the user
    overrides it with ``--n-critic``. Objectives with state (BEGAN's k_t)
    return it from :meth:`state_dict` so checkpoints carry it.
    """

    name: str = "objective"
    needs: str = LOGIT
    n_critic: int = 1
    #: False when the loss is ill-defined with batch norm in the discriminator (a per-sample gradient penalty).
    batchnorm_safe: bool = True

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
