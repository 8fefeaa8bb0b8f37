"""Tests of F for translated MNIST (lanlib.models.mnist, Appendix A of the paper)."""

import pytest
import torch

from lanlib.models.mnist import TranslatedMNISTNet, build_translated_mnist_net


def test_architecture_matches_appendix_a():
    net = TranslatedMNISTNet()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (10, (4, 4), (2, 2)), (20, (4, 4), (2, 2))]
    # valid convolutions: 28 -> 13 -> 5, so the classifier reads 20 * 5 * 5 features
    assert net.head[-1].in_features == 500 and net.head[-1].out_features == 10
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert TranslatedMNISTNet(padding=1).head[-1].in_features == 20 * 7 * 7


def test_valid_padding_never_sees_the_last_two_rows_and_columns():
    net = TranslatedMNISTNet()
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    net(x).sum().backward()
    seen = x.grad[0, 0].abs() > 0
    assert seen[:26, :26].all()
    assert not seen[26:].any() and not seen[:, 26:].any()


def test_build_is_seeded_and_leaves_global_random_state_alone():
    state = torch.random.get_rng_state()
    a = build_translated_mnist_net({"init_seed": 3})
    b = build_translated_mnist_net({"init_seed": 3})
    c = build_translated_mnist_net({"init_seed": 4})
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.head[-1].weight, c.head[-1].weight)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        TranslatedMNISTNet()(torch.rand(2, 28, 28))
