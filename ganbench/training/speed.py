"""The recorded speed settings: precision, compilation and memory format, applied to any family.

Each one changes what a run computes (mixed precision rounds differently, a
compiled graph may fuse differently), so each is part of the run's config and
identity: runs with different settings are different leaderboard rows. The
defaults (fp32, no compile, contiguous memory) are what every family was
validated with. docs/performance.md says what each is expected to do on a GPU.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ganbench.errors import UsageError
from ganbench.plugin.model import GanModel

#: ``--precision`` names and the autocast dtype each one means (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {name!r}.")
    return name


def prepare(model: GanModel, precision: str, compile: bool, channels_last: bool, device: torch.device) -> None:
    """Apply the settings to the model's networks in place (state_dict keys are unchanged, so checkpoints are too)."""
    check_precision(precision)
    for net in model.networks().values():
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile:
            net.compile()
    if precision == "fp16":
        model.grad_scaler = torch.amp.GradScaler(device.type)


def autocast(precision: str, device: torch.device) -> Any:
    """The context a step runs in: autocast to bf16/fp16, or nothing for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
