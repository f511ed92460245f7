"""What the contracts share: tiny data, building under a seed, and bit-exact state comparison."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ganbench.plugin.contracts import critic_outputs_unchecked
from ganbench.plugin.data import BatchStream, ImageDataset
from ganbench.training.loop import latent_seed, seed_everything
from ganbench.plugin.model import BuildContext, GanModel, StepContext, TrainSettings
from ganbench.plugin.objective import Objective

CPU = torch.device("cpu")
#: (channels, resolution) of the data every family is built for: digits, MNIST, CIFAR-10 and CelebA-64 shapes.
SHAPES = ((1, 16), (1, 28), (3, 32), (3, 64))
BATCH = 4
CLASSES = 4


def shape_name(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def tiny_dataset(channels: int, resolution: int, n: int = 16) -> ImageDataset:
    """Random labelled uint8 images, the same for every call."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    return ImageDataset(f"kit-{channels}x{resolution}", images, torch.arange(n) % CLASSES, num_classes=CLASSES)


def build(spec: Any, objective: Objective, data: ImageDataset, options: Mapping[str, Any], seed: int = 0,
          device: torch.device = CPU) -> GanModel:
    """``spec.build`` as a run calls it: every RNG seeded first, the run's own latent generator set after."""
    seed_everything(seed)
    ctx = BuildContext(data.info, objective, TrainSettings(batch_size=BATCH, options=dict(options)), device, seed)
    model = spec.build(ctx)
    if isinstance(model, GanModel) and device.type != "meta":
        model.latent_generator = torch.Generator(device).manual_seed(latent_seed(seed))
    return model


def stream(data: ImageDataset, seed: int = 0) -> BatchStream:
    return BatchStream(data, BATCH, seed, CPU)


def steps(model: GanModel, batches: BatchStream, count: int, first: int = 0) -> list[Any]:
    """``count`` training steps; what each returned.

    The core's own check of D's outputs is off here: the kit watches them and reports a wrong shape
    once, as family.discriminator.output, instead of failing every contract that trains.
    """
    with critic_outputs_unchecked():
        return [model.train_step(batches.next, StepContext(step, step / 10)) for step in range(first, first + count)]


def state(model: GanModel) -> dict[str, Any]:
    """What a checkpoint keeps of a model: weights, optimisers and extra state."""
    return {"networks": {k: v.state_dict() for k, v in model.networks().items()},
            "optimizers": {k: v.state_dict() for k, v in model.optimizers().items()},
            "extra": model.extra_state()}


def through_file(value: Any) -> Any:
    """``value`` saved and loaded back as checkpoints are (``weights_only=True``: tensors and plain values only)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)


def load_state(model: GanModel, saved: Mapping[str, Any]) -> None:
    for name, net in model.networks().items():
        net.load_state_dict(saved["networks"][name])
    for name, opt in model.optimizers().items():
        opt.load_state_dict(saved["optimizers"][name])
    model.load_extra_state(saved["extra"])


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ, bit for bit (``None``: identical)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a.cpu(), b.cpu()))
        return None if same else path or "tensor"
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return f"{path} keys {sorted(map(str, set(a) ^ set(b)))}"
        return next((d for k in a if (d := difference(a[k], b[k], f"{path}.{k}" if path else str(k)))), None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path} length"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := difference(x, y, f"{path}[{i}]"))), None)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:  # NaN == NaN here
        return None
    return None if a == b else path or "value"


def parameters(model: GanModel) -> Iterator[tuple[str, torch.Tensor]]:
    for name, net in model.networks().items():
        for pname, p in net.named_parameters():
            yield f"{name}.{pname}", p


def rng_state(model: GanModel) -> dict[str, Any]:
    """The generators a step draws from on the CPU: torch's global one and the run's latent generator."""
    saved = {"torch": torch.get_rng_state()}
    if model.latent_generator is not None:
        saved["latent"] = model.latent_generator.get_state()
    return saved


def set_rng_state(model: GanModel, saved: Mapping[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    if "latent" in saved and model.latent_generator is not None:
        model.latent_generator.set_state(saved["latent"])
