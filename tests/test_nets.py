"""Tests of the mask networks of lanlib.nets: shapes, ranges, defaults, refusals."""

import pytest
import torch
from torch import nn

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


def test_mlp_mask_net_reshapes_its_last_layer_into_the_mask_shape():
    lan = MLPMaskNet([2, 3], hidden=(), mask_shape=[1, 3])  # lists are taken as shapes
    assert lan.input_shape == (2, 3) and lan.mask_shape == (1, 3)
    last = lan.net[1]
    assert (last.in_features, last.out_features) == (6, 3)  # no hidden layer: 6 -> 3
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-1.0, 0.0, 2.0]))
    expected = torch.sigmoid(torch.tensor([-1.0, 0.0, 2.0])).reshape(1, 1, 3).expand(4, 1, 3)
    torch.testing.assert_close(lan(torch.rand(4, 2, 3)), expected)
    # the same number of elements in another shape is refused, not silently reshaped
    with pytest.raises(ValueError, match=r"built for inputs \(2, 3\) per sample, got \(3, 2\)"):
        lan(torch.rand(4, 3, 2))


def test_mlp_mask_net_hidden_layers_are_leaky():
    lan = MLPMaskNet((2,), hidden=(4, 3), negative_slope=0.2)
    widths = [(m.in_features, m.out_features) for m in lan.net if isinstance(m, nn.Linear)]
    assert widths == [(2, 4), (4, 3), (3, 2)]
    slopes = [m.negative_slope for m in lan.net if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2, 0.2] and isinstance(lan.net[-1], nn.Sigmoid)
    assert MLPMaskNet((2,)).net[2].negative_slope == 0.01


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


def test_coarse_mask_net_centres_its_input_and_interpolates_bilinearly():
    lan = CoarseMaskNet((1, 4, 4), hidden=(), mask_size=2)
    last = lan.mlp.net[1]  # 16 pixels -> 2 x 2 coarse values
    p = torch.tensor([0.2, 0.6, 0.2, 0.6])
    with torch.no_grad():
        last.weight.zero_()
        last.weight[0] = 1.0  # the first coarse value reads the sum of the centred pixels
        last.bias.copy_(torch.log(p / (1 - p)))
    grey = torch.full((1, 1, 4, 4), 0.5)  # centred: all zero, so the first value stays 0.2
    row = [0.2, 0.3, 0.5, 0.6]  # 0.2 and 0.6 interpolated between the element centres
    torch.testing.assert_close(lan(grey), torch.tensor(row).expand(1, 1, 4, 4))
    # a bright image drives the first coarse value to 1 (and the clamp keeps it there)
    bright = lan(torch.ones(1, 1, 4, 4)).detach()
    assert float(bright[0, 0, 0, 0]) == pytest.approx(1.0, abs=2e-3)
    assert float(bright.max()) <= 1.0 and float(bright[0, 0, 3, 3]) == pytest.approx(0.6)


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
