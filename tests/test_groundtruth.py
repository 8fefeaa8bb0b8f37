"""Tests of the ground-truth scores of lanlib.metrics: shares and AUROCs worked out by hand."""

import pytest
import torch

from lanlib import metrics


@pytest.fixture
def objects():
    cloud = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    cloud[:, 0, 0, :] = True  # the top row: 4 of 16 pixels
    tank = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    tank[0, 0, 3, 0] = True  # image 0 only: one pixel
    return {"cloud": cloud, "tank": tank}


def test_shares_by_hand(objects):
    importance = torch.zeros(2, 1, 4, 4)
    importance[0, 0, 0, 0] = 3.0  # cloud
    importance[0, 0, 3, 0] = 1.0  # tank
    importance[1, 0, 2, 2] = 2.0  # rest
    per_image = metrics.object_shares(importance, objects, per_image=True)
    assert torch.allclose(per_image["cloud"], torch.tensor([0.75, 0.0], dtype=torch.float64))
    assert torch.allclose(per_image["tank"], torch.tensor([0.25, 0.0], dtype=torch.float64))
    assert torch.allclose(per_image["rest"], torch.tensor([0.0, 1.0], dtype=torch.float64))
    mean = metrics.object_shares(importance, objects)
    assert mean == pytest.approx({"cloud": 0.375, "tank": 0.125, "rest": 0.5})


def test_channels_are_summed_and_scale_does_not_matter(objects):
    imp = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    a = metrics.object_shares(imp, objects)
    b = metrics.object_shares(10 * imp.sum(1), {k: v[:, 0] for k, v in objects.items()})
    assert a == pytest.approx(b)


def test_uniform_and_empty_maps_get_the_area(objects):
    area = metrics.area_shares(objects)
    assert area == pytest.approx({"cloud": 0.25, "tank": 1 / 32, "rest": 1 - 0.25 - 1 / 32})
    assert metrics.object_shares(torch.zeros(2, 1, 4, 4), objects) == pytest.approx(area)
    assert metrics.object_shares(torch.full((2, 1, 4, 4), 0.3), objects) == pytest.approx(area)


def test_bad_inputs_are_refused(objects):
    with pytest.raises(ValueError, match="non-negative"):
        metrics.object_shares(-torch.ones(2, 1, 4, 4), objects)
    with pytest.raises(ValueError, match="reserved"):
        metrics.object_shares(torch.ones(2, 1, 4, 4), {"rest": objects["cloud"]})
    with pytest.raises(ValueError, match="shape"):
        metrics.object_shares(torch.ones(2, 1, 5, 5), objects)
    with pytest.raises(ValueError, match="not among"):
        metrics.score(torch.ones(2, 1, 4, 4), objects, auroc_for=["tree"])


def test_auroc_per_image_skips_images_without_the_object(objects):
    perfect = objects["tank"].float()
    per_image = metrics.object_auroc(perfect, objects["tank"], per_image=True)
    assert per_image[0] == 1.0 and torch.isnan(per_image[1])
    assert metrics.object_auroc(perfect, objects["tank"]) == 1.0
    assert metrics.object_auroc(1 - objects["cloud"].float(), objects["cloud"]) == 0.0
    assert metrics.object_auroc(torch.ones(2, 1, 4, 4), objects["cloud"]) == 0.5
    with pytest.raises(ValueError, match="no image"):
        metrics.object_auroc(perfect, torch.zeros(2, 1, 4, 4, dtype=torch.bool))


def test_score_collects_shares_and_aurocs(objects):
    importance = objects["cloud"].float() + 0.1
    out = metrics.score(importance, objects, auroc_for=["cloud"])
    assert set(out) == {"cloud", "tank", "rest", "auroc_cloud"}
    assert out["auroc_cloud"] == 1.0
    assert out["cloud"] == pytest.approx(4 * 1.1 / (4 * 1.1 + 12 * 0.1))
