"""A collapse is never silent: the diversity statistics, the `collapsed` flag everywhere it must show,
and the gate failing on a newly collapsed row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganbench import GanModel
from ganbench.training.budget import Counters
from ganbench.cli import main
from ganbench.plugin.data import to_float
from ganbench.scoring.diversity import SPREAD_COLLAPSED_BELOW, judge, predicted_classes
from ganbench.scoring.evaluation import EvalOptions, make_evaluator
from ganbench_builtin.fidelity import to_rgb_uint8
from ganbench.results.gate import FAIL, PASS, check, make_baseline
from ganbench.results.leaderboard import compile_leaderboard, display_frame
from ganbench.results.plots import convergence_figure, load_run, m_global_figure
from ganbench.results.records import RunRecord
from ganbench.results.report import render_report
from ganbench.execution.runner import Invocation, load_dataset
from ganbench.results.terminal import terminal_text
from ganbench_builtin.extractors import lenet
from helpers import make_record, make_run

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
EXT = "lenet-digits-a47c01eb"
SPREAD, CLASSES, FID = f"div2k_spread[{EXT}]", f"div2k_classes[{EXT}]", f"fid2k[{EXT}]"


@pytest.fixture(scope="module")
def digits():
    from ganbench.plugin.registry import build_registry

    registry = build_registry()
    return registry, load_dataset(registry, Invocation(dataset="digits"))


@pytest.fixture(scope="module")
def cache(_private_cache, digits_extractor, digits) -> Path:
    """The session's cache, which `ganbench run` in these tests uses too: the extractor is trained once."""
    lenet.prepare(digits[1], _private_cache)
    return _private_cache


class Bank(GanModel):
    """Hands out rows of a fixed image bank in order; ``deaf`` makes it ignore its noise (always row 0)."""

    def __init__(self, bank: torch.Tensor, deaf: bool = False) -> None:
        self.bank, self.deaf, self.position = bank, deaf, 0
        self.net = nn.Linear(2, 2)
        self.latent_dim, self.conditional, self.num_classes = 4, False, 0

    def networks(self):
        return {"generator": self.net}

    def generate(self, z, labels=None):
        n = z.shape[0]
        if self.deaf:
            return self.bank[:1].expand(n, -1, -1, -1)
        idx = (torch.arange(n) + self.position) % len(self.bank)
        self.position = (self.position + n) % len(self.bank)
        return self.bank[idx]


def scores_of(digits, cache, model, metrics=("fid",), n=600) -> dict[str, float]:
    registry, dataset = digits
    options = EvalOptions(metrics=metrics, extractor="lenet", num_samples=n, cache_dir=cache)
    return make_evaluator([registry.metric(m) for m in metrics], model, dataset, options, CPU, 0)(1.0, Counters())


def test_a_generator_that_ignores_its_noise_is_flagged_and_real_digits_are_not(digits, cache):
    perm = torch.randperm(len(digits[1]), generator=torch.Generator().manual_seed(0))
    real = to_float(digits[1].images[perm])
    ext = lenet.extractor_name(digits[1])
    deaf = scores_of(digits, cache, Bank(real, deaf=True))
    assert deaf[f"div600_spread[{ext}]"] == 0.0 and deaf[f"div600_classes[{ext}]"] == 1
    assert judge(deaf)[0] is True and "feature spread 0 " in judge(deaf)[1]
    genuine = scores_of(digits, cache, Bank(real[:600]))
    assert genuine[f"div600_spread[{ext}]"] > 0.9 and genuine[f"div600_classes[{ext}]"] == 10
    assert judge(genuine) == (False, f"feature spread {genuine[f'div600_spread[{ext}]']:.3g}, 10 predicted classes")
    # a generator of one digit only, with all the variety of the real ones: collapsed onto one class
    threes = scores_of(digits, cache, Bank(real[digits[1].labels[perm] == 3]))
    assert threes[f"div600_classes[{ext}]"] == 1 and threes[f"div600_spread[{ext}]"] > SPREAD_COLLAPSED_BELOW
    assert judge(threes)[0] is True and "1 predicted class " in judge(threes)[1]
    # whichever torch-fidelity metric a run asks for, it gets the statistics
    assert f"div600_spread[{ext}]" in scores_of(digits, cache, Bank(real[:600]), metrics=("isc",))


