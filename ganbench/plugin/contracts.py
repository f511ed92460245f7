"""The run-time checks of what a family hands the loop, each raising :class:`ContractError`.

A plugin that breaks the contract must fail with a message saying which
contract, not with a shape error deep inside ``grid.py`` or ``addmm``, and
never complete silently with nonsense that then gets scored. Every check
here is either a free Python-side test (types, shapes, dtypes: metadata the
host already has) or one read outside any step (the range of the first
grid's images), so the zero-host-sync guarantee of a training step holds
(tests/test_syncs.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

from ganbench.errors import ContractError
from ganbench.plugin.specs import LOGIT

#: What the loop and the runner call on a built family and a built objective.
MODEL_METHODS = ("networks", "optimizers", "train_step", "generate", "sample_latent", "parameter_counts",
                 "extra_state", "load_extra_state", "train", "eval")
OBJECTIVE_METHODS = ("discriminator_loss", "generator_loss", "state_dict", "load_state_dict")

#: The contract :func:`check_critic_output` checks (the id the conformance kit reports it under).
CRITIC_CONTRACT = "family.discriminator.output"

#: Slack on the [-1, 1] range of generated images, for rounding in reduced precision.
RANGE_SLACK = 1e-3


def check_built(built: Any, expected: type, methods: tuple[str, ...], kind: str = "model") -> None:
    """``build`` returned an ``expected`` (a GanModel, an Objective), or an object with its ``methods``
    (a wrapper that forwards to one is fine: the loop only ever calls them)."""
    if isinstance(built, expected):
        return
    missing = [m for m in methods if not callable(getattr(built, m, None))]
    if missing:
        raise ContractError(f"its build returned {type(built).__name__}, not a {expected.__name__} "
                            f"(it has no {', '.join(missing)}).", kind,
                            "family.build" if kind == "model" else f"{kind}.build")


def check_step_logs(logs: Any) -> None:
    """``train_step`` returned a dict (its values are checked by the window that keeps them)."""
    if not isinstance(logs, dict):
        raise ContractError(f"train_step returned {type(logs).__name__}, not a dict of detached 0-dim tensors "
                            "(e.g. {'loss_d': loss_d.detach(), 'loss_g': loss_g.detach()}).",
                            contract="family.train_step.logs")


def _check_generated(x: Any, expected: tuple[int, ...], layout: str, dtype_rule: str) -> None:
    """Type, shape and dtype of what ``generate`` returned: metadata only, free."""
    if not isinstance(x, torch.Tensor):
        raise ContractError(f"generate returned {type(x).__name__}, not a tensor of shape {expected}.",
                            contract="family.generate.shape")
    if tuple(x.shape) != expected:
        raise ContractError(f"generate returned shape {tuple(x.shape)} for {expected[0]} latents; the data needs "
                            f"{expected} ({layout}).", contract="family.generate.shape")
    if not x.is_floating_point():
        raise ContractError(f"generate returned {x.dtype}; {dtype_rule}.", contract="family.generate.dtype")


def _extremes(x: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest value (NaN when there is one): one read from the device."""
    low, high = torch.stack(torch.aminmax(x.detach().float())).tolist()
    return low, high


def check_images(images: Any, n: int, channels: int, resolution: int, values: bool = True) -> None:
    """``generate`` returned ``n`` float images of the data's shape with (when ``values``) values in [-1, 1].

    The range check reads the images' extremes (one read): the loop asks for it
    once per process, at the first grid it draws, so a step never waits for it.
    """
    _check_generated(images, (n, channels, resolution, resolution), "N, channels, height, width",
                     "images are floating point in [-1, 1]")
    if not values:
        return
    low, high = _extremes(images)
    if not (low >= -1 - RANGE_SLACK and high <= 1 + RANGE_SLACK):  # NaN fails too
        raise ContractError(f"generate returned values in [{low:.4g}, {high:.4g}]; images must lie in [-1, 1] "
                            "(end the generator with tanh, or clamp).", contract="family.generate.range")


def check_vectors(points: Any, n: int, dim: int, values: bool = True,
                  value_range: tuple[float, float] | None = None) -> None:
    """``generate`` returned ``n`` float vectors of the data's length with (when ``values``) finite values.

    Vectors keep the data's own scale (the 1-D normal sits at 16, the grid spans
    [-4, 4]), so no range is imposed unless the dataset declares one
    (``meta["range"]``, see :data:`ganbench.plugin.data.RANGE`). Like the images' range, the
    values are read once per process, at the first picture the loop draws.
    """
    _check_generated(points, (n, dim), f"N, D: {dim}-D vectors", "vectors are floating point, on the data's scale")
    if not values:
        return
    low, high = _extremes(points)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ContractError(f"generate returned non-finite values (extremes {low} and {high}); every sample "
                            "must be a finite number, or the exact metrics would score NaN or infinity.",
                            contract="family.generate.range")
    if value_range is not None:
        lo, hi = value_range
        if not (low >= lo - RANGE_SLACK and high <= hi + RANGE_SLACK):
            raise ContractError(f"generate returned values in [{low:.4g}, {high:.4g}]; this dataset's vectors lie "
                                f"in [{lo:g}, {hi:g}] (its declared range).", contract="family.generate.range")


#: Whether :func:`check_critic_output` checks; the conformance kit turns it off while it trains a family,
#: because it watches D's outputs itself and reports them under its own contract (family.discriminator.output).
#: A context variable, not a module global: the kit turning it off in one thread or asyncio task must not
#: turn it off for a run training in another.
_CRITIC_CHECKS: ContextVar[bool] = ContextVar("ganbench_critic_checks", default=True)


@contextmanager
def critic_outputs_unchecked() -> Iterator[None]:
    """Inside the block (in this thread or task only), D's outputs are left to the caller to check."""
    token = _CRITIC_CHECKS.set(False)
    try:
        yield
    finally:
        _CRITIC_CHECKS.reset(token)


def check_critic_output(output: torch.Tensor, batch: torch.Tensor, provides: str = LOGIT, pack: int = 1) -> None:
    """The discriminator's output matches the batch it was given: one score per image for a ``logit``
    discriminator (per ``pack`` images under PacGAN packing), an image of the batch's shape for a
    ``reconstruction`` one. Shapes only: free."""
    if not _CRITIC_CHECKS.get():
        return
    shape, n = tuple(output.shape), batch.shape[0] // pack
    if provides == LOGIT:
        if shape[:1] != (n,) or output.numel() != n:
            raise ContractError(f"the discriminator returned shape {shape} for a batch of {n}; a {LOGIT!r} "
                                f"discriminator returns one score per image: ({n},) or ({n}, 1).",
                                contract=CRITIC_CONTRACT)
    elif shape != tuple(batch.shape):
        raise ContractError(f"the discriminator returned shape {shape} for a batch of shape {tuple(batch.shape)}; "
                            f"a {provides!r} discriminator returns an image of the batch's shape.",
                            contract=CRITIC_CONTRACT)
