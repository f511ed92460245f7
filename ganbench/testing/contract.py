"""One named contract check, and the error that names the contract it saw broken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ganbench import errors

#: The plugin at fault, by the first part of a contract's id, as a run's ContractError names it.
_KINDS = {"family": "model"}


class ContractError(errors.ContractError, AssertionError):
    """A plugin broke a contract; the message starts with ``contract <id>: <subject>:``.

    The core's :class:`ganbench.ContractError`, which a run raises for the same
    violation with the same message form (:func:`ganbench.errors.contract_message`),
    and an ``AssertionError``, so that pytest reports it as a failure, not an error.
    """

    def __init__(self, contract: str, subject: str, detail: str) -> None:
        kind = contract.partition(".")[0]
        super().__init__(detail, _KINDS.get(kind, kind), contract, subject)


class ContractSkipped(Exception):
    """A contract that cannot be checked here (a dataset that is not downloaded); not a failure."""


@dataclass(frozen=True)
class Contract:
    """A check of one contract (``id``, e.g. ``family.generate.range``) on one ``subject`` (``mygan@1x16``).

    ``probe`` does the work; it raises :class:`ContractError` for a violation. Anything else it
    raises is the plugin crashing under the check, reported as a violation of the same contract.
    """

    id: str
    subject: str
    probe: Callable[[], None]

    def __str__(self) -> str:
        return f"{self.id}[{self.subject}]"

    def check(self) -> None:
        """Run the check: return when the contract holds, raise :class:`ContractError` when not.

        Under pytest a contract that cannot be checked here is skipped with its reason.
        """
        try:
            self.probe()
        except (ContractError, ContractSkipped) as exc:
            if isinstance(exc, ContractSkipped):
                _skip(f"{self}: {exc}")
            raise
        except errors.ContractError as exc:  # a run-time check of the core saw it first
            raise reported(exc, self.id, self.subject) from None
        except Exception as exc:  # the plugin crashed while the contract was checked
            raise ContractError(self.id, self.subject, f"raised {type(exc).__name__}: {exc}") from exc


def _skip(reason: str) -> None:
    try:
        import pytest
    except ImportError:  # outside pytest the caller sees ContractSkipped
        return
    pytest.skip(reason)


def reported(exc: errors.ContractError, contract: str, subject: str) -> ContractError:
    """A violation the core's run-time checks (:mod:`ganbench.plugin.contracts`) found while the kit checked
    ``contract``, reported under it with the core's words (and the core's contract id when another)."""
    detail = exc.detail if exc.contract in (None, contract) else f"{exc.detail} (contract {exc.contract})"
    return ContractError(contract, subject, detail)


def fail(contract: str, subject: str, detail: str) -> ContractError:
    """The error for a violation, to ``raise``."""
    return ContractError(contract, subject, detail)


def expect(condition: bool, contract: str, subject: str, detail: str) -> None:
    """Raise the :class:`ContractError` for ``contract`` unless ``condition`` holds."""
    if not condition:
        raise fail(contract, subject, detail)
