"""ganbench against hand-written training loops on the same networks, in the same process.

Two questions, each answered by interleaved rounds (one ganbench run, then each
hand-written loop, repeated) so that load on the machine hits every side alike,
and each asserted on the median of the per-round ratios:

- **Harness overhead**: ganbench's dcgan run (the real path: ``ganbench run``'s
  parser, runner and loop, img/s as recorded in ``run.json``) against a plain
  loop over the same networks, objective and optimisers
  (:func:`ganbench.training.calibration.plain_step`): ratio >= 0.97.
- **The reference DCGAN loop**, written here from the published description of
  the PyTorch examples' ``dcgan/main.py``: a ``DataLoader`` over a
  ``TensorDataset``, sigmoid outputs with ``BCELoss``, ``.item()`` on the losses
  and D outputs every step, the D step's fake batch reused for the G step, Adam
  2e-4 (0.5, 0.999). Same ganbench dcgan networks, at 32 and 64 px, batch 64.
  ganbench's default configuration must reach >= 1.0x its img/s, and the
  fastest recorded configuration (``FASTEST``) >= 1.5x.

With ``--benchmark-disable`` (a smoke run) each side runs a couple of
steps once and no ratio is asserted: a single short round on a shared machine
says nothing about speed.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganbench.training.calibration import plain_step
from ganbench.plugin.data import DatasetRequest, to_float
from ganbench.plugin.model import BuildContext, TrainSettings
from ganbench.plugin.options import with_defaults

from conftest import BATCH, CPU, recorded_run

def native_bf16(device: torch.device = CPU) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware; without it autocast to bf16 is emulated, and slower.

    On a CPU that means AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo's flags, which
    torch also consults); a CUDA device says so itself (compute capability 8.0 and up).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = {flag for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
                 for flag in line.split(":", 1)[1].split()}
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & flags)


#: Recorded settings of ganbench's fastest configuration on this machine (see docs/performance.md): bf16 autocast
#: only where the hardware computes in bf16 (on this project's AMD EPYC it made a step ~10x slower), and
#: torch.compile, whose compilation runs in the untimed warm-up steps, off the training clock (a timed benchmark
#: only: compiling costs a smoke run about a minute per network).
FASTEST = ["--channels-last", "--reuse-fakes", "--data-on-device", "yes",
           *(["--precision", "bf16"] if native_bf16() else [])]
COMPILE = ["--compile"]
#: Interleaved rounds and steps per side per round; GANBENCH_BENCH_ROUNDS/STEPS shorten them on a busy machine.
ROUNDS = int(os.environ.get("GANBENCH_BENCH_ROUNDS", 5))
STEPS = int(os.environ.get("GANBENCH_BENCH_STEPS", 20))
SMOKE_STEPS = 2


def _setup(benchmark) -> tuple[int, int]:
    return (1, SMOKE_STEPS) if benchmark.disabled else (ROUNDS, STEPS)


def ganbench_rate(registry, results: Path, resolution: int, steps: int, flags: list[str]) -> float:
    """img/s of one real ``ganbench run`` of dcgan, as recorded (training seconds only)."""
    argv = ["run", "--plugins", "dcgan", "--dataset", "digits", "--resolution", str(resolution), "--budget",
            f"{steps}steps", "--batch-size", str(BATCH), "--device", "cpu", "--metrics=", "--eval-at=",
            "--log-every", "10", "--results", str(results), *flags]
    record = recorded_run(registry, argv, skip_why=f"this ganbench has no {' '.join(flags)} (the recorded settings "
                                                  "of the fast configuration)")
    built = _dcgan(registry, _digits(registry, resolution))
    assert (record.params_generator, record.params_discriminator) == (
        _params(built.generator), _params(built.discriminator)), "the loops compared must train the same networks"
    return record.images_per_second


def _digits(registry, resolution: int):
    spec = registry.dataset("digits")
    return spec.load(DatasetRequest("digits", None, Path("."), False, resolution)).resized(resolution)


def _dcgan(registry, dataset):
    """dcgan's networks exactly as a run builds them: with the options a run passes, declared defaults included."""
    spec = registry.model("dcgan")
    settings = TrainSettings(BATCH, options=with_defaults(spec, {}))
    ctx = BuildContext(dataset.info, registry.objective(spec.default_objective).build(), settings, CPU, 0)
    return spec.build(ctx)


