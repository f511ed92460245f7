"""The built-in recipes as data: every value pinned against the source it cites, the docs rendered from the
data, and the families really training with it (DCGAN's CIFAR width at 32 px, ProGAN's schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganbench.plugin.citations import Cited
from ganbench_builtin import recipes

DOCS = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"

G14 = "goodfeli/adversarial mnist.yaml; REFERENCES §2.1"
R15 = "Radford et al. 2015 §4; REFERENCES §2.4"
TORCH64 = "PyTorch DCGAN example ngf = ndf = 64 (512-256-128-64); REFERENCES §2.4"
M14 = "Mirza & Osindero 2014 §4.1; REFERENCES §2.3"
D15 = "Denton et al. 2015 §4, eyescream; REFERENCES §2.2"
K17 = "Karras et al. 2017 App. A; official Theano CIFAR-10 config; REFERENCES §2.6"
GUL = "Gulrajani et al. 2017 Algorithm 1; REFERENCES §8"
B17 = "Berthelot et al. 2017 §4; REFERENCES §2.5"
B17_LOSS = "Berthelot et al. 2017 §3.4; REFERENCES §2.5"
CARPEDM20 = "carpedm20/BEGAN-tensorflow config.py; REFERENCES §2.5"
CARPEDM20_TTUR = "carpedm20/BEGAN-tensorflow config.py, TTUR BEGAN run.sh; REFERENCES §2.5"
SMALL = "ganbench, measured on the digits at 16 px (began.py); REFERENCES §2.5 for the paper's value"

#: (table, setting) -> (the source it must cite, that source's published value), copied from REFERENCES by hand.
PUBLISHED = {
    ("vanilla", "latent"): ("goodfeli/adversarial mnist.yaml, Generator.get_noise; REFERENCES §2.1", "gaussian(100)"),
    ("vanilla", "objective"): ("Goodfellow et al. 2014 §3, the released code's cost; REFERENCES §2.1", "nonsaturating"),
    ("vanilla", "n_critic"): ("Goodfellow et al. 2014 Algorithm 1 (k = 1); REFERENCES §2.1", 1),
    ("vanilla", "hidden_g"): (G14, (1200, 1200)),
    ("vanilla", "hidden_d"): (G14, "maxout 240x5, 240x5"),
    ("vanilla", "dropout_d"): (G14, 0.5),
    ("vanilla", "optimiser"): (G14, "SGD, momentum 0.5 -> 0.7"),
    ("vanilla", "lr"): (G14, 0.1),
    ("vanilla", "betas"): (R15, (0.5, 0.999)),
    ("vanilla", "batch_size"): (G14, 100),
    ("dcgan", "latent"): ("dcgan.torch noise:normal(); REFERENCES §2.4", "gaussian(100)"),
    ("dcgan", "objective"): (R15, "nonsaturating"),
    ("dcgan", "n_critic"): (R15, 1),
    ("dcgan", "optimiser"): (R15, "Adam"),
    ("dcgan", "lr"): (R15, 2e-4),
    ("dcgan", "betas"): (R15, (0.5, 0.999)),
    ("dcgan", "init"): (R15, "N(0, 0.02)"),
    ("dcgan", "batch_size"): (R15, 128),
    ("dcgan", "width at 64 px"): (TORCH64, 64),
    ("dcgan", "width at 32 px"): ("the common CIFAR-10 variant, 512-256-128; REFERENCES §2.4 (a)", 128),
    ("dcgan", "width at other sizes"): (TORCH64, 64),
    ("conditional", "latent"): (M14, "uniform(100)"),
    ("conditional", "networks"): (M14, "MLP with maxout units"),
    ("conditional", "objective"): ("Mirza & Osindero 2014 eq. 2; REFERENCES §2.3", "nonsaturating"),
    ("conditional", "optimiser"): (M14, "SGD, momentum 0.5 -> 0.7"),
    ("conditional", "lr"): (M14, 0.1),
    ("conditional", "betas"): (R15, (0.5, 0.999)),
    ("conditional", "width"): (TORCH64, 64),
    ("conditional", "batch_size"): (M14, 100),
    ("lapgan", "latent"): (D15, "uniform(100) + one noise plane per finer level"),
    ("lapgan", "objective"): (D15, "nonsaturating"),
    ("lapgan", "n_critic"): (D15, 1),
    ("lapgan", "hidden_g level 0"): (D15, (1200, 1200)),
    ("lapgan", "hidden_d level 0"): (D15, (600, 600)),
    ("lapgan", "width levels >= 1"): (D15, 64),
    ("lapgan", "optimiser"): (D15, "SGD, momentum 0 -> 0.7"),
    ("lapgan", "lr levels >= 1"): (D15, 0.02),
    ("lapgan", "lr level 0"): (D15, 0.02),
    ("lapgan", "betas"): (R15, (0.5, 0.999)),
    ("lapgan", "batch_size"): (D15, 128),
    ("progressive", "latent"): (K17, "sphere(128)"),
    ("progressive", "objective"): (K17, "wgan-gp + drift 0.001"),
    ("progressive", "n_critic"): (K17, 1),
    ("progressive", "optimiser"): (K17, "Adam, eps 1e-8"),
    ("progressive", "lr"): (K17, 1e-3),
    ("progressive", "betas"): (K17, (0.0, 0.99)),
    ("progressive", "batch_size"): (K17, 16),
    ("progressive", "width"): (K17, 128),
    ("progressive", "gradient penalty target"): (K17, 750.0),
    ("progressive", "grow fraction"): (K17, 2_800 / 20_000),
    ("progressive", "ema of G"): (K17, "0.999 per batch of 16 (half-life 11.1 kimg)"),
    ("began", "latent"): (B17, "uniform(64)"),
    ("began", "objective"): (B17_LOSS, "began: L1 auto-encoder losses, k_t equilibrium"),
    ("began", "n_critic"): (B17_LOSS, 1),
    ("began", "k_0"): (B17_LOSS, 0.0),
    ("began", "lambda_k from 32 px"): (B17_LOSS, 0.001),
    ("began", "gamma from 32 px"): (CARPEDM20_TTUR, 0.5),
    ("began", "width (n) from 32 px"): (B17, 64),
    ("began", "hidden (N_h) from 32 px"): (B17, 64),
    ("began", "optimiser"): (B17, "Adam"),
    ("began", "lr_g from 32 px"): (CARPEDM20, 1e-4),
    ("began", "lr_d from 32 px"): (CARPEDM20, 1e-4),
    ("began", "betas"): (CARPEDM20, (0.5, 0.999)),
    ("began", "lr decay"): (B17, "x0.5 when M_global stalls"),
    ("began", "lr floor"): ("carpedm20/BEGAN-tensorflow config.py lr_lower_boundary; REFERENCES §2.5", 2e-5),
    ("began", "batch_size"): (CARPEDM20_TTUR, 16),
    # below 32 px: ganbench's small-image recipe, each value a departure from the paper's
    ("began", "width (n) below 32 px"): (SMALL, 64),
    ("began", "hidden (N_h) below 32 px"): (SMALL, 64),
    ("began", "gamma below 32 px"): (SMALL, 0.5),
    ("began", "lambda_k below 32 px"): (SMALL, 0.001),
    ("began", "lr_g below 32 px"): (SMALL, 1e-4),
    ("began", "lr_d below 32 px"): (CARPEDM20, 1e-4),
    ("objectives", "wgan-gp n_critic"): (GUL, 5),
    ("objectives", "wgan-gp lambda"): (GUL, 10.0),
    ("objectives", "hinge n_critic"): ("Miyato et al. 2018 §2 (CIFAR-10 recipe, n_dis 5); REFERENCES §8", 5),
}

ENTRIES = [(table, name, cited) for table, rows in recipes.TABLES.items() for name, cited in rows.items()]


def test_every_value_is_pinned_against_the_source_it_cites():
    assert {(t, n) for t, n, _ in ENTRIES} == set(PUBLISHED)  # nothing untested, nothing stale
    for table, name, cited in ENTRIES:
        source, published = PUBLISHED[(table, name)]
        assert cited.source == source, (table, name)
        assert (cited.paper if cited.departs else cited.value) == published, (table, name)


def test_every_departure_and_extrapolation_says_why():
    for table, name, cited in ENTRIES:
        if cited.departs:
            assert cited.value != cited.paper and len(cited.note) > 20, (table, name)
    extrapolated = [n for t, n, c in ENTRIES if c.note.startswith("extrapolated")]
    assert extrapolated == ["width at other sizes"]


def test_the_docs_table_is_rendered_from_the_data():
    text = DOCS.read_text()
    assert recipes.render() in text, "docs/recipes.md is stale: run python -m ganbench_builtin.recipes docs/recipes.md"
    assert "| width at 32 px | 128 |" in text and "| lr level 0 | 0.001 |" in text


def test_render_shows_the_papers_value_beside_a_departure():
    from ganbench.plugin.citations import render_table

    table = render_table("x", {"lr": Cited(2e-4, "A 2000 §1", paper=0.1, note="because"), "k": Cited(1, "B §2")})
    assert "| lr | 0.0002 | A 2000 §1 | 0.1: because |" in table and "| k | 1 | B §2 |  |" in table


@pytest.mark.parametrize("resolution, channels", [(32, [512, 256, 128]), (64, [512, 256, 128, 64]), (16, [128, 64])])
def test_dcgan_trains_with_the_recipes_width(registry, resolution, channels):
    """Built with the options a run passes (declared defaults included), not with none at all.

    A declared default of 64 once overrode the recipe's 128 at 32 px in every real run, while a
    build without options, as this test did then, saw the recipe's width.
    """
    from ganbench.plugin.data import DataInfo
    from ganbench.plugin.model import BuildContext, TrainSettings
    from ganbench.plugin.options import with_defaults

    info = DataInfo("x", 3, resolution)
    settings = TrainSettings(8, options=with_defaults(registry.model("dcgan"), {}))
    ctx = BuildContext(info, registry.objective("nonsaturating").build(), settings, torch.device("cpu"))
    model = registry.model("dcgan").build(ctx)
    convs = [m.out_channels for m in model.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert convs[:-1] == channels


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_progressive_spends_most_of_the_budget_at_full_resolution(resolution):
    from ganbench_builtin.progressive import full_resolution_fraction, geometry, schedule

    _, k = geometry(resolution)
    share = full_resolution_fraction(k)
    assert share >= 0.5 and share >= 1 - 0.14
    steps = [schedule(i / 10_000, k) for i in range(10_000)]
    measured = sum(1 for level, alpha in steps if level == k and alpha == 1.0) / len(steps)
    assert measured == pytest.approx(share, abs=1e-3)


def test_the_docs_can_be_regenerated(tmp_path):
    copy = tmp_path / "recipes.md"
    copy.write_text(f"intro\n{recipes.BEGIN}\nold table\n{recipes.END}\noutro\n")
    recipes.write_docs(copy)
    text = copy.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert recipes.render() in text


def test_began_builds_with_the_tabled_recipe_below_and_from_32_px(registry):
    """The small-image rows are what a 16 px run trains with, the paper's what a 32 px run does."""
    from ganbench.plugin.data import DataInfo
    from ganbench.plugin.model import BuildContext, TrainSettings
    from ganbench_builtin.began import recipe

    began = recipes.BEGAN
    for resolution, where in ((16, "below 32 px"), (32, "from 32 px")):
        values = recipe(resolution, {})
        assert values["hidden"] == began[f"hidden (N_h) {where}"].value
        assert values["gamma"] == began[f"gamma {where}"].value and values["lr_g"] == began[f"lr_g {where}"].value
        info = DataInfo("x", 1, resolution)
        ctx = BuildContext(info, registry.objective("began").build(), TrainSettings(8), torch.device("cpu"))
        model = registry.model("began").build(ctx)
        assert model.discriminator.encoder.fc.out_features == began[f"hidden (N_h) {where}"].value
        assert model.objective.lambda_k == began[f"lambda_k {where}"].value
        assert model.opt_g.param_groups[0]["lr"] == began[f"lr_g {where}"].value


