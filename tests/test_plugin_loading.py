"""What is checked when plugins load: the API version they target, each record on its own, cross-references,
and name conflicts (``ganbench plugins`` fails on any of them)."""

import pytest

import ganbench
from ganbench.cli import main
from ganbench.errors import PluginError
from ganbench.plugin.registry import build_registry

HEADER = """
import ganbench
from ganbench import ModelSpec, ObjectiveSpec, lazy
GANBENCH_API_VERSION = {api}
"""

FUTURE = HEADER.format(api=99) + """
@ganbench.hookimpl
def ganbench_models():
    return [ModelSpec("futuregan", lazy("x.y:build"), "from the future", "nobody", "hinge")]
"""


def test_api_version_is_public():
    assert ganbench.API_VERSION == 1 and "API_VERSION" in ganbench.__all__


def test_plugin_for_a_newer_api_is_skipped_naming_it_its_distribution_and_the_versions(fake_dist):
    fake_dist("ganbench-future", {"future": "future_mod"}, {"future_mod": FUTURE}, version="3.1")
    with pytest.warns(UserWarning, match="future"):
        registry = build_registry()
    (broken,) = [b for b in registry.broken if b.info.name == "future"]
    assert "ganbench-future 3.1" in broken.error and "API version 99" in broken.error
    assert "API 1 (ganbench>=0.1,<2)" in broken.error and "newer ganbench" in broken.error
    assert "futuregan" not in registry.names("model")
    assert "dcgan" in registry.names("model")


def test_undeclared_api_version_loads_with_a_warning(fake_dist):
    fake_dist("ganbench-old", {"old": "old_mod"}, {"old_mod": """
import ganbench
from ganbench import ObjectiveSpec, lazy

@ganbench.hookimpl
def ganbench_objectives():
    return [ObjectiveSpec("oldloss", lazy("x.y:Loss"), "an old plugin", "nobody")]
"""})
    with pytest.warns(FutureWarning, match="declares no GANBENCH_API_VERSION; assuming 1"):
        registry = build_registry()
    assert "oldloss" in registry.names("objective")


MANY_MISTAKES = HEADER.format(api=1) + """
@ganbench.hookimpl
def ganbench_models():
    return [
        ModelSpec("typo-default", lazy("x.y:build"), "d", "p", default_objective="hinj"),
        ModelSpec("odd-provides", lazy("x.y:build"), "d", "p", "hinge", provides="probability"),
        ModelSpec("ghost-listed", lazy("x.y:build"), "d", "p", "hinge", objectives=("hinge", "ghost")),
        ModelSpec("goodgan", lazy("x.y:build"), "d", "p", "hinge"),
    ]

@ganbench.hookimpl
def ganbench_objectives():
    return [ObjectiveSpec("oddloss", lazy("x.y:Loss"), "d", "p", needs="energy"),
            ObjectiveSpec("BadName", lazy("x.y:Loss"), "d", "p")]
"""


def test_every_bad_record_of_an_entry_point_is_reported_and_the_good_ones_load(fake_dist):
    fake_dist("ganbench-sloppy", {"sloppy": "sloppy_mod"}, {"sloppy_mod": MANY_MISTAKES}, version="0.2")
    with pytest.warns(UserWarning):
        registry = build_registry()
    errors = [b for b in registry.broken if b.info.name == "sloppy"]
    text = "\n".join(b.error for b in errors)
    assert len(errors) == 5, text
    assert all(b.info.distribution == "ganbench-sloppy" for b in errors)
    assert "default_objective='hinj' names no installed objective" in text
    assert "provides='probability' is not one of" in text
    assert "needs='energy' is not one of" in text
    assert "objectives= lists 'ghost'" in text
    assert "'BadName': the name is not valid" in text
    assert "goodgan" in registry.names("model")
    with pytest.raises(PluginError, match=r"model 'typo-default' from .*ganbench-sloppy 0.2 was refused.*hinj"):
        registry.model("typo-default")


IMPOSTOR = HEADER.format(api=1) + """
@ganbench.hookimpl
def ganbench_models():
    return [ModelSpec("dcgan", lazy("x.y:build"), "an impostor", "nobody", "nonsaturating")]
"""


def test_plugins_command_names_both_providers_of_a_clash_and_fails(fake_dist, capsys):
    fake_dist("ganbench-impostor", {"impostor": "impostor_mod"}, {"impostor_mod": IMPOSTOR}, version="0.3")
    assert main(["plugins"]) != 0
    out = capsys.readouterr().out
    assert "CONFLICT: the model name 'dcgan'" in out
    assert "from ganbench 0.1.0" in out and "from ganbench-impostor 0.3" in out
    # the documented way out: disable one of them, and both the listing and the exit status recover
    assert main(["--no-plugin", "impostor", "plugins"]) == 0
    assert "CONFLICT" not in capsys.readouterr().out


def test_plugins_command_exits_zero_when_all_is_well(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "BROKEN" not in out and "CONFLICT" not in out
