"""Tests of chapter 02's grid analysis (lanlib.chapters.mnist_grid) on known answers."""

import math

import pytest
import torch
from torch import nn

import lanlib
from lanlib import noise
from lanlib.chapters import mnist_grid as grid
from lanlib.data import translated_loader
from lanlib.metrics import correlation
from lanlib.models.mnist import TranslatedMNISTNet, build_translated_mnist_net
from lanlib.nets import MLPMaskNet
from lanlib.train import train_classifier


def test_stationary_mask_ignores_the_pixels_near_the_digit():
    # masks are 0 on the digit box (+1 pixel) and 0.25 + 0.5 * (row is even) elsewhere
    n, size = 200, 12
    positions = torch.randint(0, 17, (n, 2), generator=torch.Generator().manual_seed(0))
    background = 0.25 + 0.5 * (torch.arange(28) % 2 == 0).float()[:, None].expand(28, 28)
    masks = background.expand(n, 1, 28, 28).clone()
    for k, (r, c) in enumerate(positions.tolist()):
        masks[k, 0, max(r - 1, 0):r + size + 1, max(c - 1, 0):c + size + 1] = 0.0
    stationary = grid.stationary_mask(masks, positions, digit_size=size, margin=2)
    assert torch.allclose(stationary, background, atol=1e-6)
    # with no margin the blob leaks in and lowers the mean
    assert grid.stationary_mask(masks, positions, digit_size=size, margin=0).mean() < \
        background.mean()


def test_periodicity_finds_the_period_and_chance_is_about_one():
    lattice = torch.zeros(24, 24)
    lattice[1::4, 2::4] = 1.0
    scores = grid.periodicity(lattice, periods=(2, 3, 4, 8))
    assert scores[4]["explained"] == pytest.approx(1.0)
    assert scores[8]["explained"] == pytest.approx(1.0)
    assert scores[3]["ratio"] < 2 < scores[4]["ratio"]
    random_map = torch.rand(24, 24, generator=torch.Generator().manual_seed(1))
    ratios = [v["ratio"] for v in grid.periodicity(random_map).values()]
    assert all(0.3 < r < 2.5 for r in ratios)
    table = grid.phase_table(lattice, 4)
    assert table[1, 2] == 1.0 and table.sum() == 1.0


def test_window_mean_and_distance_to_border():
    values = torch.arange(28.0)[None].expand(28, 28)
    means = grid.window_mean(values, 7)
    assert math.isnan(means[2, 10]) and math.isnan(means[10, 25])
    assert means[10, 10] == pytest.approx(10.0)
    distance = grid.distance_to_border(28, 7)
    assert distance[3, 3] == 0 and distance[24, 10] == 0 and distance[13, 14] == 10
    assert math.isnan(distance[2, 10])
    with pytest.raises(ValueError, match="odd"):
        grid.window_mean(values, 4)


def test_importance_near_ink_on_a_known_canvas():
    canvas = torch.zeros(2, 1, 28, 28)
    canvas[:, 0, 10, 10] = 0.05  # one faint ink pixel is still ink
    near = grid.near_ink(canvas, radius=3)
    assert near[0, 0].sum() == 49 and near[0, 0, 7:14, 7:14].all()  # the 7x7 square around it
    assert not near[0, 0, 6, 10] and not near[0, 0, 10, 14]  # 4 pixels away
    assert grid.near_ink(canvas, radius=0).sum() == 2
    importance = torch.zeros(2, 1, 28, 28)
    importance[0, 0, 13, 13] = 3.0  # 3 pixels away on both axes: near
    importance[0, 0, 20, 20] = 1.0  # far
    importance[1] = 0.5  # spread evenly: the share is the near area's
    shares = grid.importance_near_ink(importance, near)
    assert shares.tolist() == pytest.approx([0.75, 49 / 784])
    assert grid.importance_near_ink(torch.zeros(1, 1, 28, 28), near[:1]).item() == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        grid.importance_near_ink(-importance, near)


class _ReadsTopLeft(nn.Module):
    """Predicts class 1 when there is ink in the top-left quadrant, else class 0."""

    def forward(self, x):
        ink = x[:, 0, :14, :14].sum((1, 2))
        return torch.stack([-ink, ink], 1)


