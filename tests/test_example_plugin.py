"""A separately packaged plugin, really installed, joins `ganbench plugins` and `ganbench run`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "plugins" / "ganbench-example"


def _install(target: Path) -> None:
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--no-build-isolation",
               "--target", str(target), str(EXAMPLE)]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("neither uv nor pip is available to install the example plugin")
    assert result.returncode == 0, result.stderr


def _ganbench(args, target: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "ganbench.cli", *args], capture_output=True, text=True, env=env)


def test_installed_plugin_is_listed_and_trains(tmp_path):
    target = tmp_path / "site"
    _install(target)
    assert list(target.glob("ganbench_example-0.1.0.dist-info"))

    listing = _ganbench(["plugins"], target)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("tinygan"))
    assert row.split()[1:4] == ["model", "ganbench-example", "0.1.0"]

    results = tmp_path / "results"
    run = _ganbench(["run", "--device", "cpu", "--metrics=", "--plugins", "tinygan,vanilla", "--budget", "6steps", "--results", str(results)], target)
    assert run.returncode == 0, run.stderr
    assert "tinygan" in run.stdout
    (run_dir,) = results.glob("runs/tinygan-*")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["steps"] == 6
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["plugins"]["ganbench-example"] == "0.1.0"
