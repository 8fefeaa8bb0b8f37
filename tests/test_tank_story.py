"""Tests of the tank chapter's module (lanlib.chapters.tank_story): scenes, recipes, figures."""

from dataclasses import replace

import matplotlib
import pytest
import torch
from torch import nn

from lanlib import fit_lan, seeded
from lanlib.chapters import tank_story as tank
from lanlib.chapters.tank_story import (
    default_config,
    lan_config,
    load_tank_cnn,
    load_tank_lan,
    plot_says_tank,
    says_tank,
)
from lanlib.models.tank import TankCNN
from lanlib.nets import CoarseMaskNet, ConvMaskNet, UNetMaskNet
from lanlib.noise import bootstrap
from lanlib.train import train_classifier
from tests._requirements import require_module

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


def test_cnn_shapes_and_bad_configs():
    x = torch.rand(3, 3, SIZE, SIZE)
    assert TankCNN(width=4)(x).shape == (3, 2)
    with pytest.raises(ValueError):
        TankCNN(width=0)
    with pytest.raises(ValueError):
        default_config(widht=3)
    with pytest.raises(ValueError):
        lan_config(default_config(), kind="rnn")
    with pytest.raises(ValueError):
        lan_config(default_config(), dpeth=3)
    with pytest.raises(ValueError):
        lan_config(default_config(), kind="unet", padding="reflect")


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
    assert not loaded and not model.training and isinstance(model, TankCNN)
    again, loaded = load_tank_cnn(config, root=tmp_path)
    assert loaded
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  again.state_dict().values(), strict=True))
    other, loaded = load_tank_cnn({**config, "cloud_given_tank": 0.5}, root=tmp_path)
    assert not loaded, "a new training set is a new network"
    mlp = lan_config(config, hidden=[4], mask_size=8, steps=2, batch_size=16)
    lan, loaded = load_tank_lan(mlp, model, root=tmp_path)
    assert isinstance(lan, CoarseMaskNet) and not loaded and not lan.training
    assert lan(torch.rand(2, 3, SIZE, SIZE)).shape == (2, 1, SIZE, SIZE)
    pool = tank.training_scenes(config).images
    again, loaded = load_tank_lan(mlp, model, pool=pool, root=tmp_path)
    assert loaded
    assert all(torch.equal(a, b) for a, b in zip(lan.state_dict().values(),
                                                  again.state_dict().values(), strict=True))
    conv, loaded = load_tank_lan(lan_config(config, kind="conv", width=2, steps=2,
                                            batch_size=16), model, root=tmp_path)
    assert isinstance(conv, ConvMaskNet) and not loaded
    unet, loaded = load_tank_lan(lan_config(config, kind="unet", width=2, depth=2,
                                            padding="replicate", steps=2, batch_size=16),
                                 model, root=tmp_path)
    assert isinstance(unet, UNetMaskNet) and not loaded
    assert all(m.padding_mode == "replicate" for m in unet.modules()
               if isinstance(m, nn.Conv2d) and any(m.padding))
    assert unet(torch.rand(2, 3, SIZE, SIZE)).shape == (2, 1, SIZE, SIZE)
    out = capsys.readouterr().out
    assert "trained tank_cnn" in out and "loaded tank_lan" in out


def test_the_cache_trains_what_the_old_recipe_trained(tmp_path):
    """Same seeds, same computation as by hand: the training scenes, the seeded builds."""
    config = default_config(size=SIZE, n_train=64, width=2, steps=3, batch_size=16, seed=4)
    model, _ = load_tank_cnn(config, root=tmp_path)
    with seeded(4):
        by_hand = TankCNN(width=2)
    scenes = tank.training_scenes(config)
    train_classifier(by_hand, (scenes.images, scenes.labels), steps=3, lr=config["lr"],
                     batch_size=16, seed=4, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  by_hand.state_dict().values(), strict=True))
    config_lan = lan_config(config, kind="conv", width=2, steps=2, batch_size=16, seed=5)
    lan, _ = load_tank_lan(config_lan, model, root=tmp_path)
    with seeded(5):
        lan_by_hand = ConvMaskNet(width=2)
    fit_lan(model, lan_by_hand, scenes.images, bootstrap(scenes.images), beta=1.0, steps=2,
            lr=config_lan["lr"], batch_size=16, seed=5, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(lan.state_dict().values(),
                                                  lan_by_hand.state_dict().values(), strict=True))


# ----------------------------------------------------------------------------- the comparison


