"""conditional: the class-conditional GAN (Mirza & Osindero 2014).

Both networks see the class label y as well as their usual input (paper §3.2,
eq. 2): G models p(x | y) from (z, y), D scores (x, y) pairs. The paper
feeds y as a one-hot vector to both networks, and so does this family:

- G: the one-hot label (K classes) is concatenated to z, and the
  (100 + K)-vector drives a DCGAN generator (see :mod:`ganbench_builtin.dcgan`:
  transposed convolutions from a 4x4 or 7x7 map, batch norm, ReLU, tanh).
- D: the one-hot label is broadcast to K constant planes and concatenated
  to the image channels, so every first-layer filter sees the class at every
  pixel; the rest is the DCGAN discriminator (strided convolutions, batch
  norm, LeakyReLU 0.2, one logit).

Defaults: z of 100 dimensions, Gaussian; Adam lr 2e-4, betas (0.5, 0.999);
weights from N(0, 0.02); base width 64 channels (``options["width"]``);
non-saturating objective. The architecture adapts to the dataset's
resolution and channels exactly as dcgan does (16, 28, 32, 64 px; 1 or 3
channels). The family needs a labelled dataset (``requires_labels``).

Departures from the paper, and why:

- Networks. The paper's MNIST model is an MLP with maxout units in D
  (paper §4.1; REFERENCES §2.3: G z->200 and y->1000 ReLU, joined ->1200
  ->784 sigmoid; D maxout 240x5 / 50x5 / 240x4). ganbench uses the convolutional
  concat-cGAN that later work took as the conditional baseline (the one-hot
  joins z in G and the input in D), so that the family differs from dcgan
  only by its conditioning and comparisons isolate that one change.
- Optimiser. The paper used SGD with momentum 0.5->0.7, lr 0.1 decayed
  exponentially, dropout 0.5; ganbench uses DCGAN's Adam settings so the
  budget buys every convolutional family the same kind of optimisation.
- z is Gaussian, as in dcgan (the paper draws U[-1, 1]); ``--latent uniform``
  restores the paper.
- With an objective whose gradient penalty is ill-defined under batch norm
  (wgan-gp) the discriminator uses layer normalisation, as dcgan does.

:func:`sample_labels` draws labels in the dataset's class proportions, for
evaluations that compare conditional samples with the real distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ganbench import AdversarialModel, BuildContext, UsageError
from ganbench_builtin.dcgan import Discriminator as _DcganDiscriminator
from ganbench_builtin.dcgan import Generator as _DcganGenerator
from ganbench_builtin.dcgan import init_weights
from ganbench_builtin.recipes import CONDITIONAL as RECIPE

LATENT_DIM = 100
WIDTH = RECIPE["width"].value
LR = RECIPE["lr"].value
BETAS = RECIPE["betas"].value


def sample_labels(
    class_counts: Sequence[int] | torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` class labels (int64, on the CPU) in the proportions of ``class_counts``.

    Stratified rather than i.i.d.: each class c gets floor(n * p_c) labels,
    the few left over go to the classes with the largest remainders (ties
    broken at random), and the result is shuffled. So the label histogram
    matches the dataset's as closely as ``n`` allows (every count within 1
    of n * p_c), and a class with no images is never drawn. The order, and
    the tie-breaks, come from ``generator`` when given.
    """
    counts = torch.as_tensor(list(class_counts) if not isinstance(class_counts, torch.Tensor) else class_counts,
                             dtype=torch.float64).flatten()
    if n < 0:
        raise UsageError(f"Cannot draw a negative number of labels ({n}).")
    if counts.numel() == 0 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise UsageError(
            f"sample_labels needs non-negative class counts with a positive total; got {counts.tolist()}."
        )
    quota = counts / counts.sum() * n
    per_class = quota.floor().long()
    left = n - int(per_class.sum())
    if left > 0:
        # Largest remainder first; a random jitter far below any real remainder gap breaks ties.
        remainder = quota - per_class.double()
        jitter = torch.rand(counts.numel(), generator=generator, dtype=torch.float64) * 1e-9
        remainder = torch.where(counts > 0, remainder + jitter, torch.full_like(remainder, -1.0))
        per_class[torch.topk(remainder, left).indices] += 1
    labels = torch.repeat_interleave(torch.arange(counts.numel()), per_class)
    return labels[torch.randperm(n, generator=generator)]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float one-hot rows, compared on the labels' device.

    Not ``F.one_hot``: off CUDA it checks the labels' range by reading two
    numbers back from the device at every call.
    """
    if labels is None:
        raise UsageError("The conditional family needs class labels for every batch it generates or scores.")
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.long()[:, None] == classes).float()


class Generator(nn.Module):
    """z and a one-hot label, concatenated, into a DCGAN generator."""

    def __init__(self, latent_dim: int, num_classes: int, channels: int, resolution: int, width: int = WIDTH) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = _DcganGenerator(latent_dim + num_classes, channels, resolution, width)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, one_hot(labels, self.num_classes).to(z.dtype)], dim=1))


class Discriminator(nn.Module):
    """The image with K one-hot label planes appended, into a DCGAN discriminator."""

    def __init__(
        self, num_classes: int, channels: int, resolution: int, width: int = WIDTH, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = _DcganDiscriminator(channels + num_classes, resolution, width, norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
        planes = planes.expand(-1, -1, x.shape[2], x.shape[3])
        return self.body(torch.cat([x, planes], dim=1))


def build(ctx: BuildContext) -> AdversarialModel:
    k = ctx.data.num_classes
    if k < 1:
        raise UsageError(
            f"The conditional family needs class labels, but the dataset {ctx.data.name!r} has none."
        )
    width = int(ctx.settings.options.get("width", WIDTH))
    norm = "batch" if getattr(ctx.objective, "batchnorm_safe", True) else "layer"
    # initialised on the CPU, then moved: the same starting weights on every device (ganbench.plugin.model)
    g = Generator(LATENT_DIM, k, ctx.data.channels, ctx.data.resolution, width).apply(init_weights).to(ctx.device)
    d = Discriminator(k, ctx.data.channels, ctx.data.resolution, width, norm).apply(init_weights).to(ctx.device)
    lr = ctx.settings.lr or LR
    model = AdversarialModel(
        g, d,
        torch.optim.Adam(g.parameters(), lr=lr, betas=BETAS),
        torch.optim.Adam(d.parameters(), lr=lr, betas=BETAS),
        ctx.objective, ctx, latent_dim=LATENT_DIM, latent="gaussian",
    )
    model.conditional = True
    model.num_classes = k
    return model


#: The paper settings this family uses, as documented by its spec (``ModelSpec.defaults``).
DEFAULTS = {"latent": "gaussian(100)", "label": "one-hot (G: concat to z; D: K input planes)",
            "lr": LR, "betas": BETAS, "width": WIDTH, "init": "N(0, 0.02)"}
