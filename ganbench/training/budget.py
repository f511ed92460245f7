"""Budgets: how much training every run in one invocation is given.

A budget is one of wall-clock training seconds, real images shown to the
discriminator, or optimisation steps. Whatever the budget, every run counts
all three, so runs can be compared on any axis afterwards. Evaluation time is
counted separately and never charged to the budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ganbench.errors import UsageError

_UNITS: dict[str, tuple[str, float]] = {
    "s": ("seconds", 1), "sec": ("seconds", 1), "secs": ("seconds", 1), "second": ("seconds", 1), "seconds": ("seconds", 1),
    "m": ("seconds", 60), "min": ("seconds", 60), "mins": ("seconds", 60), "minute": ("seconds", 60), "minutes": ("seconds", 60),
    "h": ("seconds", 3600), "hr": ("seconds", 3600), "hour": ("seconds", 3600), "hours": ("seconds", 3600),
    "img": ("images", 1), "kimg": ("images", 1_000), "mimg": ("images", 1_000_000),
    "step": ("steps", 1), "steps": ("steps", 1), "kstep": ("steps", 1_000), "ksteps": ("steps", 1_000),
}
_PATTERN = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
_EXAMPLES = "Examples: 90s, 30m, 2h (wall-clock), 50kimg (real images seen), 2000steps (steps)."


@dataclass(frozen=True)
class Budget:
    """A parsed budget: ``kind`` is 'seconds', 'images' or 'steps'."""

    kind: str
    amount: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Budget:
        match = _PATTERN.match(str(text))
        if not match:
            raise UsageError(f"Cannot read the budget {text!r}: give a number followed by a unit. {_EXAMPLES}")
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit not in _UNITS:
            raise UsageError(f"Unknown budget unit {match.group(2)!r} in {text!r}. {_EXAMPLES}")
        kind, scale = _UNITS[unit]
        amount = number * scale
        if not math.isfinite(amount) or amount <= 0:
            raise UsageError(f"The budget {text!r} must be positive. {_EXAMPLES}")
        if kind != "seconds" and amount != int(amount):
            raise UsageError(f"The budget {text!r} must be a whole number of {kind}. {_EXAMPLES}")
        if kind != "seconds" and amount < 1:
            raise UsageError(f"The budget {text!r} is less than one {kind[:-1]}. {_EXAMPLES}")
        return cls(kind, amount, _canonical(kind, amount))

    def fraction(self, counters: Counters) -> float:
        """How much of the budget is spent, in [0, 1]."""
        used = {"seconds": counters.train_seconds, "images": counters.images, "steps": counters.steps}[self.kind]
        return min(1.0, used / self.amount)

    def exhausted(self, counters: Counters) -> bool:
        return self.fraction(counters) >= 1.0

    @property
    def unit(self) -> str:
        return {"seconds": "s", "images": "img", "steps": "steps"}[self.kind]

    def __str__(self) -> str:
        return self.text


def _canonical(kind: str, amount: float) -> str:
    """One spelling per budget, so '1m' and '60s' land in the same leaderboard row."""
    if kind == "seconds":
        for unit, scale in (("h", 3600), ("m", 60)):
            if amount >= scale and amount % scale == 0:
                return f"{int(amount // scale)}{unit}"
        return f"{amount:g}s"
    if kind == "images":
        if amount >= 1000 and amount % 1000 == 0:
            return f"{int(amount // 1000)}kimg"
        return f"{int(amount)}img"
    return f"{int(amount)}steps"


@dataclass
class Counters:
    """Everything a run has consumed so far."""

    steps: int = 0
    images: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    #: With a wall-clock budget: training time beyond the budget, as the budget is settled only at sync points.
    overshoot_seconds: float = 0.0
    #: The untimed warm-up step of each process (device start-up, cuDNN autotuning), outside the budget.
    warmup_seconds: float = 0.0
    #: With ``--compile``: the first warm-up step, which compiles every network; outside the budget too.
    compile_seconds: float = 0.0
    #: Optimiser steps taken on each side, per network of that side (a LAPGAN step updates every level once):
    #: a "step" is one G update, so under a step budget an n_critic=5 objective gets 5x the D updates.
    d_updates: float = 0.0
    g_updates: float = 0.0

    @property
    def kimg(self) -> float:
        return self.images / 1000.0

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
