"""``--pack M``: the discriminator judges M samples at once (PacGAN, Lin et al. 2018).

Packing is the remedy PacGAN measures against mode collapse: the
discriminator sees M samples, all real or all fake, concatenated (along the
features of vectors, along the channels of images), so a generator that
repeats itself is easy to tell apart. Only the discriminator's first layer
widens. ganbench applies it to any family whose spec says ``packable``
(an :class:`~ganbench.plugin.model.AdversarialModel` with an unconditional
discriminator) without the family's help: the family builds its networks once
as usual and once more for data M times as wide, and the run keeps the first
build's generator with the second build's discriminator (and its optimiser)
wrapped in :class:`Packed`. A batch of B samples becomes B/M packed samples,
so the batch size must be a multiple of M.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from ganbench.plugin.data import DataInfo
from ganbench.errors import GanbenchError, UsageError
from ganbench.plugin.model import AdversarialModel, BuildContext, GanModel


class Packed(nn.Module):
    """Groups each run of M consecutive samples of a batch into one input of ``inner``."""

    def __init__(self, inner: nn.Module, m: int) -> None:
        super().__init__()
        self.inner, self.m = inner, m

    @property
    def pack_size(self) -> int:
        """Samples per score: what the core's check of D's output shape divides the batch by."""
        return self.m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.m:
            raise GanbenchError(f"A batch of {n} samples cannot be packed in groups of {self.m}.")
        # (N, F...) -> (N/M, M*F0, F1...): consecutive samples side by side along the first feature axis
        return self.inner(x.reshape(n // self.m, self.m * x.shape[1], *x.shape[2:]))


def widened(data: DataInfo, m: int) -> DataInfo:
    """The data as the packed discriminator sees them: M times the channels, or M times the vector length.

    A packed input is M samples side by side, so a vector's per-feature ``loc`` and ``scale`` repeat M times.
    """
    if data.dim:
        return replace(data, dim=data.dim * m, loc=data.loc * m, scale=data.scale * m, pack=m)
    return replace(data, channels=data.channels * m, pack=m)


def check_pack(family: str, packable: bool, m: int, batch_size: int) -> None:
    """Refuse, at planning, a packing the family or the batch cannot take."""
    if m == 1:
        return
    if not packable:
        raise UsageError(
            f"The family {family!r} cannot be packed (--pack {m}): its discriminator is not a plain module on "
            "unlabelled samples (conditional, multi-level or with its own step). Leave out --pack for it."
        )
    if batch_size % m:
        raise UsageError(f"--batch-size {batch_size} is not a multiple of --pack {m}; packing groups the batch "
                         f"into {m}s. Use a batch size such as {batch_size - batch_size % m or m}.")


def pack(model: GanModel, build: Callable[[BuildContext], GanModel], ctx: BuildContext, m: int) -> GanModel:
    """``model`` with a discriminator that sees ``m`` samples at once (see the module docstring)."""
    if m == 1:
        return model
    if not isinstance(model, AdversarialModel) or model.conditional:
        raise UsageError(f"--pack {m} needs an unconditional AdversarialModel; this family built "
                         f"{type(model).__name__}. Leave out --pack for it.")
    donor = build(replace(ctx, data=widened(ctx.data, m)))
    if not isinstance(donor, AdversarialModel):
        raise UsageError(f"--pack {m}: the family built {type(donor).__name__} for packed data. Leave out --pack.")
    model.discriminator = Packed(donor.discriminator, m)
    model.opt_d = donor.opt_d
    return model
