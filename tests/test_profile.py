"""``ganbench profile``: img/s, the step split into phases, host syncs and copies, peak memory, settings."""

from __future__ import annotations

import json

import pytest
import torch

from ganbench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
ARGS = ["profile", "--plugins", "vanilla,dcgan:hinge", "--dataset", "digits", "--resolution", "8",
        "--batch-size", "8", "--steps", "3", "--device", "cpu"]


def test_profile_json_splits_each_step_and_counts_syncs(capsys):
    backward, grad = torch.autograd.backward, torch.autograd.grad
    assert main([*ARGS, "--json"]) == 0
    profiles = {p["family"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(profiles) == {"vanilla", "dcgan"} and profiles["dcgan"]["objective"] == "hinge"
    for p in profiles.values():
        ms = p["ms"]
        assert p["img_per_s"] > 0 and p["steps"] == 3 and p["batch_size"] == 8
        assert all(ms[phase] > 0 for phase in ("data", "forward", "backward", "optimiser"))
        assert sum(ms[phase] for phase in ("data", "forward", "backward", "optimiser")) == pytest.approx(ms["total"])
        assert p["host_syncs_per_step"] >= 0 and p["h2d_copies_per_step"] == 0  # all on the CPU: nothing to copy
        assert p["peak_memory_mb"] > 0 and p["memory"]
        assert p["settings"]["batch_size"] == 8 and p["settings"]["device"] == "cpu"
        assert p["settings"]["precision"] == "fp32" and p["settings"]["data_on_device"] is True
    assert (torch.autograd.backward, torch.autograd.grad) == (backward, grad)  # the timing hooks are gone


def test_profile_table_names_what_was_measured_and_the_settings(capsys):
    assert main(ARGS[:2] + ["dcgan"] + ARGS[3:] + ["--precision", "bf16", "--channels-last", "--reuse-fakes"]) == 0
    out = capsys.readouterr().out
    assert "precision=bf16" in out and "channels_last=True" in out and "reuse_fakes=True" in out
    assert out.splitlines()[0].split()[:4] == ["family", "objective", "img/s", "ms/step"]
    assert "dcgan" in out and "syncs/step" in out and "peak MB" in out and "settings: batch_size=8" in out


def test_profile_refuses_an_unknown_family_clearly(capsys):
    assert main([*ARGS[:2], "dcgann", *ARGS[3:]]) == 2
    assert "dcgan" in capsys.readouterr().err  # did you mean


LAZY_BROKEN = """
import ganbench

@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("ghostgan", ganbench.lazy("ghost_nets_missing:build"), "nets never shipped", "nobody",
                               "nonsaturating")]
"""


def test_a_family_that_fails_costs_only_its_own_profile(capsys, fake_dist):
    """A family whose implementation cannot be imported is named with its target; the others are profiled."""
    fake_dist("ganbench-ghost", {"ghostgan": "ghost_mod"}, {"ghost_mod": LAZY_BROKEN})
    assert main([*ARGS[:2], "ghostgan,vanilla", *ARGS[3:], "--json"]) == 1
    captured = capsys.readouterr()
    assert [p["family"] for p in json.loads(captured.out)] == ["vanilla"]
    assert "could not profile ghostgan:nonsaturating" in captured.err
    assert "'ghost_nets_missing:build' could not be loaded" in captured.err


OPTIONED = """
import ganbench
from ganbench_builtin import vanilla

GANBENCH_API_VERSION = 1
BUILT = []


def build(ctx):
    BUILT.append(dict(ctx.settings.options))
    return vanilla.build(ctx)


@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("optgan", build, "vanilla, with an option", "nobody", "nonsaturating",
                               options=(ganbench.PluginOption("depth", int, 2, "how deep"),
                                        ganbench.PluginOption("tag", str, "plain", "a label")))]
"""


def test_profile_takes_plugin_options_as_run_does(capsys, fake_dist):
    import importlib

    fake_dist("ganbench-optgan", {"optgan": "optgan_mod"}, {"optgan_mod": OPTIONED})
    assert main([*ARGS[:2], "optgan,dcgan:wgan-gp", *ARGS[3:], "--option", "optgan.depth=5",
                 "--option", "wgan-gp.penalty=2.5", "--json"]) == 0
    profiles = {p["family"]: p for p in json.loads(capsys.readouterr().out)}
    assert importlib.import_module("optgan_mod").BUILT == [{"depth": 5, "tag": "plain"}]  # typed, defaults filled in
    assert profiles["optgan"]["settings"]["optgan.depth"] == 5
    assert profiles["dcgan"]["settings"]["wgan-gp.penalty"] == 2.5
    assert main([*ARGS, "--option", "dcgan.widht=8"]) == 2  # a misspelt key, refused as by run
    assert "has no option 'widht'" in capsys.readouterr().err
    assert main([*ARGS, "--option", "dcgan-width"]) == 2
    assert "must read NAME.KEY=VALUE" in capsys.readouterr().err
