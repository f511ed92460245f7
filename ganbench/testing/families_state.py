"""Family contracts beyond one step's output: checkpoints, resuming, seeds, host syncs, devices, objectives."""

from __future__ import annotations

import torch

from ganbench.training.syncs import SyncCounter
from . import harness as h
from .contract import Contract, expect, fail
from .families import STEPS, FamilyProbe, check_logs

#: Shape-independent contracts run on the smallest data.
SHAPE = h.SHAPES[0]


def _checkpoint(probe: FamilyProbe, subject: str) -> None:
    model = probe.trained(SHAPE).model
    saved = h.state(model)
    try:
        loaded = h.through_file(saved)
    except Exception as exc:
        raise fail("family.checkpoint.round_trip", subject, "networks/optimisers/extra state must hold only tensors "
                   f"and plain values (checkpoints load with torch.load(weights_only=True)): {exc}") from exc
    fresh = probe.build(h.tiny_dataset(*SHAPE), seed=1)
    h.load_state(fresh, loaded)
    where = h.difference(saved, h.state(fresh))
    expect(where is None, "family.checkpoint.round_trip", subject,
           f"after saving and loading, networks/optimisers/extra state differ at {where}")


def _resume(probe: FamilyProbe, subject: str) -> None:
    data = h.tiny_dataset(*SHAPE)
    model, batches = probe.build(data), h.stream(data)
    h.steps(model, batches, STEPS)
    saved = h.through_file({"model": h.state(model), "stream": batches.state_dict(), "rng": h.rng_state(model)})
    h.steps(model, batches, STEPS, first=STEPS)

    resumed, again = probe.build(data, seed=1), h.stream(data)
    h.load_state(resumed, saved["model"])
    again.load_state_dict(saved["stream"])
    h.set_rng_state(resumed, saved["rng"])
    h.steps(resumed, again, STEPS, first=STEPS)
    where = h.difference(h.state(model), h.state(resumed))
    expect(where is None, "family.resume", subject, f"{STEPS} steps after a resume differ from {STEPS} uninterrupted "
           f"steps at {where}: a checkpoint must hold everything a step depends on (extra_state)")


def _deterministic(probe: FamilyProbe, subject: str) -> None:
    data = h.tiny_dataset(*SHAPE)
    a = probe.build(data, seed=3)
    start_a, logs_a = h.through_file(h.state(a)), h.steps(a, h.stream(data), STEPS)
    b = probe.build(data, seed=3)
    where = h.difference(start_a, h.state(b))
    expect(where is None, "family.deterministic", subject, f"two builds under seed 3 start different at {where}")
    logs_b = h.steps(b, h.stream(data), STEPS)
    where = h.difference(h.state(a), h.state(b)) or h.difference(logs_a, logs_b)
    expect(where is None, "family.deterministic", subject, f"{STEPS} steps under seed 3 differ at {where}")


def _no_host_sync(probe: FamilyProbe, subject: str) -> None:
    data = h.tiny_dataset(*SHAPE)
    model, batches = probe.build(data), h.stream(data)
    h.steps(model, batches, 1)  # optimiser state and lazy buffers come first
    with SyncCounter() as counter:
        h.steps(model, batches, STEPS, first=1)
    expect(counter.reads == 0 and counter.h2d == 0, "family.train_step.no_host_sync", subject,
           f"a step made the host wait for the device ({dict(counter.by_op)}): no .item(), float(t), bool(t), "
           "if t:, .tolist() or .cpu() inside train_step; return detached tensors and let the loop read them")


def _same_init_on_every_device(probe: FamilyProbe, subject: str) -> None:
    data = h.tiny_dataset(*SHAPE)
    probe.build(data, seed=5)
    on_cpu = torch.get_rng_state()
    probe.build(data, seed=5, device=torch.device("meta"))
    expect(torch.equal(torch.get_rng_state(), on_cpu), "family.init.cpu", subject,
           "building for another device drew a different amount from the CPU generator than building for the CPU: "
           "initialise every weight on the CPU, then move the networks with .to(ctx.device), so that a seed gives "
           "the same starting weights on every device")


def compatible_objectives(probe: FamilyProbe) -> list[str]:
    """The objectives a run may pair with the family: those it lists, else all that need what its D provides."""
    spec, registry = probe.spec, probe.registry
    return [name for name in registry.names("objective")
            if registry.objective(name).needs == spec.provides and (not spec.objectives or name in spec.objectives)]


def _every_objective(probe: FamilyProbe, subject: str) -> None:
    names = compatible_objectives(probe)
    expect(probe.spec.default_objective in names, "family.objectives", subject,
           f"the default objective {probe.spec.default_objective!r} is not among those it trains with: {names}")
    data = h.tiny_dataset(*SHAPE)
    for name in names:
        model = probe.build(data, objective=probe.objective(name))
        for logs in h.steps(model, h.stream(data), 1):
            check_logs(logs, "family.objectives", f"{subject} with {name}")


def _capacity_knobs(probe: FamilyProbe, subject: str) -> None:
    """Each declared knob builds at its first and last value, and capacity grows from the one to the other
    (``--recipe matched`` searches the values assuming it does; see ganbench.training.capacity)."""
    from ganbench.training.capacity import capacity_probe
    from ganbench.plugin.model import BuildContext, TrainSettings

    data = h.tiny_dataset(*SHAPE)
    ctx = BuildContext(data.info, probe.objective(), TrainSettings(batch_size=h.BATCH, options=dict(probe.options)), h.CPU)
    knobs = dict(probe.spec.capacity_knobs)
    cost = capacity_probe(probe.spec, ctx)  # a crash here is reported as this contract's violation (Contract)
    smallest = {name: values[0] for name, values in knobs.items()}
    for name, values in knobs.items():
        low, high = cost(smallest), cost({**smallest, name: values[-1]})
        expect(high.params_g + high.params_d > low.params_g + low.params_d
               and high.flops_g + high.flops_d >= low.flops_g + low.flops_d, "family.capacity_knobs", subject,
               f"capacity_knobs[{name!r}] must list values in growing capacity: {name}={values[0]!r} gives "
               f"{low.params_g + low.params_d:,} parameters, {name}={values[-1]!r} gives "
               f"{high.params_g + high.params_d:,}")


def state_contracts(probe: FamilyProbe) -> list[Contract]:
    subject = f"{probe.spec.name}@{h.shape_name(SHAPE)}"
    checks = {
        "family.checkpoint.round_trip": _checkpoint, "family.resume": _resume, "family.deterministic": _deterministic,
        "family.train_step.no_host_sync": _no_host_sync, "family.init.cpu": _same_init_on_every_device,
        "family.objectives": _every_objective,
    }
    if probe.spec.capacity_knobs:  # checked only for a family that takes part in --recipe matched
        checks["family.capacity_knobs"] = _capacity_knobs
    return [Contract(cid, subject, lambda check=check: check(probe, subject)) for cid, check in checks.items()]