def test_began_plans_with_its_papers_batch_unless_the_user_gives_one(registry):
    from ganbench.plugin.model import TrainSettings
    from ganbench.execution.runner import Invocation, plan

    began, dcgan = plan(registry, Invocation(plugins=("began", "dcgan"), device="cpu"))
    assert began.config.batch_size == recipes.BEGAN["batch_size"].value == 16 and dcgan.config.batch_size == 64
    assert began.config.hparams_label == "batch_size=16"  # a leaderboard row of its own, and in the identity
    (given,) = plan(registry, Invocation(plugins=("began",), device="cpu", settings=TrainSettings(batch_size=64)))
    assert given.config.batch_size == 64 and given.config.run_id != began.config.run_id


def test_an_images_budget_gives_every_family_the_same_images_whatever_its_batch(registry, tmp_path):
    from ganbench.training.budget import Budget
    from ganbench.execution.runner import Invocation, execute

    inv = Invocation(plugins=("began", "dcgan"), budget=Budget.parse("64img"), results=tmp_path, device="cpu")
    began, dcgan = execute(registry, inv)
    assert began.images == dcgan.images == 64
    assert (began.steps, dcgan.steps) == (4, 1)  # batches of 16 and 64: four times the G updates for BEGAN


def test_a_run_leaves_dcgans_width_to_the_recipe_unless_given(registry):
    """The width option declares no default, so a run at 32 px gets the CIFAR variant's 128, not a flat 64."""
    from ganbench.execution.runner import Invocation, family_options, plan

    (run,) = plan(registry, Invocation(plugins=("dcgan",), device="cpu", resolution=32))
    assert "width" not in family_options(run.model, run.config)
    (given,) = plan(registry, Invocation(plugins=("dcgan",), device="cpu", plugin_options={"dcgan": {"width": 32}}))
    assert family_options(given.model, given.config)["width"] == 32
