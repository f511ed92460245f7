"""A recipe value together with the source it comes from, and the Markdown table docs render from them.

A comparison between GAN families is only as fair as the settings each one trains with, so every setting a
plugin uses is data with a citation rather than a bare constant: the docs render the data (never a hand-kept
copy), and tests pin each value against the source it names. Nothing here knows about any model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cited:
    """A setting's value, its source, and -- where the value is not the source's -- the source's own value and why.

    ``source`` names the paper and section or table (and the REFERENCES entry), e.g.
    ``"Radford et al. 2015 §4; REFERENCES §2.4"``. ``paper`` is None when ``value`` *is* the source's value;
    otherwise it holds the source's value and ``note`` says why ganbench departs from it or how it
    extrapolates (a resolution the paper never trained at).
    """

    value: Any
    source: str
    paper: Any = None
    note: str = ""

    @property
    def departs(self) -> bool:
        return self.paper is not None


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} px: {_show(v)}" for k, v in value.items())
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_table(title: str, rows: Mapping[str, Cited]) -> str:
    """One recipe as a Markdown section: setting, value, source, and the paper's value where it differs."""
    lines = [f"### {title}", "", "| setting | ganbench | source | paper's value, where different: why |",
             "|---|---|---|---|"]
    for name, cited in rows.items():
        differs = f"{_show(cited.paper)}: {cited.note}" if cited.departs else cited.note
        lines.append(f"| {name} | {_show(cited.value)} | {cited.source} | {differs} |")
    return "\n".join(lines) + "\n"