def _params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def plain_rate(registry, resolution: int, steps: int) -> float:
    """img/s of the plain loop over freshly built dcgan networks (ganbench.training.calibration.plain_step)."""
    dataset = _digits(registry, resolution)
    model = _dcgan(registry, dataset)
    images = to_float(dataset.images)
    plain_step(model, images, dataset.labels, BATCH)  # warm-up, off the clock as in ganbench's loop
    start = time.perf_counter()
    for _ in range(steps):
        plain_step(model, images, dataset.labels, BATCH)
    return steps * BATCH / (time.perf_counter() - start)


def reference_rate(registry, resolution: int, steps: int) -> float:
    """img/s of the PyTorch examples' DCGAN loop (module docstring) over ganbench's dcgan networks."""
    dataset = _digits(registry, resolution)
    model = _dcgan(registry, dataset)
    net_g, net_d = model.generator, model.discriminator
    loader = DataLoader(TensorDataset(to_float(dataset.images)), batch_size=BATCH, shuffle=True, drop_last=True)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches = iter(loader)

    def step() -> bool:
        """One iteration of the example's loop; False when the loader was exhausted (a new epoch starts)."""
        nonlocal batches
        try:
            (real,) = next(batches)
        except StopIteration:
            batches = iter(loader)
            return False
        b = real.shape[0]
        # (1) update D: maximise log D(x) + log(1 - D(G(z)))
        net_d.zero_grad()
        label = torch.full((b,), 1.0)
        output = torch.sigmoid(net_d(real)).view(-1)
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = output.mean().item()
        fake = net_g(torch.randn(b, model.latent_dim, 1, 1))
        label.fill_(0.0)
        output = torch.sigmoid(net_d(fake.detach())).view(-1)
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_d_real + err_d_fake
        opt_d.step()
        # (2) update G: maximise log D(G(z)), on the same fake batch
        net_g.zero_grad()
        label.fill_(1.0)
        output = torch.sigmoid(net_d(fake)).view(-1)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        opt_g.step()
        _ = (err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2)  # what the example prints every step
        return True

    while not step():  # warm-up, off the clock as in ganbench's loop (first-call allocations and kernels)
        pass
    done, start = 0, time.perf_counter()
    while done < steps:
        done += step()
    return steps * BATCH / (time.perf_counter() - start)


def _ratios(benchmark, registry, tmp_path, resolution: int, flags: list[str], other) -> list[float]:
    """Per-round ratios ganbench img/s / other img/s, rounds interleaved; timed as one benchmark of all rounds."""
    rounds, steps = _setup(benchmark)
    ratios: list[float] = []

    def one_round() -> None:
        ours = ganbench_rate(registry, tmp_path / f"round{len(ratios)}", resolution, steps, flags)
        ratios.append(ours / other(registry, resolution, steps))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    benchmark.extra_info.update(resolution=resolution, flags=" ".join(flags) or "default", steps=steps,
                                threads=torch.get_num_threads(), ratios=[round(r, 3) for r in ratios],
                                median_ratio=round(statistics.median(ratios), 3))
    print(f"\n{resolution}px {' '.join(flags) or 'default'}: ratios {[round(r, 3) for r in ratios]}")
    return ratios


def test_harness_overhead(benchmark, registry, tmp_path):
    ratios = _ratios(benchmark, registry, tmp_path, 32, [], plain_rate)
    assert all(r > 0 for r in ratios)
    if not benchmark.disabled:
        assert statistics.median(ratios) >= 0.97, f"ganbench / hand-written loop on the same networks: {ratios}"


@pytest.mark.parametrize("resolution", [32, 64])
def test_default_against_reference_dcgan(benchmark, registry, tmp_path, resolution):
    ratios = _ratios(benchmark, registry, tmp_path, resolution, [], reference_rate)
    if not benchmark.disabled:
        assert statistics.median(ratios) >= 1.0, f"ganbench default / reference DCGAN loop: {ratios}"


@pytest.mark.parametrize("resolution", [32, 64])
def test_fastest_against_reference_dcgan(benchmark, registry, tmp_path, resolution):
    flags = FASTEST if benchmark.disabled else [*FASTEST, *COMPILE]
    ratios = _ratios(benchmark, registry, tmp_path, resolution, flags, reference_rate)
    if not benchmark.disabled:
        assert statistics.median(ratios) >= 1.5, f"ganbench {' '.join(flags)} / reference DCGAN loop: {ratios}"
