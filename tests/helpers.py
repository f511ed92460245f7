"""Helpers shared by test modules (which never import one another): install a package, make records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def install(package: Path, target: Path) -> None:
    """Install ``package`` (a directory with a pyproject) into ``target`` as pip would, without its dependencies."""
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--no-build-isolation",
               "--target", str(target), str(package)]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target),
               str(package)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("neither uv nor pip is available to install a plugin package")
    assert result.returncode == 0, result.stderr


def run_with(target: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a process that sees the packages installed in ``target``."""
    env = {**os.environ, "PYTHONPATH": str(target) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


def add_distribution(root: Path, dist: str, entry_points: dict[str, str], version: str = "0.1.0") -> None:
    """Write the dist-info pip would, so that modules under ``root`` (put on sys.path) are a real distribution."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganbench]\n{lines}")
