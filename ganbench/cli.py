"""The ``ganbench`` command: run, tune, plugins, leaderboard, report, score, profile, check.

Errors meant for the user (:class:`GanbenchError`) print as one paragraph
and exit with status 2; ``--debug`` adds the traceback. ``run`` exits with 1
when any run did not complete, so CI notices a diverged or failed run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from platformdirs import user_cache_dir

from ganbench import __version__
from ganbench.execution import signals
from ganbench.training.budget import Budget
from ganbench.errors import GanbenchError, UsageError
from ganbench.execution.executors import ExecutorOptions
from ganbench.execution.suite import load_suite
from ganbench.study.cli import add_tune_parser, cmd_tune

if TYPE_CHECKING:  # torch and pandas are imported by the commands that use them, so --help and plugins stay fast
    from ganbench.results.records import RunRecord
    from ganbench.execution.runner import Invocation

DEFAULT_PLUGINS = "vanilla,dcgan"
DEFAULT_DATASET = "digits"
DEFAULT_BUDGET = "40s"
DEFAULT_RESULTS = "results"
DEFAULT_METRICS = "isc,fid"
#: Intermediate evaluations, so every run has quality-over-budget curves; '' turns them off.
DEFAULT_EVAL_AT = "0.25,0.5,0.75"
DEFAULT_CACHE_DIR = Path(user_cache_dir("ganbench"))
DEFAULT_DATA_DIR = os.environ.get("GANBENCH_DATA_DIR") or str(Path(user_cache_dir("ganbench")) / "data")

EXIT_OK, EXIT_RUNS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _packs(text: str) -> tuple[int, ...]:
    """``--pack``: one M or a comma-separated list of them, each at least 1."""
    try:
        values = tuple(dict.fromkeys(int(p) for p in _names(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers such as 2 or 1,2; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every pack size must be at least 1, got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _fractions(text: str) -> tuple[float, ...]:
    out = []
    for part in _names(text):
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"--eval-at takes fractions of the budget such as 0.25,0.5; {part!r} is not a number.") from None
        if not 0 < value <= 1:
            raise UsageError(f"--eval-at fractions must lie in (0, 1]; got {value}.")
        out.append(value)
    return tuple(sorted(set(out) | {1.0}))


def _add_speed_options(parser: argparse.ArgumentParser) -> None:
    """The recorded speed settings, shared by ``run`` and ``profile`` (docs/performance.md)."""
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                     help="autocast precision of training steps (fp16 adds a gradient scaler); recorded, part of the run")
    parser.add_argument("--compile", action="store_true", help="torch.compile every network; recorded, part of the run")
    parser.add_argument("--channels-last", action="store_true",
                     help="channels-last memory format for every network; recorded, part of the run")
    parser.add_argument("--reuse-fakes", action="store_true",
                     help="the G step reuses the D step's fake batch (reference DCGAN loop) instead of a fresh z; "
                     "recorded, part of the run")
    parser.add_argument("--data-on-device", choices=("auto", "yes", "no"), default="auto",
                     help="keep the dataset on the training device (auto: when it takes <= 25%% of free GPU memory)")


def _add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """``--option NAME.KEY=VALUE``, shared by ``run`` and ``profile`` (parsed by ganbench.plugin.options)."""
    parser.add_argument("--option", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="an option of one family or objective, e.g. dcgan.width=32 or wgan.clip=0.02 "
                        "(repeatable); a misspelt key is refused with the options the plugin accepts")


def build_parser(suite_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The parser; ``suite_defaults`` (from a suite file) become the defaults of ``run``."""
    parser = argparse.ArgumentParser(
        prog="ganbench",
        description="Train GAN families under an identical budget, score them and rank them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--no-plugin", action="append", default=[], metavar="NAME",
                        help="skip the plugin with this entry-point name (repeatable); "
                        "GANBENCH_DISABLE_PLUGINS=a,b does the same")
    parser.add_argument("--plugin-module", action="append", default=[], metavar="PATH_OR_MODULE",
                        help="load a plugin from a .py file, a package directory or an importable module without "
                        "installing it, for development (repeatable); GANBENCH_PLUGIN_MODULES does the same "
                        "(separated by the path separator)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train plugins under one budget and print the leaderboard",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("suite", nargs="?", default=None,
                     help="optional suite file (benchmarks/*.toml) whose keys become the defaults of every "
                     "option below; options given on the command line still win")
    run.add_argument("--plugins", default=DEFAULT_PLUGINS,
                     help="comma-separated families, each optionally with an objective: dcgan,dcgan:hinge")
    run.add_argument("--dataset", default=DEFAULT_DATASET,
                     help="dataset name, optionally with an argument: digits, mnist, mnist:test, cifar10, celeba, imagefolder:PATH")
    run.add_argument("--budget", default=DEFAULT_BUDGET,
                     help="identical budget per run: wall-clock (90s, 30m, 2h), real images (50kimg) or steps (2000steps)")
    run.add_argument("--seed", type=int, default=0, help="first seed")
    run.add_argument("--seeds", type=_positive_int, default=1, help="number of seeds per plugin (seed, seed+1, ...)")
    run.add_argument("--results", default=DEFAULT_RESULTS, help="results directory (runs go under DIR/runs)")
    run.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where datasets are looked for and downloaded")
    run.add_argument("--no-download", action="store_true", help="never download; fail if the data are not on disk")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    run.add_argument("--batch-size", type=_positive_int, default=None,
                     help="mini-batch size for every run (default: each family's recipe, 64 unless it names one; "
                     "BEGAN's is 16)")
    run.add_argument("--resolution", type=_positive_int, default=None,
                     help="resize the dataset to this square resolution (default: the dataset's own)")
    run.add_argument("--n-critic", type=_positive_int, default=None,
                     help="discriminator steps per generator step (default: the objective's)")
    run.add_argument("--latent", choices=("gaussian", "uniform", "sphere"), default=None,
                     help="latent distribution (default: the family's)")
    run.add_argument("--lr", type=float, default=None, help="learning rate for every optimiser (default: the family's)")
    recipe = run.add_argument_group("recipe and training options, applied to every family alike and recorded in "
                                    "each run's config, identity and leaderboard row (see docs/recipes.md)")
    recipe.add_argument("--recipe", choices=("paper", "matched"), default="paper",
                        help="paper: each family's published settings at the resolutions it published, with every "
                        "departure and extrapolation documented in docs/recipes.md; matched: the same, with each "
                        "family's architecture sized so that G and D hold one target's parameters and FLOPs per "
                        "image within 10%% (families that cannot are refused)")
    recipe.add_argument("--lr-g", type=float, default=None, help="generator learning rate (overrides every recipe)")
    recipe.add_argument("--lr-d", type=float, default=None,
                        help="discriminator learning rate (overrides every recipe; with --lr-g: TTUR)")
    recipe.add_argument("--betas", type=_betas, default=None, metavar="B1,B2",
                        help="Adam betas for every optimiser, e.g. 0,0.9 (overrides every recipe)")
    recipe.add_argument("--lr-schedule", choices=("constant", "linear"), default="constant",
                        help="learning-rate schedule over the budget: constant, or linear decay to 0 (WGAN-GP's)")
    recipe.add_argument("--ema", type=float, default=None, metavar="HALF_LIFE_KIMG",
                        help="sample and score from an exponential moving average of G whose half-life is this many "
                        "thousand images (StyleGAN's ema_kimg; ProGAN's 0.999 at batch 16 is about 11)")
    recipe.add_argument("--spectral-norm", action="store_true",
                        help="spectral normalisation of every D weight (Miyato et al. 2018; pair with dcgan:hinge)")
    run.add_argument("--pack", type=_packs, default="1",
                     help="the discriminator sees M samples at once, concatenated (PacGAN, Lin et al. 2018); "
                     "recorded, a leaderboard row of its own; 1,2 runs every family both ways")
    run.add_argument("--joint-batches", action="store_true",
                     help="pass real and fake through the discriminator in one batch (default: separately)")
    run.add_argument("--log-every", type=_positive_int, default=10,
                     help="log losses every N steps (losses are read from the device once per N steps)")
    _add_speed_options(run)
    _add_plugin_options(run)
    run.add_argument("--metrics", default=None,
                     help="comma-separated metrics computed at the end (and at --eval-at fractions); '' for none "
                     f"(default: the dataset's own, such as modes,hq,rkl for ring; else {DEFAULT_METRICS})")
    run.add_argument("--extractor", default=None,
                     help="feature extractor for the metrics (default: the dataset's domain extractor when it has one, "
                     "else inception-v3-compat)")
    run.add_argument("--eval-samples", type=_positive_int, default=None,
                     help="generated samples per final evaluation (default: the metric's literature default)")
    run.add_argument("--eval-samples-intermediate", type=_positive_int, default=None,
                     help="generated samples per intermediate evaluation (default: same as --eval-samples)")
    run.add_argument("--eval-batch-size", type=_positive_int, default=None,
                     help="images per feature-extraction batch (default: 128 on the CPU, 512 on a GPU)")
    run.add_argument("--eval-at", default=DEFAULT_EVAL_AT,
                     help="comma-separated budget fractions for intermediate evaluations, e.g. 0.25,0.5,0.75")
    run.add_argument("--select-best", default=None, metavar="METRIC",
                     help="also keep a 'best' checkpoint, chosen by METRIC (one of --metrics) on held-out samples at "
                     "each evaluation and reported with scores from the regular samples; rankings stay on final scores")
    run.add_argument("--inception-weights", default=os.environ.get("GANBENCH_INCEPTION_WEIGHTS"),
                     help="local file with the Inception-v3 weights (env GANBENCH_INCEPTION_WEIGHTS)")
    run.add_argument("--rank-by", default=None, help="column, score key or metric (fid) to sort the leaderboard by")
    run.add_argument("--log-to", default="", metavar="TRACKERS",
                     help="also log every run to these experiment trackers: tensorboard, mlflow, wandb (comma-separated; "
                     "each needs its extra, e.g. pip install 'ganbench[tensorboard]')")
    run.add_argument("--resume", action="store_true",
                     help="continue unfinished runs from their checkpoints and skip finished ones "
                     "(what re-running a command does anyway; the flag states it)")
    run.add_argument("--fresh", action="store_true",
                     help="retrain every run from scratch, ignoring finished runs and checkpoints")
    run.add_argument("--no-wait", action="store_true",
                     help="skip a run that another ganbench process is training (default: train every other run "
                     "first, then wait for that process and use its result)")
    run.add_argument("--checkpoint-every", type=_positive_int, default=None,
                     help="write a resumable checkpoint every N steps (default: every 60 s of wall-clock)")
    run.add_argument("--deterministic", action="store_true",
                     help="use only deterministic torch algorithms (bit-identical resumes on the CPU)")
    scale = run.add_argument_group("executors (see docs/scaling.md)")
    scale.add_argument("--executor", default="local",
                       help="where runs train: local (one after another in this process) or ray (one Ray task per "
                       "run, on this machine or a cluster); `ganbench plugins` lists installed executors")
    scale.add_argument("--gpus-per-run", type=float, default=None,
                       help="ray: GPUs per run, fractions allowed (default: 1 where the cluster has GPUs, else 0)")
    scale.add_argument("--cpus-per-run", type=float, default=1.0,
                       help="ray: CPUs per run; torch uses as many threads")
    scale.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                       help="ray: address of a running cluster (env RAY_ADDRESS); default: start Ray on this machine")
    scale.add_argument("--max-retries", type=int, default=2,
                       help="ray: times a run is retried after its worker or node died; it resumes from its checkpoint")
    if suite_defaults:
        run.set_defaults(**suite_defaults)
    add_tune_parser(sub, run, suite_defaults)

    sub.add_parser("plugins", help="list installed plugins, their kind, distribution and version")

    new = sub.add_parser("new-plugin", help="scaffold a plugin package: entry point, version pin, code, "
                         "conformance test and CI workflow (see docs/plugins.md)")
    new.add_argument("name", help="the plugin's name, as users will type it (e.g. mygan)")
    new.add_argument("--kind", required=True, choices=["model", "objective", "dataset", "metric", "listener", "executor"])
    new.add_argument("--out", default=".", help="directory to create the package in")
    new.add_argument("--distribution", default=None, metavar="DIST",
                     help="the package's distribution name (default: ganbench-NAME)")

    prof = sub.add_parser("profile", help="where each family's training step spends its time: img/s, ms per phase, "
                          "host syncs and copies per step, peak memory", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    prof.add_argument("--plugins", default="dcgan,began", help="comma-separated families, optionally family:objective")
    prof.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name, as for `ganbench run`")
    prof.add_argument("--steps", type=_positive_int, default=20, help="profiled steps per family (after 2 warm-up steps)")
    prof.add_argument("--json", action="store_true", help="print the profiles as JSON instead of a table")
    prof.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    prof.add_argument("--batch-size", type=_positive_int, default=64, help="mini-batch size")
    prof.add_argument("--resolution", type=_positive_int, default=None, help="resize the dataset to this resolution")
    prof.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where datasets are looked for and downloaded")
    prof.add_argument("--no-download", action="store_true", help="never download; fail if the data are not on disk")
    _add_speed_options(prof)
    _add_plugin_options(prof)

    sc = sub.add_parser("score", help="score a model ganbench did not train (image folder, .npy/.npz, run directory, "
                        "module:callable) with the protocol of `ganbench run`",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sc.add_argument("source", help="an image folder, an .npy/.npz of uint8 images, a ganbench run directory, or "
                    "module:callable returning a torch module (latents in, images in [-1, 1] out)")
    sc.add_argument("--dataset", default=None,
                    help="reference dataset, as for `ganbench run` (default for a run directory: the run's own)")
    sc.add_argument("--split", default=None, help="split of the reference dataset, e.g. test (same as --dataset NAME:SPLIT)")
    sc.add_argument("--metrics", default=None,
                    help=f"comma-separated metrics (default: a run directory's own, else {DEFAULT_METRICS})")
    sc.add_argument("--extractor", default=None, help="feature extractor, as for `ganbench run`")
    sc.add_argument("--eval-samples", type=_positive_int, default=None,
                    help="samples scored (default: the metric's protocol count, or a run directory's own)")
    sc.add_argument("--eval-batch-size", type=_positive_int, default=None,
                    help="images per feature-extraction batch (default: 128 on the CPU, 512 on a GPU)")
    sc.add_argument("--inception-weights", default=os.environ.get("GANBENCH_INCEPTION_WEIGHTS"),
                    help="local file with the Inception-v3 weights (env GANBENCH_INCEPTION_WEIGHTS)")
    sc.add_argument("--checkpoint", choices=("final", "best"), default="final",
                    help="which weights of a run directory: its final checkpoint or best.pt (--select-best)")
    sc.add_argument("--latent-dim", type=_positive_int, default=None,
                    help="latent size of a module:callable generator without a latent_dim attribute")
    sc.add_argument("--resolution", type=_positive_int, default=None, help="resize the reference dataset to N x N")
    sc.add_argument("--seed", type=int, default=None, help="sampling seed (default: a run directory's own, else 0)")
    sc.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    sc.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where datasets are looked for and downloaded")
    sc.add_argument("--no-download", action="store_true", help="never download the reference dataset")
    sc.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    sc.add_argument("--results", default=None,
                    help="also write a record into this results directory, so the model appears on its leaderboard "
                    "and report, marked external (needs --name)")
    sc.add_argument("--name", default=None, help="the model's name on the leaderboard (with --results)")

    lb = sub.add_parser("leaderboard", help="compile every run in a results directory into a leaderboard",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    lb.add_argument("results", nargs="?", default=DEFAULT_RESULTS, help="results directory")
    lb.add_argument("--rank-by", default=None, help="column, score key or metric (fid) to sort by")

    rep = sub.add_parser("report", help="write one self-contained HTML report (leaderboard, plots, samples)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rep.add_argument("results", nargs="?", default=DEFAULT_RESULTS, help="results directory")
    rep.add_argument("--out", default=None, help="HTML file to write (default: DIR/report.html)")

    check = sub.add_parser("check", help="regression gate: compare results with a baseline, exit 1 on a regression",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    check.add_argument("--baseline", required=True, help="baseline JSON written by `ganbench baseline`")
    check.add_argument("--results", default=None,
                       help="results directory to check; with --suite, where the suite is run (default: a temporary one)")
    check.add_argument("--suite", default=None, help="run this suite file first, then check its results")
    check.add_argument("--throughput-ratio", type=float, default=None,
                       help="fail when img/s falls below this fraction of the baseline's (default: the baseline's own)")
    check.add_argument("--no-throughput", action="store_true",
                       help="do not gate on throughput (e.g. on a machine unlike the baseline's)")

    base = sub.add_parser("baseline", help="write a regression baseline from a results directory",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    base.add_argument("--results", required=True, help="results directory with the runs of one suite")
    base.add_argument("--out", required=True, help="baseline JSON to write, e.g. results/baselines/digits.json")
    base.add_argument("--suite", default=None, help="suite name or file recorded in the baseline")
    base.add_argument("--k", type=float, default=None, help="score tolerance in standard deviations over seeds")
    base.add_argument("--rel-floor", type=float, default=None,
                      help="smallest score tolerance, as a fraction of the baseline mean")
    base.add_argument("--throughput-ratio", type=float, default=None,
                      help="fail a later check when img/s drops below this fraction of the baseline")
    return parser


def _print_board(results: Path, rank_by: str | None) -> None:
    from ganbench.results.leaderboard import compile_leaderboard, load_records, write_leaderboard
    from ganbench.results.terminal import terminal_text

    board = compile_leaderboard(load_records(results), rank_by=rank_by)
    if board.empty:
        print(f"No runs found under {results}. Train some with `ganbench run --results {results}`.")
        return
    paths = write_leaderboard(board, results)
    print(terminal_text(board))
    print(f"\nleaderboard written to {', '.join(str(p) for p in paths.values())}")


def cmd_plugins(registry) -> int:
    """List every contributed name; exit non-zero when a plugin is broken or two claim one name (for CI)."""
    columns = ["name", "kind", "distribution", "version", "description"]
    rows = [[row[c] if c != "description" or len(row[c]) <= 90 else row[c][:87] + "..." for c in columns]
            for row in registry.rows()]
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    for r in [columns, *rows]:  # a plain table: pandas would cost a second of start-up here
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    for (kind, name), owners in sorted(registry.conflicts.items()):
        print(f"\nCONFLICT: the {kind} name {name!r} is registered by {' and by '.join(map(str, owners))}; "
              f"neither is usable until one is disabled (--no-plugin ENTRY_POINT or GANBENCH_DISABLE_PLUGINS) "
              "or uninstalled.")
    for broken in registry.broken:
        print(f"\nBROKEN: {broken.info}: {broken.error}")
    return EXIT_USAGE if registry.broken or registry.conflicts else EXIT_OK


def cmd_profile(args: argparse.Namespace, registry) -> int:
    """Profile each family's step (see ganbench.training.profiling for what is measured and how)."""
    import json
    from dataclasses import asdict

    from ganbench.plugin.model import TrainSettings
    from ganbench.plugin.options import parse_option_args
    from ganbench.training.profiling import profile, profile_table
    from ganbench.execution.runner import Invocation

    inv = Invocation(plugins=_names(args.plugins), dataset=args.dataset, device=args.device,
                     plugin_options=parse_option_args(args.option),
                     data_dir=Path(args.data_dir).expanduser(), download=not args.no_download,
                     settings=TrainSettings(batch_size=args.batch_size, reuse_fakes=args.reuse_fakes,
                                            precision=args.precision, compile=args.compile,
                                            channels_last=args.channels_last),
                     resolution=args.resolution, data_on_device=args.data_on_device)
    profiles, failures = profile(registry, inv, args.steps)
    print(json.dumps([asdict(p) for p in profiles], indent=2) if args.json else profile_table(profiles))
    for pair, error in failures.items():
        print(f"could not profile {pair}: {error}", file=sys.stderr)
    return EXIT_RUNS_FAILED if failures else EXIT_OK


def invocation_from_args(args: argparse.Namespace) -> Invocation:
    """The validated :class:`Invocation` of parsed ``run`` options."""
    from ganbench.scoring.evaluation import EvalOptions
    from ganbench.plugin.model import TrainSettings
    from ganbench.plugin.options import parse_option_args
    from ganbench.plugin.registry import module_targets
    from ganbench.execution.runner import Invocation

    return Invocation(
        plugins=_names(args.plugins),
        dataset=args.dataset,
        budget=Budget.parse(args.budget),
        seeds=tuple(range(args.seed, args.seed + args.seeds)),
        results=Path(args.results),
        data_dir=Path(args.data_dir).expanduser(),
        device=args.device,
        settings=TrainSettings(
            batch_size=args.batch_size, n_critic=args.n_critic, latent=args.latent,
            separate_batches=not args.joint_batches, lr=args.lr, reuse_fakes=args.reuse_fakes,
            precision=args.precision, compile=args.compile, channels_last=args.channels_last,
            recipe=args.recipe, lr_g=args.lr_g, lr_d=args.lr_d, betas=args.betas, lr_schedule=args.lr_schedule,
            ema_kimg=args.ema, spectral_norm=args.spectral_norm,
        ),
        packs=args.pack,
        resolution=args.resolution,
        log_every=args.log_every,
        evaluation=EvalOptions(
            metrics=_names(DEFAULT_METRICS if args.metrics is None else args.metrics),
            extractor=args.extractor,
            num_samples=args.eval_samples,
            intermediate_samples=args.eval_samples_intermediate,
            fractions=_fractions(args.eval_at),
            inception_weights=Path(args.inception_weights).expanduser() if args.inception_weights else None,
            cache_dir=DEFAULT_CACHE_DIR,
            select_best=args.select_best or None,
            batch_size=args.eval_batch_size,
        ),
        download=not args.no_download,
        checkpoint_every=args.checkpoint_every,
        fresh=args.fresh,
        wait_for_locks=not args.no_wait,
        deterministic=args.deterministic,
        log_to=_names(args.log_to),
        plugin_options=parse_option_args(args.option),
        plugin_modules=module_targets(args.plugin_module),
        executor=ExecutorOptions(
            name=args.executor, gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
            address=args.ray_address or None, max_retries=args.max_retries,
        ),
        data_on_device=args.data_on_device,
    )


def _betas(text: str) -> tuple[float, float]:
    """'0,0.9' -> (0.0, 0.9); anything else is refused by argparse with this message."""
    try:
        b1, b2 = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--betas takes two numbers separated by a comma, e.g. 0,0.9; not {text!r}") from None
    return b1, b2


#: Seeds go into torch generators with arithmetic on them (``BatchStream``); keep them well inside 64 bits.
MAX_SEED = 2**32
#: A learning rate above this is a typo (1e300), not an experiment; NaN and infinity are never one.
MAX_LR = 10.0


def check_run_numbers(args: argparse.Namespace) -> None:
    """Refuse numbers that pass argparse but would fail every run with a raw torch error."""
    if args.lr is not None and not (math.isfinite(args.lr) and 0 < args.lr <= MAX_LR):
        raise UsageError(f"--lr must be positive, got {args.lr}." if math.isfinite(args.lr) and args.lr <= 0 else
                         f"--lr must be a finite number in (0, {MAX_LR:g}], got {args.lr}.")
    if not 0 <= args.seed or args.seed + args.seeds > MAX_SEED:
        raise UsageError(f"--seed must lie in 0..{MAX_SEED - args.seeds} (with --seeds {args.seeds}), got {args.seed}.")


def with_dataset_metrics(registry, inv: Invocation) -> Invocation:
    """``inv`` scored with its dataset's own default metrics (``DatasetSpec.default_metrics``) when it has some:
    the image scores cannot judge a 2-D distribution, and its exact metrics should not have to be named."""
    from dataclasses import replace

    from ganbench.execution.runner import split_name

    defaults = registry.dataset(split_name(inv.dataset)[0]).default_metrics
    return replace(inv, evaluation=replace(inv.evaluation, metrics=tuple(defaults))) if defaults else inv


def cmd_run(args: argparse.Namespace, registry) -> int:
    from ganbench.execution.runner import execute

    inv = invocation_from_args(args)
    if args.metrics is None:
        inv = with_dataset_metrics(registry, inv)
    if args.resume and args.fresh:
        raise UsageError("--resume and --fresh contradict each other; choose one.")
    check_run_numbers(args)
    # the first sign of life, before the data load and metric preparation (a CI log would otherwise stay silent)
    print(f"ganbench run: {', '.join(inv.plugins)} on {inv.dataset}, budget {inv.budget.text} per run, "
          f"{len(inv.seeds)} seed(s); results in {inv.results}", file=sys.stderr, flush=True)
    records = execute(registry, inv)
    print()
    _print_board(inv.results, args.rank_by)
    _write_figures(inv, records)
    bad = [r for r in records if r.status != "completed"]
    for r in bad:
        print(f"run {r.run_id}: {r.status}" + (f" ({r.error})" if r.error else ""), file=sys.stderr)
    return EXIT_RUNS_FAILED if bad else EXIT_OK


def _write_figures(inv: Invocation, records: Sequence[RunRecord]) -> None:
    """Combined plots of this invocation's runs and the HTML report of the whole results directory.

    Drawing is a convenience on top of results already on disk: a failure here
    is a warning, never a lost run or a failed exit code.
    """
    from ganbench.results.plots import render_invocation, write_figures
    from ganbench.results.report import find_run_dirs, write_report

    run_dirs = [inv.runs_dir / r.run_id for r in records]
    try:
        figures = render_invocation(run_dirs)
        plots = write_figures(inv.results / "plots", figures)
        # the report covers the whole results directory: when that holds only these runs, the figures serve it too
        only_these = {d.resolve() for d in find_run_dirs(inv.results)} == {d.resolve() for d in run_dirs}
        report = write_report(inv.results, combined=figures if only_these else None)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        print(f"warning: could not draw the plots or the report: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    if plots:
        print(f"plots written to {plots[0].parent}/ ({', '.join(p.name for p in plots)})")
    print(f"report: {report} (open it in a browser)")


def cmd_score(args: argparse.Namespace, registry) -> int:
    """Score an outside model; print a table or JSON; with --results, add it to that leaderboard as external."""
    import json

    import pandas as pd

    from ganbench.scoring.evaluation import EvalOptions
    from ganbench.scoring.external import ScoreRequest, score, write_external

    if (args.results is None) != (args.name is None):
        raise UsageError("--results and --name go together: the record needs a directory and a name to appear under.")
    dataset = args.dataset
    if args.split:
        if dataset is None or ":" in dataset:
            raise UsageError("--split needs a --dataset without its own argument, e.g. --dataset mnist --split test.")
        dataset = f"{dataset}:{args.split}"
    request = ScoreRequest(
        source=args.source, dataset=dataset, metrics=_names(args.metrics) if args.metrics is not None else None,
        evaluation=EvalOptions(
            metrics=_names(DEFAULT_METRICS), extractor=args.extractor, num_samples=args.eval_samples,
            inception_weights=Path(args.inception_weights).expanduser() if args.inception_weights else None,
            cache_dir=DEFAULT_CACHE_DIR, batch_size=args.eval_batch_size,
        ),
        checkpoint=args.checkpoint, seed=args.seed, device=args.device, data_dir=Path(args.data_dir).expanduser(),
        download=not args.no_download, resolution=args.resolution, latent_dim=args.latent_dim,
    )
    scored = score(registry, request)
    if args.json:
        print(json.dumps(scored.as_dict(), indent=2, sort_keys=True))
    else:
        print(f"{scored.source} ({scored.kind}) against {scored.dataset}")
        print(pd.Series(scored.scores, name="value").to_frame().to_string(float_format=lambda v: f"{v:.6g}"))
    if args.results:
        directory = write_external(Path(args.results), args.name, scored, args.device)
        message = f"recorded as external model {args.name!r} in {directory}; `ganbench leaderboard {args.results}` ranks it"
        print(message, file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from ganbench.results import gate
    from ganbench.results.leaderboard import compile_leaderboard, load_records

    results = Path(args.results)
    board = compile_leaderboard(load_records(results))
    suite = args.suite or results.name
    if args.suite and args.suite.endswith(".toml"):
        suite = load_suite(args.suite).name
    options = {k: v for k, v in (("k", args.k), ("rel_floor", args.rel_floor),
                                 ("throughput_ratio", args.throughput_ratio)) if v is not None}
    path = gate.write_baseline(gate.make_baseline(board, suite, **options), Path(args.out))
    print(f"baseline for {suite!r}: {len(board)} rows from {results} written to {path}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, registry) -> int:
    """Run the suite first when asked, then compare its leaderboard with the baseline."""
    import tempfile

    from ganbench.results import gate
    from ganbench.results.leaderboard import compile_leaderboard, load_records

    baseline = gate.read_baseline(Path(args.baseline))  # a bad baseline fails before any training
    if not args.suite and not args.results:  # an empty scratch directory would "regress" every row
        suite = baseline.get("suite") or "SUITE"
        raise UsageError(
            f"check needs results to compare with the baseline {args.baseline} (suite {suite!r}): give "
            f"--suite benchmarks/{suite}.toml to run the suite now, or --results DIR with runs of it already done."
        )
    with tempfile.TemporaryDirectory(prefix="ganbench-check-") as scratch:
        results = Path(args.results or scratch)
        if args.suite:
            suite = load_suite(args.suite)
            run_args = build_parser(suite.defaults).parse_args(["run", args.suite, "--results", str(results)])
            print(f"running suite {suite.name!r} into {results}"
                  + ("" if args.results else " (a temporary directory, deleted after the check; --results DIR keeps it)"))
            cmd_run(run_args, registry)  # incomplete runs are reported by the gate below
        board = compile_leaderboard(load_records(results))
        report = gate.check(board, baseline, throughput_ratio=args.throughput_ratio,
                            check_throughput=not args.no_throughput)
    print(f"\nregression check of {results} against {args.baseline} (suite {baseline.get('suite')!r}, "
          f"baseline made {baseline.get('created_at')} on {', '.join(map(str, baseline.get('device', [])))})")
    print(report.text())
    return EXIT_RUNS_FAILED if report.failed else EXIT_OK


def _tolerant_streams() -> None:
    """Print '±' and non-UTF-8 names as escapes where the terminal's encoding (PYTHONIOENCODING=ascii) lacks them."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change its error handler keeps its own
                pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "suite", None) and args.command in ("run", "tune"):
        try:
            suite = load_suite(args.suite)
        except GanbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        args = build_parser(suite.defaults).parse_args(argv)  # the suite's values are defaults; flags win
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    warnings.showwarning = lambda message, *a, **k: print(f"warning: {message}", file=sys.stderr)
    _tolerant_streams()
    with signals.handled():
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "leaderboard":  # reads records only: no plugin needs loading
            _print_board(Path(args.results), args.rank_by)
            return EXIT_OK
        if args.command == "report":  # reads run directories only: no plugin needs loading
            from ganbench.results.report import write_report

            print(write_report(Path(args.results), Path(args.out) if args.out else None))
            return EXIT_OK
        if args.command == "baseline":  # reads records only
            return cmd_baseline(args)
        if args.command == "check" and not args.suite:
            return cmd_check(args, None)
        if args.command == "new-plugin":  # writes files from templates: no plugin needs loading
            from ganbench.plugin.scaffold import new_plugin

            print(new_plugin(args.name, args.kind, Path(args.out), args.distribution))
            return EXIT_OK
        from ganbench.plugin.registry import build_registry  # entry-point metadata: not needed for --help

        registry = build_registry(disabled=args.no_plugin, modules=args.plugin_module)
        if args.command == "check":
            return cmd_check(args, registry)
        if args.command == "plugins":
            return cmd_plugins(registry)
        if args.command == "profile":
            return cmd_profile(args, registry)
        if args.command == "score":
            return cmd_score(args, registry)
        if args.command == "tune":
            return cmd_tune(args, registry)
        return cmd_run(args, registry)
    except GanbenchError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, signals.Terminated)
        print(f"\n{'terminated (SIGTERM)' if terminated else 'interrupted'}: finished files are intact, the current "
              "run is checkpointed and marked 'interrupted'. Run the same command again to resume it.", file=sys.stderr)
        return signals.EXIT_SIGTERM if terminated else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
