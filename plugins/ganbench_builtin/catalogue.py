"""What ganbench ships, as registration records: one plugin object per entry point.

Every built-in entry point (``dcgan = "ganbench_builtin.catalogue:dcgan"`` in
``pyproject.toml``) names an object here rather than the family's own module,
so that listing plugins, planning runs and ``ganbench --help`` never import
torch: each record names its implementation with :func:`ganbench.lazy`, and the
module holding it (``ganbench_builtin.dcgan``, with the family's recipe and
sources in its docstring) is imported when a run first builds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ganbench import (
    IMAGE, RECONSTRUCTION, VECTOR, DatasetSpec, ExecutorSpec, MetricSpec, ModelSpec, ObjectiveSpec, PluginOption,
    hookimpl, lazy, lazy_mapping,
)

from ganbench_builtin.recipes import BEGAN as BEGAN_RECIPE

#: Resolutions a dataset is served at unless --resolution says otherwise (needed when planning, before loading).
DIGITS_RESOLUTION = 16
CELEBA_RESOLUTION = 64
#: LAPGAN's levels hold their own discriminators, so every objective on logits works except BEGAN's.
LAPGAN_OBJECTIVES = ("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp", "wgan")


class Contribution:
    """The records one entry point registers; pluggy registers it as it would a module."""
    #: The plugin API the built-ins target (every entry point here names an instance of this class).
    GANBENCH_API_VERSION = 1

    def __init__(self, doc: str, *, models: Iterable[ModelSpec] = (), objectives: Iterable[ObjectiveSpec] = (),
                 datasets: Iterable[DatasetSpec] = (), metrics: Iterable[MetricSpec] = (),
                 executors: Iterable[ExecutorSpec] = ()) -> None:
        self.__doc__ = doc
        self._records = {"models": list(models), "objectives": list(objectives), "datasets": list(datasets),
                         "metrics": list(metrics), "executors": list(executors)}

    @hookimpl
    def ganbench_models(self) -> list[ModelSpec]:
        return self._records["models"]

    @hookimpl
    def ganbench_objectives(self) -> list[ObjectiveSpec]:
        return self._records["objectives"]

    @hookimpl
    def ganbench_datasets(self) -> list[DatasetSpec]:
        return self._records["datasets"]

    @hookimpl
    def ganbench_metrics(self) -> list[MetricSpec]:
        return self._records["metrics"]

    @hookimpl
    def ganbench_executors(self) -> list[ExecutorSpec]:
        return self._records["executors"]


def _width(default: int) -> PluginOption:
    """The channel width option most families read (defaults mirror each module's WIDTH; a test checks them)."""
    return PluginOption("width", int, default, "base number of feature maps; smaller trains faster")


#: The widths ``--recipe matched`` may choose for a family's ``width`` option (ganbench.training.capacity searches them).
WIDTHS = tuple(range(4, 1025, 4))


def _family(module: str, **fields) -> ModelSpec:
    return ModelSpec(build=lazy(f"ganbench_builtin.{module}:build"),
                     defaults=lazy_mapping(f"ganbench_builtin.{module}:DEFAULTS"), **fields)


def _objective(target: str, name: str, description: str, paper: str, **fields) -> ObjectiveSpec:
    return ObjectiveSpec(name, lazy(f"ganbench_builtin.{target}"), description, paper, **fields)


# -- families ---------------------------------------------------------------

vanilla = Contribution("the original GAN", models=[_family(
    "vanilla", name="vanilla",
    options=(PluginOption("net", str, None, "vector data only: 'pacgan' (PacGAN's 2-D networks, the default from 2 "
                          "features) or 'mlp' (a small MLP in standardised units, the default on 1-D data)"),),
    description="the original GAN: MLP generator and discriminator (LeakyReLU, dropout); on vectors, PacGAN's "
    "2-D networks (G 4x400 ReLU+BN, D 3x200 maxout), on 1-D data a small standardised MLP",
    paper="Goodfellow et al. 2014", default_objective="nonsaturating", data_kinds=(IMAGE, VECTOR), packable=True,
)])

dcgan = Contribution("deep convolutional GAN", models=[_family(
    "dcgan", name="dcgan",
    # None: the recipe per resolution decides (128 at 32 px, the CIFAR variant; 64 elsewhere)
    options=(PluginOption("width", int, None, "channels of the finest stage (recipe: 128 at 32 px, 64 elsewhere)"),),
    capacity_knobs={"width": WIDTHS},
    description="deep convolutional GAN: strided convolutions, batch norm, ReLU/LeakyReLU",
    paper="Radford et al. 2015", default_objective="nonsaturating", packable=True,
)])

conditional = Contribution("class-conditional GAN", models=[_family(
    "conditional", name="conditional",
    options=(_width(64),),
    capacity_knobs={"width": WIDTHS},
    description="class-conditional GAN: one-hot label joins z in G and the image planes in D (DCGAN nets)",
    paper="Mirza & Osindero 2014", default_objective="nonsaturating", requires_labels=True,
)])

lapgan = Contribution("Laplacian pyramid of GANs", models=[_family(
    "lapgan", name="lapgan",
    options=(_width(64),),
    capacity_knobs={"width": WIDTHS},
    description="Laplacian pyramid of GANs: MLP GAN at the coarsest level (about 8x8), conditional conv GANs per "
    "finer band",
    paper="Denton et al. 2015", default_objective="nonsaturating", objectives=LAPGAN_OBJECTIVES,
)])

began = Contribution("boundary equilibrium GAN and its objective", models=[_family(
    "began", name="began",
    # None: the recipe for the run's resolution decides (the paper's from 32 px, the small-image one below)
    options=(PluginOption("width", int, None, "n, the base number of feature maps (recipe: 64 from 32 px, 32 below)"),
             PluginOption("hidden", int, None, "N_h, the auto-encoder's bottleneck (recipe: 64 from 32 px, 8 below)"),
             PluginOption("gamma", float, None, "diversity ratio gamma of the equilibrium (recipe: 0.5, 0.75 below 32 px)"),
             PluginOption("lambda_k", float, None, "k_t's learning rate lambda_k (recipe: 0.001, 0.01 below 32 px)"),
             PluginOption("lr_g", float, None, "generator learning rate (recipe: 1e-4, 3e-4 below 32 px)"),
             PluginOption("lr_d", float, None, "discriminator learning rate (recipe: 1e-4)"),
             PluginOption("lr_patience", int, None,
                          "steps without M_global improving before both lrs halve (default: a quarter of the budget)"),
             PluginOption("lr_patience_fraction", float, None,
                          "the same as a share of the budget (default 0.25)")),
    capacity_knobs={"width": WIDTHS},
    batch_size=BEGAN_RECIPE["batch_size"].value,  # the paper's 16 (REFERENCES §2.5; docs/recipes.md)
    description="boundary equilibrium GAN: auto-encoder discriminator (ELU, no batch norm), k_t balance",
    paper="Berthelot et al. 2017", default_objective="began", provides=RECONSTRUCTION,
)], objectives=[_objective(
    "began:BeganObjective", "began",
    "L1 auto-encoder losses with the k_t equilibrium term (gamma, lambda_k: the family's recipe); logs M_global",
    "Berthelot et al. 2017", needs=RECONSTRUCTION,
)])

progressive = Contribution("progressive growing of GANs", models=[_family(
    "progressive", name="progressive",
    options=(_width(64), PluginOption("grow_fraction", float, None,
                                      "share of the budget spent growing (recipe: 0.14, docs/recipes.md)")),
    capacity_knobs={"width": WIDTHS},
    description="progressive growing: fade-in of new resolutions, pixel norm, minibatch std, equalised lr",
    paper="Karras et al. 2017", default_objective="wgan-gp", objectives=("wgan-gp",),
)])

# -- objectives -------------------------------------------------------------

objectives = Contribution("the losses on discriminator logits", objectives=[
    _objective("objectives:Minimax", "minimax", "saturating log(1 - D(G(z))) generator loss", "Goodfellow et al. 2014"),
    _objective("objectives:NonSaturating", "nonsaturating", "-log D(G(z)) generator loss (binary cross-entropy)",
               "Goodfellow et al. 2014"),
    _objective("objectives:LeastSquares", "lsgan", "least-squares loss with 0-1 targets", "Mao et al. 2017"),
    _objective("objectives:Hinge", "hinge", "hinge loss for D, -D(G(z)) for G", "Lim & Ye 2017; Miyato et al. 2018"),
    _objective("objectives:WassersteinGP", "wgan-gp",
               "Wasserstein critic with gradient penalty (lambda 10, 5 critic steps, Adam 1e-4 (0, 0.9))",
               "Gulrajani et al. 2017", options=(PluginOption("penalty", float, 10.0, "gradient penalty weight lambda"),)),
    _objective("wgan:WassersteinClip", "wgan",
               "Wasserstein critic with weights clipped to [-0.01, 0.01] (5 critic steps, RMSProp 5e-5)",
               "Arjovsky et al. 2017", options=(PluginOption("clip", float, 0.01, "weights are clipped to [-clip, clip]"),)),
])

# -- datasets ---------------------------------------------------------------

digits = Contribution("scikit-learn's bundled digits", datasets=[DatasetSpec(
    "digits", lazy("ganbench_builtin.datasets.digits:load"),
    "1,797 real 8x8 handwritten digits bundled with scikit-learn (no download), served at 16x16",
    default_resolution=DIGITS_RESOLUTION, default_extractor="lenet",
)])

torchvision_datasets = Contribution("datasets torchvision downloads", datasets=[
    DatasetSpec("mnist", lazy("ganbench_builtin.datasets.torchvision_sets:load_idx_dataset"),
                "MNIST handwritten digits, 28x28 greyscale, 10 classes (torchvision download)", argument="train|test",
                default_extractor="lenet"),
    DatasetSpec("fashion-mnist", lazy("ganbench_builtin.datasets.torchvision_sets:load_idx_dataset"),
                "Fashion-MNIST clothing, 28x28 greyscale, 10 classes (torchvision download)", argument="train|test"),
    DatasetSpec("cifar10", lazy("ganbench_builtin.datasets.torchvision_sets:load_cifar10"),
                "CIFAR-10, 32x32 colour, 10 classes (torchvision download)", argument="train|test"),
])

imagefolder = Contribution("your own images", datasets=[DatasetSpec(
    "imagefolder", lazy("ganbench_builtin.datasets.imagefolder:load"),
    "your own images: imagefolder:PATH (sub-folders become classes)", argument="PATH", default_resolution=None,
)])

celeba = Contribution("CelebA faces", datasets=[DatasetSpec(
    "celeba", lazy("ganbench_builtin.datasets.celeba:load"),
    "CelebA aligned faces, unlabelled, centre 178x178 crop resized to 64x64 (files by hand or torchvision)",
    argument="train|valid|test|all", default_resolution=CELEBA_RESOLUTION,
)])

toys = Contribution("distributions known exactly", datasets=[
    DatasetSpec("gauss1d", lazy("ganbench_builtin.datasets.toys:load_gauss1d"),
                "1-D normal N(16, 5) (gauss1d:MEAN,STD for another), 100k samples from a fixed seed",
                argument="MEAN,STD", data_kind=VECTOR, default_metrics=("w1", "ks", "moments")),
    DatasetSpec("ring", lazy("ganbench_builtin.datasets.toys:load_ring"),
                "PacGAN's ring: 8 normals on the unit circle, sigma 0.01, 100k samples from a fixed seed",
                data_kind=VECTOR, default_metrics=("modes", "hq", "rkl")),
    DatasetSpec("grid", lazy("ganbench_builtin.datasets.toys:load_grid"),
                "PacGAN's grid: 25 normals at {-4,-2,0,2,4}^2, sigma 0.05, 100k samples from a fixed seed",
                data_kind=VECTOR, default_metrics=("modes", "hq", "rkl")),
    DatasetSpec("stacked-mnist", lazy("ganbench_builtin.datasets.stacked_mnist:load"),
                "Stacked MNIST: three MNIST digits as R, G, B, 1,000 modes, built from an MNIST split on disk",
                argument="train|test|DIR", default_metrics=("modes", "rkl")),
])

# -- metrics ----------------------------------------------------------------

_FIDELITY = "ganbench_builtin.metrics.fidelity"
fidelity_metrics = Contribution("torch-fidelity's metrics", metrics=[
    MetricSpec("isc", lazy(f"{_FIDELITY}:compute_isc"),
               "Inception Score (Salimans et al. 2016) via torch-fidelity; higher is better",
               higher_is_better=True, prepare=lazy(f"{_FIDELITY}:prepare")),
    MetricSpec("fid", lazy(f"{_FIDELITY}:compute_fid"),
               "Fréchet Inception Distance (Heusel et al. 2017) via torch-fidelity", prepare=lazy(f"{_FIDELITY}:prepare")),
    MetricSpec("kid", lazy(f"{_FIDELITY}:compute_kid"),
               "Kernel Inception Distance (Bińkowski et al. 2018) via torch-fidelity", prepare=lazy(f"{_FIDELITY}:prepare")),
    MetricSpec("prc", lazy(f"{_FIDELITY}:compute_prc"),
               "precision and recall (Kynkäänniemi et al. 2019) via torch-fidelity; higher is better",
               higher_is_better=True, prepare=lazy(f"{_FIDELITY}:prepare")),
])


_TOYS = "ganbench_builtin.metrics.toys"
_EXACT = (VECTOR,)
_MODES = (VECTOR, IMAGE)  # 2-D mixtures, and Stacked MNIST through an MNIST classifier
toy_metrics = Contribution("exact metrics against a known distribution", metrics=[
    MetricSpec("w1", lazy(f"{_TOYS}:compute_w1"),
               "1-D Wasserstein-1 distance to the true normal, against its quantile function",
               prepare=lazy(f"{_TOYS}:prepare_1d"), data_kinds=_EXACT),
    MetricSpec("ks", lazy(f"{_TOYS}:compute_ks"), "1-D Kolmogorov-Smirnov statistic against the true normal",
               prepare=lazy(f"{_TOYS}:prepare_1d"), data_kinds=_EXACT),
    MetricSpec("moments", lazy(f"{_TOYS}:compute_moments"),
               "1-D absolute errors of the sample mean and standard deviation", prepare=lazy(f"{_TOYS}:prepare_1d"),
               data_kinds=_EXACT),
    MetricSpec("modes", lazy(f"{_TOYS}:compute_modes"),
               "modes covered (PacGAN: a sample within 3 sigma; Stacked MNIST: a classified digit triple); "
               "higher is better", higher_is_better=True, prepare=lazy(f"{_TOYS}:prepare_modes"), data_kinds=_MODES),
    MetricSpec("hq", lazy(f"{_TOYS}:compute_hq"),
               "% high-quality samples (PacGAN: within 3 sigma of the nearest mode); higher is better",
               higher_is_better=True, prepare=lazy(f"{_TOYS}:prepare_hq"), data_kinds=_EXACT),
    MetricSpec("rkl", lazy(f"{_TOYS}:compute_rkl"), "reverse KL of the mode histogram against uniform (PacGAN)",
               prepare=lazy(f"{_TOYS}:prepare_modes"), data_kinds=_MODES),
])


# -- executors (``local`` trains through the runner, ``ray`` needs Ray: neither is imported to list them) --

local_executor = Contribution("runs in this process", executors=[ExecutorSpec(
    name="local", execute=lazy("ganbench:run_locally"),
    description="one run after another in this process; needs nothing else")])

ray_executor = Contribution("runs as Ray tasks", executors=[ExecutorSpec(
    name="ray", execute=lazy("ganbench_builtin.executors.ray_executor:execute_on_ray"),
    execute_many=lazy("ganbench_builtin.executors.ray_executor:execute_many_on_ray"),
    description="one Ray task per run, on this machine or a Ray cluster (ganbench[ray])")])
