"""``ganbench/__init__.py`` is the public API: everything a plugin needs, and all that plugins may import.

Plugins written against internals break whenever the core is reorganised; the
built-in plugins, the example package and the ``new-plugin`` templates are the
proof that the public names suffice, so they are held to the same rule as a
third-party package.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ganbench

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "ganbench" / "templates").rglob("*.py.tmpl")])
#: a "module:attribute" string naming something inside ganbench (lazy specs, entry points)
LAZY_TARGET = re.compile(r"^ganbench(\.[\w.]+)?:\w+$")


def internal_references(source: str) -> list[str]:
    """Every import of a ganbench submodule, public name missing from ganbench, or lazy target inside the core."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("ganbench.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("ganbench."):
                found.append(node.module)
            elif node.module == "ganbench":
                found += [f"ganbench.{a.name}" for a in node.names if a.name not in ganbench.__all__]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ganbench":
            if node.attr not in ganbench.__all__:
                found.append(f"ganbench.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LAZY_TARGET.match(node.value):
            module, _, attribute = node.value.partition(":")
            if module != "ganbench" or attribute not in ganbench.__all__:
                found.append(node.value)
    return found


def test_the_sources_checked_include_every_kind_of_plugin():
    names = {p.name for p in PLUGIN_SOURCES}
    assert {"dcgan.py", "wgan.py", "ray_executor.py", "lenet.py", "tracking.py", "toys.py", "catalogue.py"} <= names
    assert any(p.suffix == ".tmpl" for p in PLUGIN_SOURCES)
    assert any("ganbench-example" in str(p) for p in PLUGIN_SOURCES)


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_api(path):
    source = path.read_text().replace("$name", "example").replace("$", "")
    assert internal_references(source) == [], f"{path.relative_to(ROOT)} reaches past ganbench's public API"


def test_the_check_catches_internal_imports():
    """The rule above would pass vacuously if the checker saw nothing; it sees each form of reaching inside."""
    source = ("import ganbench.training.loop\nfrom ganbench.plugin.data import to_float\n"
              "from ganbench import Draw, not_public\nx = ganbench.internal_thing\n"
              "lazy('ganbench.execution.runner:run_locally')\nlazy('ganbench:run_locally')\n")
    assert internal_references(source) == ["ganbench.training.loop", "ganbench.plugin.data", "ganbench.not_public",
                                           "ganbench.internal_thing", "ganbench.execution.runner:run_locally"]


def test_every_public_name_resolves():
    for name in ganbench.__all__:
        assert getattr(ganbench, name) is not None, name


def test_importing_ganbench_imports_nothing_heavy():
    """Every plugin imports ganbench; `ganbench --help` and `ganbench plugins` must not pay for torch."""
    code = ("import sys, ganbench; ganbench.hookimpl; ganbench.ModelSpec; ganbench.lazy; "
            "print(sorted(m for m in ('torch', 'torchvision', 'torch_fidelity', 'pandas', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_type_checking_imports_name_exactly_the_lazy_exports():
    """Type checkers read the ``if TYPE_CHECKING:`` imports, the runtime reads ``_EXPORTS``: they must agree, name
    for name and source for source, or an editor would offer a name that fails at run time (or hide one that works)."""
    tree = ast.parse(Path(ganbench.__file__).read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    typed: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganbench."), ast.dump(node)
        module = node.module.removeprefix("ganbench.")
        for alias in node.names:
            public = alias.asname or alias.name
            typed[public] = module if public == alias.name else f"{module}:{alias.name}"
    assert len(typed) > 50
    assert typed == ganbench._EXPORTS
