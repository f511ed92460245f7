"""Which families and metrics can use which kind of data (images or vectors), checked before training.

A convolutional family handed 2-D points, or FID handed them, would fail
minutes later inside a layer with a shape error; a 2-D mode count handed
images would return a meaningless number. Every family and metric therefore
declares the kinds it accepts (``ModelSpec.data_kinds``,
``MetricSpec.data_kinds``) and each dataset the kind it holds
(``DatasetSpec.data_kind``): :func:`refuse_mismatches` turns a mismatch into
one paragraph naming the plugin, its distribution and the reason, before any
data are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable

from ganbench.errors import UsageError
from ganbench.plugin.registry import Registry
from ganbench.plugin.specs import IMAGE

WHY = {
    ("model", IMAGE): "its networks are built for images (convolutions over channels and pixels)",
    ("metric", IMAGE): "it scores images (a feature extractor reads pixels)",
    ("model", "vector"): "its networks are built for vectors",
    ("metric", "vector"): "it compares vectors with a known true distribution, which images do not have",
}


def refuse_mismatches(registry: Registry, dataset: str, families: Iterable[str], metrics: Iterable[str],
                      kind: str | None = None) -> None:
    """Raise :class:`UsageError` for the first family or metric that cannot use ``dataset``'s kind of data.

    ``kind`` is the data kind when already known (a loaded dataset); by default the dataset spec's.
    """
    spec = registry.dataset(dataset)
    kind = kind or spec.data_kind
    for what, names in (("model", families), ("metric", metrics)):
        for name in names:
            accepts = registry.get(what, name).spec.data_kinds
            if kind in accepts:
                continue
            owner = registry.get(what, name).plugin
            fitting = sorted(n for n in registry.names(what) if kind in registry.get(what, n).spec.data_kinds)
            label = "family" if what == "model" else "metric"
            reason = WHY.get((what, accepts[0]) if accepts else (what, IMAGE), "it declares no kind of data")
            raise UsageError(
                f"The {label} {name!r} (from {owner}) cannot use the dataset {spec.name!r}, which holds {kind} data: "
                f"{reason}; it accepts {', '.join(accepts) or 'nothing'}. "
                f"{label.capitalize()}s that accept {kind} data: {', '.join(fitting) or '(none installed)'}."
            )
