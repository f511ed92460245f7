"""Ground truth you can check: toy datasets, their exact metrics on known answers, vector data through the loop,
refusals of the wrong kind of data, --pack, and CPU-seconds smoke versions of the toy suites."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from helpers import SHARED_MNIST
from ganbench.cli import build_parser, invocation_from_args, main
from ganbench.plugin.data import BatchStream, DatasetRequest, ImageDataset
from ganbench.errors import UsageError
from ganbench.training.packing import Packed
from ganbench.results.records import RunRecord
from ganbench.execution.runner import Invocation, plan
from ganbench_builtin.datasets import toys
from ganbench_builtin.metrics.toys import ks_to_normal, mode_counts, reverse_kl_to_uniform, w1_to_normal

pytestmark = pytest.mark.usefixtures("one_thread")
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def normal(mean: float, std: float, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


# -- 1-D exact metrics ---------------------------------------------------------------------------------------


def test_true_samples_give_w1_near_zero_and_a_shifted_normal_its_analytic_w1():
    # W1 between N(m, s) and N(m + d, s) is |d|; the sample's own error shrinks like s / sqrt(n)
    assert w1_to_normal(normal(16, 5, 100_000), 16, 5) < 0.04
    assert w1_to_normal(normal(16.7, 5, 100_000, seed=1), 16, 5) == pytest.approx(0.7, abs=0.04)
    assert w1_to_normal(normal(10, 5, 100_000, seed=2), 16, 5) == pytest.approx(6.0, abs=0.04)


def test_w1_equals_a_brute_force_integral_of_the_cdf_difference():
    x = normal(3, 2, 50, seed=3)
    grid = np.linspace(-15, 21, 400_001)
    empirical = np.searchsorted(np.sort(x), grid, side="right") / len(x)
    brute = np.trapezoid(np.abs(empirical - stats.norm.cdf(grid, 3, 2)), grid)
    assert w1_to_normal(x, 3, 2) == pytest.approx(brute, rel=1e-4)


def test_ks_of_a_shifted_normal_is_the_analytic_sup_distance():
    shift, std = 2.0, 5.0  # sup |Phi(z) - Phi(z - d/s)| = 2 Phi(d / 2s) - 1
    assert ks_to_normal(normal(18, 5, 200_000), 16, std) == pytest.approx(2 * stats.norm.cdf(shift / 2 / std) - 1,
                                                                            abs=0.005)
    assert ks_to_normal(normal(16, 5, 200_000), 16, std) < 0.005


# -- 2-D PacGAN metrics --------------------------------------------------------------------------------------


def test_the_ring_has_8_distinct_modes_on_the_unit_circle():
    centres = np.array(toys.ring_centres())
    assert len(np.unique(centres.round(6), axis=0)) == 8  # linspace(0, 2pi, 8) would give 7
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    assert len(toys.grid_centres()) == 25


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_true_samples_cover_every_mode_with_the_analytic_share_of_high_quality(name):
    centres = toys.ring_centres() if name == "ring" else toys.grid_centres()
    sigma = toys.RING["sigma"] if name == "ring" else toys.GRID["sigma"]
    points, _ = toys.mixture_samples(centres, sigma, 20_000, seed=5)
    counts, good = mode_counts(points.double().numpy(), np.array(centres), sigma)
    assert (counts > 0).sum() == len(centres)
    # a 2-D isotropic normal puts 1 - exp(-9/2) of its mass within 3 sigma
    assert good / 20_000 == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    assert reverse_kl_to_uniform(counts) < 0.01


def test_samples_from_one_mode_give_one_mode_and_reverse_kl_log_k():
    centres = np.array(toys.ring_centres())
    points = centres[3] + 0.01 * np.random.default_rng(0).normal(size=(2500, 2))
    counts, good = mode_counts(points, centres, 0.01)
    assert (counts > 0).sum() == 1 and counts[3] == good
    assert reverse_kl_to_uniform(counts) == pytest.approx(math.log(8))
    assert math.isnan(reverse_kl_to_uniform(np.zeros(8, dtype=int)))  # no good sample: undefined, not 0


# -- data contract -------------------------------------------------------------------------------------------


def test_datasets_are_drawn_from_a_fixed_seed_with_their_truth():
    request = DatasetRequest("ring", None, Path("."))
    a, b = toys.load_ring(request), toys.load_ring(request)
    assert a.kind == "vector" and a.images.shape == (100_000, 2) and torch.equal(a.images, b.images)
    assert a.meta["truth"]["sigma"] == 0.01 and a.info.dim == 2 and a.info.shape == (2,)
    g = toys.load_gauss1d(DatasetRequest("gauss1d", "3,0.5", Path(".")))
    assert abs(float(g.images.mean()) - 3) < 0.01 and abs(float(g.images.std()) - 0.5) < 0.01
    with pytest.raises(UsageError, match="MEAN,STD"):
        toys.parse_gauss1d("16")
    with pytest.raises(UsageError, match="positive"):
        toys.parse_gauss1d("16,-5")


def test_vectors_are_served_as_they_are_and_refuse_a_resolution():
    data = ImageDataset("v", torch.randn(50, 2) * 4 + 10)
    stream = BatchStream(data, 10, seed=0, device=torch.device("cpu"), on_device=False)
    batch, _ = stream.next()
    assert batch.dtype == torch.float32 and batch.shape == (10, 2) and batch.mean() > 5  # not rescaled to [-1, 1]
    with pytest.raises(UsageError, match="images only"):
        data.resized(16)
    with pytest.raises(UsageError, match="NaN"):
        ImageDataset("bad", torch.tensor([[float("nan")]]))


def _plan(registry, **kwargs):
    from ganbench.scoring.evaluation import EvalOptions

    metrics = kwargs.pop("metrics", ())
    return plan(registry, Invocation(evaluation=EvalOptions(metrics=metrics), device="cpu", **kwargs))


def test_convolutional_families_and_image_metrics_refuse_vectors_before_training(registry):
    with pytest.raises(UsageError, match=r"family 'dcgan' \(from entry point 'dcgan'.*ring.*vector.*vanilla"):
        _plan(registry, plugins=("dcgan",), dataset="ring")
    with pytest.raises(UsageError, match=r"metric 'fid' .*scores images"):
        _plan(registry, plugins=("vanilla",), dataset="ring", metrics=("fid",))
    with pytest.raises(UsageError, match=r"metric 'w1' .*known true distribution"):
        _plan(registry, plugins=("vanilla",), dataset="digits", metrics=("w1",))


def test_toy_metrics_refuse_data_without_the_truth_they_need(tmp_path):
    assert main(["run", "--plugins", "vanilla", "--dataset", "ring", "--metrics", "w1", "--budget", "2steps",
                 "--results", str(tmp_path)]) == 2  # w1 needs a single 1-D normal, the ring is not one
    assert main(["run", "--plugins", "vanilla", "--dataset", "ring", "--resolution", "16", "--budget", "2steps",
                 "--metrics=", "--results", str(tmp_path)]) == 2


# -- packing -------------------------------------------------------------------------------------------------


def test_packed_groups_consecutive_samples_along_the_first_feature_axis():
    seen = []
    packed = Packed(torch.nn.Identity(), 2)
    packed.inner.register_forward_hook(lambda m, i, o: seen.append(o))
    packed(torch.arange(12.0).view(6, 2))
    assert seen[0].tolist()[0] == [0, 1, 2, 3]
    images = torch.randn(4, 3, 5, 5)
    assert torch.equal(packed(images)[1], torch.cat([images[2], images[3]]))


def test_pack_is_refused_where_it_cannot_work(registry):
    with pytest.raises(UsageError, match="cannot be packed"):
        plan(registry, invocation_from_args(build_parser().parse_args(
            ["run", "--plugins", "began", "--pack", "2", "--device", "cpu"])))
    with pytest.raises(UsageError, match="not a multiple of --pack 3"):
        plan(registry, invocation_from_args(build_parser().parse_args(
            ["run", "--plugins", "vanilla", "--pack", "3", "--batch-size", "64", "--device", "cpu"])))


# -- the suites, as CPU-seconds smoke runs -------------------------------------------------------------------


def _records(results: Path) -> list[RunRecord]:
    return [RunRecord.read(p) for p in sorted((results / "runs").glob("*/run.json"))]


@pytest.mark.parametrize("suite", ["toy-ring", "toy-grid"])
def test_toy_suite_smoke_trains_gan_and_pacgan2_as_separate_rows(tmp_path, suite):
    """The PacGAN suite as it ships (networks, batch 100, both configurations), cut to 10 steps and one seed."""
    results = tmp_path / suite
    assert main(["run", str(BENCHMARKS / f"{suite}.toml"), "--budget", "10steps", "--seeds", "1",
                 "--log-every", "5", "--eval-at", "0.5", "--results", str(results)]) == 0
    records = _records(results)
    assert sorted(r.pack for r in records) == ["", "2"]
    for r in records:
        assert {"modes2500", "hq2500", "rkl2500"} <= set(r.scores) and 0 <= r.scores["modes2500"] <= 25
        run = results / "runs" / r.run_id
        assert (run / "samples" / "frac050.png").is_file() and (run / "plots" / "distribution.png").is_file()
    # the regression gate reads toy rows like any other: a baseline of these results passes against them
    baseline = tmp_path / f"{suite}.json"
    assert main(["baseline", "--results", str(results), "--out", str(baseline)]) == 0
    rows = json.loads(baseline.read_text())["rows"]
    assert sorted(r["pack"] for r in rows) == ["", "2"] and all("modes2500" in r["scores"] for r in rows)
    assert main(["check", "--baseline", str(baseline), "--results", str(results), "--no-throughput"]) == 0


def test_gauss1d_suite_smoke_scores_exact_metrics(tmp_path):
    assert main(["run", str(BENCHMARKS / "gauss1d.toml"), "--budget", "30steps", "--seeds", "1",
                 "--eval-at", "0.5", "--results", str(tmp_path)]) == 0
    (record,) = _records(tmp_path)
    assert {"w1_10k", "ks10k", "mean_err10k", "std_err10k"} <= set(record.scores)
    assert 0 <= record.scores["ks10k"] <= 1 and record.scores["w1_10k"] >= record.scores["mean_err10k"] - 1e-9


#: The issue's target: W1 below 0.5 (a tenth of the standard deviation) within a CPU-minute. The suite's recipe
#: ends at 0.09-0.23 on seeds 0-4 (results/toys/README.md), in about 10 CPU-seconds a run.
GAUSS1D_W1_TARGET = 0.5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_gauss1d_suite_reaches_w1_below_half_within_a_cpu_minute(tmp_path, seed):
    """The suite as it ships: from all samples near 16 at the start to W1 < 0.5, inside one CPU-minute of training."""
    assert main(["run", str(BENCHMARKS / "gauss1d.toml"), "--seeds", "1", "--seed", str(seed),
                 "--results", str(tmp_path)]) == 0
    (record,) = _records(tmp_path)
    assert record.scores["w1_10k"] < GAUSS1D_W1_TARGET, record.scores
    assert record.scores["mean_err10k"] < 0.5 and record.scores["std_err10k"] < 0.5, record.scores
    assert record.train_seconds < 60, record.train_seconds  # one thread (the module's fixture): CPU time = wall time


def test_ring_works_out_of_the_box_with_its_own_metrics(tmp_path):
    """`ganbench run --dataset ring --plugins vanilla`: offline, the dataset's metrics, no other option needed."""
    assert main(["run", "--dataset", "ring", "--plugins", "vanilla", "--budget", "10steps", "--eval-at", "0.5",
                 "--results", str(tmp_path)]) == 0
    (record,) = _records(tmp_path)
    assert set(record.scores) == {"modes2500", "hq2500", "rkl2500"}


