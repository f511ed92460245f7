"""``ganbench score``: outside models scored with the protocol of ``ganbench run``, on real MNIST."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from helpers import SHARED_MNIST
from ganbench.cli import main
from ganbench.results.leaderboard import compile_leaderboard, load_records
from ganbench_builtin.datasets.torchvision_sets import read_idx

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

SAMPLES = "1000"


def write_folder(root, images, labels):
    """One sub-folder per class, files named so that sorted paths follow (label, index)."""
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / str(label) / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """The real MNIST test set split in two halves (even and odd positions), each written as an image folder."""
    images_file, labels_file = SHARED_MNIST / "t10k-images-idx3-ubyte.gz", SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"
    if not images_file.is_file():
        pytest.skip(f"the real MNIST test files are not at {SHARED_MNIST}")
    images, labels = read_idx(images_file), read_idx(labels_file)
    root = tmp_path_factory.mktemp("mnist-halves")
    first = write_folder(root / "first", images[0::2], labels[0::2])
    second = write_folder(root / "second", images[1::2], labels[1::2])
    order = np.lexsort((np.arange(len(labels[0::2])), labels[0::2]))  # the folder's (label, index) order
    np.save(root / "first.npy", images[0::2][order])
    noise = np.random.default_rng(0).integers(0, 256, size=(int(SAMPLES), 28, 28), dtype=np.uint8)
    write_folder(root / "noise", noise, [0] * len(noise))
    return root, first, second


def score_json(capsys, *args: str) -> dict:
    code = main(["score", "--device", "cpu", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def against_second(halves, source):
    root, _, second = halves
    return [str(source), "--dataset", f"imagefolder:{second}", "--metrics", "fid,isc", "--extractor", "lenet",
            "--eval-samples", SAMPLES]


def fid_of(result: dict) -> float:
    (key,) = [k for k in result["scores"] if k.startswith("fid")]
    assert key.startswith("fid1k[lenet-")  # the protocol label of `ganbench run`
    return result["scores"][key]


def test_half_of_mnist_scored_against_the_other_half_is_close_and_noise_is_far(halves, capsys):
    root, first, _ = halves
    real = score_json(capsys, *against_second(halves, first))
    array = score_json(capsys, *against_second(halves, root / "first.npy"))
    noise = score_json(capsys, *against_second(halves, root / "noise"))
    assert (real["kind"], array["kind"]) == ("folder", "array") and real["images"] == 5000
    assert array["scores"] == real["scores"]  # the same images in the same order, from an .npy instead of PNGs
    assert fid_of(real) < 5.0
    assert fid_of(noise) > 100 * fid_of(real)
    isc = {name: next(v for k, v in r["scores"].items() if k.startswith("isc") and "_std" not in k)
           for name, r in (("real", real), ("noise", noise))}
    assert isc["real"] > 5.0 > isc["noise"]  # real digits fall clearly into the ten classes; noise does not


def test_scoring_a_finished_run_reproduces_its_recorded_final_scores(finished_run, capsys):
    (run_dir,) = (finished_run / "runs").iterdir()
    recorded = json.loads((run_dir / "run.json").read_text())["scores"]
    result = score_json(capsys, str(run_dir))
    assert result["kind"] == "run" and result["scores"] == recorded  # exactly, not approximately


def test_a_module_callable_generator_is_scored(halves, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_generator.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def build():
            torch.manual_seed(0)
            net = nn.Sequential(nn.Linear(8, 28 * 28), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
            net.latent_dim = 8
            return net
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = score_json(capsys, *against_second(halves, "my_generator:build"))
    sys.modules.pop("my_generator", None)
    assert result["kind"] == "module" and fid_of(result) > 10.0


def test_an_external_model_joins_a_leaderboard_and_report_marked_external(halves, finished_run, tmp_path, capsys):
    root, _, _ = halves
    results = tmp_path / "results"
    shutil.copytree(finished_run, results)
    assert main(["score", "--device", "cpu", *against_second(halves, root / "first.npy"), "--results", str(results),
                 "--name", "mnist-half"]) == 0
    board = compile_leaderboard(load_records(results)).set_index("family")
    assert set(board.index) == {"vanilla", "mnist-half"}
    external = board.loc["mnist-half"]
    assert external["status"] == "external" and external["budget"] == "external"
    assert np.isnan(external["steps"]) and np.isnan(external["train_s"])  # never trained under a budget
    assert external[[c for c in board.columns if c.startswith("score:fid")][0]] < 5.0
    assert board.loc["vanilla", "steps"] == 20
    assert main(["report", str(results)]) == 0
    page = (results / "report.html").read_text()
    assert "mnist-half" in page and "external" in page


def test_bad_sources_are_one_paragraph_errors(halves, tmp_path, capsys):
    root, first, second = halves
    cases = [
        ([str(tmp_path / "missing.npy"), "--dataset", "digits"], "does not exist"),
        (["nothing-here", "--dataset", "digits"], "is not an image folder"),
        ([str(first)], "--dataset"),
        ([str(root / "first.npy"), "--dataset", f"imagefolder:{second}", "--metrics", "fid", "--extractor", "lenet"],
         "--eval-samples 5000 or less"),
        ([str(root / "first.npy"), "--dataset", "digits", "--eval-samples", "10"], "Resize one to the other"),
        ([str(first), "--dataset", "digits", "--results", str(tmp_path)], "--results and --name go together"),
    ]
    for args, message in cases:
        assert main(["score", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
