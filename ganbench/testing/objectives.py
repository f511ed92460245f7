"""The contracts of an objective (``objective.*``), checked on a two-layer GAN the kit builds itself."""

from __future__ import annotations

import math

import torch
from torch import nn

from ganbench.training.loop import seed_everything
from ganbench.plugin.model import AdversarialModel, BuildContext, TrainSettings
from ganbench.plugin.objective import CriticInputs, Objective
from ganbench.plugin.specs import LOGIT, ObjectiveSpec
from . import harness as h
from .contract import Contract, expect, fail
from .families import check_logs

SHAPE = (1, 8)
LATENT = 8


class _Generator(nn.Module):
    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape, self.net = shape, nn.Linear(LATENT, math.prod(shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class _Critic(nn.Module):
    """One logit per image, or (for objectives needing a reconstruction) an image back."""

    def __init__(self, shape: tuple[int, int, int], needs: str) -> None:
        super().__init__()
        self.shape, self.logit = shape, needs == LOGIT
        self.net = nn.Linear(math.prod(shape), 1 if self.logit else math.prod(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.flatten(1))
        return out.squeeze(1) if self.logit else out.view(-1, *self.shape)


def tiny_gan(objective: Objective, n_critic: int | None = None, seed: int = 0,
             shape: tuple[int, int] = SHAPE) -> AdversarialModel:
    """The smallest AdversarialModel that trains with ``objective``: the harness of objective and metric contracts."""
    seed_everything(seed)
    data = h.tiny_dataset(*shape)
    shape = data.info.shape
    g, d = _Generator(shape), _Critic(shape, objective.needs)
    ctx = BuildContext(data.info, objective, TrainSettings(batch_size=h.BATCH, n_critic=n_critic), h.CPU, seed)
    model = AdversarialModel(g, d, torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3),
                             objective, ctx, latent_dim=LATENT, latent="gaussian")
    model.latent_generator = torch.Generator().manual_seed(seed)
    return model


def _built(spec: ObjectiveSpec) -> Objective:
    objective = spec.build()
    if not isinstance(objective, Objective):
        raise fail("objective.build", spec.name, f"build() returned {type(objective).__name__}, not a ganbench.Objective")
    return objective


def _build(spec: ObjectiveSpec) -> None:
    objective = _built(spec)
    expect(objective.needs == spec.needs, "objective.build", spec.name,
           f"the objective needs {objective.needs!r} but its spec says {spec.needs!r}")
    expect(isinstance(objective.n_critic, int) and objective.n_critic >= 1, "objective.build", spec.name,
           f"n_critic must be a whole number of at least 1, got {objective.n_critic!r}")


def _grads(net: nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in net.parameters() if p.grad is not None]


def _gradients(spec: ObjectiveSpec) -> None:
    cid = "objective.gradients"
    model = tiny_gan(_built(spec))
    g, d = model.generator, model.discriminator
    real = h.tiny_dataset(*SHAPE).images[: h.BATCH].float() / 127.5 - 1
    fake = g(model.sample_latent(h.BATCH, h.CPU))
    critic = d
    loss_d, logs = model.objective.discriminator_loss(CriticInputs(real, fake.detach(), d(real), d(fake.detach()), critic))
    check_logs(logs | {"loss": loss_d.detach()}, cid, f"{spec.name} (discriminator_loss)")
    loss_d.backward()
    expect(not _grads(g), cid, spec.name, "the discriminator loss sent gradients to the generator")
    expect(any(bool(x.abs().sum() > 0) for x in _grads(d)), cid, spec.name, "the discriminator loss gives D no gradient")
    for p in (*g.parameters(), *d.parameters()):
        p.grad = None
    loss_g, logs = model.objective.generator_loss(fake, d(fake))
    check_logs(logs | {"loss": loss_g.detach()}, cid, f"{spec.name} (generator_loss)")
    loss_g.backward()
    expect(any(bool(x.abs().sum() > 0) for x in _grads(g)), cid, spec.name, "the generator loss gives G no gradient")
    # MERGE(lead): issue 11's after-critic hook (contracts half) gets its contract here, e.g.
    # "objective.after_critic": the hook runs once per critic update, after the optimiser step, and only
    # touches the discriminator (weight clipping keeps every D weight within the clip, G unchanged).


def _calls(spec: ObjectiveSpec, n_critic: int | None) -> int:
    objective = _built(spec)
    calls = []
    original = objective.discriminator_loss
    objective.discriminator_loss = lambda inputs: calls.append(1) or original(inputs)  # type: ignore[method-assign]
    model = tiny_gan(objective, n_critic)
    model.train_step(h.stream(h.tiny_dataset(*SHAPE)).next, h.StepContext(0, 0.0))
    return len(calls)


def _n_critic(spec: ObjectiveSpec) -> None:
    own = _built(spec).n_critic
    seen = _calls(spec, None)
    expect(seen == own, "objective.n_critic", spec.name, f"n_critic is {own} but a step made {seen} critic updates")
    seen = _calls(spec, own + 1)
    expect(seen == own + 1, "objective.n_critic", spec.name,
           f"with --n-critic {own + 1} a step made {seen} critic updates: the user's setting must win")


def _state(spec: ObjectiveSpec) -> None:
    model = tiny_gan(_built(spec))
    h.steps(model, h.stream(h.tiny_dataset(*SHAPE)), 2)
    saved = model.objective.state_dict()
    try:
        loaded = h.through_file(saved)
    except Exception as exc:
        raise fail("objective.state.round_trip", spec.name, "state_dict() must hold only tensors and plain values "
                   f"(checkpoints load with torch.load(weights_only=True)): {exc}") from exc
    fresh = _built(spec)
    fresh.load_state_dict(loaded)
    where = h.difference(saved, fresh.state_dict())
    expect(where is None, "objective.state.round_trip", spec.name, f"state_dict() after load_state_dict differs at {where}")


def objective_contracts(spec: ObjectiveSpec) -> list[Contract]:
    checks = {"objective.build": _build, "objective.gradients": _gradients, "objective.n_critic": _n_critic,
              "objective.state.round_trip": _state}
    return [Contract(cid, spec.name, lambda check=check: check(spec)) for cid, check in checks.items()]