# -- Stacked MNIST -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason=f"the real MNIST test set is not at {SHARED_MNIST}")
def test_real_stacked_digits_cover_about_1000_modes_with_kl_near_zero(tmp_path):
    from ganbench.scoring.evaluation import EvalOptions, MetricContext
    from ganbench_builtin.datasets.stacked_mnist import load
    from ganbench_builtin.metrics import toys as metrics

    data = load(DatasetRequest("stacked-mnist", str(SHARED_MNIST), tmp_path))
    assert data.images.shape[1:] == (3, 28, 28) and data.num_classes == 1000
    ctx = MetricContext(None, data, EvalOptions(), torch.device("cpu"), 0, ("modes", "rkl"), tmp_path)  # type: ignore[arg-type]
    metrics.prepare_modes(ctx)
    _, classify = ctx.state[metrics.STATE]
    modes = classify(data.images[:26_000].float().div(127.5).sub(1))
    counts = np.bincount(modes, minlength=1000)
    assert (counts > 0).sum() >= 990
    assert reverse_kl_to_uniform(counts) < 0.1  # 26k draws over 1,000 modes alone give about 0.02
    # every digit right in about 85 % of the triples: the shared lenet recipe trains 2 epochs on the
    # 10k-image split (about 95 % per digit); misread digits move samples between modes, not out of them
    assert (modes == data.labels[:26_000].numpy()).mean() > 0.8


