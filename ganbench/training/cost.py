"""What a training step costs, measured rather than assumed: FLOPs per network side.

Parameters say how big a model is; FLOPs say how much work a step does. Two families with equal parameters can
differ tenfold in FLOPs (an MLP against a conv net), and a five-critic-step objective does about five times the
discriminator work of a one-step one under the same number of generator steps. The leaderboard shows both.

The measurement runs one real training step under ``torch.utils.flop_counter.FlopCounterMode`` (forward and
backward, so a gradient penalty's double backward is counted) and attributes every FLOP to the network whose
forward or backward it ran in. The loop takes it once per run, before training, from a copy of its state that
it restores afterwards, so training continues exactly as if it had not been measured.
"""

from __future__ import annotations

from collections.abc import Callable

import sys

import torch
from torch import nn
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.hooks import RemovableHandle
from torch.utils.module_tracker import ModuleTracker, register_multi_grad_hook

from ganbench.training.options import is_generator


class _Tracker(ModuleTracker):
    """torch's module tracker, except that it hooks no leaf input of a module.

    torch refuses such a hook while ``autograd.grad`` runs, which a gradient penalty calls on the (leaf)
    interpolates. Without it the module's name stays among the parents until the backward pass ends; its
    backward is the last thing that pass computes, so the attribution is unchanged.
    """

    def _fw_pre_hook(self, mod: nn.Module, input: object) -> None:
        name = self._get_mod_name(mod)
        self._get_append_fn(name, False)()
        args, _ = tree_flatten(input)
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad and not a.is_leaf]
        if tensors:
            handle: RemovableHandle = register_multi_grad_hook(tensors, self._get_pop_fn(name, True))
            self._hooks.append(handle)


def flops_by_network(networks: dict[str, nn.Module], work: Callable[[], object]) -> dict[str, int] | None:
    """FLOPs of ``work()`` spent inside each named network; None (with a warning) when they cannot be measured.

    The tracker is named after each network's key in ``networks`` rather than its class, which keeps two
    networks of one class (LAPGAN's levels) apart.
    """
    counter = FlopCounterMode(display=False)
    try:
        tracker = _Tracker()
        for name, net in networks.items():
            tracker._known_modules[net] = name
        counter.mod_tracker = tracker
        with counter:
            work()
    except Exception as exc:  # noqa: BLE001 - the cost figure is never worth a run
        print(f"warning: could not measure the FLOPs of a training step: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    counts = counter.get_flop_counts()
    return {name: int(sum(counts.get(name, {}).values())) for name in networks}


def gflops_per_image(by_network: dict[str, int] | None, images: int) -> tuple[float | None, float | None]:
    """(generator side, discriminator side) GFLOPs per image of the batch, from :func:`flops_by_network`."""
    if by_network is None or images <= 0:
        return None, None
    g = sum(v for k, v in by_network.items() if is_generator(k))
    d = sum(v for k, v in by_network.items() if not is_generator(k))
    return round(g / images / 1e9, 6), round(d / images / 1e9, 6)
