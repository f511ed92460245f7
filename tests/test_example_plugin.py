"""A separately packaged plugin, really installed, joins `ganbench plugins` and `ganbench run`."""

import json
import subprocess
from pathlib import Path

from helpers import install, run_with

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "plugins" / "ganbench-example"


def _ganbench(args, target: Path) -> subprocess.CompletedProcess:
    return run_with(target, ["-m", "ganbench.cli", *args])


def test_installed_plugin_is_listed_and_trains(tmp_path):
    target = tmp_path / "site"
    install(EXAMPLE, target)
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


def test_the_example_passes_the_conformance_kit_as_its_ci_runs_it(tmp_path):
    target = tmp_path / "site"
    install(EXAMPLE, target)
    result = run_with(target, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--ganbench-plugin", "ganbench-example"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
