"""Options a researcher applies to every family alike: per-network learning rates and betas, a learning-rate
schedule, an exponential moving average of the generator, and spectral normalisation of the discriminator.

They are applied by the core to whatever a family builds, never by the family: a network whose name (in
``GanModel.networks()`` / ``optimizers()``) starts with ``generator`` is a generator, every other one a
discriminator. That is the whole contract, so a third-party family gets the options for free.

Precedence: an option the user gives wins over the objective's and the family's own recipe, because it is
applied after the family has built its optimisers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganbench.errors import UsageError

if TYPE_CHECKING:
    from ganbench.plugin.model import BuildContext, GanModel, TrainSettings
    from ganbench.results.records import RunConfig
    from ganbench.plugin.specs import ModelSpec

#: Learning-rate schedules ``--lr-schedule`` accepts: constant, or linear decay to 0 at the end of the budget
#: (Gulrajani et al. 2017's CIFAR-10 runs; REFERENCES §8).
LR_SCHEDULES = ("constant", "linear")
#: Layers spectral normalisation wraps (Miyato et al. 2018: every weight of D).
_SN_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def is_generator(name: str) -> bool:
    """Whether a network or optimiser name (``generator``, ``generator_0``) belongs to the generator side."""
    return name.startswith("generator")


def override_optimizers(model: GanModel, settings: TrainSettings, family: str) -> None:
    """Set ``--lr-g``, ``--lr-d`` and ``--betas`` on every optimiser the family built (see the module docstring)."""
    for name, opt in model.optimizers().items():
        lr = settings.lr_g if is_generator(name) else settings.lr_d
        for group in opt.param_groups:
            if lr is not None:
                group["lr"] = lr
            if settings.betas is not None:
                if "betas" not in group:
                    raise UsageError(
                        f"--betas was given, but the family {family!r} trains its {name!r} with "
                        f"{type(opt).__name__}, which has no betas. Leave --betas out for this family."
                    )
                group["betas"] = tuple(settings.betas)


class LrSchedule:
    """Scales every optimiser's learning rate by a factor of the budget fraction used.

    The factor is applied as a ratio to the previous one, so a family's own lr changes (BEGAN halving its lr
    when M_global stalls) compose with the schedule instead of being overwritten. The factor is part of the
    loop's checkpoint, so a resumed run continues bit-identically.
    """

    def __init__(self, kind: str, optimizers: list[torch.optim.Optimizer]) -> None:
        if kind not in LR_SCHEDULES:
            raise UsageError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {kind!r}.")
        self.kind = kind
        self.optimizers = optimizers
        self.factor = 1.0

    def target(self, progress: float) -> float:
        if self.kind == "linear":  # never exactly 0 before the last step: progress < 1 while training
            return max(1.0 - progress, 1e-12)
        return 1.0

    def apply(self, progress: float) -> None:
        factor = self.target(progress)
        if factor == self.factor:
            return
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["lr"] / self.factor * factor
        self.factor = factor


def ema_beta(batch_size: int, half_life_kimg: float) -> float:
    """StyleGAN's definition: the weight of the old average after one step of ``batch_size`` images, so that
    the average's memory halves every ``half_life_kimg`` thousand images whatever the batch size."""
    return 0.5 ** (batch_size / (half_life_kimg * 1000.0))


