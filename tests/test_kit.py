"""The conformance kit fails a really installed, deliberately broken plugin package, naming each violation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import install, run_with

BROKEN = Path(__file__).parent / "data" / "ganbench-broken"
#: What ganbench_broken breaks on purpose (see its docstring), and contracts it keeps.
VIOLATED = ["family.generate.range[brokengan@1x16]", "family.generate.range[brokengan@3x64]",
            "family.discriminator.output[brokengan@1x16]", "family.train_step.logs[brokengan@1x28]",
            "family.train_step.no_host_sync[brokengan@1x16]", "family.resume[brokengan@1x16]",
            "objective.build[brokenloss]", "dataset.labels[brokenset]", "metric.names[brokenscore]"]
KEPT = ["family.generate.shape[brokengan@3x32]", "family.checkpoint.round_trip[brokengan@1x16]",
        "family.init.cpu[brokengan@1x16]", "dataset.images[brokenset]", "metric.numbers[brokenscore]"]


@pytest.fixture(scope="module")
def kit_output(tmp_path_factory) -> str:
    """``pytest --ganbench-plugin ganbench-broken`` in a project of its own, the package installed as pip would."""
    root = tmp_path_factory.mktemp("broken")
    install(BROKEN, root / "site")
    result = run_with(root / "site", ["-m", "pytest", "-p", "no:cacheprovider", "-vv", "-rfEs",
                                      "--ganbench-plugin", "ganbench-broken"], cwd=root)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_each_violation_fails_with_its_contract_named(kit_output):
    failed = set(re.findall(r"^FAILED ganbench\[ganbench-broken\]::(\S+)", kit_output, re.M))
    assert set(VIOLATED) <= failed, kit_output[-4000:]
    assert not set(KEPT) & failed
    for contract in VIOLATED:
        cid, subject = contract[:-1].split("[")
        assert re.search(rf"^FAILED .*::{re.escape(contract)} - contract {re.escape(cid)}: {re.escape(subject)}: ",
                         kit_output, re.M), contract


def test_messages_say_what_is_wrong(kit_output):
    assert "images must lie in [-1, 1]" in kit_output and "values from -" in kit_output
    assert "shaped (4, 3)" in kit_output
    assert "return detached 0-dim tensors" in kit_output
    assert "_local_scalar_dense" in kit_output
    assert "n_critic must be a whole number of at least 1, got 0" in kit_output
    assert "labels run from 0 to 7; with num_classes=4" in kit_output
    assert "'brokenscore' does not follow" in kit_output


def test_the_kit_is_inert_unless_asked(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    result = run_with(tmp_path, ["-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout


def test_an_unknown_name_is_a_usage_error_listing_what_is_installed(tmp_path):
    result = run_with(tmp_path, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--ganbench-plugin", "nosuch"],
                      cwd=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "nothing installed is called 'nosuch'" in result.stderr and "ganbench" in result.stderr
    assert "Traceback" not in result.stderr
