"""Contract violations at run time fail the run with a message naming the contract, the plugin and its
distribution, instead of an internal error or a silently scored result."""

import math

import pytest
import torch
from torch import nn

import ganbench
from ganbench.training.budget import Budget
from ganbench.plugin.contracts import check_critic_output, check_images, check_vectors, critic_outputs_unchecked
from ganbench.errors import ContractError
from ganbench.plugin.model import TrainSettings
from ganbench.plugin.registry import PluginInfo, build_registry
from ganbench.execution.runner import Invocation, execute

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPE = (1, 16, 16)


class Generator(nn.Module):
    def __init__(self, flaw):
        super().__init__()
        self.flaw = flaw
        self.net = nn.Linear(8, math.prod(SHAPE))

    def forward(self, z):
        x = torch.tanh(self.net(z))
        if self.flaw == "flat":
            return x
        if self.flaw == "half":
            return x.view(-1, *SHAPE)[..., ::2, ::2]
        if self.flaw == "range":
            return 3 * x.view(-1, *SHAPE)
        if self.flaw == "dtype":
            return (x.view(-1, *SHAPE) > 0).to(torch.int64)
        return x.view(-1, *SHAPE)


class Discriminator(nn.Module):
    def __init__(self, flaw):
        super().__init__()
        self.net = nn.Linear(math.prod(SHAPE), 3 if flaw == "wide-d" else 1)

    def forward(self, x):
        return self.net(x.flatten(1))


class NumbersModel(ganbench.AdversarialModel):
    def train_step(self, draw, ctx):
        super().train_step(draw, ctx)
        return torch.tensor(1.0)


def _build(flaw):
    def build(ctx):
        if flaw == "wrong-type":
            return nn.Linear(2, 2)
        g, d = Generator(flaw), Discriminator(flaw)
        cls = NumbersModel if flaw == "not-a-dict" else ganbench.AdversarialModel
        return cls(g, d, torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters()), ctx.objective, ctx,
                   latent_dim=8, latent="gaussian")
    return build


FLAWS = {
    "wrong-type": "its build returned Linear, not a GanModel (it has no networks, optimizers, train_step",
    "flat": "generate returned shape (64, 256) for 64 latents; the data needs (64, 1, 16, 16)",
    "half": "generate returned shape (64, 1, 8, 8)",
    "range": "images must lie in [-1, 1]",
    "dtype": "generate returned torch.int64",
    "wide-d": "the discriminator returned shape (16, 3) for a batch of 16",
    "not-a-dict": "train_step returned Tensor, not a dict",
}


class Flawed:
    GANBENCH_API_VERSION = 1

    @ganbench.hookimpl
    def ganbench_models(self):
        return [ganbench.ModelSpec(name, _build(name), "flawed on purpose", "nobody", "nonsaturating")
                for name in FLAWS]


def test_each_broken_contract_fails_its_run_naming_it_the_family_and_its_distribution(tmp_path):
    registry = build_registry(disabled=["progress"], extra=[(PluginInfo("flawed", "flawed_mod", "ganbench-flawed",
                                                                        "0.7"), Flawed())])
    inv = Invocation(plugins=(*FLAWS, "vanilla"), dataset="digits", budget=Budget.parse("1steps"), results=tmp_path,
                     device="cpu", settings=TrainSettings(batch_size=16))
    records = execute(registry, inv)
    by_family = {r.family: r for r in records}
    assert by_family.pop("vanilla").status == "completed"  # a broken plugin never costs the others
    assert_failed_naming(by_family, FLAWS, "(flawed_mod) from ganbench-flawed 0.7")


def assert_failed_naming(by_family, flaws, origin):
    """Each flawed family's run failed, naming the family, its entry point and distribution, and the contract."""
    for family, contract in flaws.items():
        record = by_family[family]
        assert record.status == "failed", family
        assert record.error.startswith(f"The family {family!r} (entry point 'flawed' {origin}) broke the plugin "
                                       "contract family."), record.error
        assert contract in record.error, record.error


def test_a_reconstruction_discriminator_returns_images_of_the_batch_shape():
    batch = torch.zeros(4, 1, 8, 8)
    check_critic_output(torch.zeros(4, 1, 8, 8), batch, ganbench.RECONSTRUCTION)
    check_critic_output(torch.zeros(4, 1), batch, ganbench.LOGIT)
    with pytest.raises(ContractError, match=r"shape \(4, 64\) for a batch of shape \(4, 1, 8, 8\)"):
        check_critic_output(torch.zeros(4, 64), batch, ganbench.RECONSTRUCTION)


