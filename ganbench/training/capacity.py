"""``--recipe matched``: every family's generator and discriminator within ±10 % of one capacity target.

Why: under ``--recipe paper`` generator sizes differ up to 20x between families, so a ranking partly measures
size. Lucic et al. 2018 and Kurach et al. 2019 compared losses on one fixed architecture; ganbench compares
families, whose architectures differ by design, so it fixes their *capacity* instead: parameters and forward
FLOPs per image of G and of D, each within ±10 % of a per-resolution target. Both, because either alone can be
gamed: an MLP holds DCGAN's parameters at a few per cent of its FLOPs, and a constant-width conv net holds its
FLOPs with a fraction of its parameters.

How: a family declares the architecture knobs it has (:attr:`ganbench.ModelSpec.capacity_knobs`: a family
option -> its allowed values, in growing capacity). The core builds candidates on the ``meta`` device (no
memory, no arithmetic), counts parameters and the FLOPs of one forward pass of each network with the
leaderboard's own counter (:func:`ganbench.training.cost.flops_by_network`) on the inputs a real training step handed
it (captured once, from a tiny CPU step at the smallest knobs), and searches the knobs (a nested binary
search, see :func:`search`: the worst of the four deviations is unimodal in a knob that only grows capacity).
Results are cached per process. A family whose best candidate misses any of the four targets by more than
the tolerance is refused, with the four ratios it reached; no departure is recorded silently.

Nothing here knows a family: only the networks a :class:`~ganbench.GanModel` names and the options it declares.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._pytree import tree_map

from ganbench.training.cost import flops_by_network
from ganbench.errors import UsageError
from ganbench.training.options import is_generator

if TYPE_CHECKING:
    from ganbench.plugin.model import BuildContext, GanModel
    from ganbench.plugin.specs import ModelSpec

#: The largest relative deviation from a target that still counts as matched (Lucic et al. 2018 held one
#: architecture fixed; ±10 % is ganbench's tolerance for families whose architectures cannot be identical).
TOLERANCE = 0.10
#: Where the targets come from, and the rule that scales them per resolution.
TARGET_SOURCE = (
    "DCGAN (Radford et al. 2015) with 128 channels at its finest stage: the common CIFAR-10 variant at 32 px "
    "(512-256-128, REFERENCES §2.4 (a)) and the paper's 64 px net (1024-512-256-128, Radford et al. Fig. 1); "
    "other sizes follow the same rule: a 4x4 start (7x7 at 28 px), one stride-2 stage per doubling, channels "
    "doubling per coarser stage up to 1024"
)


@dataclass(frozen=True)
class Capacity:
    """Parameters and forward FLOPs per image of a model's generator side and discriminator side."""

    params_g: int
    params_d: int
    flops_g: int
    flops_d: int

    def ratios(self, target: Capacity) -> dict[str, float]:
        """Each quantity over the target's (1.0: exactly matched)."""
        return {name: getattr(self, name) / getattr(target, name) for name in ("params_g", "params_d", "flops_g", "flops_d")}

    def deviation(self, target: Capacity) -> float:
        """The worst relative deviation from ``target``, on a log scale (2x too big and 2x too small weigh alike)."""
        return max(abs(math.log(r)) if r > 0 else math.inf for r in self.ratios(target).values())


#: (resolution, image channels) -> the target: :data:`TARGET_SOURCE` built for that size, counted by
#: :func:`measure` (tests/test_capacity.py recounts them from the dcgan plugin at width 128).
TARGETS: dict[tuple[int, int], Capacity] = {
    (16, 1): Capacity(params_g=936705, params_d=531073, flops_g=17858560, flops_d=17047552),
    (16, 3): Capacity(params_g=940803, params_d=535169, flops_g=18382848, flops_d=17571840),
    (28, 1): Capacity(params_g=1781505, params_d=539521, flops_g=54691840, flops_d=52208128),
    (28, 3): Capacity(params_g=1785603, params_d=543617, flops_g=56297472, flops_d=53813760),
    (32, 1): Capacity(params_g=3444481, params_d=2633345, flops_g=136904704, flops_d=135282688),
    (32, 3): Capacity(params_g=3448579, params_d=2637441, flops_g=139001856, flops_d=137379840),
    (64, 1): Capacity(params_g=12654337, params_d=11032193, flops_g=812777472, flops_d=809533440),
    (64, 3): Capacity(params_g=12658435, params_d=11036289, flops_g=821166080, flops_d=817922048),
    (128, 1): Capacity(params_g=29433601, params_d=27811457, flops_g=3778150400, flops_d=3774906368),
    (128, 3): Capacity(params_g=29437699, params_d=27815553, flops_g=3811704832, flops_d=3808460800),
}


