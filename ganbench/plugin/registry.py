"""Finding, loading and checking plugins.

Plugins come in through one door: the entry-point group ``ganbench``. The
built-in families use it too. Loading is done here rather than with pluggy's
``load_setuptools_entrypoints`` so that a plugin that fails to import (or
returns nonsense) is reported with its entry point, distribution and version,
and is skipped without taking the others down.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from ganbench import API_VERSION, __version__
from ganbench.plugin import hookspecs
from ganbench.errors import PluginError, UnknownNameError
from ganbench.plugin.specs import SPEC_TYPES, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec, spec_problems

GROUP = "ganbench"
DISABLE_ENV = "GANBENCH_DISABLE_PLUGINS"
#: Plugin modules to load without installing them (``--plugin-module``), separated by ``os.pathsep``.
MODULES_ENV = "GANBENCH_PLUGIN_MODULES"
#: What stands for the distribution of a plugin loaded with ``--plugin-module``.
FROM_PATH = "(path)"
REGISTRATION_HOOKS = {
    "model": "ganbench_models",
    "objective": "ganbench_objectives",
    "dataset": "ganbench_datasets",
    "metric": "ganbench_metrics",
    "executor": "ganbench_executors",
}
#: The attribute of an entry point's object (a module-level constant) naming the plugin API version it targets.
API_ATTRIBUTE = "GANBENCH_API_VERSION"
#: Plugin API version -> the ganbench releases that load it (see docs/plugins.md, "Versions and deprecation").
API_RELEASES = {1: "ganbench>=0.1,<2"}
EVENT_HOOKS = ("ganbench_run_started", "ganbench_step_logged", "ganbench_evaluation_done", "ganbench_run_finished")


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from."""

    name: str
    value: str
    distribution: str
    version: str

    def __str__(self) -> str:
        if self.distribution == FROM_PATH:
            return f"plugin module {self.name!r} ({self.value}) {FROM_PATH}"
        return f"entry point {self.name!r} ({self.value}) from {self.distribution} {self.version}"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin (or one record of it: ``kind`` and ``name`` then say which) that was refused, and why."""

    info: PluginInfo
    error: str
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class Registered:
    """A spec together with the plugin that contributed it."""

    spec: Any
    plugin: PluginInfo

    @property
    def name(self) -> str:
        return self.spec.name


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh manager that knows ganbench's hooks and no plugins yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _info(ep: md.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None else "unknown"
    version = dist.version if dist is not None else "unknown"
    return PluginInfo(ep.name, ep.value, name, version)


def _entry_points() -> list[md.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in md.entry_points(group=GROUP):
        key = (ep.name, ep.value)
        if key not in seen:  # the same distribution twice on sys.path
            seen.add(key)
            found.append(ep)
    return sorted(found, key=lambda ep: ep.name)


@dataclass
class Registry:
    """Everything the installed plugins contribute, checked and attributed.

    The CLI and the runner only talk to plugins through this façade.
    """

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    specs: dict[str, dict[str, Registered]] = field(default_factory=lambda: {k: {} for k in REGISTRATION_HOOKS})
    conflicts: dict[tuple[str, str], list[PluginInfo]] = field(default_factory=dict)
    listeners: list[PluginInfo] = field(default_factory=list)

    # -- lookups ----------------------------------------------------------

    def get(self, kind: str, name: str) -> Registered:
        """The spec of ``kind`` called ``name``; a clear error when there is none."""
        if (kind, name) in self.conflicts:
            owners = " and ".join(str(p) for p in self.conflicts[(kind, name)])
            raise PluginError(
                f"The {kind} name {name!r} is registered twice: by {owners}. "
                f"Uninstall one of them, or disable one with --no-plugin ENTRY_POINT or {DISABLE_ENV}."
            )
        table = self.specs[kind]
        if name in table:
            return table[name]
        for broken in self.broken:
            if (broken.kind, broken.name) == (kind, name):
                raise PluginError(f"The {kind} {name!r} from {broken.info} was refused: {broken.error}")
            if broken.info.name == name and not broken.kind:
                raise PluginError(f"The plugin providing {name!r} failed to load: {broken.error}")
        hint = ""
        if self.broken:
            hint = "Some plugins failed to load (see `ganbench plugins`)."
        if self.disabled:  # the name may be one a disabled plugin registers
            hint += (f" Disabled by --no-plugin or {DISABLE_ENV}: {', '.join(sorted(self.disabled))}; "
                     f"{name!r} may come from one of them (enable it again to use it).")
        raise UnknownNameError(kind, name, table, hint.strip())

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name).spec

    def objective(self, name: str) -> ObjectiveSpec:
        return self.get("objective", name).spec

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name).spec

    def metric(self, name: str) -> MetricSpec:
        return self.get("metric", name).spec

    def executor(self, name: str) -> ExecutorSpec:
        return self.get("executor", name).spec

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    @property
    def hook(self) -> Any:
        """pluggy's hook caller; the runner uses :meth:`notify` instead, which isolates listeners."""
        return self.pm.hook

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a run-event hook on every listener, isolating each one.

        A listener that raises (anything but KeyboardInterrupt, the interrupt path;
        ``SystemExit`` included) is unregistered for the rest of the invocation with
        a warning naming it and its distribution: a broken tracker never costs a run.
        """
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):  # pluggy's order: last registered first
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - see the docstring
                info = next((p for p in self.plugins if p.name == impl.plugin_name), impl.plugin_name)
                self.pm.unregister(name=impl.plugin_name)
                warnings.warn(f"ganbench: disabled the listener {info} for the rest of this invocation: its "
                              f"{hook_name} raised {type(exc).__name__}: {exc}", stacklevel=2)

    def distributions(self) -> dict[str, str]:
        """Distribution -> version of every loaded plugin, for run records."""
        return {p.distribution: p.version for p in self.plugins}

    def rows(self) -> Iterator[dict[str, str]]:
        """One row per contributed name, for ``ganbench plugins``."""
        for kind, table in self.specs.items():
            for reg in sorted(table.values(), key=lambda r: r.name):
                paper = getattr(reg.spec, "paper", "")
                yield {
                    "name": reg.name,
                    "kind": kind,
                    "distribution": reg.plugin.distribution,
                    "version": reg.plugin.version,
                    "description": reg.spec.description + (f" [{paper}]" if paper else ""),
                }
        for info in self.listeners:
            yield {"name": info.name, "kind": "listener", "distribution": info.distribution,
                   "version": info.version, "description": _doc_line(self.pm.get_plugin(info.name))}

    # -- building ---------------------------------------------------------

    def _add(self, kind: str, spec: Any, info: PluginInfo) -> None:
        """Accept a checked spec; a name two plugins register goes to ``conflicts`` (neither is usable)."""
        table = self.specs[kind]
        if spec.name in table or (kind, spec.name) in self.conflicts:
            owners = self.conflicts.setdefault((kind, spec.name), [table.pop(spec.name).plugin] if spec.name in table else [])
            owners.append(info)
            return
        table[spec.name] = Registered(spec, info)

    def _refuse(self, kind: str, name: str, why: str) -> None:
        """Withdraw an accepted spec whose cross-references do not hold, keeping the reason."""
        registered = self.specs[kind].pop(name)
        self.broken.append(BrokenPlugin(registered.plugin, f"{kind} {name!r}: {why}", kind, name))

    def check_references(self) -> None:
        """Refuse families whose default or listed objectives nothing registers (checked once all plugins loaded)."""
        known = set(self.specs["objective"]) | {n for k, n in self.conflicts if k == "objective"}
        for name, reg in sorted(self.specs["model"].items()):
            spec: ModelSpec = reg.spec
            missing = [o for o in spec.objectives if o not in known]
            if spec.default_objective not in known:
                self._refuse("model", name, f"default_objective={spec.default_objective!r} names no installed "
                             f"objective (installed: {', '.join(sorted(known)) or 'none'})")
            elif missing:
                self._refuse("model", name, f"objectives= lists {', '.join(map(repr, missing))}, which no plugin "
                             f"registers (installed: {', '.join(sorted(known)) or 'none'})")
            elif spec.objectives and spec.default_objective not in spec.objectives:
                self._refuse("model", name, f"default_objective={spec.default_objective!r} is not among its "
                             f"objectives= ({', '.join(spec.objectives)})")


def _doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _load_module(target: str) -> tuple[PluginInfo, Callable[[], Any]]:
    """A plugin named by a ``.py`` file, a package directory or a module name, and how to import it."""
    path = Path(target).expanduser()
    if path.suffix == ".py" or path.is_dir():
        name = path.stem if path.suffix == ".py" else path.name
        info = PluginInfo(name, str(path), FROM_PATH, "")

        def load() -> Any:
            location = path / "__init__.py" if path.is_dir() else path
            if not location.is_file():
                raise FileNotFoundError(f"{location} does not exist")
            spec = importlib.util.spec_from_file_location(name, location)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[name] = module  # its own relative imports, and pickling, find it
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            return module

        return info, load
    return PluginInfo(target.rpartition(".")[2], target, FROM_PATH, ""), lambda: importlib.import_module(target)


def modules_from_env() -> list[str]:
    return [m for m in os.environ.get(MODULES_ENV, "").split(os.pathsep) if m.strip()]


def module_targets(modules: Iterable[str] = ()) -> tuple[str, ...]:
    """The plugin modules an invocation loads, for another process to load too (an executor's workers):
    ``modules`` and then ``GANBENCH_PLUGIN_MODULES``, each once, a file or folder as an absolute path,
    since a worker starts in another directory, or on another machine that shares the filesystem."""
    return tuple(dict.fromkeys(_absolute(target) for target in [*modules, *modules_from_env()]))


def _absolute(target: str) -> str:
    path = Path(target).expanduser()
    return str(path.resolve()) if path.suffix == ".py" or path.is_dir() else target


def build_registry(
    disabled: Iterable[str] = (),
    entry_points: Iterable[md.EntryPoint] | None = None,
    extra: Iterable[tuple[PluginInfo, Any]] = (),
    modules: Iterable[str] = (),
) -> Registry:
    """Load every plugin and collect what it contributes.

    ``disabled`` (plus ``GANBENCH_DISABLE_PLUGINS``) names entry points to
    skip. ``modules`` (plus ``GANBENCH_PLUGIN_MODULES``) are plugins loaded
    from a path or module name without being installed, attributed to
    "(path)". ``entry_points`` and ``extra`` let tests inject plugins without
    installing them; ``extra`` pairs an info record with an object to register.
    """
    pm = get_plugin_manager()
    registry = Registry(pm, disabled=set(disabled) | disabled_from_env())
    candidates: list[tuple[PluginInfo, Any]] = []
    loaders = [(_info(ep), ep.load) for ep in (_entry_points() if entry_points is None else entry_points)]
    targets: dict[str, str] = {}  # each once: a worker may be given its driver's modules and its environment alike
    for target in [*modules, *modules_from_env()]:
        targets.setdefault(_absolute(target), target)
    loaders += [_load_module(target) for target in targets.values()]
    for info, load in loaders:
        if info.name in registry.disabled:
            continue
        try:
            candidates.append((info, load()))
        except Exception as exc:  # a broken third-party plugin must not take the others down
            registry.broken.append(BrokenPlugin(info, f"importing {info.value} raised {type(exc).__name__}: {exc}"))
    candidates.extend((info, obj) for info, obj in extra if info.name not in registry.disabled)

    for info, obj in candidates:
        if pm.has_plugin(info.name):
            other = next(p for p in registry.plugins if p.name == info.name)
            registry.broken.append(BrokenPlugin(info, f"the entry-point name {info.name!r} is already used by {other}"))
            continue
        incompatible = api_problem(obj, info)
        if incompatible:
            registry.broken.append(BrokenPlugin(info, incompatible))
            continue
        try:
            pm.register(obj, name=info.name)
            pm.check_pending()
        except Exception as exc:
            pm.unregister(name=info.name)
            registry.broken.append(BrokenPlugin(info, f"{type(exc).__name__}: {exc}"))
            continue
        contributed, errors = _collect(pm, obj)
        registry.broken.extend(BrokenPlugin(info, error, kind, name) for kind, name, error in errors)
        for kind, spec in contributed:
            registry._add(kind, spec, info)
        registry.plugins.append(info)
        if any(hasattr(obj, name) for name in EVENT_HOOKS):
            registry.listeners.append(info)
    registry.check_references()

    for broken in registry.broken:
        warnings.warn(f"ganbench: skipped {'a record of ' if broken.kind else ''}the plugin at {broken.info}: "
                      f"{broken.error}", stacklevel=2)
    return registry


def api_problem(plugin: Any, info: PluginInfo) -> str | None:
    """Why ``plugin`` cannot load into this ganbench (the API version it targets), or None when it can.

    A plugin that declares no version is taken to target API version 1, with a
    warning: from API version 2 on, the declaration is required.
    """
    declared = getattr(plugin, API_ATTRIBUTE, None)
    if declared is None:
        warnings.warn(f"ganbench: the plugin {info} declares no {API_ATTRIBUTE}; assuming 1. Add "
                      f"`{API_ATTRIBUTE} = {API_VERSION}` to {info.value.partition(':')[0]} "
                      "(it will be required from plugin API version 2).", FutureWarning, stacklevel=3)
        return None
    if isinstance(declared, bool) or not isinstance(declared, int):
        return f"{API_ATTRIBUTE} must be an int such as {API_VERSION}, not {declared!r}"
    if declared in API_RELEASES:
        return None
    supported = ", ".join(f"API {v} ({r})" for v, r in sorted(API_RELEASES.items()))
    wanted = API_RELEASES.get(declared, "a newer ganbench" if declared > API_VERSION else "an older ganbench")
    return (f"{info.distribution} {info.version} targets plugin API version {declared}, which ganbench {__version__} "
            f"does not load (it loads {supported}); it needs {wanted}. Install a matching release of either.")


def _collect(pm: pluggy.PluginManager, plugin: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, str, str]]]:
    """Call one plugin's registration hooks and check each record on its own.

    Returns the records that pass and one (kind, name, message) per problem, so a plugin with
    one bad record keeps its good ones and its author sees every mistake at once.
    """
    found: list[tuple[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    names: set[tuple[str, str]] = set()
    for kind, hook_name in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                result = impl.function()
                if result is None:
                    continue
                if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
                    raise PluginError(f"must return an iterable of specs, got {type(result).__name__}")
                records = list(result)
            except Exception as exc:  # noqa: BLE001 - one failing hook must not hide the plugin's other records
                errors.append(("", "", f"{hook_name} raised {type(exc).__name__}: {exc}"))
                continue
            for spec in records:
                problems = spec_problems(kind, spec)
                if not problems and (kind, spec.name) in names:
                    problems = [f"{kind} {spec.name!r} is registered twice by this plugin"]
                if problems:
                    name = getattr(spec, "name", "") if isinstance(spec, SPEC_TYPES[kind]) else ""
                    errors.extend((kind if name else "", name, f"{hook_name}: {p}") for p in problems)
                    continue
                names.add((kind, spec.name))
                found.append((kind, spec))
    return found, errors
