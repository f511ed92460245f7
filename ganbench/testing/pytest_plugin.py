"""The kit as a pytest plugin (entry point ``pytest11``): ``--ganbench-plugin NAME`` or ini ``ganbench_plugins``.

Loaded by every pytest run in an environment where ganbench is installed, so
it does nothing, and imports nothing heavy, until a project asks for it.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from .contract import Contract, ContractError

OPTION, INI = "--ganbench-plugin", "ganbench_plugins"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ganbench", "ganbench plugin conformance")
    group.addoption(OPTION, action="append", default=[], metavar="NAME", dest="ganbench_plugins",
                    help="run ganbench's conformance contracts for what NAME (a distribution, entry point or plugin "
                    "name) contributes; repeatable")
    parser.addini(INI, type="args", default=[], help="distributions whose ganbench contracts every run checks")


class ContractItem(pytest.Item):
    """One contract on one subject; a failure reports the contract's message, not a traceback into the kit."""

    def __init__(self, *, contract: Contract, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract = contract

    def runtest(self) -> None:
        self.contract.check()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        error = excinfo.value
        if not isinstance(error, ContractError):
            return super().repr_failure(excinfo)
        if error.__cause__ is None:  # a broken contract: its message says it all
            return str(error)
        crash = "".join(traceback.format_exception(error.__cause__))  # the plugin crashed: show where
        return f"{error}\n\n{crash}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(__file__), None, f"ganbench contract {self.contract}"


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect, so that they apply to contracts too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    targets = [*config.getoption("ganbench_plugins"), *config.getini(INI)]
    if not targets:
        return
    from ganbench.errors import GanbenchError
    from . import contracts

    for target in dict.fromkeys(targets):
        try:
            found = contracts(target)
        except GanbenchError as exc:  # nothing installed under that name: a usage error, not a traceback
            raise pytest.UsageError(str(exc)) from None
        for contract in found:
            name = f"ganbench[{target}]::{contract}"
            items.append(ContractItem.from_parent(session, name=name, nodeid=name, contract=contract))
