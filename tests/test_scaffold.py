"""`ganbench new-plugin` writes packages that pass the conformance kit, and the in-repo example is one of them."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import add_distribution
from ganbench.cli import main
from ganbench.plugin.registry import build_registry
from ganbench.plugin.scaffold import KINDS, render
from ganbench.testing import contracts

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "plugins" / "ganbench-example"

pytestmark = pytest.mark.usefixtures("one_thread")


def _install(package: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Put a generated package on sys.path with the dist-info pip would write from its pyproject."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    add_distribution(package, project["name"], project["entry-points"]["ganbench"], project["version"])
    monkeypatch.syspath_prepend(str(package))
    importlib.invalidate_caches()
    return project["name"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_generated_package_passes_the_kit(kind, tmp_path, monkeypatch, capsys):
    assert main(["new-plugin", f"my{kind}", "--kind", kind, "--out", str(tmp_path)]) == 0
    package = Path(capsys.readouterr().out.strip())
    assert (package / ".github" / "workflows" / "ci.yml").is_file()
    config = tomllib.loads((package / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["ganbench_plugins"] == [f"ganbench-my{kind}"]
    assert config["project"]["dependencies"] == ["ganbench>=0.1,<0.2"]
    dist = _install(package, monkeypatch)
    try:
        registry = build_registry()
        assert not registry.broken, registry.broken
        found = contracts(dist, registry)
        assert found and {c.id.split(".")[0] for c in found} == {"family" if kind == "model" else kind}
        for contract in found:
            contract.check()
    finally:
        for name in [m for m in sys.modules if m.startswith(f"ganbench_my{kind}")]:
            del sys.modules[name]


def test_the_example_is_what_the_template_generates():
    generated = render("tinygan", "model", distribution="ganbench-example")
    for path, text in generated.items():
        kept = (EXAMPLE / path).read_text()
        if path == "README.md":  # the example adds a section after the generated text
            assert kept.startswith(text), "README.md no longer starts with the generated README"
        else:
            assert kept == text, f"{path} differs from what `ganbench new-plugin` writes; regenerate the example"


def test_bad_names_and_existing_directories_are_refused(tmp_path, capsys):
    assert main(["new-plugin", "My GAN", "--kind", "model", "--out", str(tmp_path)]) != 0
    assert "'My GAN'" in capsys.readouterr().err
    assert main(["new-plugin", "mygan", "--kind", "model", "--out", str(tmp_path)]) == 0
    assert main(["new-plugin", "mygan", "--kind", "model", "--out", str(tmp_path)]) != 0
    assert "already exists" in capsys.readouterr().err
