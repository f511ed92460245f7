"""tinygan: a ganbench model family (the registration only; the networks are in ``ganbench_example.model``)."""

from __future__ import annotations

import ganbench


@ganbench.hookimpl
def ganbench_models() -> list[ganbench.ModelSpec]:
    return [
        ganbench.ModelSpec(
            name="tinygan",
            build=ganbench.lazy("ganbench_example.model:build"),
            description="a two-layer MLP GAN family",
            paper="ganbench-example (template)",
            default_objective="nonsaturating",
            # To take part in --recipe matched, declare the options that size the networks and their values,
            # in growing capacity (docs/plugins.md, "Taking part in --recipe matched"), e.g.
            # options=(ganbench.PluginOption("width", int, None, "hidden units"),),
            # capacity_knobs={"width": tuple(range(8, 1025, 8))},
        )
    ]
