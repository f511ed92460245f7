"""Finding, loading and checking plugins.

Plugins come in through one door: the entry-point group ``ganbench``. The
built-in families use it too. Loading is done here rather than with pluggy's
``load_setuptools_entrypoints`` so that a plugin that fails to import (or
returns nonsense) is reported with its entry point, distribution and version,
and is skipped without taking the others down.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
from .specs import SPEC_TYPES, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec, check_name

GROUP = "ganbench"
DISABLE_ENV = "GANBENCH_DISABLE_PLUGINS"
REGISTRATION_HOOKS = {
    "model": "ganbench_models",
    "objective": "ganbench_objectives",
    "dataset": "ganbench_datasets",
    "metric": "ganbench_metrics",
    "executor": "ganbench_executors",
}
EVENT_HOOKS = ("ganbench_run_started", "ganbench_step_logged", "ganbench_evaluation_done", "ganbench_run_finished")


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from."""

    name: str
    value: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"entry point {self.name!r} ({self.value}) from {self.distribution} {self.version}"


@dataclass(frozen=True)
class BrokenPlugin:
    info: PluginInfo
    error: str


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
            if broken.info.name == name:
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
        """Run-event hooks: ``registry.hook.ganbench_step_logged(run=..., record=...)``."""
        return self.pm.hook

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
        expected = SPEC_TYPES[kind]
        if not isinstance(spec, expected):
            raise PluginError(f"{REGISTRATION_HOOKS[kind]} returned {type(spec).__name__}, not {expected.__name__}")
        problem = check_name(spec.name)
        if problem:
            raise PluginError(f"{kind} name {spec.name!r} is not valid: {problem}")
        if not callable(getattr(spec, {"model": "build", "objective": "build", "dataset": "load", "metric": "compute",
                                  "executor": "execute"}[kind])):
            raise PluginError(f"{kind} {spec.name!r} has nothing callable to build or load it")
        table = self.specs[kind]
        if spec.name in table or (kind, spec.name) in self.conflicts:
            owners = self.conflicts.setdefault((kind, spec.name), [table.pop(spec.name).plugin] if spec.name in table else [])
            owners.append(info)
            return
        table[spec.name] = Registered(spec, info)


def _doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def build_registry(
    disabled: Iterable[str] = (),
    entry_points: Iterable[md.EntryPoint] | None = None,
    extra: Iterable[tuple[PluginInfo, Any]] = (),
) -> Registry:
    """Load every plugin and collect what it contributes.

    ``disabled`` (plus ``GANBENCH_DISABLE_PLUGINS``) names entry points to
    skip. ``entry_points`` and ``extra`` let tests inject plugins without
    installing them; ``extra`` pairs an info record with an object to register.
    """
    pm = get_plugin_manager()
    registry = Registry(pm, disabled=set(disabled) | disabled_from_env())
    candidates: list[tuple[PluginInfo, Any]] = []
    for ep in _entry_points() if entry_points is None else entry_points:
        info = _info(ep)
        if info.name in registry.disabled:
            continue
        try:
            candidates.append((info, ep.load()))
        except Exception as exc:  # a broken third-party plugin must not take the others down
            registry.broken.append(BrokenPlugin(info, f"importing {info.value} raised {type(exc).__name__}: {exc}"))
    candidates.extend((info, obj) for info, obj in extra if info.name not in registry.disabled)

    for info, obj in candidates:
        if pm.has_plugin(info.name):
            other = next(p for p in registry.plugins if p.name == info.name)
            registry.broken.append(BrokenPlugin(info, f"the entry-point name {info.name!r} is already used by {other}"))
            continue
        try:
            pm.register(obj, name=info.name)
            pm.check_pending()
        except Exception as exc:
            pm.unregister(name=info.name)
            registry.broken.append(BrokenPlugin(info, f"{type(exc).__name__}: {exc}"))
            continue
        try:
            contributed = _collect(pm, obj)
        except Exception as exc:
            pm.unregister(name=info.name)
            registry.broken.append(BrokenPlugin(info, f"{type(exc).__name__}: {exc}"))
            continue
        for kind, spec in contributed:
            registry._add(kind, spec, info)
        registry.plugins.append(info)
        if any(hasattr(obj, name) for name in EVENT_HOOKS):
            registry.listeners.append(info)

    for broken in registry.broken:
        warnings.warn(f"ganbench: skipped the plugin {broken.info}: {broken.error}", stacklevel=2)
    return registry


def _collect(pm: pluggy.PluginManager, plugin: Any) -> list[tuple[str, Any]]:
    """Call one plugin's registration hooks and check every record before accepting any."""
    found: list[tuple[str, Any]] = []
    probe = Registry(pm)
    for kind, hook_name in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            result = impl.function()
            if result is None:
                continue
            if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
                raise PluginError(f"{hook_name} must return an iterable of specs, got {type(result).__name__}")
            for spec in result:
                probe._add(kind, spec, PluginInfo("", "", "", ""))
                found.append((kind, spec))
    if probe.conflicts:
        names = ", ".join(n for _, n in probe.conflicts)
        raise PluginError(f"the plugin registers the same name twice: {names}")
    return found
