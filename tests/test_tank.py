"""Tests of the tank scenes (lanlib.data.tank) and the tank classifier (lanlib.models.tank)."""

from dataclasses import replace

import matplotlib
import pytest
import torch
from torch import nn

from lanlib.data import tank
from lanlib.models.tank import (
    CoarseMaskNet,
    ConvMaskNet,
    TankCNN,
    default_config,
    lan_config,
    load_tank_cnn,
    load_tank_lan,
    plot_says_tank,
    says_tank,
)

matplotlib.use("Agg")

SIZE = 32


@pytest.fixture(scope="module")
def scenes():
    return tank.counterfactual_scenes(64, size=SIZE, seed=3)


def _changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): pixels where two batches of images differ in any channel."""
    return (a != b).any(dim=1, keepdim=True)


def test_shapes_ranges_and_disjoint_masks(scenes):
    n = len(scenes)
    assert scenes.images.shape == (n, 3, SIZE, SIZE)
    assert scenes.images.dtype == torch.float32
    assert scenes.images.min() >= 0 and scenes.images.max() <= 1
    assert scenes.labels.dtype == torch.long and set(scenes.labels.tolist()) == {0, 1}
    assert set(scenes.masks) == set(tank.OBJECTS)
    total = sum(m.long() for m in scenes.masks.values())
    assert all(m.shape == (n, 1, SIZE, SIZE) and m.dtype == torch.bool
               for m in scenes.masks.values())
    assert total.max() <= 1, "object masks overlap"


def test_background_and_masks_partition_each_image(scenes):
    parts = [*scenes.masks.values(), *scenes.background().values()]
    assert torch.equal(sum(p.long() for p in parts), torch.ones_like(parts[0], dtype=torch.long))
    blue = scenes.images[:, 2:3] - scenes.images[:, :1]  # the sky is the bluest region
    assert blue[scenes.background()["sky"]].mean() > 0.3
    assert blue[scenes.background()["ground"]].mean() < 0


def test_objects_present_exactly_where_the_flags_say(scenes):
    pixels = {k: m.flatten(1).sum(1) for k, m in scenes.masks.items()}
    assert torch.equal(pixels["tank"] > 0, scenes.labels.bool())
    assert torch.equal(pixels["cloud"] > 0, scenes.has_cloud)
    assert (pixels["tree"] > 0).all()  # one to three trees in every scene


@pytest.mark.parametrize("kind", ["tank", "cloud", "tree"])
def test_each_mask_is_exactly_the_pixels_its_object_changes(scenes, kind):
    """Removing one kind of object changes the image exactly on that kind's mask."""
    params = scenes.params
    if kind == "tank":
        without = replace(params, has_tank=torch.zeros_like(params.has_tank))
    elif kind == "cloud":
        clouds = dict(params.clouds, present=torch.zeros_like(params.clouds["present"]))
        without = replace(params, clouds=clouds)
    else:
        trees = dict(params.trees, present=torch.zeros_like(params.trees["present"]))
        without = replace(params, trees=trees)
    other = tank.render(without, SIZE)
    assert torch.equal(_changed(scenes.images, other.images), scenes.masks[kind])
    assert not other.masks[kind].any()


def test_tank_pixels_have_the_tank_colours():
    plain = tank.biased_scenes(16, size=SIZE, texture=0.0, seed=5)
    colour = plain.params.tank["colour"].view(-1, 3, 1, 1)
    hull = (plain.images - colour).abs().amax(dim=1, keepdim=True) < 1e-6
    tracks = (plain.images - 0.45 * colour).abs().amax(dim=1, keepdim=True) < 1e-6
    inside = plain.masks["tank"]
    assert ((hull | tracks) == inside).all()


def test_clouds_in_the_sky_tanks_on_the_ground(scenes):
    rows = (torch.arange(SIZE) + 0.5) / SIZE
    horizon = scenes.params.horizon.view(-1, 1, 1, 1)
    below = rows.view(1, 1, SIZE, 1) >= horizon
    assert not (scenes.masks["cloud"] & below).any()
    assert not (scenes.masks["tank"] & ~below).any()


def test_clouds_are_the_easier_cue():
    """Clouds are bigger and brighter (further from their background) than tanks."""
    s = tank.biased_scenes(64, seed=0)
    both = s.labels.bool()
    area = {k: s.masks[k][both].flatten(1).sum(1).float().mean() for k in ("cloud", "tank")}
    assert area["cloud"] > 2 * area["tank"]
    brightness = s.images.mean(dim=1, keepdim=True)
    sky, ground = s.params.sky.mean(1), s.params.ground.mean(1)
    cloud_contrast = (brightness[s.masks["cloud"]].mean() - sky.mean()).abs()
    tank_contrast = (brightness[s.masks["tank"]].mean() - ground.mean()).abs()
    assert cloud_contrast > 2 * tank_contrast


def test_biased_set_has_clouds_exactly_with_tanks():
    s = tank.biased_scenes(50, size=SIZE, seed=1)
    assert torch.equal(s.has_cloud, s.labels.bool())
    assert int(s.labels.sum()) == 25