def target_for(resolution: int, channels: int) -> Capacity:
    """The capacity target of one image size; a clear refusal for a size without one."""
    if (resolution, channels) not in TARGETS:
        sizes = ", ".join(f"{r} px x {c}" for r, c in sorted(TARGETS))
        raise UsageError(
            f"--recipe matched has no capacity target for {resolution} px images with {channels} channel(s); "
            f"targets exist for {sizes} (ganbench.training.capacity.TARGETS, {TARGET_SOURCE}). Use --resolution to train "
            "at one of them, or --recipe paper."
        )
    return TARGETS[(resolution, channels)]


def _detached(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def captured_inputs(model: GanModel, ctx: BuildContext, batch: int = 2) -> dict[str, tuple[tuple, dict]]:
    """The arguments each network of ``model`` first receives in one real training step on random data.

    A step (at the end of the budget, so that a growing family is at full size) is the one call every family
    answers alike; the arguments it hands each network are what a forward pass costs, whatever the family.
    """
    from ganbench.plugin.model import StepContext

    data = ctx.data
    real = torch.rand(batch, data.channels, data.resolution, data.resolution) * 2 - 1
    labels = torch.arange(batch) % data.num_classes if data.num_classes else None
    seen: dict[str, tuple[tuple, dict]] = {}
    handles = []
    for name, net in model.networks().items():
        def keep(_: torch.nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
            seen.setdefault(name, (tree_map(_detached, args), tree_map(_detached, kwargs)))
        handles.append(net.register_forward_pre_hook(keep, with_kwargs=True))
    try:
        model.train_step(lambda: (real, labels), StepContext(0, 1.0))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def forward_flops(model: GanModel, inputs: Mapping[str, tuple[tuple, dict]]) -> dict[str, int]:
    """FLOPs of one forward pass of each network on ``inputs`` (meta or real tensors), per image.

    Counted by :func:`ganbench.training.cost.flops_by_network`, the leaderboard's own FLOP counter, so a FLOP means the
    same in ``gflops_g`` and here.
    """
    networks = model.networks()
    device = next(p.device for net in networks.values() for p in net.parameters())
    moved = {name: tree_map(lambda v: v.to(device) if isinstance(v, torch.Tensor) else v, inputs[name])
             for name in networks if name in inputs}  # a network the step never called costs nothing per step

    def forward_each() -> None:
        with torch.no_grad():
            for name, (args, kwargs) in moved.items():
                networks[name](*args, **kwargs)

    counted = flops_by_network(networks, forward_each)
    if counted is None:
        raise UsageError(f"The FLOPs of {', '.join(networks)} could not be counted (the warning above says why), so "
                         "--recipe matched cannot size this family; train it with --recipe paper.")
    per_image = {}
    for name, flops in counted.items():
        args, kwargs = moved.get(name, ((), {}))
        first = next((a for a in itertools.chain(args, kwargs.values()) if isinstance(a, torch.Tensor)), None)
        per_image[name] = flops // max(1, first.shape[0] if first is not None and first.ndim else 1)
    return per_image


def measure(model: GanModel, inputs: Mapping[str, tuple[tuple, dict]]) -> Capacity:
    """The :class:`Capacity` of a built model (see the module docstring for what is counted)."""
    params = model.parameter_counts()
    flops = forward_flops(model, inputs)
    side = {name: is_generator(name) for name in params}
    return Capacity(
        params_g=sum(v for k, v in params.items() if side[k]), params_d=sum(v for k, v in params.items() if not side[k]),
        flops_g=sum(v for k, v in flops.items() if side[k]), flops_d=sum(v for k, v in flops.items() if not side[k]),
    )


def _with_options(ctx: BuildContext, options: Mapping[str, Any], device: torch.device) -> BuildContext:
    settings = replace(ctx.settings, options={**ctx.settings.options, **options})
    return replace(ctx, settings=settings, device=device)


@dataclass(frozen=True)
class Match:
    """The knob values the search chose, what they measure and how far that is from the target."""

    knobs: dict[str, Any]
    capacity: Capacity
    target: Capacity

    @property
    def within(self) -> bool:
        return all(abs(r - 1) <= TOLERANCE for r in self.capacity.ratios(self.target).values())

    def describe(self) -> str:
        ratios = self.capacity.ratios(self.target)
        return ", ".join(f"{name} x{ratio:.2f}" for name, ratio in ratios.items())


def search(knobs: Mapping[str, Sequence[Any]], cost: Callable[[dict[str, Any]], Capacity], target: Capacity) -> Match:
    """The knob values whose capacity deviates least from ``target``.

    A nested search: over the first knob, of the best the remaining knobs reach (recursively), each a binary
    search on whether one step up the knob's values improves. It is exact when every measure grows strictly with
    every knob, since the worst of the four log-deviations is then unimodal in each knob; one knob of n values
    takes ~2 log2(n) builds, two knobs the square of that.
    """
    names = list(knobs)
    seen: dict[tuple, float] = {}

    def deviation(values: dict[str, Any]) -> float:
        key = tuple(values[name] for name in names)
        if key not in seen:
            seen[key] = cost(values).deviation(target)
        return seen[key]

    def best(fixed: dict[str, Any], rest: list[str]) -> tuple[float, dict[str, Any]]:
        if not rest:
            return deviation(fixed), fixed
        name, values = rest[0], knobs[rest[0]]

        def at(i: int) -> tuple[float, dict[str, Any]]:
            return best({**fixed, name: values[i]}, rest[1:])

        lo, hi = 0, len(values) - 1
        while lo < hi:  # a binary search on the sign of the step: two builds per halving
            mid = (lo + hi) // 2
            if at(mid)[0] <= at(mid + 1)[0]:
                hi = mid
            else:
                lo = mid + 1
        return at(lo)

    _, chosen = best({}, names)
    return Match(dict(chosen), cost(chosen), target)


def check_matchable(spec: ModelSpec, given: Mapping[str, Any], plugin: str = "") -> None:
    """Refuse, while planning, a family that cannot take part in ``--recipe matched`` whatever the data.

    ``given`` is what the user set for the family (``--option``); ``plugin`` names its entry point and
    distribution for the message.
    """
    origin = f" ({plugin})" if plugin else ""
    knobs = dict(spec.capacity_knobs)
    if not knobs:
        raise UsageError(
            f"The family {spec.name!r}{origin} declares no capacity knobs (ModelSpec.capacity_knobs), so "
            "--recipe matched cannot hold its parameters and FLOPs at the target (docs/recipes.md says why each built-in "
            "family does or does not take part). Train it with --recipe paper, or ask its authors to declare the "
            "architecture options it has (docs/plugins.md)."
        )
    fixed = sorted(set(knobs) & set(given))
    if fixed:
        raise UsageError(
            f"--recipe matched chooses the family {spec.name!r}'s {', '.join(fixed)} itself to hold its capacity "
            f"at the target; leave out --option {', '.join(f'{spec.name}.{k}' for k in fixed)}."
        )


def matched_options(spec: ModelSpec, ctx: BuildContext, plugin: str = "") -> dict[str, Any]:
    """The knob values that put ``spec`` within the tolerance of the target for ``ctx``'s images.

    Raises a :class:`UsageError` naming the family and ``plugin`` (its entry point and distribution) when it
    declares no knobs or when no knob values reach the target.
    """
    check_matchable(spec, {}, plugin)
    knobs = dict(spec.capacity_knobs)
    others = tuple(sorted((k, repr(v)) for k, v in ctx.settings.options.items() if k not in knobs))
    key = (spec.name, ctx.data.channels, ctx.data.resolution, ctx.data.num_classes, type(ctx.objective).__name__,
           others, tuple(sorted((k, tuple(v)) for k, v in knobs.items())))
    if key not in _CACHE:
        _CACHE[key] = _search_family(spec, ctx, knobs)
    match = _CACHE[key]
    if not match.within:
        origin = f" ({plugin})" if plugin else ""
        raise UsageError(
            f"The family {spec.name!r}{origin} cannot be capacity-matched at {ctx.data.resolution} px: the best "
            f"values of its knobs ({', '.join(f'{k}={v}' for k, v in match.knobs.items())}) reach {match.describe()} "
            f"of the target (DCGAN with 128 channels at its finest stage; docs/recipes.md), outside ±{TOLERANCE:.0%}. Its architecture spends parameters and "
            "FLOPs in another proportion than the target's; train it with --recipe paper."
        )
    return match.knobs


def matched_context(spec: ModelSpec, ctx: BuildContext, plugin: str = "") -> BuildContext:
    """``ctx`` with the family's knobs set for ``--recipe matched``; ``ctx`` itself under any other recipe."""
    if ctx.settings.recipe != "matched":
        return ctx
    return _with_options(ctx, matched_options(spec, ctx, plugin), ctx.device)


#: Searches already made in this process (building candidates is cheap on meta, the search is not free).
_CACHE: dict[tuple, Match] = {}


def capacity_probe(spec: ModelSpec, ctx: BuildContext) -> Callable[[dict[str, Any]], Capacity]:
    """A function from knob values to the family's :class:`Capacity` for ``ctx``'s data.

    The inputs each network sees are captured once, from one CPU step of the family built at its smallest
    knobs (a copy of the objective takes it, so the run's own objective is untouched); every call then builds
    on the meta device and counts.
    """
    ctx = replace(ctx, objective=copy.deepcopy(ctx.objective))
    smallest = {name: values[0] for name, values in dict(spec.capacity_knobs).items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        inputs = captured_inputs(spec.build(_with_options(ctx, smallest, torch.device("cpu"))), ctx)

    def cost(values: dict[str, Any]) -> Capacity:
        meta = torch.device("meta")
        with torch.random.fork_rng(devices=[]), meta:
            model = spec.build(_with_options(ctx, values, meta))
        return measure(model, inputs)

    return cost


def _search_family(spec: ModelSpec, ctx: BuildContext, knobs: dict[str, Sequence[Any]]) -> Match:
    target = target_for(ctx.data.resolution, ctx.data.channels)
    return search(knobs, capacity_probe(spec, ctx), target)
