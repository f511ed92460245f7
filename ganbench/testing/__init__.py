"""The conformance kit: the contracts every ganbench plugin must keep, runnable in the author's own CI.

A plugin package runs the whole suite for itself in one line, either on the
command line (the kit is a pytest plugin, registered through the ``pytest11``
entry point, and does nothing until asked)::

    pytest --ganbench-plugin ganbench-mygan

or once and for all in its ``pyproject.toml``::

    [tool.pytest.ini_options]
    ganbench_plugins = ["ganbench-mygan"]

A name is a distribution (``ganbench-mygan``), an entry point or a spec name.
Every family, objective, dataset, metric, listener and executor it contributes
becomes one test per contract, and a violation fails with the contract's id
(``contract family.generate.range: mygan@3x32: ...``): the ids, and what each
checks, are listed in docs/plugins.md. The failure is a
:class:`ganbench.ContractError` (the error a run fails with when the same
contract breaks, worded the same) and an ``AssertionError`` (a pytest failure).

From Python (ganbench's own tests run the kit over the built-ins this way)::

    @pytest.mark.parametrize("contract", contracts("ganbench-mygan"), ids=str)
    def test_contract(contract):
        contract.check()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contract import Contract, ContractError

__all__ = ["Contract", "ContractError", "contracts"]


def contracts(target: str, registry: Any = None, options: Mapping[str, Mapping[str, Any]] | None = None) -> list[Contract]:
    """Every contract check for what ``target`` contributes, one :class:`Contract` per check.

    ``target`` names a distribution, an entry point or one spec. ``registry``
    defaults to everything installed; ``options`` maps a family's name to the
    ``TrainSettings.options`` it is built with (``{"mygan": {"width": 8}}``), to
    keep big networks small in tests.
    """
    from ganbench.plugin.registry import build_registry
    from ganbench.testing.selection import select

    registry = registry if registry is not None else build_registry()
    return select(registry, target, dict(options or {}))
