"""Benchmark suites: a TOML file that states a whole ``ganbench run``.

A suite names the plugins, dataset, budget, seeds and metrics once, so a
benchmark is a file under version control rather than a command line that
someone remembers. ``ganbench run benchmarks/digits.toml`` runs it; every key
of the file is a *default* of ``ganbench run``, so an option given on the
command line still wins (``ganbench run benchmarks/digits.toml --seeds 1``).

Example (every key but ``name`` is optional; missing ones keep the CLI defaults)::

    name = "digits"
    description = "CPU smoke benchmark"
    plugins = ["vanilla", "dcgan", "dcgan:hinge"]
    dataset = "digits"
    budget = "1500steps"
    seeds = 3
    metrics = ["isc", "fid"]
    rank_by = "fid"

    [eval]
    samples = 2000
    at = [0.5]

    [options.dcgan]        # per-plugin options, as --option dcgan.width=32
    width = 32
    [tune]              # read by `ganbench tune SUITE` only
    trials = 8
    confirm_seeds = 3

Unknown keys are refused with the list of valid ones, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.errors import UsageError

#: Top-level key -> (argparse destination of ``ganbench run``, expected type, description).
TOP_KEYS: dict[str, tuple[str | None, str, str]] = {
    "name": (None, "str", "the suite's name (baselines and default results folder use it)"),
    "description": (None, "str", "free text"),
    "plugins": ("plugins", "names", "families, each optionally family:objective"),
    "dataset": ("dataset", "str", "dataset name with optional argument, e.g. mnist, imagefolder:PATH"),
    "budget": ("budget", "str", "identical budget per run: 90s, 30m, 50kimg, 2000steps"),
    "seed": ("seed", "int", "first seed"),
    "seeds": ("seeds", "posint", "number of seeds"),
    "results": ("results", "str", "results directory (default: results/suites/<name>)"),
    "device": ("device", "str", "auto, cpu, cuda or cuda:N"),
    "batch_size": ("batch_size", "posint", "mini-batch size"),
    "resolution": ("resolution", "posint", "square resolution the dataset is resized to"),
    "n_critic": ("n_critic", "posint", "discriminator steps per generator step"),
    "latent": ("latent", "str", "gaussian, uniform or sphere"),
    "lr": ("lr", "float", "learning rate for every optimiser"),
    "recipe": ("recipe", "str", "paper (each family's published settings) or matched (capacity held at one target; docs/recipes.md)"),
    "lr_g": ("lr_g", "float", "generator learning rate (overrides every recipe)"),
    "lr_d": ("lr_d", "float", "discriminator learning rate (overrides every recipe)"),
    "betas": ("betas", "str", "Adam betas for every optimiser, as '0,0.9'"),
    "lr_schedule": ("lr_schedule", "str", "constant, or linear decay to 0"),
    "ema": ("ema", "float", "half-life in kimg of an EMA of G, which grids and scores then come from"),
    "spectral_norm": ("spectral_norm", "bool", "spectral normalisation of every D weight"),
    "joint_batches": ("joint_batches", "bool", "real and fake through D in one batch"),
    "log_every": ("log_every", "posint", "log losses every N steps"),
    "precision": ("precision", "str", "fp32, bf16 or fp16 (autocast)"),
    "compile": ("compile", "bool", "torch.compile every network"),
    "channels_last": ("channels_last", "bool", "channels-last memory format"),
    "reuse_fakes": ("reuse_fakes", "bool", "the G step reuses the D step's fake batch"),
    "pack": ("pack", "packs", "the discriminator sees M samples at once (PacGAN); a list runs each: [1, 2]"),
    "data_on_device": ("data_on_device", "str", "auto, yes or no: keep the dataset on the device"),
    "metrics": ("metrics", "names", "metrics computed at the end (and at eval.at)"),
    "rank_by": ("rank_by", "str", "score or column the leaderboard is ranked by"),
    "log_to": ("log_to", "names", "experiment trackers every run is also logged to: tensorboard, mlflow, wandb"),
    "deterministic": ("deterministic", "bool", "deterministic torch algorithms"),
    "checkpoint_every": ("checkpoint_every", "posint", "checkpoint every N steps"),
    "no_download": ("no_download", "bool", "never download datasets"),
    "executor": ("executor", "str", "where runs train: local or ray"),
    "gpus_per_run": ("gpus_per_run", "float", "ray: GPUs per run (fractions allowed)"),
    "cpus_per_run": ("cpus_per_run", "float", "ray: CPUs per run"),
    "ray_address": ("ray_address", "str", "ray: address of a running cluster"),
    "max_retries": ("max_retries", "int", "ray: retries of a run whose worker or node died"),
}
#: Keys of the ``[eval]`` table.
EVAL_KEYS: dict[str, tuple[str, str, str]] = {
    "extractor": ("extractor", "str", "feature extractor for the metrics"),
    "samples": ("eval_samples", "posint", "generated samples per final evaluation"),
    "samples_intermediate": ("eval_samples_intermediate", "posint", "samples per intermediate evaluation"),
    "at": ("eval_at", "fractions", "budget fractions of intermediate evaluations"),
    "inception_weights": ("inception_weights", "str", "local Inception-v3 weights file"),
    "select_best": ("select_best", "str", "metric that picks a 'best' checkpoint on held-out samples"),
}

#: Keys of the ``[tune]`` table: defaults of ``ganbench tune SUITE`` (ignored by ``ganbench run``).
TUNE_KEYS: dict[str, tuple[str, str, str]] = {
    "trials": ("trials", "posint", "configurations drawn per family from its search space"),
    "confirm_seeds": ("confirm_seeds", "int", "fresh seeds each family's best configuration is re-run on"),
    "rank_at": ("rank_at", "posint", "number of trials k at which families are ranked"),
    "metric": ("tune_metric", "str", "the metric whose final score picks the best trial"),
}
#: Tables a suite may hold, and their keys.
TABLES: dict[str, dict[str, tuple[str, str, str]]] = {"eval": EVAL_KEYS, "tune": TUNE_KEYS}


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite file."""

    name: str
    path: Path
    description: str = ""
    #: argparse destinations of ``ganbench run`` -> values as the command line would give them.
    defaults: dict[str, Any] = field(default_factory=dict)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; every problem is a :class:`UsageError` naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"The suite file {path} does not exist. Suites shipped with ganbench are in benchmarks/*.toml.") from None
    except OSError as exc:
        raise UsageError(f"Cannot read the suite file {path}: {exc.strerror or exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"The suite file {path} is not valid TOML: {exc}.") from None
    return parse_suite(data, path)


def parse_suite(data: dict[str, Any], path: Path = Path("<suite>")) -> Suite:
    """Validate the TOML table of a suite into CLI defaults."""
    where = f"the suite file {path}"
    tables_text = ", ".join(f"a [{t}] table with {', '.join(sorted(keys))}" for t, keys in TABLES.items())
    unknown = sorted(set(data) - set(TOP_KEYS) - set(TABLES) - {"options"})
    if unknown:
        raise UsageError(
            f"Unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {where}. "
            f"Valid keys: {', '.join(sorted(TOP_KEYS))}, {tables_text}, and [options.NAME] tables of per-plugin "
            "options."
        )
    for table, keys in TABLES.items():
        if not isinstance(data.get(table, {}), dict):
            raise UsageError(f"In {where}, {table!r} must be a table ([{table}]) with keys {', '.join(sorted(keys))}.")
        unknown = sorted(set(data.get(table, {})) - set(keys))
        if unknown:
            raise UsageError(
                f"Unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in the [{table}] "
                f"table of {where}. Valid keys: {', '.join(sorted(keys))}."
            )
    if "name" not in data:
        raise UsageError(f"{where[0].upper()}{where[1:]} needs a name, e.g. name = \"{path.stem}\".")
    name = _check("name", data["name"], "str", where)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise UsageError(f"In {where}, name {name!r} must be a non-empty plain name (it names folders and baselines).")
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        dest, kind, _ = TOP_KEYS.get(key, (None, "", ""))
        if dest is not None:
            defaults[dest] = _to_cli(key, _check(key, value, kind, where), kind)
    for table, keys in TABLES.items():
        for key, value in data.get(table, {}).items():
            dest, kind, _ = keys[key]
            defaults[dest] = _to_cli(f"{table}.{key}", _check(f"{table}.{key}", value, kind, where), kind)
    defaults["option"] = _option_args(data.get("options", {}), where)
    defaults.setdefault("results", str(Path("results") / "suites" / name))
    if "budget" in defaults:
        from ganbench.training.budget import Budget

        Budget.parse(defaults["budget"])  # a bad budget is reported now, naming the unit rules
    defaults["suite_name"] = name
    return Suite(name=name, path=path, description=str(data.get("description", "")), defaults=defaults)


def _option_args(table: Any, where: str) -> list[str]:
    """``[options.NAME]`` tables as ``--option NAME.KEY=VALUE`` arguments (checked against the plugin when planned)."""
    shape = "an [options.NAME] table per family or objective, e.g. [options.dcgan] with width = 32"
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise UsageError(f"In {where}, 'options' must be {shape}.")
    args = []
    for name, values in table.items():
        for key, value in values.items():
            if isinstance(value, (dict, list)):
                raise UsageError(f"In {where}, options.{name}.{key} must be a number, string or true/false.")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args.append(f"{name}.{key}={text}")
    return args


_TYPE_WORDS = {
    "str": "a string", "int": "a whole number", "posint": "a whole number of at least 1", "float": "a number",
    "bool": "true or false", "names": "a list of strings (or one comma-separated string)",
    "fractions": "a list of numbers in (0, 1]",
    "packs": "a whole number of at least 1, or a list of them",
}


def _check(key: str, value: Any, kind: str, where: str) -> Any:
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "posint": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "names": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
        "fractions": isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value),
        "packs": all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                     for v in (value if isinstance(value, list) and value else [value])),
    }[kind]
    if not ok:
        raise UsageError(f"In {where}, {key} must be {_TYPE_WORDS[kind]}; got {value!r}.")
    return value


def _to_cli(key: str, value: Any, kind: str) -> Any:
    """The value as ``ganbench run``'s parser would hold it."""
    if kind == "names":
        return value if isinstance(value, str) else ",".join(value)
    if kind == "fractions":
        return ",".join(f"{v:g}" for v in value)
    if kind == "packs":
        return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if kind == "float":
        return float(value)
    return value


def describe_keys() -> str:
    """The valid keys, one a line, for documentation and error messages."""
    lines = [f"{k:<17} {TOP_KEYS[k][2]}" for k in TOP_KEYS]
    lines += [f"[{t}].{k:<10} {keys[k][2]}" for t, keys in TABLES.items() for k in keys]
    return "\n".join(lines)
