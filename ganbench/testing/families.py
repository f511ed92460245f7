"""The contracts of a model family (``family.*``): what the loop, checkpoints and scoring rely on."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganbench import errors
from ganbench.plugin.model import GanModel
from ganbench.plugin.specs import LOGIT, ModelSpec
from . import harness as h
from .contract import Contract, ContractError, expect, fail, reported

STEPS = 2


@dataclass
class Trained:
    """A family built for one data shape, sampled, then trained for a few steps while its D's outputs are watched."""

    model: GanModel
    images: torch.Tensor
    batch: int
    before: dict[str, torch.Tensor]
    logs: list[Any]
    #: (what the objective was handed, the batch it came from, D's output) for every objective call.
    seen: list[tuple[str, torch.Tensor, torch.Tensor]] = field(default_factory=list)


def _watch(objective: Any, seen: list) -> None:
    """Record D's outputs as they reach the objective, whatever the family's own step does with them."""
    d_loss, g_loss = objective.discriminator_loss, objective.generator_loss

    def discriminator_loss(inputs: Any) -> Any:
        seen.extend([("d_real", inputs.real, inputs.d_real), ("d_fake", inputs.fake, inputs.d_fake)])
        return d_loss(inputs)

    def generator_loss(fake: torch.Tensor, d_fake: torch.Tensor) -> Any:
        seen.append(("d_fake (generator step)", fake, d_fake))
        return g_loss(fake, d_fake)

    objective.discriminator_loss, objective.generator_loss = discriminator_loss, generator_loss


def sample(model: GanModel, n: int, device: torch.device = h.CPU) -> torch.Tensor:
    """``n`` images from ``model`` in eval mode without gradients, labels cycling over the classes."""
    labels = torch.arange(n, device=device) % max(model.num_classes, 1) if model.conditional else None
    model.eval()
    try:
        with torch.no_grad():
            return model.generate(model.sample_latent(n, device), labels)
    finally:
        model.train()


class FamilyProbe:
    """Builds and trains each family once per shape, shared by the contracts that read the result."""

    def __init__(self, registry: Any, spec: ModelSpec, options: Mapping[str, Any]) -> None:
        self.registry, self.spec, self.options = registry, spec, options

    def objective(self, name: str | None = None) -> Any:
        return self.registry.objective(name or self.spec.default_objective).build()

    def build(self, data: Any, seed: int = 0, objective: Any = None, device: torch.device = h.CPU) -> GanModel:
        model = h.build(self.spec, objective or self.objective(), data, self.options, seed, device)
        if not isinstance(model, GanModel):
            raise fail("family.build", self.spec.name, f"build returned {type(model).__name__}, not a ganbench.GanModel")
        return model

    @functools.cache  # noqa: B019 - one probe per family, alive as long as its contracts
    def trained(self, shape: tuple[int, int]) -> Trained:
        """Build, sample, train; a crash in a stage is reported as a violation of that stage's contract."""
        subject = f"{self.spec.name}@{h.shape_name(shape)}"
        data = h.tiny_dataset(*shape)
        objective = self.objective()
        seen: list = []
        _watch(objective, seen)
        model = _stage("family.build", subject, lambda: self.build(data, objective=objective))
        images = _stage("family.generate.shape", subject, lambda: sample(model, h.BATCH))
        before = {k: p.detach().clone() for k, p in h.parameters(model)}
        seen.clear()
        logs = _stage("family.train_step.logs", subject, lambda: h.steps(model, h.stream(data), STEPS))
        return Trained(model, images, h.BATCH, before, logs, seen)


