"""The complete example of each kind in docs/plugins.md is a working plugin that passes the conformance kit."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from helpers import add_distribution
from ganbench.plugin.registry import build_registry
from ganbench.testing import contracts

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
KINDS = {"Model family": "linear", "Objective": "softplus", "Dataset": "halves", "Metric": "brightness",
         "Listener": "notify", "Executor": "backwards"}

pytestmark = pytest.mark.usefixtures("one_thread")


def _examples() -> dict[str, str]:
    section = DOC.read_text().split("## One complete example per kind")[1].split("\n## ")[0]
    return dict(re.findall(r"\*\*(.+?)\*\*\n\n```python\n(.*?)```", section, re.S))


def test_every_kind_has_an_example():
    assert set(_examples()) == set(KINDS)


@pytest.mark.parametrize("title", sorted(KINDS))
def test_the_example_passes_the_kit(title, tmp_path, monkeypatch):
    name = KINDS[title]
    module = f"docs_example_{name}"
    (tmp_path / f"{module}.py").write_text(_examples()[title])
    add_distribution(tmp_path, f"ganbench-{name}", {name: module})
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        registry = build_registry()
        assert not registry.broken, registry.broken
        for contract in contracts(f"ganbench-{name}", registry):
            contract.check()
    finally:
        sys.modules.pop(module, None)
