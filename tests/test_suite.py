"""Benchmark suites: every shipped suite parses and plans; malformed ones are refused clearly."""

from pathlib import Path

import pytest

from ganbench.cli import build_parser, invocation_from_args, main
from ganbench.errors import UsageError
from ganbench.execution.runner import plan
from ganbench.execution.suite import EVAL_KEYS, TOP_KEYS, load_suite

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SUITES = sorted(BENCHMARKS.glob("*.toml"))


def test_the_shipped_suites_exist():
    assert {p.stem for p in SUITES} >= {"digits", "mnist", "cifar10", "celeba64"}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_every_suite_parses_and_plans(path, registry):
    suite = load_suite(path)
    assert suite.name == path.stem
    args = build_parser(suite.defaults).parse_args(["run", str(path), "--device", "cpu"])
    inv = invocation_from_args(args)
    assert inv.budget.text == suite.defaults["budget"]
    assert len(inv.seeds) == suite.defaults["seeds"]
    runs = plan(registry, inv)  # every plugin, pair, dataset and metric name resolves
    assert len(runs) == len(inv.plugins) * len(inv.seeds) * len(inv.packs)


def test_suite_values_are_defaults_and_flags_win(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nplugins = ["vanilla", "dcgan:hinge"]\nbudget = "400steps"\nseeds = 3\n'
                    'metrics = ["isc", "fid"]\n[eval]\nsamples = 2000\nat = [0.5]\n')
    suite = load_suite(path)
    args = build_parser(suite.defaults).parse_args(["run", str(path), "--seeds", "1", "--budget", "5steps"])
    assert args.seeds == 1 and args.budget == "5steps"  # the command line wins
    assert args.plugins == "vanilla,dcgan:hinge" and args.metrics == "isc,fid" and args.eval_at == "0.5"
    assert args.eval_samples == 2000 and args.results == str(Path("results/suites/s"))
    assert args.batch_size is None  # a key the suite leaves out keeps the CLI default: each family's recipe batch


def write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_keys_are_listed_with_the_valid_ones(tmp_path):
    path = write(tmp_path, 'name = "x"\nplugin = ["dcgan"]\nbugdet = "1m"\n')
    with pytest.raises(UsageError) as exc:
        load_suite(path)
    text = str(exc.value)
    assert "'bugdet', 'plugin'" in text and str(path) in text
    assert all(key in text for key in TOP_KEYS) and all(key in text for key in EVAL_KEYS)


def test_unknown_eval_key_and_wrong_types(tmp_path):
    with pytest.raises(UsageError, match=r"'sample'.*\[eval\]"):
        load_suite(write(tmp_path, 'name = "x"\n[eval]\nsample = 10\n'))
    with pytest.raises(UsageError, match="seeds must be a whole number of at least 1; got 0"):
        load_suite(write(tmp_path, 'name = "x"\nseeds = 0\n'))
    with pytest.raises(UsageError, match="plugins must be a list of strings"):
        load_suite(write(tmp_path, 'name = "x"\nplugins = [1, 2]\n'))
    with pytest.raises(UsageError, match=r"eval.at must be a list of numbers in \(0, 1\]"):
        load_suite(write(tmp_path, 'name = "x"\n[eval]\nat = [0.5, 2]\n'))
    with pytest.raises(UsageError, match="budget"):
        load_suite(write(tmp_path, 'name = "x"\nbudget = "10 parsecs"\n'))
    with pytest.raises(UsageError, match="needs a name"):
        load_suite(write(tmp_path, 'budget = "1m"\n'))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="not valid TOML"):
        load_suite(write(tmp_path, 'name = "x\n'))
    with pytest.raises(UsageError, match="does not exist"):
        load_suite(tmp_path / "nope.toml")


def test_run_with_a_malformed_suite_exits_2(tmp_path, capsys):
    path = write(tmp_path, 'name = "x"\nseed_count = 3\n')
    assert main(["run", str(path)]) == 2
    assert "Unknown key 'seed_count'" in capsys.readouterr().err


def test_run_a_tiny_suite_end_to_end(tmp_path, capsys):
    results = tmp_path / "out"
    path = write(tmp_path, f'name = "tiny"\nplugins = ["vanilla"]\nbudget = "4steps"\nseeds = 2\n'
                           f'metrics = []\ndevice = "cpu"\nresults = "{results.as_posix()}"\n', "tiny.toml")
    assert main(["run", str(path), "--log-every", "2"]) == 0
    assert len(list((results / "runs").glob("*/run.json"))) == 2
    assert (results / "leaderboard.html").exists()


def test_the_example_plugin_suite_parses():
    suite = load_suite(BENCHMARKS.parent / "plugins" / "ganbench-example" / "benchmarks" / "digits.toml")
    assert suite.defaults["plugins"].split(",")[0] == "tinygan"


def test_executor_keys_of_a_suite_become_the_run_defaults():
    from ganbench.cli import build_parser, invocation_from_args
    from ganbench.execution.suite import parse_suite

    suite = parse_suite({"name": "x", "executor": "ray", "gpus_per_run": 0.5, "cpus_per_run": 2, "max_retries": 1})
    inv = invocation_from_args(build_parser(suite.defaults).parse_args(["run"]))
    assert (inv.executor.name, inv.executor.gpus_per_run, inv.executor.cpus_per_run, inv.executor.max_retries) == (
        "ray", 0.5, 2.0, 1)
    inv = invocation_from_args(build_parser(suite.defaults).parse_args(["run", "--executor", "local"]))
    assert inv.executor.name == "local"  # the command line still wins