def _stage(contract: str, subject: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except ContractError:
        raise
    except errors.ContractError as exc:  # the core's run-time checks saw it: their words, not a crash
        raise reported(exc, contract, subject) from None
    except Exception as exc:
        raise fail(contract, subject, f"raised {type(exc).__name__}: {exc}") from exc


def _build(t: Trained, subject: str) -> None:
    nets, opts = t.model.networks(), t.model.optimizers()
    expect(isinstance(nets, dict) and nets and all(isinstance(n, nn.Module) for n in nets.values()),
           "family.build", subject, f"networks() must be a non-empty dict of torch modules, got {nets!r:.200}")
    expect(isinstance(opts, dict) and all(isinstance(o, torch.optim.Optimizer) for o in opts.values()),
           "family.build", subject, f"optimizers() must be a dict of torch optimisers, got {opts!r:.200}")


def _generate(t: Trained, subject: str, shape: tuple[int, int]) -> dict[str, Callable[[], None]]:
    x = t.images
    expected = (t.batch, shape[0], shape[1], shape[1])

    def shape_() -> None:
        expect(isinstance(x, torch.Tensor) and tuple(x.shape) == expected, "family.generate.shape", subject,
               f"generate(z) for {t.batch} latents must be shaped {expected}, got "
               f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")

    def dtype() -> None:
        expect(x.dtype == torch.float32, "family.generate.dtype", subject, f"images must be float32, got {x.dtype}")

    def device() -> None:
        expect(x.device == h.CPU, "family.generate.device", subject, f"images must be on the run's device (cpu), got {x.device}")

    def range_() -> None:
        low, high = x.min().item(), x.max().item()
        expect(math.isfinite(low) and math.isfinite(high) and -1 <= low and high <= 1, "family.generate.range", subject,
               f"images must lie in [-1, 1] (a tanh output), got values from {low:.4g} to {high:.4g}")

    return {"family.generate.shape": shape_, "family.generate.dtype": dtype, "family.generate.device": device,
            "family.generate.range": range_}


def _discriminator(t: Trained, subject: str, provides: str) -> None:
    for what, batch, out in t.seen:
        n = batch.shape[0]
        ok = tuple(out.shape) in ((n,), (n, 1)) if provides == LOGIT else out.shape == batch.shape
        wanted = f"({n},) or ({n}, 1): one logit per image" if provides == LOGIT else f"{tuple(batch.shape)}, the input's shape"
        expect(ok, "family.discriminator.output", subject, f"{what} is shaped {tuple(out.shape)} for a batch of {n}; "
               f"a discriminator providing {provides!r} must return {wanted}")


def check_logs(logs: Any, contract: str, subject: str) -> None:
    """A step's return value: a dict of detached, finite 0-dim tensors."""
    expect(isinstance(logs, dict) and logs, contract, subject, f"train_step must return a non-empty dict, got {logs!r:.200}")
    for key, value in logs.items():
        expect(isinstance(value, torch.Tensor), contract, subject,
               f"{key!r} is a {type(value).__name__}: return detached 0-dim tensors (loss.detach()), not Python numbers")
        expect(value.ndim == 0 and not value.requires_grad, contract, subject,
               f"{key!r} must be a detached 0-dim tensor, got shape {tuple(value.shape)}, requires_grad={value.requires_grad}")
        expect(bool(torch.isfinite(value)), contract, subject, f"{key!r} is {value.item()}, not finite")


def _logs(t: Trained, subject: str) -> None:
    for logs in t.logs:
        check_logs(logs, "family.train_step.logs", subject)


def _updates(t: Trained, subject: str) -> None:
    now = dict(h.parameters(t.model))
    for name in t.model.networks():
        changed = [k for k in now if k.startswith(f"{name}.") and not torch.equal(now[k], t.before[k])]
        expect(bool(changed), "family.train_step.updates", subject, f"{STEPS} steps left every weight of {name!r} unchanged")


def shape_contracts(probe: FamilyProbe, shape: tuple[int, int]) -> list[Contract]:
    subject = f"{probe.spec.name}@{h.shape_name(shape)}"
    def on(check: Callable[[Trained], None]) -> Callable[[], None]:
        return lambda: check(probe.trained(shape))

    found = [Contract("family.build", subject, on(lambda t: _build(t, subject)))]
    for cid in ("family.generate.shape", "family.generate.dtype", "family.generate.device", "family.generate.range"):
        found.append(Contract(cid, subject, on(lambda t, cid=cid: _generate(t, subject, shape)[cid]())))
    found += [
        Contract("family.discriminator.output", subject, on(lambda t: _discriminator(t, subject, probe.spec.provides))),
        Contract("family.train_step.logs", subject, on(lambda t: _logs(t, subject))),
        Contract("family.train_step.updates", subject, on(lambda t: _updates(t, subject))),
    ]
    return found
