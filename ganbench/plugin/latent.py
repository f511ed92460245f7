"""Latent distributions a generator can be fed (the ``--latent`` option)."""

from __future__ import annotations

import torch

from ganbench.errors import UsageError

LATENTS = ("gaussian", "uniform", "sphere")


def sample_latent(
    kind: str,
    n: int,
    dim: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` latent vectors.

    'gaussian' is N(0, I); 'uniform' is U[-1, 1] (DCGAN's paper, BEGAN);
    'sphere' is a Gaussian projected to the sphere of radius sqrt(dim)
    (progressive growing normalises its latents this way).
    With a generator, sampling happens where the generator lives (the
    training loop gives every run one on its device, so latents never cross
    from the host) and the result is moved to ``device`` if that differs.
    """
    if kind not in LATENTS:
        raise UsageError(f"Unknown latent distribution {kind!r}; choose one of {', '.join(LATENTS)}.")
    where = generator.device if generator is not None else device
    if kind == "uniform":
        z = torch.rand(n, dim, generator=generator, device=where) * 2 - 1
    else:
        z = torch.randn(n, dim, generator=generator, device=where)
        if kind == "sphere":
            z = z * (dim**0.5) / z.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return z.to(device)
