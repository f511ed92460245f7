"""Shared fixtures: tiny data, fresh registries, and fake installed distributions."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from threadpoolctl import threadpool_limits

from ganbench.plugin.data import ImageDataset
from ganbench.plugin.registry import build_registry
from helpers import once_per_session



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--as-if-cuda", action="store_true",
        help="make torch.cuda.is_available() answer True, as on a GPU host: a test that trains or scores "
             "without --device cpu then fails here (this torch has no CUDA) instead of only on a GPU host",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker takes its share of the cores for torch (and its subprocesses).

    Torch starts one intra-op thread per core in every process: two workers on two cores would run
    four threads that fight over two cores, and the tests' subprocesses more again.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // int(workers))
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@pytest.fixture(autouse=True, scope="session")
def _as_if_cuda(request: pytest.FixtureRequest):
    """With ``--as-if-cuda``, ganbench sees a host where ``--device auto`` means CUDA.

    Tests that mean the CPU must say so (``--device cpu``); this is how to check that on a CPU-only
    machine, since here CUDA itself is absent and any tensor sent to it raises. Only ganbench's own
    modules are told CUDA is present: torch asks too (its optimisers do), and must keep the truth.
    Session-scoped so that the session fixtures which train runs see it too; subprocesses do not.
    """
    if not request.config.getoption("--as-if-cuda"):
        yield False
        return
    truth = torch.cuda.is_available

    def is_available() -> bool:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return caller.split(".")[0] in ("ganbench", "ganbench_builtin") or truth()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", is_available)
        yield True


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Extractors and reference statistics go to a per-session cache, never the user's.

    Shared by the xdist workers of a session (see :func:`once_per_session`): its writes are atomic
    (ganbench's and torch-fidelity's), so workers that fill it at once at worst repeat work.
    """

    path = once_per_session(tmp_path_factory, "ganbench-cache", lambda _: None)
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
    from ganbench.execution.runner import Invocation, load_dataset

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
def finished_run(tmp_path_factory, digits_extractor) -> Path:
    """A real, tiny, finished results directory: vanilla on digits for 20 steps, scored at 50 % and 100 %.

    Shared by the tests that read results back (notebook tables, trackers, re-scoring), so the
    session trains it once (once for all xdist workers too). Read-only: copy it to write.
    """
    return once_per_session(tmp_path_factory, "finished", lambda results: _run_one_thread(
        ["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "20steps", "--log-every", "5",
         "--metrics", "isc,fid", "--eval-samples", "200", "--eval-at", "0.5", "--results", str(results)]))


def _run_one_thread(argv: list[str]) -> None:
    """``ganbench ARGV`` in this process with one intra-op thread, as the session fixtures train; it must succeed."""
    from ganbench.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            code = main(argv)
    finally:
        torch.set_num_threads(before)
    assert code == 0, argv


def _tensors_in(obj):
    """Every tensor inside nested dicts, lists and tuples (a checkpoint's layout), depth first."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors_in(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors_in(value)


@pytest.fixture
def tensors_in():
    """``tensors_in(state)``: the tensors of a checkpoint-like object, to check where they live."""
    return lambda obj: list(_tensors_in(obj))

@pytest.fixture(scope="session")
def written_runs(tmp_path_factory, digits_extractor) -> Path:
    """Results the real runner wrote: dcgan, began and progressive, two seeds each, scored at 50 % and 100 %.

    The plots and report tests read these (or copies they damage) rather than directories made by hand,
    so a change in what the runner writes reaches them. Read-only: copy it (``results_copy``) to write.
    """
    return once_per_session(tmp_path_factory, "written", lambda results: _run_one_thread(
        ["--no-plugin", "progress", "run", "--device", "cpu", "--plugins", "dcgan,began,progressive",
         "--seeds", "2", "--budget", "8steps", "--batch-size", "16", "--log-every", "2",
         "--metrics", "isc,fid", "--eval-samples", "100", "--eval-at", "0.5", "--results", str(results)]))


@pytest.fixture
def results_copy(written_runs, tmp_path) -> Path:
    """A private copy of :func:`written_runs` without the figures and report the run drew, for a test to write into."""
    import shutil

    copy = shutil.copytree(written_runs, tmp_path / "results")
    for figures in [copy / "plots", *copy.glob("runs/*/plots")]:
        shutil.rmtree(figures, ignore_errors=True)
    (copy / "report.html").unlink(missing_ok=True)
    return copy


@pytest.fixture(scope="session")
def digits_extractor(_private_cache) -> str:
    """The digits domain extractor, trained once into the session's cache; its name.

    Subprocess runs (test_resume.py) inherit the cache through GANBENCH_CACHE_DIR, so they find it
    there instead of each training it, however the session's tests are ordered or selected. xdist
    workers share that cache: the lock lets one train it while the others wait, then load it.
    """
    from ganbench_builtin.extractors import lenet

    from ganbench.execution.runner import Invocation, load_dataset

    with FileLock(str(_private_cache / "digits-extractor.lock")):
        name, _ = lenet.prepare(load_dataset(build_registry(), Invocation(dataset="digits")), _private_cache)
    return name