class GeneratorEma:
    """An exponential moving average of every generator network (``torch.optim.swa_utils.AveragedModel``).

    :meth:`swapped` puts the averaged weights in place for sampling (grids, scores) and restores the trained
    ones after, so the family's own ``generate`` samples from the average without knowing about it.
    """

    def __init__(self, model: GanModel, batch_size: int, half_life_kimg: float) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if half_life_kimg <= 0:
            raise UsageError(f"--ema is a half-life in thousands of images and must be positive, not {half_life_kimg}.")
        self.beta = ema_beta(batch_size, half_life_kimg)
        self.live = {name: net for name, net in model.networks().items() if is_generator(name)}
        self.averages = {
            name: AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(self.beta), use_buffers=True)
            for name, net in self.live.items()
        }

    @torch.no_grad()
    def update(self) -> None:
        for name, average in self.averages.items():
            average.update_parameters(self.live[name])

    @contextmanager
    def swapped(self) -> Iterator[None]:
        kept = {name: copy.deepcopy(net.state_dict()) for name, net in self.live.items()}
        try:
            for name, net in self.live.items():
                average = self.averages[name]
                if int(average.n_averaged) > 0:  # before the first step the average is the initial G itself
                    net.load_state_dict(average.module.state_dict())
            yield
        finally:
            for name, net in self.live.items():
                net.load_state_dict(kept[name])

    def state_dict(self) -> dict[str, Any]:
        return {name: average.state_dict() for name, average in self.averages.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, average in self.averages.items():
            average.load_state_dict(state[name])


def apply_spectral_norm(model: GanModel, family: str) -> int:
    """Wrap every conv and linear layer of every discriminator network in spectral normalisation.

    The wrapped weight keeps its ``Parameter`` object (it moves to ``parametrizations.weight.original``), so
    the optimisers the family built still train it. Returns how many layers were wrapped; a family whose
    discriminator has none of these layers (progressive's equalised-lr convs) is refused.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    wrapped = 0
    for name, net in model.networks().items():
        if is_generator(name):
            continue
        for module in list(net.modules()):
            if isinstance(module, _SN_LAYERS):
                spectral_norm(module)
                wrapped += 1
    if wrapped == 0:
        raise UsageError(
            f"--spectral-norm found no Conv2d, ConvTranspose2d or Linear layer in the discriminator of the family "
            f"{family!r} (it uses layers of its own), so there is nothing to normalise. Leave --spectral-norm out "
            "for this family."
        )
    return wrapped


def recorded_settings(source: Any) -> dict[str, Any]:
    """The :class:`TrainSettings` fields, read by name from ``source`` (settings or a :class:`RunConfig`).

    Every setting is recorded in the run's config under its own name, so one list (TrainSettings' fields)
    serves both directions: planning copies the user's settings into the record, and :func:`settings_of` copies
    them back. ``options`` is left out: the settings hold one family's options, the record every plugin's.
    ``tests/test_training_options.py`` pins that every setting has its field in the record and survives the
    round trip, so a new setting cannot be trained with and left out of the run's identity.
    """
    from dataclasses import fields

    from ganbench.plugin.model import TrainSettings

    return {f.name: getattr(source, f.name) for f in fields(TrainSettings) if f.name != "options"}


def settings_of(config: RunConfig, family_options: dict[str, Any] | None = None) -> TrainSettings:
    """The :class:`TrainSettings` a recorded run was trained with (training, and rebuilding it to score).

    ``family_options`` are the family's per-plugin options with its declared defaults filled in
    (``runner.family_options``); without them, the options the user gave for the family.
    """
    from ganbench.plugin.model import TrainSettings

    recorded = recorded_settings(config)
    betas = recorded["betas"]  # a list once the record has been through JSON
    return TrainSettings(**{
        **recorded,
        "options": dict(family_options if family_options is not None else config.options.get(config.family, {})),
        "betas": None if betas is None else (float(betas[0]), float(betas[1])),
    })


def build_model(spec: ModelSpec, ctx: BuildContext) -> GanModel:
    """The family's model as a run trains it: packed (``--pack``, ganbench.training.packing), then with the options
    every family gets alike (spectral norm, lr and betas). Rebuilding a recorded run this way gives networks whose
    weights are the checkpoint's, whatever options it was trained with.

    ``ctx`` is already sized under ``--recipe matched`` (:func:`ganbench.training.capacity.matched_context`): the
    runner sizes it once, to record the knobs it chose, and rescoring sizes it the same way.
    """
    from ganbench.plugin.contracts import MODEL_METHODS, check_built
    from ganbench.plugin.model import GanModel
    from ganbench.training.packing import pack

    model = spec.build(ctx)
    check_built(model, GanModel, MODEL_METHODS)
    model = pack(model, spec.build, ctx, ctx.settings.pack)
    apply_common_options(model, ctx.settings, spec.name)
    return model


def apply_common_options(model: GanModel, settings: TrainSettings, family: str) -> None:
    """Spectral norm, then the user's lr and betas, which win over the objective's and the family's recipe."""
    if settings.spectral_norm:
        apply_spectral_norm(model, family)
    override_optimizers(model, settings, family)


def ema_weights(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The averaged generator weights a checkpoint holds (``state["ema"]``), keyed like ``networks``; {} when none."""
    prefix = "module."
    return {name: {k[len(prefix):]: v for k, v in average.items() if k.startswith(prefix)}
            for name, average in state.get("ema", {}).items()}


#: ``--recipe`` values: each paper's own settings, or those with capacity matched (docs/recipes.md).
RECIPES = ("paper", "matched")
#: The batch size of a family whose recipe names none, when the user gives no ``--batch-size``.
DEFAULT_BATCH = 64


def batch_for(spec: ModelSpec, settings: TrainSettings) -> int:
    """The batch a run trains with: ``--batch-size``, else the family's recipe (``ModelSpec.batch_size``), else 64.

    Resolved while planning and recorded in the run config, so the identity and leaderboard show it exactly as
    a batch given by hand.
    """
    if settings.batch_size is not None:
        return settings.batch_size
    return spec.batch_size if spec.batch_size is not None else DEFAULT_BATCH


def check_training_options(settings: TrainSettings) -> None:
    """Refuse a bad recipe or option while planning, before any run trains."""
    if settings.recipe not in RECIPES:
        raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}, not {settings.recipe!r} (see docs/recipes.md).")
    if settings.lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {settings.lr_schedule!r}.")
    for flag, value in (("--lr-g", settings.lr_g), ("--lr-d", settings.lr_d)):
        if value is not None and not value > 0:
            raise UsageError(f"{flag} must be a positive learning rate, not {value}.")
    if settings.betas is not None and not all(0.0 <= b < 1.0 for b in settings.betas):
        raise UsageError(f"--betas must be two numbers in [0, 1), e.g. 0,0.9; got {settings.betas}.")
    if settings.ema_kimg is not None and not settings.ema_kimg > 0:
        raise UsageError(f"--ema is a half-life in thousands of images and must be positive, not {settings.ema_kimg}.")
