"""Plugin discovery: entry points only, attributed, checked, and fault-tolerant."""

import inspect
import re
from pathlib import Path

import pytest

from ganbench.plugin import hookspecs
from ganbench.cli import main
from ganbench.errors import PluginError, UnknownNameError
from ganbench.plugin.registry import build_registry

CORE = Path(__file__).resolve().parents[1] / "ganbench"


def test_builtins_arrive_through_the_entry_point_group(registry):
    assert {"vanilla", "dcgan"} <= set(registry.names("model"))
    assert {"minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp"} <= set(registry.names("objective"))
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "imagefolder"} <= set(registry.names("dataset"))
    assert registry.get("model", "dcgan").plugin.distribution == "ganbench"
    assert "progress" in {p.name for p in registry.listeners}


def test_core_never_imports_a_plugin_module():
    for path in CORE.rglob("*.py"):
        assert "ganbench_builtin" not in path.read_text(), f"{path.name} names a plugin module"


def test_every_hook_is_documented_with_when_and_what():
    names = [n for n in dir(hookspecs) if n.startswith("ganbench_")]
    assert len(names) == 9
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and "called" in doc.lower() and "return" in doc.lower(), name


def test_unknown_name_lists_known_names_and_the_closest(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.model("dcgen")
    message = str(info.value)
    assert "Did you mean 'dcgan'?" in message
    assert "vanilla" in message and "dcgan" in message


def test_cli_unknown_plugin_exits_nonzero(capsys, tmp_path):
    code = main(["run", "--device", "cpu", "--plugins", "dcgen", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert "Unknown model 'dcgen'" in err and "Did you mean 'dcgan'" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


BROKEN = """
raise RuntimeError("this plugin is broken on purpose")
"""


def test_broken_plugin_is_named_and_others_survive(fake_dist, capsys):
    fake_dist("ganbench-broken", {"brokengan": "broken_mod"}, {"broken_mod": BROKEN}, version="9.9")
    with pytest.warns(UserWarning, match="brokengan"):
        registry = build_registry()
    (broken,) = [b for b in registry.broken if b.info.name == "brokengan"]
    assert broken.info.distribution == "ganbench-broken" and broken.info.version == "9.9"
    assert "broken on purpose" in broken.error
    assert "dcgan" in registry.names("model")  # the others still work
    with pytest.raises(PluginError, match="failed to load.*broken on purpose"):
        registry.model("brokengan")


def test_plugins_command_reports_broken_plugins(fake_dist, capsys):
    fake_dist("ganbench-broken", {"brokengan": "broken_mod"}, {"broken_mod": BROKEN}, version="9.9")
    assert main(["plugins"]) != 0  # CI relies on it
    out = capsys.readouterr().out
    assert re.search(r"BROKEN: entry point 'brokengan' \(broken_mod\) from ganbench-broken 9.9", out)
    assert "dcgan" in out


MALFORMED = """
import ganbench

@ganbench.hookimpl
def ganbench_models():
    return ["not a spec"]
"""


def test_malformed_spec_is_rejected_with_the_plugin_named(fake_dist):
    fake_dist("ganbench-malformed", {"malformed": "malformed_mod"}, {"malformed_mod": MALFORMED})
    with pytest.warns(UserWarning):
        registry = build_registry()
    (broken,) = [b for b in registry.broken if b.info.name == "malformed"]
    assert broken.info.distribution == "ganbench-malformed"
    assert "a model record is str, not ModelSpec" in broken.error


DUPLICATE = """
import ganbench
from ganbench_builtin.vanilla import build

@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("dcgan", build, "an impostor", "nobody", "nonsaturating")]
"""


def test_duplicate_name_names_both_distributions(fake_dist):
    fake_dist("ganbench-impostor", {"impostor": "impostor_mod"}, {"impostor_mod": DUPLICATE}, version="0.3")
    registry = build_registry()
    with pytest.raises(PluginError) as info:
        registry.model("dcgan")
    assert "ganbench-impostor 0.3" in str(info.value) and "from ganbench 0.1.0" in str(info.value)
    assert "vanilla" in registry.names("model")


def test_misspelled_hook_is_caught(fake_dist):
    fake_dist("ganbench-typo", {"typo": "typo_mod"}, {"typo_mod": """
import ganbench

@ganbench.hookimpl
def ganbench_modles():
    return []
"""})
    with pytest.warns(UserWarning):
        registry = build_registry()
    (broken,) = [b for b in registry.broken if b.info.name == "typo"]
    assert "ganbench_modles" in broken.error


def test_plugins_can_be_disabled(monkeypatch):
    assert "vanilla" not in build_registry(disabled=["vanilla"]).names("model")
    monkeypatch.setenv("GANBENCH_DISABLE_PLUGINS", "dcgan, progress")
    registry = build_registry()
    assert "dcgan" not in registry.names("model")
    assert "progress" not in {info.name for info in registry.listeners}
    assert {"tensorboard", "mlflow", "wandb"} <= {info.name for info in registry.listeners}


def test_no_plugin_on_the_command_line_disables_for_every_command(capsys, tmp_path):
    """``--no-plugin NAME`` (repeatable) is the command-line twin of GANBENCH_DISABLE_PLUGINS."""
    assert main(["--no-plugin", "dcgan", "--no-plugin", "progress", "plugins"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert "vanilla" in listed and not {"dcgan", "progress"} & listed
    assert main(["--no-plugin", "dcgan", "run", "--device", "cpu", "--plugins", "dcgan", "--metrics=",
                 "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'dcgan'" in err and "Disabled by --no-plugin" in err and "dcgan" in err.split("Disabled")[1]
    assert not (tmp_path / "runs").exists()


def test_plugins_command_lists_name_kind_distribution_version(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert lines["dcgan"][1:4] == ["model", "ganbench", "0.1.0"]
    assert lines["hinge"][1] == "objective"
    assert lines["digits"][1] == "dataset"
    assert lines["progress"][1] == "listener"


def test_executors_arrive_as_plugins_and_ray_without_ray_says_how_to_install(registry, tmp_path, monkeypatch, capsys):
    import sys

    assert {"local", "ray"} <= set(registry.names("executor"))
    assert registry.get("executor", "ray").plugin.distribution == "ganbench"
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the ganbench[ray] extra is not installed
    code = main(["run", "--device", "cpu", "--executor", "ray", "--metrics=", "--budget", "2steps", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'ganbench[ray]'" in err and "Traceback" not in err
    code = main(["run", "--device", "cpu", "--executor", "slurm", "--metrics=", "--budget", "2steps", "--results", str(tmp_path)])
    assert code == 2 and "Unknown executor 'slurm'" in capsys.readouterr().err


def test_an_install_without_any_entry_point_says_to_reinstall():
    """A stale install (entry points renamed by an update, `uv run --no-sync`) registers nothing at all."""
    message = str(UnknownNameError("dataset", "digits", []))
    assert "Known datasets" not in message and "(none)" not in message
    assert "not even the built-in ones" in message and "`uv sync`" in message
    assert "Known datasets: digits, mnist." in str(UnknownNameError("dataset", "cifar", ["mnist", "digits"]))
