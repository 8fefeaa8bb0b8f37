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


def test_average_share():
    base = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert cifar10.average_share(base.repeat(5, 1, 1, 1)) == pytest.approx(1.0)
    independent = torch.rand(2000, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    assert cifar10.average_share(independent) < 0.01
    assert cifar10.average_share(torch.full((3, 1, 2, 2), 0.5)) == 0.0
    half = torch.cat([base.repeat(50, 1, 1, 1), torch.rand(50, 1, 8, 8)])
    assert 0.1 < cifar10.average_share(half) < 0.9
    with pytest.raises(ValueError, match="at least 2"):
        cifar10.average_share(base)


def test_lattice_share():
    rows, cols = torch.arange(8)[:, None], torch.arange(8)
    lattice = ((rows % 2 == 0) & (cols % 2 == 0)).double()
    assert cifar10.lattice_share(lattice) == pytest.approx(1.0)
    smooth = (rows + cols).double().expand(8, 8)  # a ramp: mostly not periodic
    assert cifar10.lattice_share(smooth) < 0.1
    assert cifar10.lattice_share(torch.ones(4, 4)) == 0.0
    assert cifar10.lattice_share(lattice + smooth / 100) > 0.9
    with pytest.raises(ValueError, match="cells"):
        cifar10.lattice_share(torch.rand(5, 4))