def test_counterfactual_set_is_independent_and_balanced():
    s = tank.counterfactual_scenes(48, size=SIZE, seed=1)
    for t in (0, 1):
        for c in (False, True):
            assert int(((s.labels == t) & (s.has_cloud == c)).sum()) == 12


def test_configured_probabilities_and_correlation():
    s = tank.make_scenes(100, size=SIZE, cloud_given_tank=0.8, cloud_given_no_tank=0.3, seed=2)
    tanks = s.labels.bool()
    assert s.has_cloud[tanks].float().mean() == pytest.approx(0.8)
    assert s.has_cloud[~tanks].float().mean() == pytest.approx(0.3)
    c = tank.correlated_scenes(200, 0.6, size=SIZE, seed=2)
    t, k = c.labels.float(), c.has_cloud.float()
    phi = ((t - t.mean()) * (k - k.mean())).mean() / (t.std(unbiased=False) * k.std(unbiased=False))
    assert float(phi) == pytest.approx(0.6, abs=1e-6)
    assert tank.cloud_probabilities(-1.0) == (0.0, 1.0)


def test_reproducible_from_the_seed_only():
    state = torch.random.get_rng_state()
    a = tank.biased_scenes(8, size=SIZE, seed=11)
    torch.manual_seed(999)  # global state must not matter
    b = tank.biased_scenes(8, size=SIZE, seed=11)
    c = tank.biased_scenes(8, size=SIZE, seed=torch.Generator().manual_seed(11))
    d = tank.biased_scenes(8, size=SIZE, seed=12)
    assert torch.equal(a.images, b.images) and torch.equal(a.images, c.images)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert not torch.equal(a.images, d.images)
    torch.random.set_rng_state(state)
    tank.biased_scenes(4, size=SIZE, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state), "the generator touched global RNG"


def test_indexing_keeps_images_masks_and_params_together(scenes):
    sub = scenes[scenes.labels == 1]
    assert len(sub) == int(scenes.labels.sum())
    again = tank.render(sub.params, SIZE)
    assert torch.equal(again.images, sub.images)
    assert torch.equal(again.masks["tank"], sub.masks["tank"])


@pytest.mark.parametrize("bad", [{"cloud_given_tank": 1.5}, {"p_tank": -0.1}, {"texture": -1.0}])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ValueError):
        tank.make_scenes(4, size=SIZE, **bad)
    with pytest.raises(ValueError):
        tank.cloud_probabilities(2.0)


def test_plot_scenes_returns_a_figure(scenes):
    fig = tank.plot_scenes(scenes[:5], columns=3)
    assert len(fig.axes) == 6


# ----------------------------------------------------------------------------- the models


def test_cnn_and_coarse_lan_shapes():
    x = torch.rand(3, 3, SIZE, SIZE)
    assert TankCNN(width=4)(x).shape == (3, 2)
    for lan in (CoarseMaskNet((3, SIZE, SIZE), hidden=(8,), mask_size=8), ConvMaskNet(4)):
        m = lan(x)
        assert m.shape == (3, 1, SIZE, SIZE) and m.min() >= 0 and m.max() <= 1
    with pytest.raises(ValueError):
        TankCNN(width=0)
    with pytest.raises(ValueError):
        default_config(widht=3)
    with pytest.raises(ValueError):
        lan_config(default_config(), kind="rnn")


class _CloudReader(nn.Module):
    """Says "tank" exactly when the top half of the image holds near-white pixels."""

    def forward(self, x):
        white = (x[:, :, : x.shape[2] // 2].amin(dim=1) > 0.85).flatten(1).any(1).float()
        return torch.stack([1 - white, white], dim=1) * 10


def test_says_tank_tabulates_by_tank_and_clouds(scenes):
    table = says_tank(_CloudReader(), scenes)
    assert table.shape == (2, 2)
    assert torch.allclose(table, torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    fig = plot_says_tank({"cloud reader": table})
    assert len(fig.axes) == 2  # the panel and its colour bar


def test_cnn_and_lan_are_trained_once_then_loaded(tmp_path, capsys):
    config = default_config(size=SIZE, n_train=64, width=2, steps=3, batch_size=16)
    model, loaded = load_tank_cnn(config, root=tmp_path)
    assert not loaded and not model.training
    again, loaded = load_tank_cnn(config, root=tmp_path)
    assert loaded
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  again.state_dict().values(), strict=True))
    lan, loaded = load_tank_lan(lan_config(config, hidden=[4], mask_size=8, steps=2,
                                           batch_size=16), model, root=tmp_path)
    assert not loaded
    assert lan(torch.rand(2, 3, SIZE, SIZE)).shape == (2, 1, SIZE, SIZE)
    conv, loaded = load_tank_lan(lan_config(config, kind="conv", width=2, steps=2,
                                            batch_size=16), model, root=tmp_path)
    assert isinstance(conv, ConvMaskNet) and not loaded
    assert "trained tank_cnn" in capsys.readouterr().out