def test_a_vector_run_resumes_from_a_checkpoint_exactly(tmp_path):
    """Checkpoints and resume are the loop's, unchanged: the resumed run ends with the uninterrupted one's weights."""
    import json

    from ganbench.training import checkpoint
    from ganbench.training.budget import Budget
    from ganbench.plugin.model import TrainSettings
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import execute

    registry = build_registry(disabled=["progress"])
    inv = Invocation(plugins=("vanilla",), dataset="ring", budget=Budget.parse("12steps"), results=tmp_path,
                     device="cpu", settings=TrainSettings(batch_size=20), checkpoint_every=4, packs=(2,))
    (first,) = execute(registry, inv)
    run = tmp_path / "runs" / first.run_id
    finished = torch.load(run / checkpoint.CURRENT, weights_only=False)["networks"]
    data = (run / checkpoint.CURRENT).read_bytes()
    (run / checkpoint.CURRENT).write_bytes(data[: len(data) // 2])  # the last checkpoint lost: back to step 8
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        (again,) = execute(registry, inv)
    assert again.status == "completed" and again.resumed_from_step == 8 and again.pack == "2"
    resumed = torch.load(run / checkpoint.CURRENT, weights_only=False)["networks"]
    for net in ("generator", "discriminator"):
        for key, value in finished[net].items():
            assert torch.equal(value, resumed[net][key]), (net, key)


def test_scoring_a_packed_run_rebuilds_it_with_its_pack_and_reproduces_its_scores(tmp_path, capsys):
    """`ganbench score RUN_DIR` on a --pack 2 run: the packed D's weights load, and the recorded scores come out."""
    assert main(["run", "--dataset", "ring", "--plugins", "vanilla", "--pack", "2", "--budget", "4steps",
                 "--batch-size", "20", "--eval-at=", "--results", str(tmp_path)]) == 0
    (record,) = _records(tmp_path)
    assert record.pack == "2" and set(record.scores) == {"modes2500", "hq2500", "rkl2500"}
    capsys.readouterr()
    assert main(["score", str(tmp_path / "runs" / record.run_id), "--device", "cpu", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["kind"] == "run" and scored["scores"] == pytest.approx(record.scores, nan_ok=True)
