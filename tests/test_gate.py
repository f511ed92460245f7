"""The regression gate: baselines from run records, and checks that pass or fail for the right reasons."""

import json

import pytest

from ganbench.cli import main
from ganbench.results.gate import FAIL, IMPROVED, PASS, SKIPPED, check, make_baseline, read_baseline
from ganbench.errors import UsageError
from ganbench.results.leaderboard import compile_leaderboard
from ganbench.results.store import write_json
from helpers import make_record

FID, ISC = "fid2k[lenet]", "isc2k[lenet]"


def rec(family, seed, fid, isc=2.0, ips=1000.0, status="completed", device="cpu", rel=0.95):
    return make_record(
        family, seed, status=status, steps=100, images=6400, train_seconds=6.4, images_per_second=ips, device=device,
        relative_throughput=rel,
        params_generator=5, params_discriminator=7,
        scores={FID: fid, ISC: isc, "isc2k_std[lenet]": 0.3},
    )


def seeds(family, fids, **kw):
    return [rec(family, s, f, **kw) for s, f in enumerate(fids)]


BASE = seeds("a", [10.0, 11.0, 12.0]) + seeds("b", [20.0, 20.0, 20.0])  # a: std 1; b: std 0 (floor applies)


@pytest.fixture
def baseline():
    return make_baseline(compile_leaderboard(BASE), "toy")


def verdicts(report, check_name=None):
    return {(f.row.split(":")[0], f.check): f.verdict for f in report.findings
            if check_name is None or f.check == check_name}


def test_baseline_states_tolerances_and_how_they_were_derived(baseline):
    rows = {r["family"]: r for r in baseline["rows"]}
    a, b = rows["a"]["scores"][FID], rows["b"]["scores"][FID]
    assert a["mean"] == 11.0 and a["std"] == pytest.approx(1.0) and a["n"] == 3
    assert a["tolerance"] == pytest.approx(2.0) and "2*std" in a["derived"]
    assert b["tolerance"] == pytest.approx(1.0) and "0.05*|mean|" in b["derived"]  # floor: 5 % of 20
    assert "isc2k_std[lenet]" not in rows["a"]["scores"]  # within-run spreads are not gated
    assert rows["a"]["scores"][ISC]["higher_is_better"] and not a["higher_is_better"]
    assert rows["a"]["throughput"] == {"img_per_s": 1000.0, "min_ratio": 0.5,
                                       "derived": "fail below 0.5 x the baseline img/s, same device only"}
    custom = make_baseline(compile_leaderboard(BASE), "toy", throughput_ratio=0.7)["rows"][0]["throughput"]
    assert custom["min_ratio"] == 0.7 and custom["derived"].startswith("fail below 0.7 x")  # derived from the ratio given
    assert baseline["suite"] == "toy" and baseline["device"] == ["cpu"] and baseline["ganbench_version"]


def test_same_results_pass(baseline):
    report = check(compile_leaderboard(BASE), baseline)
    assert not report.failed and set(verdicts(report).values()) == {PASS}


def test_worse_fid_within_tolerance_passes_and_beyond_fails(baseline):
    within = seeds("a", [12.0, 12.5, 13.0]) + seeds("b", [20.5, 20.9, 20.0])  # a +1.5 < 2; b +0.47 < 1
    assert not check(compile_leaderboard(within), baseline).failed
    beyond = seeds("a", [13.5, 14.0, 14.5]) + seeds("b", [20.0] * 3)  # a +3 > 2
    report = check(compile_leaderboard(beyond), baseline)
    assert report.failed and verdicts(report)[("a", FID)] == FAIL and verdicts(report)[("b", FID)] == PASS
    assert "worse by 3 > 2" in report.text() and "FAILED: 1 regression" in report.text()


def test_lower_isc_fails_and_better_fid_is_reported_as_improvement(baseline):
    recs = seeds("a", [5.0, 5.0, 5.0], isc=1.0) + seeds("b", [20.0] * 3)
    found = verdicts(check(compile_leaderboard(recs), baseline))
    assert found[("a", FID)] == IMPROVED and found[("a", ISC)] == FAIL  # isc 1.0 vs 2.0 ± 0.1


def test_throughput_drop_fails_only_beyond_the_ratio_and_only_on_the_same_device(baseline):
    slow = seeds("a", [10.0, 11.0, 12.0], ips=400.0) + seeds("b", [20.0] * 3, ips=600.0)
    report = check(compile_leaderboard(slow), baseline)
    assert verdicts(report, "img_per_s") == {("a", "img_per_s"): FAIL, ("b", "img_per_s"): PASS}
    assert "0.40x the baseline < 0.5x" in report.text()
    assert not check(compile_leaderboard(slow), baseline, throughput_ratio=0.3).failed
    assert not check(compile_leaderboard(slow), baseline, check_throughput=False).failed
    elsewhere = seeds("a", [10.0, 11.0, 12.0], ips=1.0, device="gpu") + seeds("b", [20.0] * 3, ips=1.0, device="gpu")
    assert set(verdicts(check(compile_leaderboard(elsewhere), baseline), "img_per_s").values()) == {SKIPPED}


