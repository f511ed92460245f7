"""The narrow interface through which a loss plugs into training.

An objective sees discriminator outputs (and, for penalties, the critic
itself); it never sees the training loop or the budget. That is what lets
``--plugins dcgan:hinge`` swap the loss of any family whose discriminator
produces what the objective needs.

Two things reach past the losses, because some papers define them together
with the loss: an objective may name its optimiser recipe
(:attr:`Objective.optimizers`), which every family built on
:class:`ganbench.AdversarialModel` applies in place of its own, and it may act
on the discriminator after each of its updates (:meth:`Objective.after_critic_step`,
e.g. WGAN's weight clipping). Precedence for the optimiser: what the user sets
on the command line (``--lr``) > the objective's recipe > the family's recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ganbench.plugin.specs import LOGIT, RECONSTRUCTION

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["LOGIT", "RECONSTRUCTION", "CriticInputs", "Objective", "OptimizerRecipe"]

#: Optimisers a recipe may name, with the hyper-parameter each takes besides the learning rate.
OPTIMIZER_KINDS = ("adam", "rmsprop")


@dataclass(frozen=True)
class OptimizerRecipe:
    """One network's optimiser as a paper states it: ``kind`` (adam or rmsprop), ``lr``,
    ``betas`` (Adam) or ``alpha`` (RMSprop's smoothing constant).

    A recipe is data, so the run config can record it and the user can see
    which optimiser trained a run without reading the family's code.
    """

    kind: str
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 0.99

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZER_KINDS:
            raise ValueError(f"OptimizerRecipe kind {self.kind!r} is not one of {', '.join(OPTIMIZER_KINDS)}")

    def build(self, params: Iterable[torch.nn.Parameter], lr: float | None = None) -> torch.optim.Optimizer:
        """The optimiser over ``params``; ``lr`` (the user's ``--lr``) replaces the recipe's rate when given."""
        import torch

        rate = lr if lr is not None else self.lr
        if self.kind == "rmsprop":
            return torch.optim.RMSprop(params, lr=rate, alpha=self.alpha)
        return torch.optim.Adam(params, lr=rate, betas=self.betas)

    def as_dict(self) -> dict[str, Any]:
        """What the run config records."""
        if self.kind == "rmsprop":
            return {"kind": self.kind, "lr": self.lr, "alpha": self.alpha}
        return {"kind": self.kind, "lr": self.lr, "betas": list(self.betas)}


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
    #: The optimiser recipe the objective's paper prescribes, per network ("generator", "discriminator");
    #: empty: the family's own. Applied by :class:`ganbench.AdversarialModel` (see the module docstring).
    optimizers: Mapping[str, OptimizerRecipe] = {}

    def after_critic_step(self, discriminator: nn.Module) -> None:
        """Called after every discriminator update, with the discriminator; does nothing by default.

        For constraints a paper applies to the critic's weights after its
        optimiser step (WGAN clips every weight to [-c, c]). Runs inside the
        step: act on tensors in place, never read a value back to the host.
        """
        del discriminator

    def discriminator_loss(self, inputs: CriticInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def generator_loss(self, fake: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
