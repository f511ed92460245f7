"""Checkpoints a run can resume from exactly, and that are checked before they are trusted.

A checkpoint holds every piece of state the next step depends on: weights,
optimisers, family and objective state, all random-number generators, the
data-order position, the budget counters, and the curves and evaluations so
far. It is saved with ``torch.save`` (tensors, numbers, strings and
containers only) so that it loads with ``torch.load(weights_only=True)``;
a file that would need arbitrary unpickling is refused.

Writes rotate: the previous good checkpoint is kept as ``checkpoint.prev.pt``,
and a sidecar ``checkpoint.json`` records each file's size and SHA-256. A
truncated or corrupt file is detected and the previous one is used, with a
warning. The sidecar is a check, never a veto: a process killed after a
checkpoint was renamed into place but before the sidecar was rewritten leaves
a good file that the sidecar does not describe; a file that loads and holds
every part of a checkpoint is then used, and the sidecar repaired, with a
warning. A file of the very step the sidecar records whose digest differs is
damaged, even when it has the same size and still loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganbench.errors import GanbenchError
from ganbench.results.store import save_torch, write_json

CURRENT, PREVIOUS, SIDECAR = "checkpoint.pt", "checkpoint.prev.pt", "checkpoint.json"
#: What a file must hold to be trusted without a matching sidecar entry (see :func:`load_latest`).
REQUIRED = ("counters",)


class CheckpointError(GanbenchError):
    """No usable checkpoint (all candidates missing, corrupt or unsafe)."""


def rng_state(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Every generator a step may draw from, in a weights_only-safe form.

    Of the GPUs, only ``device``'s generator: a run draws from no other, and a
    checkpoint that held every visible GPU's state could not be restored by a
    process that sees fewer of them (or sees them in another order). A CPU run
    never asks CUDA for anything, so it never initialises it on a GPU host.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        # a list of ints, not a tensor: restoring it then reads no tensor, which SyncCounter would count
        "numpy": [kind, keys.astype(np.int64).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    device = torch.device(device)
    if device.type == "cuda":
        state["cuda_device"] = torch.cuda.get_rng_state(cuda_index(device))
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | str = "cpu") -> None:
    """Restore what :func:`rng_state` saved; the GPU generator goes to ``device``, the run's device now.

    A checkpoint written on ``cuda:1`` and resumed on ``cuda:0`` (or on another
    machine) continues the run's own sequence on the device it now trains on.
    Checkpoints from before this rule (a ``cuda`` list, one state per visible
    GPU) give the run device the state saved for its index, when there was one.
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)  # a tensor in older checkpoints
    np.random.set_state((kind, keys.astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    device = torch.device(device)
    if device.type != "cuda":
        return
    index = cuda_index(device)
    saved = state.get("cuda_device")
    if saved is None and index < len(state.get("cuda", ())):
        saved = state["cuda"][index]
    if saved is not None:
        torch.cuda.set_rng_state(saved, index)


def cuda_index(device: torch.device) -> int:
    """The GPU index a ``cuda`` or ``cuda:N`` device means (``cuda`` alone: the current device)."""
    return device.index if device.index is not None else torch.cuda.current_device()


def on_cpu(obj: Any) -> Any:
    """``obj`` with every tensor copied to the CPU (containers rebuilt, everything else as is).

    What a GPU run saves must load on a machine without a GPU, with the plain
    ``torch.load(path, weights_only=True)`` the README shows; tensors already on
    the CPU are copied too, so that the saved state never aliases live weights.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(value) for value in obj)
    return obj


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(directory: Path, state: dict[str, Any]) -> None:
    """Write a new checkpoint, keeping the previous one and recording both digests."""
    directory = Path(directory)
    current, previous = directory / CURRENT, directory / PREVIOUS
    sidecar = _read_sidecar(directory)
    if current.exists() and _verify(current, sidecar.get(CURRENT)):
        os.replace(current, previous)
        sidecar[PREVIOUS] = sidecar.get(CURRENT)
    save_torch(current, on_cpu(state))
    sidecar[CURRENT] = _entry(current, state)
    write_json(directory / SIDECAR, sidecar)


def _entry(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": _digest(path), "step": state["counters"]["steps"]}


def _read_sidecar(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / SIDECAR).read_text())
    except (OSError, ValueError):
        return {}


def _verify(path: Path, expected: dict[str, Any] | None) -> bool:
    if expected is None:
        return False
    return path.stat().st_size == expected["size"] and _digest(path) == expected["sha256"]


def _verify_any(path: Path, sidecar: dict[str, Any]) -> bool:
    """Whether the file matches any digest the sidecar records.

    Not only its own entry: a process killed between rotating ``checkpoint.pt``
    to ``checkpoint.prev.pt`` and rewriting the sidecar leaves the previous
    file described under the current name, and it is still a good checkpoint.
    """
    return any(_verify(path, entry) for entry in sidecar.values() if isinstance(entry, dict))


def load_file(path: Path) -> dict[str, Any]:
    """Load one checkpoint file safely; refuse anything that needs arbitrary unpickling."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refusing to load {path}: it contains objects that need arbitrary unpickling, which could run code. "
            "ganbench checkpoints hold only tensors and plain values; only load files you trust, outside ganbench."
        ) from exc


def load_latest(directory: Path) -> dict[str, Any] | None:
    """The newest checkpoint that passes its integrity check, or None if the run never saved one."""
    directory = Path(directory)
    sidecar = _read_sidecar(directory)
    candidates = [directory / CURRENT, directory / PREVIOUS]
    if not any(p.exists() for p in candidates):
        return None
    problems = []
    for path in candidates:
        if not path.exists():
            continue
        verified = _verify_any(path, sidecar)
        try:
            state = load_file(path)
        except Exception as exc:  # truncated, corrupt, or matching its hash but still unloadable
            if verified and isinstance(exc, CheckpointError):
                raise  # the file the sidecar vouches for holds arbitrary objects: refuse, never fall back silently
            problems.append(f"{path.name} failed to load: {exc}" if verified else
                            f"{path.name} is truncated or corrupt ({SIDECAR} does not describe it and it does not load)")
            continue
        if not verified:
            if not (isinstance(state, dict) and all(key in state for key in REQUIRED)):
                problems.append(f"{path.name} is truncated or corrupt (it does not match {SIDECAR} and is incomplete)")
                continue
            if _same_step(sidecar.get(path.name), state):
                problems.append(f"{path.name} is corrupt (its SHA-256 differs from the one {SIDECAR} records "
                                f"for step {state['counters']['steps']})")
                continue
            _repair_sidecar(directory, sidecar, path, state)
        for problem in problems:
            warnings.warn(f"{directory}: {problem}; resuming from {path.name} instead", stacklevel=2)
        return state
    raise CheckpointError(
        f"No usable checkpoint in {directory}: {'; '.join(problems)}. Delete the run directory to start the run afresh."
    )


def _same_step(entry: Any, state: dict[str, Any]) -> bool:
    """Whether the sidecar describes this very checkpoint, so that a digest mismatch means damage.

    A sidecar left stale by a kill describes an older step than the file; a file of the step the
    sidecar recorded, whose bytes no longer hash the same, was altered after it was written (a
    flipped bit on disk keeps the size and often still loads).
    """
    return isinstance(entry, dict) and entry.get("step") == state["counters"].get("steps")


def _repair_sidecar(directory: Path, sidecar: dict[str, Any], path: Path, state: dict[str, Any]) -> None:
    """Describe a good checkpoint the sidecar missed (a kill between its rename and the sidecar write)."""
    why = "missing" if not sidecar else "stale"
    warnings.warn(f"{directory}: {SIDECAR} is {why} for {path.name}, which loads and is complete "
                  f"(step {state['counters']['steps']}); resuming from it and rewriting {SIDECAR}", stacklevel=3)
    sidecar[path.name] = _entry(path, state)
    write_json(Path(directory) / SIDECAR, sidecar)
