"""Start-up stays cheap: ``ganbench --help`` and ``ganbench plugins`` import no heavy library.

Timing a command on a shared CI machine would be flaky; what makes it slow is
importing torch (seconds), pandas or matplotlib, so that is what is pinned.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "torch_fidelity", "pandas", "matplotlib", "numpy")

PROBE = """
import contextlib, io, json, sys
import ganbench.cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        code = ganbench.cli.main({argv!r})
    except SystemExit as exc:  # argparse exits after printing --help
        code = exc.code
print(json.dumps({{"code": code, "printed": len(out.getvalue()), "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _imports_of(argv: list[str]) -> dict:
    # a fresh interpreter: this test process has long imported torch
    code = PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["plugins"], ["run", "--help"], ["--help"]], ids=" ".join)
def test_command_imports_nothing_heavy(argv):
    result = _imports_of(argv)
    assert result["code"] == 0 and result["printed"] > 0
    assert result["heavy"] == [], f"`ganbench {' '.join(argv)}` imported {result['heavy']}"


def test_plugin_implementations_load_when_first_used():
    """Registering the built-ins imports none of their modules; building a family does."""
    code = """
import sys
from ganbench.plugin.registry import build_registry
registry = build_registry()
before = "ganbench_builtin.dcgan" in sys.modules or "torch" in sys.modules
spec = registry.model("dcgan")
defaults = dict(spec.defaults)
print(before, "ganbench_builtin.dcgan" in sys.modules, defaults["lr"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "0.0002"]
