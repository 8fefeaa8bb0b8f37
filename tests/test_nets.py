"""Tests of the mask networks of lanlib.nets: shapes, ranges, defaults, refusals."""

import pytest
import torch

from lanlib import seeded
from lanlib.nets import CoarseMaskNet, ConvMaskNet, MLPMaskNet


def test_mlp_mask_net_shapes_and_shared_channels():
    lan = MLPMaskNet((3, 8, 8), hidden=(16, 16), mask_shape=(1, 8, 8))
    m = lan(torch.rand(4, 3, 8, 8))
    assert m.shape == (4, 1, 8, 8) and m.min() >= 0 and m.max() <= 1
    assert MLPMaskNet((1, 6, 6))(torch.rand(2, 1, 6, 6)).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="one entry per input dimension"):
        MLPMaskNet((3, 8, 8), mask_shape=(8, 8))
    with pytest.raises(ValueError, match="built for inputs"):
        lan(torch.rand(4, 3, 9, 9))


def test_coarse_mask_net_predicts_a_coarse_grid_and_upsamples_it():
    lan = CoarseMaskNet((3, 16, 16), hidden=(8,), mask_size=4)
    assert lan.mlp.mask_shape == (1, 4, 4)
    assert lan.mlp.net[-2].out_features == 16  # 4 x 4 values, not 16 x 16
    x = torch.rand(5, 3, 16, 16)
    m = lan(x)
    assert m.shape == (5, 1, 16, 16) and m.min() >= 0 and m.max() <= 1
    # The upsampled mask is the coarse one, interpolated: its 4x4 block means stay close.
    coarse = lan.mlp(x - 0.5)
    blocks = torch.nn.functional.avg_pool2d(m, 4)
    assert (blocks - coarse).abs().max() < 0.25


def test_coarse_mask_net_defaults():
    lan = CoarseMaskNet((3, 48, 48))
    assert lan.mlp.mask_shape == (1, 24, 24)
    assert lan.mlp.net[1].out_features == 256
    with pytest.raises(ValueError, match="C, H, W"):
        CoarseMaskNet((48, 48))


def test_conv_mask_net_any_size_and_defaults():
    lan = ConvMaskNet()
    assert lan.net[1].in_channels == 3 and lan.net[1].out_channels == 16
    for size in (16, 48, 33):
        m = lan(torch.rand(2, 3, size, size))
        assert m.shape == (2, 1, size, size) and m.min() >= 0 and m.max() <= 1
    grey = ConvMaskNet(width=4, channels=1)
    assert grey(torch.rand(3, 1, 20, 24)).shape == (3, 1, 20, 24)


def test_conv_mask_net_is_translation_equivariant_away_from_the_edges():
    """The same weights everywhere: a shifted blob gives a shifted mask (in the interior)."""
    with seeded(0):
        lan = ConvMaskNet(width=4)
    x = torch.zeros(1, 3, 64, 64)
    x[..., 24:30, 24:30] = 1.0
    shifted = torch.roll(x, shifts=(4, 8), dims=(2, 3))
    a = lan(x)[..., 16:40, 16:40]
    b = lan(shifted)[..., 20:44, 24:48]
    assert torch.allclose(a, b, atol=1e-5)


def test_mask_nets_are_reproducible_under_a_seed():
    with seeded(3):
        a = ConvMaskNet(width=4)
    with seeded(3):
        b = ConvMaskNet(width=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
