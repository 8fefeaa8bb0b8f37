"""Tests of lanlib.chapters.cifar10: the augmentation, the images picked, Figure 4's layout."""

import matplotlib.pyplot as plt
import pytest
import torch

from lanlib.chapters import cifar10

plt.switch_backend("agg")


def test_random_affine_is_seeded_and_small():
    aug = cifar10.RandomAffine(degrees=10, translate=0.1, scale=0.1)
    x = torch.rand(8, 3, 32, 32)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(2)))
    identity = cifar10.RandomAffine(degrees=0, translate=0, scale=0, flip=False)
    assert torch.allclose(identity(x, torch.Generator().manual_seed(0)), x, atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        cifar10.RandomAffine(scale=1.0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        aug(torch.rand(3, 32, 32))


def test_random_affine_flip_mirrors():
    x = torch.arange(32.0).expand(1, 1, 32, 32).repeat(64, 1, 1, 1)
    out = cifar10.RandomAffine(degrees=0, translate=0, scale=0, flip=True)(
        x, torch.Generator().manual_seed(0))
    flipped = torch.isclose(out, x.flip(-1), atol=1e-4).flatten(1).all(1)
    kept = torch.isclose(out, x, atol=1e-4).flatten(1).all(1)
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


def test_pick_per_class():
    labels = torch.tensor([2, 0, 2, 0, 1, 2])
    assert cifar10.pick_per_class(labels, [2, 0], 2).tolist() == [0, 2, 1, 3]
    keep = torch.tensor([False, True, True, True, True, True])
    assert cifar10.pick_per_class(labels, [2], 2, keep=keep).tolist() == [2, 5]
    with pytest.raises(ValueError, match="class 1"):
        cifar10.pick_per_class(labels, [1], 2)


def test_show_class_columns():
    images = torch.rand(4, 3, 8, 8)
    masks = torch.rand(4, 1, 8, 8)
    fig = cifar10.show_class_columns(images, {"LAN": masks, "sample": masks}, ["a", "b"])
    assert len(fig.axes) == 2 * 3 * 2 + 1  # 2 images x (image + 2 maps) rows, 2 columns, bar
    assert fig.axes[-1].get_ylabel() == "importance = 1 − mask"
    given = plt.subplots(4, 2)[1]
    assert cifar10.show_class_columns(images, {"LAN": masks}, ["a", "b"], ax=given) is not None
    plt.close("all")
    with pytest.raises(ValueError, match="equal columns"):
        cifar10.show_class_columns(images[:3], {"LAN": masks[:3]}, ["a", "b"])
