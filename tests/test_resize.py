"""The matrix resizes inside dcgan and conditional equal F.interpolate, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganbench_builtin import dcgan
from ganbench_builtin.resize import Resize


@pytest.mark.parametrize("mode, size_in, size_out", [
    ("area", 16, 9), ("area", 16, 12), ("area", 32, 20), ("area", 8, 8),
    ("bilinear", 9, 16), ("bilinear", 12, 16), ("bilinear", 20, 32), ("bilinear", 16, 9),
])
def test_matrix_resize_equals_interpolate(mode, size_in, size_out):
    g = torch.Generator().manual_seed(size_in * 100 + size_out)
    x = torch.randn(2, 3, size_in, size_in, generator=g, requires_grad=True)
    ours = Resize(size_in, size_out, mode)(x)
    extra = {"align_corners": False} if mode == "bilinear" else {}
    theirs = F.interpolate(x, size=(size_out, size_out), mode=mode, **extra)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    upstream = torch.randn(theirs.shape, generator=g)
    (grad_ours,) = torch.autograd.grad(ours, x, upstream)
    (grad_theirs,) = torch.autograd.grad(theirs, x, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-5, atol=1e-6)


def test_dcgan_at_an_awkward_resolution_keeps_its_checkpoint_keys():
    g, d = dcgan.Generator(100, 1, 9), dcgan.Discriminator(1, 9)
    assert g(torch.randn(4, 100)).shape == (4, 1, 9, 9)
    assert d(torch.rand(4, 1, 9, 9)).shape == (4,)
    # the resize matrices are not saved: checkpoints from before the change still load
    assert not [k for k in (*g.state_dict(), *d.state_dict()) if "resize" in k]
    plain_g, plain_d = dcgan.Generator(100, 1, 16), dcgan.Discriminator(1, 16)
    assert plain_g.resize is None and plain_d.resize is None
    assert [v.shape for v in g.state_dict().values()] == [v.shape for v in plain_g.state_dict().values()]