def test_a_broken_contract_reads_the_same_in_a_run_and_in_the_conformance_kit():
    from ganbench.testing import Contract, ContractError as KitError

    images = torch.full((2, 1, 4, 4), 3.0)
    with pytest.raises(ContractError) as in_a_run:
        check_images(images, 2, 1, 4)
    detail = in_a_run.value.detail
    assert str(in_a_run.value) == f"contract family.generate.range: {detail}" and "[-1, 1]" in detail
    kit = KitError("family.generate.range", "mygan@1x4", detail)
    assert isinstance(kit, ContractError) and isinstance(kit, AssertionError)  # one concept; pytest sees a failure
    assert str(kit) == f"contract family.generate.range: mygan@1x4: {detail}" and kit.kind == "model"
    # the core's check firing while the kit checks a contract is the kit's failure, in the same words, not a crash
    with pytest.raises(KitError) as in_the_kit:
        Contract("family.generate.range", "mygan@1x4", lambda: check_images(images, 2, 1, 4)).check()
    assert str(in_the_kit.value) == str(kit) and in_the_kit.value.__cause__ is None


def test_turning_the_critic_check_off_holds_in_its_own_thread_only():
    import threading

    batch, wrong = torch.zeros(4, 1, 8, 8), torch.zeros(4, 3)
    entered, done, seen = threading.Event(), threading.Event(), []

    def kit() -> None:  # the conformance kit training a family, in another thread
        with critic_outputs_unchecked():
            check_critic_output(wrong, batch)  # unchecked here
            entered.set()
            done.wait(5)

    thread = threading.Thread(target=kit)
    thread.start()
    assert entered.wait(5)
    try:
        check_critic_output(wrong, batch)  # a run in this thread is still checked
    except ContractError as exc:
        seen.append(exc.contract)
    finally:
        done.set()
        thread.join()
    assert seen == ["family.discriminator.output"]
    with critic_outputs_unchecked():
        with critic_outputs_unchecked():
            pass
        check_critic_output(wrong, batch)  # still off after a nested block ends
    with pytest.raises(ContractError):
        check_critic_output(wrong, batch)  # and on again after the outer one


# -- vectors: shape (B, D), floating point, finite; no [-1, 1] range unless the dataset declares one ----------


class VectorGenerator(nn.Module):
    def __init__(self, flaw):
        super().__init__()
        self.flaw = flaw
        self.net = nn.Linear(2, 2)

    def forward(self, z):
        x = 10 * self.net(z)  # far outside [-1, 1], as vectors on the data's own scale may be
        if self.flaw == "vec-shape":
            return x.unsqueeze(1)
        if self.flaw == "vec-dtype":
            return x.round().to(torch.int64)
        if self.flaw == "vec-nan":
            return torch.where(x > 0, x, float("nan"))
        return x


VECTOR_FLAWS = {
    "vec-shape": "generate returned shape (2500, 1, 2) for 2500 latents; the data needs (2500, 2) (N, D: 2-D vectors)",
    "vec-dtype": "generate returned torch.int64; vectors are floating point",
    "vec-nan": "generate returned non-finite values",
}


class FlawedVectors:
    GANBENCH_API_VERSION = 1

    @ganbench.hookimpl
    def ganbench_models(self):
        def build(flaw):
            def make(ctx):
                g, d = VectorGenerator(flaw), nn.Linear(2, 1)
                return ganbench.AdversarialModel(g, d, torch.optim.Adam(g.parameters()),
                                                 torch.optim.Adam(d.parameters()), ctx.objective, ctx,
                                                 latent_dim=2, latent="gaussian")
            return make

        return [ganbench.ModelSpec(name, build(name), "flawed on purpose", "nobody", "nonsaturating",
                                   data_kinds=(ganbench.VECTOR,)) for name in (*VECTOR_FLAWS, "vec-wide")]


def test_vector_generators_are_checked_for_shape_dtype_and_finite_values_not_range(tmp_path):
    registry = build_registry(disabled=["progress"], extra=[(PluginInfo("flawed", "flawed_vec", "ganbench-flawed",
                                                                        "0.8"), FlawedVectors())])
    inv = Invocation(plugins=(*VECTOR_FLAWS, "vec-wide"), dataset="ring", budget=Budget.parse("1steps"),
                     results=tmp_path, device="cpu", settings=TrainSettings(batch_size=20))
    by_family = {r.family: r for r in execute(registry, inv)}
    assert by_family.pop("vec-wide").status == "completed"  # samples around 10 on a unit ring: a scale, not a flaw
    assert_failed_naming(by_family, VECTOR_FLAWS, "(flawed_vec) from ganbench-flawed 0.8")


def test_a_declared_range_of_vectors_is_enforced():
    points = torch.tensor([[0.5, -0.9], [1.5, 0.0]])
    check_vectors(points, 2, 2)  # no range declared: any finite scale
    check_vectors(points, 2, 2, value_range=(-2.0, 2.0))
    with pytest.raises(ContractError, match=r"values in \[-0.9, 1.5\]; this dataset's vectors lie in \[-1, 1\]"):
        check_vectors(points, 2, 2, value_range=(-1.0, 1.0))
    check_vectors(torch.full((2, 2), float("inf")), 2, 2, values=False)  # values read only when asked (once a process)
