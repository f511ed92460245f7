"""The built-in families' paper recipes, as data: every setting with the source it comes from.

The family modules read their constants from here, docs/recipes.md renders these tables (regenerate it with
``python -m ganbench_builtin.recipes docs/recipes.md``; a test fails when it is stale), and
tests/test_recipes.py pins every value against the source it cites. No torch import: this is plain data.

Where ganbench departs from a paper, the entry holds the paper's value too and says why; where it extrapolates
to a resolution the paper never trained at, the note says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ganbench import Cited, render_table

RADFORD = "Radford et al. 2015 §4; REFERENCES §2.4"
SAME_BATCH = ("ganbench's common batch for the families that do not keep their paper's (BEGAN alone keeps its 16, "
              "the batch its k_t equilibrium was published with): a step budget then buys these families the same "
              "number of images, and a CPU step stays short; --batch-size sets another")
SAME_ADAM = ("Adam as in DCGAN, so the budget buys every family the same kind of optimisation (the paper's SGD "
             "schedule needs far more updates than a benchmark budget)")

VANILLA = {
    "latent": Cited("gaussian(100)", "goodfeli/adversarial mnist.yaml, Generator.get_noise; REFERENCES §2.1"),
    "objective": Cited("nonsaturating", "Goodfellow et al. 2014 §3, the released code's cost; REFERENCES §2.1"),
    "n_critic": Cited(1, "Goodfellow et al. 2014 Algorithm 1 (k = 1); REFERENCES §2.1"),
    "hidden_g": Cited((256, 512, 1024), "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper=(1200, 1200),
                      note="the LeakyReLU MLP that became the standard re-implementation of the original GAN"),
    "hidden_d": Cited((1024, 512, 256), "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper="maxout 240x5, 240x5",
                      note="plain LeakyReLU layers instead of maxout, as in the standard re-implementation"),
    "dropout_d": Cited(0.3, "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper=0.5,
                       note="the standard re-implementation's rate"),
    "optimiser": Cited("Adam", "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper="SGD, momentum 0.5 -> 0.7",
                       note=SAME_ADAM),
    "lr": Cited(2e-4, "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper=0.1, note=SAME_ADAM),
    "betas": Cited((0.5, 0.999), RADFORD),
    "batch_size": Cited(64, "goodfeli/adversarial mnist.yaml; REFERENCES §2.1", paper=100, note=SAME_BATCH),
}

DCGAN = {
    "latent": Cited("gaussian(100)", "dcgan.torch noise:normal(); REFERENCES §2.4",
                    note="the paper's text says uniform; --latent uniform restores it"),
    "objective": Cited("nonsaturating", RADFORD),
    "n_critic": Cited(1, RADFORD),
    "optimiser": Cited("Adam", RADFORD),
    "lr": Cited(2e-4, RADFORD),
    "betas": Cited((0.5, 0.999), RADFORD),
    "init": Cited("N(0, 0.02)", RADFORD),
    "batch_size": Cited(64, RADFORD, paper=128, note=SAME_BATCH),
    "width at 64 px": Cited(64, "PyTorch DCGAN example ngf = ndf = 64 (512-256-128-64); REFERENCES §2.4"),
    "width at 32 px": Cited(128, "the common CIFAR-10 variant, 512-256-128; REFERENCES §2.4 (a)"),
    "width at other sizes": Cited(64, "PyTorch DCGAN example ngf = ndf = 64 (512-256-128-64); REFERENCES §2.4",
                                  note="extrapolated: the paper trained at 64 px; smaller images drop the "
                                  "64 px net's first stages (16 px: 128-64)"),
}

CONDITIONAL = {
    "latent": Cited("gaussian(100)", "Mirza & Osindero 2014 §4.1; REFERENCES §2.3", paper="uniform(100)",
                    note="as dcgan, so the two differ only by their conditioning; --latent uniform restores it"),
    "networks": Cited("DCGAN, one-hot label joins z (G) and the image planes (D)",
                      "Mirza & Osindero 2014 §4.1; REFERENCES §2.3", paper="MLP with maxout units",
                      note="the convolutional concat-cGAN later work took as the conditional baseline"),
    "objective": Cited("nonsaturating", "Mirza & Osindero 2014 eq. 2; REFERENCES §2.3"),
    "optimiser": Cited("Adam", "Mirza & Osindero 2014 §4.1; REFERENCES §2.3", paper="SGD, momentum 0.5 -> 0.7",
                       note=SAME_ADAM),
    "lr": Cited(2e-4, "Mirza & Osindero 2014 §4.1; REFERENCES §2.3", paper=0.1, note=SAME_ADAM),
    "betas": Cited((0.5, 0.999), RADFORD),
    "width": Cited(64, "PyTorch DCGAN example ngf = ndf = 64 (512-256-128-64); REFERENCES §2.4"),
    "batch_size": Cited(64, "Mirza & Osindero 2014 §4.1; REFERENCES §2.3", paper=100, note=SAME_BATCH),
}

EYESCREAM = "Denton et al. 2015 §4, eyescream; REFERENCES §2.2"
LAPGAN = {
    "latent": Cited("uniform(100) + one noise plane per finer level", EYESCREAM),
    "objective": Cited("nonsaturating", EYESCREAM),
    "n_critic": Cited(1, EYESCREAM),
    "hidden_g level 0": Cited((1200, 1200), EYESCREAM),
    "hidden_d level 0": Cited((600, 600), EYESCREAM),
    "width levels >= 1": Cited(64, EYESCREAM),
    "optimiser": Cited("Adam", EYESCREAM, paper="SGD, momentum 0 -> 0.7", note=SAME_ADAM),
    "lr levels >= 1": Cited(2e-4, EYESCREAM, paper=0.02, note=SAME_ADAM),
    "lr level 0": Cited(1e-3, EYESCREAM, paper=0.02,
                        note="at 2e-4 the MLP level needs ~1,750 steps to leave collapse, at 1e-3 ~350 (lapgan.py)"),
    "betas": Cited((0.5, 0.999), RADFORD),
    "batch_size": Cited(64, EYESCREAM, paper=128, note=SAME_BATCH),
}

PROGAN = "Karras et al. 2017 App. A; official Theano CIFAR-10 config; REFERENCES §2.6"
PROGRESSIVE = {
    "latent": Cited("sphere(128)", PROGAN),
    "objective": Cited("wgan-gp + drift 0.001", PROGAN),
    "n_critic": Cited(1, PROGAN),
    "optimiser": Cited("Adam, eps 1e-8", PROGAN),
    "lr": Cited(1e-3, PROGAN),
    "betas": Cited((0.0, 0.99), PROGAN),
    "batch_size": Cited(64, PROGAN, paper=16, note=SAME_BATCH),
    "width": Cited(64, PROGAN, paper=128, note="four times cheaper per conv on a CPU; options width=128 restores it"),
    "gradient penalty target": Cited(1.0, PROGAN, paper=750.0,
                                     note="the shared wgan-gp objective; every other configuration of the paper uses 1"),
    "grow fraction": Cited(0.14, PROGAN,
                           note="the fraction of the budget spent growing: 32 px is stable after 2,800 of "
                           "20,000 kimg; every resolution keeps the paper's ratio"),
    "ema of G": Cited("off (--ema 11.1)", PROGAN, paper="0.999 per batch of 16 (half-life 11.1 kimg)",
                      note="opt-in with --ema: under a short budget an average lags G by most of the run"),
}

B17 = "Berthelot et al. 2017 §4; REFERENCES §2.5"
B17_OBJECTIVE = "Berthelot et al. 2017 §3.4; REFERENCES §2.5"
CARPEDM20 = "carpedm20/BEGAN-tensorflow config.py; REFERENCES §2.5"
CARPEDM20_TTUR = "carpedm20/BEGAN-tensorflow config.py, TTUR BEGAN run.sh; REFERENCES §2.5"
#: Below 32 px the paper publishes nothing; ganbench's values were measured on the digits (began.py, "Why it
#: collapsed"), each against the paper's value it replaces.
SMALL = "ganbench, measured on the digits at 16 px (began.py); REFERENCES §2.5 for the paper's value"
BEGAN = {
    "latent": Cited("uniform(64)", B17),
    "objective": Cited("began: L1 auto-encoder losses, k_t equilibrium", B17_OBJECTIVE),
    "n_critic": Cited(1, B17_OBJECTIVE),
    "k_0": Cited(0.0, B17_OBJECTIVE),
    "lambda_k from 32 px": Cited(0.001, B17_OBJECTIVE),
    "gamma from 32 px": Cited(0.5, CARPEDM20_TTUR),
    "width (n) from 32 px": Cited(64, B17),
    "hidden (N_h) from 32 px": Cited(64, B17),
    "optimiser": Cited("Adam", B17),
    "lr_g from 32 px": Cited(1e-4, CARPEDM20),
    "lr_d from 32 px": Cited(1e-4, CARPEDM20),
    "betas": Cited((0.5, 0.999), CARPEDM20),
    "lr decay": Cited("x0.5 when the EMA of M_global has not improved by 1 % for a quarter of the budget", B17,
                      paper="x0.5 when M_global stalls",
                      note="the paper does not say when it stalls; a patience tied to the budget can fire within "
                      "a suite's budget (carpedm20 halves every 100k steps)"),
    "lr floor": Cited(2e-5, "carpedm20/BEGAN-tensorflow config.py lr_lower_boundary; REFERENCES §2.5"),
    "batch_size": Cited(16, CARPEDM20_TTUR),
    "width (n) below 32 px": Cited(32, SMALL, paper=64,
                                   note="half the paper's n: about 4x cheaper per conv, for a CPU's budget"),
    "hidden (N_h) below 32 px": Cited(8, SMALL, paper=64,
                                      note="the digits' 64 numbers fit a 64-wide bottleneck uncompressed, so a flat "
                                      "grey image reconstructs as well as a digit and k_t stays at 0; 8 compresses"),
    "gamma below 32 px": Cited(0.75, SMALL, paper=0.5,
                               note="Lucic et al. 2018's default for their small auto-encoder (REFERENCES §2.5)"),
    "lambda_k below 32 px": Cited(0.01, SMALL, paper=0.001,
                                  note="at 0.001 k_t peaked at 0.006 and fell back to 0; 0.01 reaches the ~0.05 at "
                                  "which D rejects the fakes within a few hundred steps"),
    "lr_g below 32 px": Cited(3e-4, SMALL, paper=1e-4,
                              note="at D's lr the generator could not follow the auto-encoder's rejections (k_t "
                              "back at 0); 3x D's lr keeps k_t at 0.05-0.12"),
    "lr_d below 32 px": Cited(1e-4, CARPEDM20),
}

OBJECTIVES = {
    "wgan-gp n_critic": Cited(5, "Gulrajani et al. 2017 Algorithm 1; REFERENCES §8"),
    "wgan-gp lambda": Cited(10.0, "Gulrajani et al. 2017 Algorithm 1; REFERENCES §8"),
    "hinge n_critic": Cited(1, "Miyato et al. 2018 §2 (CIFAR-10 recipe, n_dis 5); REFERENCES §8", paper=5,
                            note="one D step like the other losses; --n-critic 5 --spectral-norm --betas 0,0.9 "
                            "gives the SN-GAN recipe"),
}

#: Every table, in the order docs/recipes.md shows them.
TABLES = {"vanilla": VANILLA, "dcgan": DCGAN, "conditional": CONDITIONAL, "lapgan": LAPGAN,
          "began": BEGAN, "progressive": PROGRESSIVE, "objectives": OBJECTIVES}
#: BEGAN's paper recipe from 32 px and ganbench's below, keyed by the family's option names (began.py reads them).
BEGAN_KNOBS = ("width (n)", "hidden (N_h)", "gamma", "lambda_k", "lr_g", "lr_d")


def began_recipe(small: bool) -> dict[str, float]:
    """BEGAN's settings by option name: below 32 px (``small``) ganbench's, from 32 px the paper's."""
    where = "below 32 px" if small else "from 32 px"
    return {label.split(" ")[0]: BEGAN[f"{label} {where}"].value for label in BEGAN_KNOBS}

#: Marks the generated part of docs/recipes.md.
BEGIN, END = "<!-- recipes: generated by python -m ganbench_builtin.recipes -->", "<!-- end of recipes -->"


def dcgan_width(resolution: int) -> int:
    """DCGAN's base width under the paper recipe: the CIFAR variant's 128 at 32 px, the 64 px net's 64 otherwise."""
    return DCGAN["width at 32 px"].value if resolution == 32 else DCGAN["width at 64 px"].value


def render() -> str:
    """The generated part of docs/recipes.md."""
    return "\n".join([BEGIN, "", *(render_table(name, rows) for name, rows in TABLES.items()), END])


def write_docs(path: Path) -> None:
    """Replace the generated part of ``path`` with :func:`render`, keeping the hand-written text around it."""
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + render() + tail)


if __name__ == "__main__":
    write_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/recipes.md"))
