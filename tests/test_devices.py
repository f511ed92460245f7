"""Correct on any machine: device names, per-device RNG in checkpoints, CPU-only files, backend settings.

No GPU exists where these run, so a GPU host is simulated where that is enough
(``torch.cuda``'s queries monkeypatched); what only a real GPU can show is in
tests/test_cuda.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ganbench.training import backends
from ganbench.training import checkpoint
from ganbench.cli import main
from ganbench.execution.environment import capture
from ganbench.errors import UsageError
from ganbench.plugin.model import AdversarialModel, BuildContext, TrainSettings, device_dependent_init
from ganbench.training.budget import Budget
from ganbench.execution.runner import Invocation, execute, resolve_device

pytestmark = pytest.mark.usefixtures("one_thread")


class Untouchable(RuntimeError):
    pass


def _simulate_one_gpu(monkeypatch) -> None:
    """torch sees one CUDA GPU; ganbench's ways of touching CUDA (its generators, its device, a sync) raise."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Simulated GPU")

    def untouchable(name):
        def refuse(*args, **kwargs):
            raise Untouchable(f"a CPU run called torch.cuda.{name}")

        return refuse  # one function per name: torch's tracing rules refuse one object under two names

    for name in ("init", "_lazy_init", "current_device", "get_rng_state", "get_rng_state_all", "set_rng_state",
                 "set_rng_state_all", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, untouchable(name))


@pytest.fixture
def one_gpu_host(monkeypatch):
    _simulate_one_gpu(monkeypatch)