def test_versus_average(scenes):
    regions = {k: scenes.masks[k] for k in ("cloud", "tank")}
    own, avg = tank.versus_average(scenes.masks["cloud"].float() + 0.1, regions)
    assert set(own) == set(avg) == {"cloud", "tank", "rest", "auroc_cloud", "auroc_tank"}
    assert own["cloud"] > avg["cloud"] and own["auroc_cloud"] == 1.0
    flat = torch.full((len(scenes), 1, SIZE, SIZE), 0.3)  # the same map for every scene
    own, avg = tank.versus_average(flat, regions)
    assert own == pytest.approx(avg)


def test_edge_bands():
    maps = torch.zeros(4, 1, 6, 10)
    maps[0, :, :, -3:] = 2.0  # the right band, as bright as the map's maximum
    maps[1, :, :, 4] = 1.0  # a column in the middle: no band marked
    maps[2, :, :3, :3] = 1.0  # the upper half of the left band
    bands = tank.edge_bands(maps, width=3)  # maps[3] is zero everywhere
    assert bands.tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])
    assert torch.equal(tank.edge_bands(maps.flip(-1), width=3), bands)  # left and right alike
    assert torch.equal(tank.edge_bands(5 * maps, width=3), bands)  # relative to the maximum
    assert torch.equal(tank.edge_bands(maps[2:3], width=3), bands[2:3])  # per scene
    wide = torch.zeros(2, 1, 6, 12)
    wide[0, :, :, -3:] = 1.0  # a strip at the right edge
    wide[1, :, :3] = 1.0  # the upper half, all across: no strip
    assert tank.edge_bands(wide, width=3).tolist() == pytest.approx([1.0, 0.5])
    assert tank.edge_bands(wide, width=3, beyond_inside=True).tolist() == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="width"):
        tank.edge_bands(wide, width=4, beyond_inside=True)  # no room for the inner band
    for bad in (0, 6):
        with pytest.raises(ValueError, match="width"):
            tank.edge_bands(maps, width=bad)
    with pytest.raises(ValueError, match="N, C, H, W"):
        tank.edge_bands(maps[0], width=3)


def test_captum_maps_cover_every_method(scenes):
    require_module("captum", "pip install -e '.[chapters]'")
    maps = tank.captum_maps(TankCNN(width=2), scenes.images[:4], scenes.images, ig_steps=4,
                            occlusion_window=8, occlusion_stride=8, ablation_patch=8, seed=0)
    assert list(maps) == list(tank.CAPTUM_METHODS)
    assert all(a.maps.shape == (4, 1, SIZE, SIZE) for a in maps.values())


# ----------------------------------------------------------------------------- tables and figures


def test_markdown_table():
    text = tank.markdown_table({"a": {"x": 0.123, "y": 2}, "b": {"x": 1.0}},
                               {"x": "share", "y": "count"}, digits=1)
    assert text.splitlines() == ["| method | share | count |", "|---|---:|---:|",
                                 "| a | 0.1 | 2 |", "| b | 1.0 |  |"]
    with pytest.raises(ValueError, match="empty"):
        tank.markdown_table({})


def test_html_table_escapes_and_aligns():
    text = tank.html_table({"a<b": {"x": 0.123}}, {"x": "share & more"}, digits=1)
    assert "<td style=\"text-align:left\">a&lt;b</td>" in text
    assert "share &amp; more" in text and ">0.1<" in text
    assert text.startswith("<table>") and text.endswith("</table>")


def test_score_figures():
    cloud = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    cloud[:, 0, 0, :] = True
    objects = {"cloud": cloud, "tank": torch.zeros_like(cloud)}
    scores = {"m1": {"cloud": 0.5, "tank": 0.1}, "m2": {"cloud": 0.2, "tank": 0.3}}
    fig = tank.plot_scores(scores, {"cloud": "cloud share", "tank": "tank share"},
                           times={"m1": 0.01, "m2": 1.0}, reference={"cloud": 0.25})
    assert len(fig.axes) == 2
    assert len(tank.plot_scores(scores, {"cloud": "cloud share"}).axes) == 1
    images = torch.rand(2, 3, 4, 4)
    fig = tank.show_objects(images, objects, {"a": torch.rand(2, 1, 4, 4),
                                              "b": torch.rand(2, 3, 4, 4)},
                            colours=tank.OBJECT_COLOURS)
    assert len(fig.axes) == 2 * 3 + 1  # the panels and one colour bar
