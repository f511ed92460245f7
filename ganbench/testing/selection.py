"""Which contracts apply to what a distribution, an entry point or one spec contributes."""

from __future__ import annotations

from typing import Any

from ganbench.errors import UsageError
from ganbench.plugin.registry import PluginInfo, Registry
from .contract import Contract
from .datasets import dataset_contracts
from .events import executor_contracts, listener_contracts
from .families import FamilyProbe, shape_contracts
from .families_state import state_contracts
from .harness import SHAPES
from .metrics import metric_contracts
from .objectives import objective_contracts


def _matches(info: PluginInfo, target: str) -> bool:
    return target in (info.distribution, info.name)


def select(registry: Registry, target: str, options: dict[str, Any]) -> list[Contract]:
    """Every contract of every record ``target`` names (see :func:`ganbench.testing.contracts`)."""
    found: list[Contract] = []
    for kind, table in registry.specs.items():
        for reg in sorted(table.values(), key=lambda r: r.name):
            if _matches(reg.plugin, target) or reg.name == target:
                found += _for_spec(registry, kind, reg.spec, options.get(reg.name, {}))
    for info in registry.listeners:
        if _matches(info, target):
            found += listener_contracts(registry, info)
    if not found:
        broken = [str(b.info) + ": " + b.error for b in registry.broken if _matches(b.info, target)]
        if broken:
            raise UsageError(f"ganbench.testing: the plugin {target!r} failed to load: {'; '.join(broken)}")
        dists = sorted({p.distribution for p in registry.plugins})
        raise UsageError(f"ganbench.testing: nothing installed is called {target!r} (a distribution, an entry point or "
                         f"a plugin name). Installed distributions: {', '.join(dists)}.")
    return found


def _for_spec(registry: Registry, kind: str, spec: Any, options: dict[str, Any]) -> list[Contract]:
    if kind == "model":
        probe = FamilyProbe(registry, spec, options)
        return [c for shape in SHAPES for c in shape_contracts(probe, shape)] + state_contracts(probe)
    if kind == "objective":
        return objective_contracts(spec)
    if kind == "dataset":
        return dataset_contracts(spec)
    if kind == "metric":
        return metric_contracts(spec, registry)
    return executor_contracts(registry, spec)
