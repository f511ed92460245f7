"""The torch backend settings a process trains under: determinism, cuDNN autotuning and TF32.

They change what a GPU computes (autotuned convolutions pick algorithms by
timing, TF32 rounds matmul inputs to 10 mantissa bits), so they are set once,
before any run trains, and recorded in every run's ``environment.json``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

#: cuBLAS needs a fixed workspace to give reproducible results; it reads this when CUDA first creates a handle.
CUBLAS_ENV, CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG", ":4096:8"


def configure(deterministic: bool) -> None:
    """Deterministic algorithms only (and no autotuning), or cuDNN autotuning for speed.

    ``CUBLAS_WORKSPACE_CONFIG`` must be in the environment before CUDA starts
    in this process, so this runs before any run is built; a value the user
    set is kept. Without ``--deterministic`` cuDNN benchmarks its convolution
    algorithms for each new shape (the shapes of a run never change, so the
    cost is paid once, in the untimed warm-up step) and GPU runs are not
    bit-reproducible anyway.
    """
    if deterministic:
        os.environ.setdefault(CUBLAS_ENV, CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def settings() -> dict[str, Any]:
    """What :func:`configure` and torch's defaults left in force, for ``environment.json``."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        CUBLAS_ENV: os.environ.get(CUBLAS_ENV),
    }
