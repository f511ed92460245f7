"""vanilla on vector data: the data's per-feature loc/scale, the two configurations and how a run picks one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganbench.cli import main
from ganbench.errors import UsageError
from ganbench.plugin.data import DatasetRequest
from ganbench.plugin.model import BuildContext, TrainSettings
from ganbench.training.packing import Packed, pack, widened
from ganbench_builtin import vanilla_vectors as vectors
from ganbench_builtin.datasets import toys
from ganbench_builtin.vanilla import build

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(text: str, argument: str | None = None):
    name = text.partition(":")[0]
    loader = {"gauss1d": toys.load_gauss1d, "ring": toys.load_ring}[name]
    return loader(DatasetRequest(text, argument, Path(".")))


def _ctx(registry, info, **options) -> BuildContext:
    return BuildContext(info, registry.objective("nonsaturating").build(), TrainSettings(options=options),
                        torch.device("cpu"))


def test_vector_data_tell_a_family_their_per_feature_mean_and_spread(tiny_dataset):
    info = _data("gauss1d:3,0.5", "3,0.5").info
    assert info.dim == 1 and info.pack == 1
    assert info.loc[0] == pytest.approx(3, abs=0.01) and info.scale[0] == pytest.approx(0.5, abs=0.01)
    ring = _data("ring").info
    assert len(ring.loc) == len(ring.scale) == 2 and ring.scale[0] == pytest.approx(0.5 ** 0.5, abs=0.01)
    assert tiny_dataset.info.loc == tiny_dataset.info.scale == ()  # images: nothing to standardise


def test_a_packed_discriminator_sees_loc_and_scale_repeated_once_per_sample():
    info = _data("ring").info
    packed = widened(info, 3)
    assert packed.dim == 6 and packed.pack == 3
    assert packed.loc == info.loc * 3 and packed.scale == info.scale * 3


def test_one_d_data_get_the_standardised_mlp_and_two_d_data_pacgans_networks(registry):
    gauss = build(_ctx(registry, _data("gauss1d").info))
    assert isinstance(gauss.discriminator, vectors.MlpDiscriminator)
    ring = build(_ctx(registry, _data("ring").info))
    assert isinstance(ring.discriminator, vectors.ToyDiscriminator)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in ring.generator.modules())
    # the option overrides the default either way
    assert isinstance(build(_ctx(registry, _data("gauss1d").info, net="pacgan")).discriminator,
                      vectors.ToyDiscriminator)
    assert isinstance(build(_ctx(registry, _data("ring").info, net="mlp")).discriminator, vectors.MlpDiscriminator)


def test_the_mlp_generates_in_the_datas_units_and_judges_standardised_inputs(registry):
    """At initialisation G's outputs sit near the data's mean (16), not near 0; D sees (x - 16) / 5."""
    model = build(_ctx(registry, _data("gauss1d").info))
    model.eval()
    with torch.no_grad():
        x = model.generate(torch.randn(2000, model.latent_dim))
    assert abs(x.mean().item() - 16) < 5 and x.std().item() < 5
    standardise = model.discriminator.net[0]
    assert standardise(torch.tensor([[16.0], [21.0]])).flatten().tolist() == pytest.approx([0, 1], abs=0.02)
    assert {"loc", "scale"} <= {name.rpartition(".")[2] for name, _ in model.generator.named_buffers()}
    assert sum(b.numel() for b in model.generator.buffers()) == 2  # loc and scale are buffers, not trained


def test_packing_one_d_data_keeps_the_mlp_for_the_wider_discriminator(registry):
    """The packed build sees 2-D inputs, but 1-D samples: it must not switch to PacGAN's 2-D networks."""
    ctx = _ctx(registry, _data("gauss1d").info)
    model = pack(build(ctx), build, ctx, 2)
    assert isinstance(model.discriminator, Packed)
    inner = model.discriminator.inner
    assert isinstance(inner, vectors.MlpDiscriminator)
    assert inner.net[0].loc.tolist() == pytest.approx([16, 16], abs=0.1)
    assert model.discriminator(torch.full((6, 1), 16.0)).shape == (3,)


def test_an_unknown_configuration_is_refused_with_the_choices(registry):
    with pytest.raises(UsageError, match=r"net='big'.*'pacgan'.*'mlp'"):
        build(_ctx(registry, _data("gauss1d").info, net="big"))


def test_a_constant_feature_is_left_unscaled_rather_than_divided_by_zero():
    affine = vectors.Affine((2.0, 5.0), (0.0, 2.0), 2, inverse=True)
    assert affine(torch.tensor([[3.0, 9.0]])).tolist() == [[1.0, 2.0]]
    with pytest.raises(UsageError, match="3/3 entries for 2-D"):
        vectors.Affine((0.0,) * 3, (1.0,) * 3, 2)


def test_scoring_a_gauss1d_run_rebuilds_its_standardisation_and_reproduces_its_scores(tmp_path, capsys):
    assert main(["run", "--dataset", "gauss1d", "--plugins", "vanilla", "--budget", "20steps", "--eval-at=",
                 "--results", str(tmp_path)]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "run.json").read_text())
    assert record["scores"]["w1_10k"] < 16  # G starts in the data's units, not 16 away from them
    capsys.readouterr()
    assert main(["score", str(run), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] == pytest.approx(record["scores"])
