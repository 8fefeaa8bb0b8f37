"""Tests of lanlib.models.cifar: the network of Appendix B, its augmentation, mask statistics."""

import math

import pytest
import torch
from torch import nn

import lanlib
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


def test_random_affine_is_seeded_and_small():
    aug = cifar.RandomAffine(degrees=10, translate=0.1, scale=0.1)
    x = torch.rand(8, 3, 32, 32)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(2)))
    identity = cifar.RandomAffine(degrees=0, translate=0, scale=0, flip=False)
    assert torch.allclose(identity(x, torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_random_affine_flip_mirrors():
    x = torch.arange(32.0).expand(1, 1, 32, 32).repeat(64, 1, 1, 1)
    out = cifar.RandomAffine(degrees=0, translate=0, scale=0, flip=True)(
        x, torch.Generator().manual_seed(0))
    flipped = torch.isclose(out, x.flip(-1), atol=1e-4).flatten(1).all(1)
    kept = torch.isclose(out, x, atol=1e-4).flatten(1).all(1)
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


def test_mask_correlation_and_class_consistency():
    base = torch.rand(2, 16, generator=torch.Generator().manual_seed(0))
    noise = 0.05 * torch.rand(8, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    masks = base[labels] + noise
    corr = cifar.mask_correlation(masks)
    assert corr.shape == (8, 8) and torch.allclose(corr.diagonal(), torch.ones(8, dtype=corr.dtype))
    stats = cifar.class_consistency(masks, labels, permutations=50,
                                    generator=torch.Generator().manual_seed(0))
    assert stats["within"] > 0.9 and stats["gap"] > 0.1 and stats["p_value"] < 0.1
    shuffled = cifar.class_consistency(masks, torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]))
    assert shuffled["gap"] < stats["gap"]
    with pytest.raises(ValueError, match="two samples"):
        cifar.class_consistency(masks[:2], torch.tensor([0, 1]))


def test_pick_per_class_and_entropy():
    labels = torch.tensor([2, 0, 2, 0, 1, 2])
    assert cifar.pick_per_class(labels, [2, 0], 2).tolist() == [0, 2, 1, 3]
    keep = torch.tensor([False, True, True, True, True, True])
    assert cifar.pick_per_class(labels, [2], 2, keep=keep).tolist() == [2, 5]
    with pytest.raises(ValueError, match="class 1"):
        cifar.pick_per_class(labels, [1], 2)
    h = cifar.binary_entropy(torch.tensor([[0.0, 1.0], [0.5, 0.5]]))
    assert h[0] < 1e-6 and math.isclose(float(h[1]), 1.0)


def _reader():
    """A linear classifier that reads only input element 0 (class 0 if positive)."""
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, 0], model.weight[1, 0] = 5.0, -5.0
        model.bias.zero_()
    return model


def test_swap_test_prefers_own_masks():
    model = _reader()
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    masks = torch.tensor([[0.0, 1, 1, 1], [1.0, 1, 1, 1]])  # the first keeps what F reads
    stats = cifar.swap_test(model, x, masks, torch.tensor([1, 0]), lanlib.noise.constant(-1.0),
                            draws=2)
    assert stats["own_better"] == 0.5  # image 0 loses by borrowing, image 1 gains
    assert stats["swapped"] == pytest.approx(stats["own"])
    with pytest.raises(ValueError, match="differ"):
        cifar.swap_test(model, x, masks, torch.tensor([0, 1]), lanlib.noise.constant(0.0))


def test_fit_over_beta_matches_separate_fits():
    model = _reader()
    x = torch.tensor([[1.0, 0.3, -0.2, 0.5], [0.5, -1.0, 0.1, 0.2]])
    noise = lanlib.noise.constant(0.0)
    betas = [0.05, 0.5]
    both = lanlib.fit_sample_masks_over_beta(model, x, noise, betas, steps=60, lr=0.1, seed=0,
                                            progress=False)
    assert both.shape == (2, 2, 4)
    for k, beta in enumerate(betas):
        alone = lanlib.fit_sample_masks(model, x, noise, beta=beta, steps=60, lr=0.1, seed=0,
                                        progress=False)
        assert torch.allclose(both[k], alone, atol=1e-3)
    assert both[1].mean() > both[0].mean()  # a larger beta, a larger mask


def test_agreement_rate_per_input():
    model = _reader()
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    masks = torch.tensor([[0.0, 1, 1, 1], [1.0, 1, 1, 1]])
    rate = cifar.agreement_rate(model, x, masks, lanlib.noise.constant(-1.0), draws=4)
    assert rate.tolist() == [1.0, 0.0]


def test_figures_and_explorer():
    images = torch.rand(4, 3, 8, 8)
    masks = torch.rand(4, 1, 8, 8)
    fig = cifar.show_class_columns(images, {"LAN": masks}, ["a", "b"])
    assert len(fig.axes) == 2 * 2 * 2 + 1  # 2 images x (image + mask) rows, 2 columns, bar
    curve = {"fractions": torch.linspace(0, 1, 3), "probs": torch.rand(4, 3),
             "auc": torch.rand(4)}
    fig = cifar.plot_perturbation_curves({"m": {"deletion": curve, "insertion": curve}})
    assert len(fig.axes) == 2
    widget = cifar.mask_explorer(images[:2], torch.rand(2, 2, 1, 4, 4), [1.0, 2.0], ["x", "y"],
                                 notes=torch.rand(2, 2))
    assert bytes(widget.children[1].value).startswith(b"\x89PNG")
