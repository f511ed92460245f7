"""``ganbench new-plugin``: a new plugin package from the templates in ``ganbench/templates``.

Every kind gets the same frame (``common/``: a pyproject with the entry point,
a version pin and the conformance kit turned on, a README, a CI workflow
running the kit) and its own code (``<kind>/``). The in-repo example package,
``plugins/ganbench-example``, is generated from these templates, and a test
keeps it that way.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from ganbench import __version__
from ganbench.errors import UsageError
from ganbench.plugin.specs import check_name

KINDS = {
    "model": ("ganbench_models", "model", "a two-layer MLP GAN family"),
    "objective": ("ganbench_objectives", "objective", "least squares with -1/1 targets"),
    "dataset": ("ganbench_datasets", "dataset", "discs of four radii drawn on 16x16 greyscale images"),
    "metric": ("ganbench_metrics", "metric", "the distance between the generated and the real mean image"),
    "listener": ("ganbench_run_started", "", "every run event written to a JSON-lines file"),
    "executor": ("ganbench_executors", "executor", "one run after another in this process, each announced"),
}
#: Where each template file goes in the new package ($package: the import name).
_COMMON = {"pyproject.toml.tmpl": "pyproject.toml", "README.md.tmpl": "README.md",
           "ci.yml.tmpl": ".github/workflows/ci.yml"}


def _layout(kind: str, package: str, impl: str) -> str:
    if not impl:
        return (f"- `{package}/__init__.py` is the plugin: its hooks are called with every run's events, so it\n"
                "  imports nothing heavy;")
    return (f"- `{package}/__init__.py` registers the plugin and imports nothing heavy, so that\n"
            "  `ganbench plugins` and `ganbench --help` stay fast;\n"
            f"- `{package}/{impl}.py` holds the {kind}, imported when a run first uses it;")


def _pins() -> tuple[str, str]:
    """This ganbench's minor release and the next: the range a new plugin is written against."""
    major, minor = (int(x) for x in re.findall(r"\d+", __version__)[:2])
    return f"{major}.{minor}", f"{major}.{minor + 1}"


def render(name: str, kind: str, distribution: str | None = None) -> dict[str, str]:
    """The new package's files, path -> text, without writing anything."""
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    problem = check_name(name) or (None if name.isidentifier() else "the name must also be a Python identifier")
    if problem:
        raise UsageError(f"Plugin name {name!r} is not valid: {problem}.")
    dist = distribution or f"ganbench-{name}"
    package = re.sub(r"[^a-z0-9_]", "_", dist.lower())
    hook, impl, summary = KINDS[kind]
    lower, upper = _pins()
    command = f"ganbench new-plugin {name} --kind {kind}" + (f" --distribution {dist}" if distribution else "")
    values = {"name": name, "kind": kind, "dist": dist, "package": package, "hook": hook, "summary": summary,
              "lower": lower, "upper": upper, "command": command, "layout": _layout(kind, package, impl)}
    root = resources.files("ganbench") / "templates"
    files = {target: (root / "common" / source).read_text(encoding="utf-8") for source, target in _COMMON.items()}
    for source in (root / kind).iterdir():
        if source.name.endswith(".tmpl"):
            files[f"{package}/{source.name.removesuffix('.tmpl')}"] = source.read_text(encoding="utf-8")
    return {path: Template(text).substitute(values) for path, text in sorted(files.items())}


def new_plugin(name: str, kind: str, out: Path, distribution: str | None = None) -> Path:
    """Write a new plugin package under ``out``; refuse to overwrite an existing directory."""
    files = render(name, kind, distribution)
    target = Path(out) / (distribution or f"ganbench-{name}")
    if target.exists():
        raise UsageError(f"{target} already exists; choose another --out or remove it first.")
    for path, text in files.items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text, encoding="utf-8")
    return target
