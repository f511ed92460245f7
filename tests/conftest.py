"""Shared fixtures: tiny data, fresh registries, and fake installed distributions."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

from ganbench.data import ImageDataset
from ganbench.plugins import build_registry



@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Extractors and reference statistics go to a per-session cache, never the user's."""

    path = tmp_path_factory.mktemp("ganbench-cache")
    old = os.environ.get("GANBENCH_CACHE_DIR")
    os.environ["GANBENCH_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GANBENCH_CACHE_DIR", None)
    else:
        os.environ["GANBENCH_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread, for torch and for BLAS, while a module of tiny CPU models runs.

    On two shared cores a second thread mostly fights other processes, and these
    small kernels gain nothing from it. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def scoring_env(monkeypatch, tmp_path):
    """No cache or Inception weights from the environment, and a torch home of the test's own."""
    monkeypatch.delenv("GANBENCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("GANBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    """The bundled digits as a run loads them (16x16), once per module."""
    from ganbench.runner import Invocation, load_dataset

    return load_dataset(build_registry(), Invocation(dataset="digits"))


@pytest.fixture
def registry():
    """A registry built from what is installed, fresh for each test."""
    return build_registry()


@pytest.fixture
def tiny_dataset() -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 16, 16), generator=g, dtype=torch.uint8)
    labels = torch.arange(40) % 4
    return ImageDataset("tiny", images, labels, num_classes=4)


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """Install a fake distribution (dist-info + modules) on sys.path, as pip would.

    Usage: ``fake_dist("ganbench-foo", {"foo": "foo_mod"}, {"foo_mod": "source"})``.
    """
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    added: list[str] = []

    def install(dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        for name, source in modules.items():
            (root / f"{name}.py").write_text(textwrap.dedent(source))
            added.append(name)
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[ganbench]\n{lines}\n")
        importlib.invalidate_caches()
        return root

    yield install
    for name in added:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, _private_cache):
    """A real, tiny, finished results directory: vanilla on digits for 20 steps, scored at 50 % and 100 %.

    Shared by the tests that read results back (notebook tables, trackers, re-scoring), so the
    session trains it once.
    """
    from ganbench.cli import main

    results = tmp_path_factory.mktemp("finished")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            code = main(["run", "--plugins", "vanilla", "--budget", "20steps", "--log-every", "5",
                         "--metrics", "isc,fid", "--eval-samples", "200", "--eval-at", "0.5", "--results", str(results)])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    return results
