"""One named contract check, and the error that names the contract it saw broken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class ContractError(AssertionError):
    """A plugin broke a contract; the message starts with ``contract <id>: <subject>:``."""

    def __init__(self, contract: str, subject: str, detail: str) -> None:
        super().__init__(f"contract {contract}: {subject}: {detail}")
        self.contract = contract
        self.subject = subject


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
        except Exception as exc:  # the plugin crashed while the contract was checked
            raise ContractError(self.id, self.subject, f"raised {type(exc).__name__}: {exc}") from exc


def _skip(reason: str) -> None:
    try:
        import pytest
    except ImportError:  # outside pytest the caller sees ContractSkipped
        return
    pytest.skip(reason)


def fail(contract: str, subject: str, detail: str) -> ContractError:
    """The error for a violation, to ``raise``."""
    return ContractError(contract, subject, detail)


def expect(condition: bool, contract: str, subject: str, detail: str) -> None:
    """Raise the :class:`ContractError` for ``contract`` unless ``condition`` holds."""
    if not condition:
        raise fail(contract, subject, detail)