def test_statistics_equal_an_independent_computation(digits, cache):
    dataset = digits[1]
    ext = lenet.extractor_name(dataset)
    g = torch.Generator().manual_seed(1)
    bank = (to_float(dataset.images[:300]) * 0.5 + 0.2 * torch.randn(300, 1, 16, 16, generator=g)).clamp(-1, 1)
    scores = scores_of(digits, cache, Bank(bank), n=300)
    extractor = lenet.LeNetExtractor(ext, ["features", "logits"])
    with torch.no_grad():
        fake, logits = (t.numpy() for t in extractor(to_rgb_uint8(bank)))
        real = extractor(to_rgb_uint8(dataset.images))[0].numpy()
    expected = math.sqrt(np.trace(np.cov(fake, rowvar=False)) / np.trace(np.cov(real, rowvar=False)))
    assert scores[f"div300_spread[{ext}]"] == pytest.approx(expected, rel=1e-6)
    shares = np.bincount(logits.argmax(1), minlength=10) / 300
    assert scores[f"div300_classes[{ext}]"] == int((shares >= 0.05).sum())


def test_predicted_classes_ignore_stray_argmaxes():
    def logits(predicted: np.ndarray, k: int = 10) -> np.ndarray:
        return np.eye(k)[predicted]

    predicted = np.full(1000, 3)
    predicted[960:] = 7  # 4 % of the samples: stray predictions, not a second mode
    assert predicted_classes(logits(predicted)) == 1
    predicted[940:] = 7  # 6 %: above half the uniform share of 10 classes
    assert predicted_classes(logits(predicted)) == 2
    assert predicted_classes(logits(predicted % 2, k=2)) == 1  # with 2 classes, half the uniform share is 25 %


def record(family: str, seed: int, spread: float | None, fid: float = 20.0, **extra) -> RunRecord:
    scores = {FID: fid}
    if spread is not None:
        scores |= {SPREAD: spread, CLASSES: 1.0 if spread < SPREAD_COLLAPSED_BELOW else 10.0}
    collapsed, note = judge(scores)
    return make_record(family, seed, steps=100, images=6400, device="cpu",
                     images_per_second=1000.0, scores=scores, collapsed=collapsed, collapse_note=note, **extra)


def test_leaderboard_and_terminal_show_the_flag_with_its_statistic():
    records = [record("began", 0, 0.02, fid=700.0), record("began", 1, 0.8), record("dcgan", 0, 0.9),
               record("old", 0, None)]
    board = compile_leaderboard(records)
    rows = {r["family"]: r for _, r in board.iterrows()}
    assert rows["began"]["collapsed"] == 1 and rows["began"]["collapsed:n"] == 2
    assert "seed 0: samples lack diversity: feature spread 0.02" in rows["began"]["collapse_note"]
    assert rows["dcgan"]["collapsed"] == 0 and math.isnan(rows["old"]["collapsed"])
    shown = {r["family"]: r["collapsed"] for _, r in display_frame(board).iterrows()}
    assert shown == {"began": "1/2 seeds", "dcgan": "no", "old": ""}
    text = terminal_text(board)
    header = text.splitlines()[0].split()
    assert header.index("collapsed") == header.index("status") + 1
    assert "COLLAPSED began:nonsaturating digits 100steps: seed 0: samples lack diversity" in text
    assert "collapse_note" not in text
    assert "COLLAPSED" not in terminal_text(compile_leaderboard(records[2:]))


def test_run_json_without_collapse_information_still_loads_everywhere(tmp_path):
    old = record("dcgan", 0, None).as_dict()
    for key in ("collapsed", "collapse_note"):
        old.pop(key)
    run = tmp_path / "runs" / "dcgan-0"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(old))
    loaded = RunRecord.read(run / "run.json")
    assert loaded.collapsed is None and loaded.collapse_note == ""
    board = compile_leaderboard([loaded])
    assert display_frame(board)["collapsed"].tolist() == [""]
    assert "COLLAPSED" not in terminal_text(board)
    assert ">collapsed</span>" not in render_report(tmp_path)
    assert not check(board, make_baseline(board, "old")).failed


def test_check_fails_on_a_newly_collapsed_row_and_reads_old_baselines():
    healthy = [record("began", s, 0.8) for s in (0, 1)] + [record("dcgan", 0, 0.9)]
    baseline = make_baseline(compile_leaderboard(healthy), "toy")
    assert [r["collapsed"] for r in baseline["rows"]] == [0, 0]
    worse = [record("began", 0, 0.02), record("began", 1, 0.8), record("dcgan", 0, 0.9)]
    report = check(compile_leaderboard(worse), baseline)
    (finding,) = [f for f in report.findings if f.check == "collapsed" and f.verdict == FAIL]
    assert report.failed and finding.row.startswith("began:")
    assert "newly collapsed: 1 of 2 seeds have samples that lack diversity" in finding.note
    assert "feature spread 0.02" in report.text()
    # the FID of that row stayed within tolerance: only the collapse check fails it
    assert all(f.verdict == PASS for f in report.findings if f.check.startswith("fid"))
    # a baseline written before collapse information existed: no key, read as no collapsed seed
    for row in baseline["rows"]:
        del row["collapsed"]
    assert check(compile_leaderboard(worse), baseline).failed
    assert not check(compile_leaderboard(healthy), baseline).failed
    # a row that had collapsed in the baseline already is not a new regression
    already = make_baseline(compile_leaderboard(worse), "toy")
    again = check(compile_leaderboard(worse), already)
    assert not again.failed
    assert any(f.check == "collapsed" and "baseline too" in f.note for f in again.findings)
    # diversity statistics are not gated as scores: the flag is
    assert not any("div2k" in name for row in already["rows"] for name in row["scores"])


