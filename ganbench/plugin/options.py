"""Per-plugin options: ``--option NAME.KEY=VALUE`` and a suite's ``[options.NAME]`` tables.

A family or an objective declares the options it accepts (``options=`` on its
spec, a tuple of :class:`ganbench.PluginOption`), so a misspelt key is refused
before any run trains, with the list of what the plugin accepts. The values
the user gives are recorded in the run config (``options``, by plugin name), so
they are part of the run's identity; a family reads its own, with the declared
defaults filled in, from ``BuildContext.settings.options``, and an objective
receives its own as keyword arguments of its ``build``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ganbench.errors import UsageError

#: Types an option may declare, and how a command-line string becomes one.
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_option_args(texts: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["dcgan.width=32", "wgan.clip=0.02"]`` -> ``{"dcgan": {"width": "32"}, "wgan": {"clip": "0.02"}}``."""
    options: dict[str, dict[str, str]] = {}
    for text in texts:
        target, sep, value = text.partition("=")
        name, dot, key = target.strip().partition(".")
        if not (sep and dot and name and key):
            raise UsageError(f"--option {text!r} must read NAME.KEY=VALUE, e.g. --option dcgan.width=32 "
                             "(NAME is the family or objective the option is for).")
        options.setdefault(name, {})[key.strip()] = value.strip()
    return options


def _convert(plugin: str, option: Any, value: Any) -> Any:
    kind = option.type
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        try:
            return _BOOLS[text] if kind is bool else kind(value)
        except (KeyError, ValueError):
            pass
    elif isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise UsageError(f"The option {plugin}.{option.name} takes {kind.__name__} ({option.help}); got {value!r}.")


def resolve(given: Mapping[str, Mapping[str, Any]], specs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The given options of ``specs`` (a run's family and objective), checked and typed.

    Only what the user gave is returned (declared defaults are not recorded, so
    adding an option to a plugin does not change the ids of its existing runs).
    """
    resolved: dict[str, dict[str, Any]] = {}
    for spec in specs:
        values = given.get(spec.name, {})
        declared = {o.name: o for o in getattr(spec, "options", ())}
        unknown = sorted(set(values) - set(declared))
        if unknown:
            accepted = "; ".join(f"{o.name} ({o.type.__name__}, default {o.default!r}): {o.help}"
                                 for o in declared.values()) or "none"
            raise UsageError(f"The {spec.kind} {spec.name!r} has no option {', '.join(map(repr, unknown))}. "
                             f"Options it accepts: {accepted}.")
        if values:
            resolved[spec.name] = {key: _convert(spec.name, declared[key], v) for key, v in sorted(values.items())}
    return resolved


def check_targets(given: Mapping[str, Any], names: Iterable[str]) -> None:
    """Every option names a family or objective the invocation runs."""
    names = sorted(set(names))
    stray = sorted(set(given) - set(names))
    if stray:
        raise UsageError(f"--option names {', '.join(map(repr, stray))}, which this invocation does not run; "
                         f"options are for the families and objectives it runs: {', '.join(names)}.")


def with_defaults(spec: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """What a plugin receives: every declared option, at its default unless the user gave it.

    An option whose default is None is left out unless given: the plugin decides (BEGAN's
    values depend on the resolution, for one), and it must not receive a None it never chose.
    """
    declared = {o.name: o.default for o in getattr(spec, "options", ()) if o.default is not None}
    return {**declared, **given}
