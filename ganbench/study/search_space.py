"""Hyperparameter search spaces: what a family lets ``ganbench tune`` vary, and how trials are drawn.

A family declares its space in its :class:`~ganbench.plugin.specs.ModelSpec`
(``search_space={"lr": LogUniform(1e-5, 1e-2), ...}``); a family that
declares none is searched over :data:`LUCIC_WIDE`. Every parameter names a
field of :class:`~ganbench.plugin.model.TrainSettings`, i.e. something a run config
already records and ``ganbench run`` can already express, so every trial is an
ordinary run that a command line could reproduce.

This module imports nothing heavy: specs are built when ``ganbench plugins``
lists them, long before anything trains.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganbench.errors import UsageError

#: Significant digits a drawn real value is rounded to: run configs and reports stay readable
#: ("lr 0.000347"), and two draws closer than this are the same experiment anyway.
SIGNIFICANT = 3


@dataclass(frozen=True)
class LogUniform:
    """A positive real whose logarithm is uniform on [log low, log high] (learning rates)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high and math.isfinite(self.high)):
            raise UsageError(f"LogUniform({self.low!r}, {self.high!r}): needs 0 < low < high < infinity.")

    def draw(self, rng: random.Random) -> float:
        return float(f"{math.exp(rng.uniform(math.log(self.low), math.log(self.high))):.{SIGNIFICANT}g}")

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """A real uniform on [low, high] (momentum terms such as Adam's beta1)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (self.low < self.high and math.isfinite(self.low) and math.isfinite(self.high)):
            raise UsageError(f"Uniform({self.low!r}, {self.high!r}): needs finite low < high.")

    def draw(self, rng: random.Random) -> float:
        return float(f"{rng.uniform(self.low, self.high):.{SIGNIFICANT}g}")

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Choice:
    """One of a few values, equally likely (batch sizes, critic steps, latent distributions)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise UsageError("Choice(()): give at least one value to choose from.")
        object.__setattr__(self, "values", tuple(self.values))

    def draw(self, rng: random.Random) -> Any:
        return self.values[rng.randrange(len(self.values))]

    def describe(self) -> str:
        return "one of {" + ", ".join(map(str, self.values)) + "}"


Distribution = LogUniform | Uniform | Choice

#: The wide search space of Lucic et al. 2018 ("Are GANs Created Equal?", §5 and the compare_gan code; see
#: REFERENCES §1.7): learning rate log-uniform in [1e-5, 1e-2] and 1 to 5 discriminator steps per generator
#: step, at batch 64. Their other two axes, Adam's beta1 uniform in [0, 1] and batch norm in D on or off, are
#: not run options in ganbench yet, so they are not searched (docs/tuning.md).
LUCIC_WIDE: Mapping[str, Distribution] = {
    "lr": LogUniform(1e-5, 1e-2),
    "n_critic": Choice((1, 2, 3, 4, 5)),
}

#: TrainSettings fields that are not hyperparameters of the game: how fast a run goes, or free-form options.
NOT_TUNABLE = frozenset({"options", "precision", "compile", "channels_last", "reuse_fakes"})


def tunable_parameters() -> list[str]:
    """The names a search space may use: every :class:`TrainSettings` field a run config records, speed aside."""
    from dataclasses import fields

    from ganbench.plugin.model import TrainSettings

    return [f.name for f in fields(TrainSettings) if f.name not in NOT_TUNABLE]


def check_space(space: Mapping[str, Any], owner: str) -> dict[str, Distribution]:
    """The space, checked; ``owner`` (family and distribution) is named in the error."""
    allowed = tunable_parameters()
    checked: dict[str, Distribution] = {}
    for name, dist in space.items():
        if name not in allowed:
            raise UsageError(
                f"The search space of {owner} names {name!r}, which is not a run option ganbench can set. "
                f"A search space may vary: {', '.join(allowed)}."
            )
        if not isinstance(dist, (LogUniform, Uniform, Choice)):
            raise UsageError(
                f"The search space of {owner} gives {name!r} as {dist!r}; use ganbench.study.search_space.LogUniform, "
                "Uniform or Choice."
            )
        checked[name] = dist
    if not checked:
        raise UsageError(f"The search space of {owner} is empty; declare at least one parameter, or none at all "
                         "to be searched over Lucic et al.'s wide space.")
    return checked


def draw_trials(space: Mapping[str, Distribution], count: int, seed: int, family: str) -> list[dict[str, Any]]:
    """``count`` configurations drawn from ``space``, the same ones for the same seed and family.

    Each family has its own stream (seeded by the study seed and its name), so
    adding a family to a study never changes the trials of another, and the
    parameters are drawn in name order, so declaring them in another order
    changes nothing either.
    """
    rng = random.Random(f"ganbench-tune:{seed}:{family}")
    return [{name: space[name].draw(rng) for name in sorted(space)} for _ in range(count)]


def describe_space(space: Mapping[str, Distribution]) -> dict[str, str]:
    """Parameter -> its distribution in words, for reports."""
    return {name: dist.describe() for name, dist in sorted(space.items())}


def format_params(params: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """``{'lr': 0.00347, 'n_critic': 2}`` -> ``'lr=0.00347, n_critic=2'``."""
    return ", ".join(f"{k}={params[k]:g}" if isinstance(params[k], float) else f"{k}={params[k]}"
                     for k in (keys or sorted(params)))