def test_m_global_plots_and_report_say_what_m_global_measures_and_flag_collapse(tmp_path):

    root = tmp_path / "results"
    curves = {"M_global": list(np.linspace(0.9, 0.1, 8)), "k_t": [0.0] * 8}
    flagged = make_run(root, "began", "began", seed=0, extra=curves)
    healthy = make_run(root, "began", "began", seed=1, extra=curves)
    for run, spread in ((flagged, 0.03), (healthy, 0.9)):
        data = json.loads((run / "run.json").read_text())
        data["scores"] |= {SPREAD: spread, CLASSES: 1.0 if spread < SPREAD_COLLAPSED_BELOW else 10.0}
        data["collapsed"], data["collapse_note"] = judge(data["scores"])
        (run / "run.json").write_text(json.dumps(data))

    def texts(fig) -> str:
        return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))

    both = texts(m_global_figure([load_run(flagged), load_run(healthy)]))
    assert "convergence of the BEGAN game" in both and "not sample diversity" in both
    assert "began:began s0 (samples collapsed)" in both and "began:began s1 (samples collapsed)" not in both
    assert "feature spread 0.03" in both
    assert "samples collapsed" in texts(convergence_figure(load_run(flagged)))
    assert "samples collapsed" not in texts(convergence_figure(load_run(healthy)))
    assert "not a measure of sample diversity" in texts(convergence_figure(load_run(healthy)))
    html = render_report(root)
    section = html.split('id="m_global"', 1)[1].split("<h2", 1)[0]
    assert "not sample diversity" in section
    assert "began:began seed 0: samples lack diversity: feature spread 0.03" in section
    assert "seed 1" not in section
    assert html.count(">collapsed</span>") == 3  # the run's heading, its final grid and the list of runs
    assert "COLLAPSED: samples lack diversity" in html  # the run's own table


DEAF = """
import torch
import ganbench
from ganbench_builtin.dcgan import build as build_dcgan


class Deaf:
    '''A DCGAN whose samples ignore their noise: every latent gives the image of the zero latent.'''

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, z, labels=None):
        return self.model.generate(torch.zeros_like(z), labels)


@ganbench.hookimpl
def ganbench_models():
    return [ganbench.ModelSpec("deafgan", lambda ctx: Deaf(build_dcgan(ctx)), "ignores its noise", "test",
                               "nonsaturating")]
"""


def test_a_run_that_ignores_its_noise_is_marked_collapsed_and_a_briefly_trained_dcgan_is_not(fake_dist, tmp_path,
                                                                                          capsys):
    fake_dist("ganbench-deaf", {"deaf": "deaf_mod"}, {"deaf_mod": DEAF})
    common = ["--metrics", "fid", "--eval-samples", "500", "--eval-at=", "--results", str(tmp_path), "--log-every", "50"]
    assert main(["run", "--device", "cpu", "--plugins", "deafgan", "--budget", "2steps", *common]) == 0
    # a collapse is a verdict on the samples, not a crash: the run completes (exit 0)
    assert main(["run", "--device", "cpu", "--plugins", "dcgan", "--budget", "150steps", *common]) == 0
    out = capsys.readouterr().out
    records = {r.family: r for r in map(RunRecord.read, tmp_path.glob("runs/*/run.json"))}
    deaf, dcgan = records["deafgan"], records["dcgan"]
    assert deaf.collapsed is True and "feature spread 0 " in deaf.collapse_note
    assert dcgan.collapsed is False, dcgan.collapse_note
    spread = next(v for k, v in dcgan.scores.items() if k.startswith("div500_spread["))
    assert spread > 1.5 * SPREAD_COLLAPSED_BELOW  # measured 0.52 at 120 steps, 0.8 from 200 steps on
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert {row["family"]: row["collapsed"] for row in board} == {"deafgan": 1, "dcgan": 0}
    assert "COLLAPSED deafgan:nonsaturating digits 2steps: seed 0: samples lack diversity" in out
    assert ">collapsed</span>" in (tmp_path / "report.html").read_text()