def test_relative_throughput_is_gated_on_any_device(baseline):
    """The figure measured against a hand-written loop in the same process does not depend on the machine."""
    assert baseline["rows"][0]["relative_throughput"]["value"] == pytest.approx(0.95)
    elsewhere = seeds("a", [10.0, 11.0, 12.0], ips=5.0, device="gpu", rel=0.6) + seeds("b", [20.0] * 3, device="gpu")
    report = check(compile_leaderboard(elsewhere), baseline)
    assert verdicts(report, "rel_throughput") == {("a", "rel_throughput"): FAIL, ("b", "rel_throughput"): PASS}
    assert verdicts(report, "img_per_s") == {("a", "img_per_s"): SKIPPED, ("b", "img_per_s"): SKIPPED}
    assert "0.63x the baseline < 0.8x" in report.text()
    assert not check(compile_leaderboard(elsewhere), baseline, check_throughput=False).failed


def test_a_baseline_older_than_the_relative_figure_is_still_read_and_checked(tmp_path, baseline):
    for row in baseline["rows"]:
        del row["relative_throughput"]
    del baseline["policy"]["relative_throughput_min_ratio"]
    write_json(tmp_path / "old.json", baseline)
    report = check(compile_leaderboard(BASE), read_baseline(tmp_path / "old.json"))
    assert not report.failed
    assert set(verdicts(report, "rel_throughput").values()) == {SKIPPED} and "predates" in report.text()
    assert set(verdicts(report, "img_per_s").values()) == {PASS}


def test_missing_rows_scores_and_incomplete_runs_fail(baseline):
    only_a = check(compile_leaderboard(seeds("a", [10.0, 11.0, 12.0])), baseline)
    assert only_a.failed and verdicts(only_a)[("b", "row")] == FAIL and "missing" in only_a.text()
    broken = seeds("a", [10.0, 11.0]) + [rec("a", 2, float("nan"), status="diverged")] + seeds("b", [20.0] * 3)
    assert verdicts(check(compile_leaderboard(broken), baseline))[("a", "runs")] == FAIL
    no_scores = [make_record("b", s, images_per_second=1000.0) for s in range(3)]
    report = check(compile_leaderboard(seeds("a", [10.0, 11.0, 12.0]) + no_scores), baseline)
    assert verdicts(report)[("b", FID)] == FAIL and "score missing" in report.text()


def test_extra_rows_are_reported_not_failed(baseline):
    report = check(compile_leaderboard(BASE + seeds("c", [1.0, 1.0, 1.0])), baseline)
    assert not report.failed and verdicts(report)[("c", "row")] == SKIPPED


def test_baseline_and_check_commands(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for root, recs in ((good, BASE), (bad, seeds("a", [15.0, 16.0, 17.0]) + seeds("b", [20.0] * 3))):
        for r in recs:
            write_json(root / "runs" / r.run_id / "run.json", r.as_dict())
    out = tmp_path / "baselines" / "toy.json"
    assert main(["baseline", "--results", str(good), "--out", str(out), "--suite", "toy"]) == 0
    assert json.loads(out.read_text())["suite"] == "toy"
    assert main(["check", "--baseline", str(out), "--results", str(good)]) == 0
    assert "passed" in capsys.readouterr().out
    assert main(["check", "--baseline", str(out), "--results", str(bad)]) == 1
    text = capsys.readouterr().out
    assert "REGRESSED" in text and "worse by 5" in text


def test_unreadable_baseline_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(UsageError, match="does not exist"):
        read_baseline(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"rows": []}')
    assert main(["check", "--baseline", str(tmp_path / "x.json"), "--results", str(tmp_path)]) == 2
    assert "not a ganbench baseline" in capsys.readouterr().err


def test_check_can_run_the_suite_first(tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text('name = "tiny"\nplugins = ["vanilla"]\nbudget = "3steps"\nseeds = 2\nmetrics = []\n'
                     'device = "cpu"\nlog_every = 1\n')
    first = tmp_path / "first"
    assert main(["check", "--baseline", str(tmp_path / "none.json"), "--suite", str(suite)]) == 2  # before training
    assert main(["run", str(suite), "--results", str(first)]) == 0
    out = tmp_path / "tiny.json"
    assert main(["baseline", "--results", str(first), "--out", str(out), "--suite", str(suite)]) == 0
    assert json.loads(out.read_text())["suite"] == "tiny"
    capsys.readouterr()
    assert main(["check", "--baseline", str(out), "--suite", str(suite), "--no-throughput"]) == 0
    assert "running suite 'tiny'" in capsys.readouterr().out


def test_seeds_on_different_device_models_are_marked_and_refused_under_a_wall_clock_budget(baseline):
    def timed(seed, model):
        r = rec("a", seed, 10.0 + seed)
        r.budget, r.device_model = "60s", model
        return r

    mixed = compile_leaderboard([timed(0, "NVIDIA A100"), timed(1, "NVIDIA H100"), timed(2, "NVIDIA A100")])
    assert mixed["mixed_devices"].tolist() == [True]
    from ganbench.results.terminal import terminal_text

    assert "1/1" not in terminal_text(mixed) and "MIXED DEVICE MODELS" in terminal_text(mixed)
    with pytest.raises(UsageError, match=r"seeds of a:nonsaturating digits 60s .* ran on different device models"):
        check(mixed, baseline)
    same = compile_leaderboard([timed(s, "NVIDIA A100") for s in range(3)])
    assert same["mixed_devices"].tolist() == [False]
    steps = compile_leaderboard([rec("a", 0, 10.0), rec("a", 1, 11.0)])  # a step budget is one budget anywhere
    assert steps["mixed_devices"].tolist() == [False]
