"""What only a GPU can show: training, exact resume, scoring and checkpoints moving between CPU and GPU.

Every test here is marked ``cuda`` and skips, with its reason, where torch sees
no CUDA GPU; ``pytest -m cuda`` runs just these on a GPU host. Each is small
(a few steps on the embedded digits) so that the module stays quick there too.
"""

from __future__ import annotations

import json

import pytest
import torch

from ganbench.training import checkpoint
from ganbench.cli import main
from ganbench.plugin.model import BuildContext, TrainSettings, device_dependent_init

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch sees none on this machine"),
]

RUN = ["run", "--metrics=", "--budget", "8steps", "--log-every", "2", "--checkpoint-every", "4"]


def run_dir(results):
    (path,) = (results / "runs").iterdir()
    return path


@pytest.mark.parametrize("family", ["vanilla", "dcgan", "conditional", "began", "lapgan", "progressive"])
def test_every_family_trains_on_the_gpu_and_saves_cpu_files(family, tmp_path, tensors_in):
    assert main([*RUN, "--plugins", family, "--device", "cuda", "--results", str(tmp_path)]) == 0
    run = run_dir(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["steps"] == 8 and record["warmup_seconds"] > 0
    environment = json.loads((run / "environment.json").read_text())
    assert environment["gpu_index"] == torch.cuda.current_device()
    assert environment["backends"]["cudnn_benchmark"] is True  # autotuning when not deterministic
    state = torch.load(run / "checkpoint.pt", weights_only=True)  # no map_location: where the tensors were saved
    assert all(t.device.type == "cpu" for t in tensors_in(state))
    assert set(state["rng"]) >= {"cuda_device"} and "cuda" not in state["rng"]


@pytest.mark.parametrize("family", ["vanilla", "dcgan", "conditional", "began", "lapgan", "progressive"])
def test_starting_weights_are_the_same_on_the_gpu_as_on_the_cpu(family, registry):
    from ganbench.execution.runner import Invocation, load_dataset

    data = load_dataset(registry, Invocation(dataset="digits"))
    spec = registry.model(family)
    ctx = BuildContext(data.info, registry.objective(spec.default_objective).build(), TrainSettings(),
                       torch.device("cpu"), 5)
    assert device_dependent_init(spec.build, ctx, torch.device("cuda")) is None


def test_a_deterministic_gpu_run_resumes_bit_identically(tmp_path):
    # 12 px is an awkward size for dcgan: its matrix resizes are on the training path, and must be deterministic
    args = [*RUN, "--plugins", "dcgan", "--resolution", "12", "--device", "cuda", "--deterministic"]
    assert main([*args, "--results", str(tmp_path / "whole")]) == 0
    whole_dir = run_dir(tmp_path / "whole")
    whole = torch.load(whole_dir / checkpoint.CURRENT, weights_only=True)
    # the same run as if killed after its step-4 checkpoint: that checkpoint (kept as the previous one) alone
    resumed_dir = tmp_path / "resumed" / "runs" / whole_dir.name
    resumed_dir.mkdir(parents=True)
    (resumed_dir / checkpoint.CURRENT).write_bytes((whole_dir / checkpoint.PREVIOUS).read_bytes())
    (resumed_dir / checkpoint.SIDECAR).write_bytes((whole_dir / checkpoint.SIDECAR).read_bytes())
    assert main([*args, "--results", str(tmp_path / "resumed")]) == 0
    assert json.loads((resumed_dir / "run.json").read_text())["resumed_from_step"] == 4
    resumed = torch.load(resumed_dir / checkpoint.CURRENT, weights_only=True)
    for name, weights in whole["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, resumed["networks"][name][key]), (name, key)


def test_a_gpu_checkpoint_loads_on_the_cpu_and_back_on_the_gpu(tmp_path, tensors_in):
    assert main([*RUN, "--plugins", "dcgan", "--device", "cuda", "--results", str(tmp_path)]) == 0
    state = checkpoint.load_file(run_dir(tmp_path) / checkpoint.CURRENT)  # as a CPU-only machine would
    assert all(t.device.type == "cpu" for t in tensors_in(state))
    from ganbench_builtin import dcgan

    g = dcgan.Generator(100, 1, 16)
    g.load_state_dict(state["networks"]["generator"])  # a CPU model from GPU-trained weights
    g.eval()
    with torch.no_grad():
        assert g(torch.randn(2, 100)).shape == (2, 1, 16, 16)
    g.cuda().load_state_dict(state["networks"]["generator"])  # and back onto the GPU


def test_scoring_on_the_gpu_and_rescoring_its_run_on_the_cpu(tmp_path):
    args = ["run", "--plugins", "dcgan", "--budget", "4steps", "--metrics", "fid,prc", "--eval-samples", "500",
            "--eval-at", "", "--seed", "3"]
    assert main([*args, "--device", "cuda", "--results", str(tmp_path / "gpu")]) == 0
    gpu = json.loads((run_dir(tmp_path / "gpu") / "run.json").read_text())
    assert gpu["scores"] and all(v == v for v in gpu["scores"].values())  # finite or inf, never NaN
    target = run_dir(tmp_path / "gpu")
    assert main(["score", str(target), "--device", "cpu", "--results", str(tmp_path / "scored")]) == 0


def test_a_gpu_index_beyond_the_visible_ones_is_a_usage_error(tmp_path, capsys):
    name = f"cuda:{torch.cuda.device_count()}"
    assert main([*RUN, "--plugins", "vanilla", "--device", name, "--results", str(tmp_path)]) == 2
    assert "Devices present" in capsys.readouterr().err
