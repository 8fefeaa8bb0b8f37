"""Tests of lanlib.models.cifar: the network F of Appendix B."""

import pytest
import torch
from torch import nn

from lanlib.models import cifar


def test_cifarnet_shapes_and_layers():
    net = cifar.CifarNet()
    x = torch.rand(3, 3, 32, 32)
    assert net(x).shape == (3, 10)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.stride[0], c.kernel_size[0]) for c in convs] == [
        (64, 2, 5), (64, 2, 5), (64, 1, 3), (64, 1, 3), (32, 2, 3)]
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [384, 192, 10]
    assert any(isinstance(m, nn.LocalResponseNorm) for m in cifar.CifarNet(lrn=True).features)
    with pytest.raises(ValueError, match="32, 32"):
        net(torch.rand(1, 3, 28, 28))


def test_cifarnet_rejects_a_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        cifar.CifarNet(dropout=1.0)