def test_a_gpu_index_the_machine_lacks_is_a_usage_error_listing_the_devices(one_gpu_host, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(UsageError) as info:
        resolve_device("cuda:7")
    message = str(info.value)
    assert "--device cuda:7" in message and "cuda:0 (Simulated GPU)" in message and "cpu" in message
    assert "CUDA_VISIBLE_DEVICES='3'" in message
    assert resolve_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.parametrize("name", ["cuda:7", "cudax", "cpu:3", "mps", "cuda:-1"])
def test_bad_device_names_exit_2_with_the_devices_present(name, one_gpu_host, tmp_path, capsys):
    code = main(["run", "--plugins", "vanilla", "--budget", "2steps", "--device", name, "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert name in err.strip().splitlines()[-1] and "Devices present" in err and "cuda:0 (Simulated GPU)" in err


@pytest.fixture
def restored_backends(monkeypatch):
    """Process-wide backend settings (and the cuBLAS variable) as they were before the test."""
    monkeypatch.setenv(backends.CUBLAS_ENV, "")  # recorded, so that teardown restores the original (or its absence)
    monkeypatch.delenv(backends.CUBLAS_ENV)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:]


def test_a_cpu_run_on_a_gpu_host_never_touches_cuda(registry, tmp_path, monkeypatch, tensors_in, restored_backends):
    inv = Invocation(plugins=("dcgan",), budget=Budget.parse("4steps"), device="cpu", checkpoint_every=2,
                     log_every=2, deterministic=True, results=tmp_path)
    (record,) = execute(registry, inv)
    assert record.status == "completed"
    run = tmp_path / "runs" / record.run_id
    state = torch.load(run / "checkpoint.pt", weights_only=True)  # no map_location: tensors where they were saved
    assert all(t.device.type == "cpu" for t in tensors_in(state))
    assert not {"cuda", "cuda_device"} & set(state["rng"])
    recorded = json.loads((run / "environment.json").read_text())["backends"]
    assert recorded["deterministic_algorithms"] is True and recorded["cudnn_benchmark"] is False
    assert recorded[backends.CUBLAS_ENV]
    # what ganbench itself does around a CPU run, on a host where torch sees a GPU (simulated: a full run cannot
    # be, torch's own Adam would initialise the missing driver): no generator read or set, no device picked
    with monkeypatch.context() as patch:
        _simulate_one_gpu(patch)
        assert resolve_device("cpu") == torch.device("cpu")
        saved = checkpoint.rng_state(torch.device("cpu"))
        assert set(saved) == {"python", "numpy", "torch"}
        checkpoint.set_rng_state(state["rng"], torch.device("cpu"))
        checkpoint.save(run, state)
        environment = capture(torch.device("cpu"), {})
    assert environment["gpu_index"] is None and environment["device"] == "cpu"


def test_only_the_run_devices_generator_is_saved_and_restored(monkeypatch):
    states = {i: torch.full((4,), i, dtype=torch.uint8) for i in range(4)}
    restored = {}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": states[device].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.update({device: state}))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)

    def fail(*args, **kwargs):
        raise AssertionError("every visible GPU's state was read or written")

    monkeypatch.setattr(torch.cuda, "get_rng_state_all", fail)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", fail)
    saved = checkpoint.rng_state(torch.device("cuda:1"))
    assert torch.equal(saved["cuda_device"], states[1]) and "cuda" not in saved
    checkpoint.set_rng_state(saved, torch.device("cuda:0"))  # trained on cuda:1, resumed on a one-GPU machine
    assert list(restored) == [0] and torch.equal(restored[0], states[1])
    # a checkpoint in the old format (one state per visible GPU) from a machine with more GPUs: no IndexError
    old = {**saved, "cuda": [states[0], states[1], states[2]]}
    del old["cuda_device"]
    restored.clear()
    checkpoint.set_rng_state(old, torch.device("cuda:2"))
    assert torch.equal(restored[2], states[2])
    restored.clear()
    checkpoint.set_rng_state(old, torch.device("cuda:3"))  # no state was saved for that index: left as seeded
    assert restored == {}


def test_checkpoints_hold_cpu_copies_of_every_tensor(tensors_in):
    weights = nn.Linear(3, 2)
    opt = torch.optim.Adam(weights.parameters())
    weights(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"networks": {"g": weights.state_dict()}, "optimizers": {"g": opt.state_dict()}, "pairs": [(1, torch.ones(1))]}
    copied = checkpoint.on_cpu(state)
    live, saved = tensors_in(state), tensors_in(copied)
    assert len(saved) == len(live) > 4 and all(t.device.type == "cpu" for t in saved)
    assert not {t.untyped_storage().data_ptr() for t in saved} & {t.untyped_storage().data_ptr() for t in live}
    assert isinstance(copied["pairs"][0], tuple) and set(copied["optimizers"]["g"]["state"]) == {0, 1}
    assert copied["optimizers"]["g"]["param_groups"] == state["optimizers"]["g"]["param_groups"]


def test_environment_records_the_gpu_index_visible_devices_and_backends(one_gpu_host, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    env = capture(torch.device("cuda:1"), {})
    assert env["gpu_index"] == 1 and env["cuda_visible_devices"] == "2,3" and env["device_name"] == "Simulated GPU"
    assert set(env["backends"]) >= {"deterministic_algorithms", "cudnn_benchmark", "tf32_matmul", "tf32_cudnn",
                                    backends.CUBLAS_ENV}


def test_deterministic_sets_cublas_and_turns_autotuning_off(restored_backends, monkeypatch):
    backends.configure(deterministic=True)
    assert backends.settings() == {
        "deterministic_algorithms": True, "cudnn_benchmark": False, "cudnn_deterministic": True,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        backends.CUBLAS_ENV: backends.CUBLAS_WORKSPACE,
    }
    monkeypatch.setenv(backends.CUBLAS_ENV, ":16:8")  # the user's own setting is kept
    backends.configure(deterministic=True)
    assert backends.settings()[backends.CUBLAS_ENV] == ":16:8"
    backends.configure(deterministic=False)
    assert backends.settings()["cudnn_benchmark"] is True and backends.settings()["deterministic_algorithms"] is False


# -- one rule for starting weights: initialise on the CPU, then move ------------------------------------------


@pytest.mark.parametrize("family", ["vanilla", "dcgan", "conditional", "began", "lapgan", "progressive"])
@pytest.mark.parametrize("resolution", [16, 9])
def test_every_family_initialises_on_the_cpu(registry, family, resolution):
    from ganbench.plugin.data import ImageDataset

    data = ImageDataset("t", torch.zeros(8, 1, resolution, resolution, dtype=torch.uint8), torch.arange(8) % 4,
                        num_classes=4)
    spec = registry.model(family)
    ctx = BuildContext(data.info, registry.objective(spec.default_objective).build(), TrainSettings(), torch.device("cpu"), 3)
    assert device_dependent_init(spec.build, ctx) is None


def test_initialising_after_the_move_is_caught(registry, tiny_dataset):
    def moved_then_initialised(ctx: BuildContext) -> AdversarialModel:
        g, d = nn.Linear(100, 256).to(ctx.device), nn.Linear(256, 1).to(ctx.device)
        for net in (g, d):
            nn.init.normal_(net.weight, 0.0, 0.02)
        return AdversarialModel(g, d, torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters()),
                                ctx.objective, ctx, latent_dim=100, latent="gaussian")

    ctx = BuildContext(tiny_dataset.info, registry.objective("nonsaturating").build(), TrainSettings(), torch.device("cpu"))
    problem = device_dependent_init(moved_then_initialised, ctx)
    assert problem is not None and "after .to(device)" in problem
