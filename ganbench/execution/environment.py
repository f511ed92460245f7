"""Provenance recorded with every run: which code, on which machine, produced it."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path
import subprocess
import sys
from typing import Any

import torch

from ganbench import __version__
from ganbench.training import backends


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def device_model(device: torch.device) -> str:
    """The hardware model alone (no thread count): two runs on different models did not get the same budget."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def cpu_model() -> str:
    """The processor's model name where the OS tells it (Linux), else its architecture.

    Throughput is only compared between runs on the same device name, so the
    name must tell two different CPUs apart; ``platform.processor()`` often
    says only ``x86_64``.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture(device: torch.device, plugins: dict[str, str]) -> dict[str, Any]:
    """Versions and hardware, as a JSON-ready dict."""
    return {
        "ganbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "torch_fidelity": _version("torch-fidelity"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": str(device),
        "device_name": device_name(device),
        # which physical GPU: the index torch sees, and the mapping the scheduler applied to reach it
        "gpu_index": (device.index if device.index is not None else torch.cuda.current_device())
        if device.type == "cuda" else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "backends": backends.settings(),
        "plugins": plugins,
        "git_commit": git_commit(),
    }