def test_accuracy_map_is_right_where_the_model_can_see():
    images = torch.zeros(4, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    labels = torch.ones(4, dtype=torch.long)
    acc = grid.accuracy_map(_ReadsTopLeft(), images, labels, digit_size=7, batch_size=50)
    assert acc.shape == (28, 28)
    assert math.isnan(acc[0, 0]) and math.isnan(acc[27, 27])
    assert acc[5, 5] == 1.0 and acc[20, 20] == 0.0
    centres = acc[3:25, 3:25]
    assert torch.isfinite(centres).all()
    # the result does not depend on how the positions are batched
    assert torch.equal(acc.nan_to_num(-1), grid.accuracy_map(
        _ReadsTopLeft(), images, labels, batch_size=10 ** 6).nan_to_num(-1))


def test_receptive_field_count_shows_the_stride_four_lattice():
    net = TranslatedMNISTNet()
    count = grid.receptive_field_count(net.features, (1, 28, 28))
    per_axis = count[12, :].tolist()
    assert per_axis[26:] == [0.0, 0.0]  # valid padding: never seen
    row = count.diagonal()
    # interior pixels: 3 fields per axis when col % 4 in {0, 1}, 2 otherwise
    assert row[8] == 9 and row[9] == 9 and row[10] == 4 and row[11] == 4
    assert all(p.requires_grad for p in net.parameters())


def test_region_inside_outside_and_correlation_of_maps_with_nan():
    region = grid.region_mask(28, (16, 16, 12, 12))
    assert region.sum() == 144 and region[27, 27] and not region[15, 27]
    values = region.float() * 2.0
    assert grid.inside_outside(values, region) == (2.0, 0.0)
    a = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    a[0, 0] = torch.nan
    assert correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert correlation(a, -(a ** 3), rank=True) == pytest.approx(-1.0)


def test_load_or_train_caches_f_and_the_lan(tmp_path, monkeypatch):
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path))
    images, labels = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    kwargs = dict(steps=3, batch_size=4, exclude=(16, 16, 12, 12), seed=1, verbose=False)
    f, config, loaded = grid.load_or_train_classifier(images, labels, **kwargs)
    f2, config2, loaded2 = grid.load_or_train_classifier(images, labels, **kwargs)
    assert (loaded, loaded2) == (False, True) and config == config2
    assert all(torch.equal(p, q) for p, q in zip(f.parameters(), f2.parameters(), strict=True))
    pool = {"canvases": torch.rand(8, 1, 28, 28), "spec": {"test": True}}
    lan_kwargs = dict(beta=5.0, steps=2, batch_size=4, seed=1, verbose=False)
    lan, loaded = grid.load_or_train_lan(f, config, images, labels, pool, **lan_kwargs)
    lan2, loaded2 = grid.load_or_train_lan(f2, config2, images, labels, pool, **lan_kwargs)
    assert (loaded, loaded2) == (False, True)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(lan(x), lan2(x)) and lan(x).shape == (2, 1, 28, 28)
    feature_kwargs = dict(beta=5.0, steps=2, tv=0.5, batch_size=4, seed=1, verbose=False)
    feat, loaded = grid.load_or_train_feature_lan(f, config, images, labels, pool,
                                                  **feature_kwargs)
    feat2, loaded2 = grid.load_or_train_feature_lan(f2, config2, images, labels, pool,
                                                    **feature_kwargs)
    assert (loaded, loaded2) == (False, True)
    assert torch.equal(feat(x), feat2(x)) and feat(x).shape == (2, 1, 28, 28)
    assert not any(p is q for p in feat.parameters() for q in f.parameters())
    assert len(list((tmp_path / "checkpoints").iterdir())) == 3
    assert config["init_seed"] == 1 and config["exclude"] == [16, 16, 12, 12]
    assert config["train"]["seed"] == 1 and config["train"]["steps"] == 3


def test_figures_draw_and_label_their_colour_bars():
    masks = torch.rand(5, 1, 28, 28)
    fig = grid.plot_digits_and_masks(torch.rand(5, 1, 28, 28), masks, cols=3)
    assert any("importance" in a.get_ylabel() for a in fig.axes)
    values = torch.rand(28, 28)
    values[0] = torch.nan
    fig = grid.plot_map(values, label="accuracy", region=grid.region_mask(28, (16, 16, 12, 12)))
    assert fig.axes[-1].get_ylabel() == "accuracy"
    scores = grid.periodicity(values)
    fig = grid.plot_periodicity(scores, grid.phase_table(values), torch.ones(28, 28))
    assert len(fig.axes) == 5  # three panels and two colour bars
    fig = grid.plot_explorer_state(masks[0], masks[1], torch.full((10,), 0.1), label=3)
    assert len(fig.axes) == 4


def test_the_recipes_train_as_written_out_by_hand(tmp_path, monkeypatch):
    """F: placements and batch order from ``seed``; the LAN: placements from ``seed + 1``."""
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path))
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    pool = {"canvases": torch.rand(6, 1, 28, 28), "spec": {"test": True}}
    f, config, _ = grid.load_or_train_classifier(images, labels, steps=4, batch_size=4, seed=2,
                                                 verbose=False)
    lan, _ = grid.load_or_train_lan(f, config, images, labels, pool, beta=5.0, steps=4,
                                    batch_size=4, hidden=(8,), seed=2, verbose=False)
    by_hand = build_translated_mnist_net({"init_seed": 2})
    train_classifier(by_hand, translated_loader(images, labels, 4, seed=2), steps=4, lr=1e-3,
                     seed=2, progress=False)
    with lanlib.seeded(2):
        lan_by_hand = MLPMaskNet((1, 28, 28), hidden=(8,))
    lanlib.fit_lan(f, lan_by_hand, translated_loader(images, labels, 4, seed=3),
                   noise.bootstrap(pool["canvases"]), beta=5.0, steps=4, lr=1e-4, batch_size=4,
                   seed=2, progress=False)
    for trained, expected in ((f, by_hand), (lan, lan_by_hand)):
        assert all(torch.equal(p, q) for p, q in
                   zip(trained.parameters(), expected.parameters(), strict=True))
