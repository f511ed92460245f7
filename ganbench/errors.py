"""Errors a user can act on.

Every error ganbench raises on purpose derives from :class:`GanbenchError`.
The CLI prints such errors as one paragraph without a traceback (unless
``--debug``), so each message must say what was wrong *and* what to do.
Anything else that escapes is a bug in ganbench or in a plugin.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanbenchError(Exception):
    """An error whose message is meant for the user, not the developer."""


class UsageError(GanbenchError):
    """The command line or a suite file asked for something impossible."""


class UnknownNameError(UsageError):
    """A plugin, dataset, metric or objective name that nothing registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        self.suggestions = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        message = f"Unknown {kind} {name!r}."
        if self.suggestions:
            message += f" Did you mean {self.suggestions[0]!r}?"
        if self.known:
            message += f" Known {kind}s: {', '.join(self.known)}."
        else:  # even the built-ins are missing: their entry points are not installed, or stale after an update
            message += (f" No {kind} is registered at all, not even the built-in ones, so ganbench's entry points "
                        "are missing or stale: reinstall it (`uv sync` in a checkout, or `pip install ganbench` "
                        "again), and check that GANBENCH_DISABLE_PLUGINS does not disable them all.")
        if hint:
            message += f" {hint}"
        super().__init__(message)


class PluginError(GanbenchError):
    """A plugin could not be loaded, or returned something ganbench cannot use."""


def contract_message(contract: str | None, subject: str | None, detail: str) -> str:
    """How a broken contract reads wherever it is found, in a run or by the conformance kit
    (:mod:`ganbench.testing`): ``contract <id>: <subject>: <detail>``, leaving out what is not known
    (a run names its plugin and distribution itself, so its checks give no subject)."""
    return ": ".join([*(part for part in (contract and f"contract {contract}", subject) if part), detail])


class ContractError(PluginError):
    """A plugin broke the plugin contract (a wrong type, shape, dtype or range).

    ``contract`` is the contract's id (``family.generate.range``: the ids the
    conformance kit checks), ``subject`` what was checked when the finder knows
    it, ``detail`` what was wrong; the message joins them (:func:`contract_message`).
    ``kind`` says which plugin of a run is at fault ("model" or "objective"),
    so the runner can name it and its distribution.
    """

    def __init__(self, detail: str, kind: str = "model", contract: str | None = None,
                 subject: str | None = None) -> None:
        self.kind = kind
        self.contract = contract
        self.subject = subject
        self.detail = detail
        super().__init__(contract_message(contract, subject, detail))


class DatasetUnavailableError(GanbenchError):
    """A dataset's files are not on disk and could not be fetched."""


class DivergedError(GanbenchError):
    """Raised inside the loop when a loss stops being finite; caught by the runner."""

    def __init__(self, step: int, losses: dict[str, float]) -> None:
        self.step = step
        self.losses = losses
        bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not _finite(v))
        super().__init__(f"diverged at step {step}: {bad}")


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
