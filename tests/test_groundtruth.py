"""Tests of lanlib.groundtruth: shares and AUROCs worked out by hand."""

import matplotlib
import pytest
import torch

from lanlib import groundtruth as gt

matplotlib.use("Agg")


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
    per_image = gt.object_shares(importance, objects, per_image=True)
    assert torch.allclose(per_image["cloud"], torch.tensor([0.75, 0.0], dtype=torch.float64))
    assert torch.allclose(per_image["tank"], torch.tensor([0.25, 0.0], dtype=torch.float64))
    assert torch.allclose(per_image["rest"], torch.tensor([0.0, 1.0], dtype=torch.float64))
    mean = gt.object_shares(importance, objects)
    assert mean == pytest.approx({"cloud": 0.375, "tank": 0.125, "rest": 0.5})


def test_channels_are_summed_and_scale_does_not_matter(objects):
    imp = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    a = gt.object_shares(imp, objects)
    b = gt.object_shares(10 * imp.sum(1), {k: v[:, 0] for k, v in objects.items()})
    assert a == pytest.approx(b)


def test_uniform_and_empty_maps_get_the_area(objects):
    area = gt.area_shares(objects)
    assert area == pytest.approx({"cloud": 0.25, "tank": 1 / 32, "rest": 1 - 0.25 - 1 / 32})
    assert gt.object_shares(torch.zeros(2, 1, 4, 4), objects) == pytest.approx(area)
    assert gt.object_shares(torch.full((2, 1, 4, 4), 0.3), objects) == pytest.approx(area)


def test_bad_inputs_are_refused(objects):
    with pytest.raises(ValueError, match="non-negative"):
        gt.object_shares(-torch.ones(2, 1, 4, 4), objects)
    with pytest.raises(ValueError, match="reserved"):
        gt.object_shares(torch.ones(2, 1, 4, 4), {"rest": objects["cloud"]})
    with pytest.raises(ValueError, match="shape"):
        gt.object_shares(torch.ones(2, 1, 5, 5), objects)
    with pytest.raises(ValueError, match="not among"):
        gt.score(torch.ones(2, 1, 4, 4), objects, auroc_for=["tree"])


def test_auroc_per_image_skips_images_without_the_object(objects):
    perfect = objects["tank"].float()
    per_image = gt.object_auroc(perfect, objects["tank"], per_image=True)
    assert per_image[0] == 1.0 and torch.isnan(per_image[1])
    assert gt.object_auroc(perfect, objects["tank"]) == 1.0
    assert gt.object_auroc(1 - objects["cloud"].float(), objects["cloud"]) == 0.0
    assert gt.object_auroc(torch.ones(2, 1, 4, 4), objects["cloud"]) == 0.5
    with pytest.raises(ValueError, match="no image"):
        gt.object_auroc(perfect, torch.zeros(2, 1, 4, 4, dtype=torch.bool))


def test_score_collects_shares_and_aurocs(objects):
    importance = objects["cloud"].float() + 0.1
    out = gt.score(importance, objects, auroc_for=["cloud"])
    assert set(out) == {"cloud", "tank", "rest", "auroc_cloud"}
    assert out["auroc_cloud"] == 1.0
    assert out["cloud"] == pytest.approx(4 * 1.1 / (4 * 1.1 + 12 * 0.1))


def test_markdown_table():
    text = gt.markdown_table({"a": {"x": 0.123, "y": 2}, "b": {"x": 1.0}},
                             {"x": "share", "y": "count"}, digits=1)
    assert text.splitlines() == ["| method | share | count |", "|---|---:|---:|",
                                 "| a | 0.1 | 2 |", "| b | 1.0 |  |"]


def test_html_table_escapes_and_aligns():
    text = gt.html_table({"a<b": {"x": 0.123}}, {"x": "share & more"}, digits=1)
    assert "<td style=\"text-align:left\">a&lt;b</td>" in text
    assert "share &amp; more" in text and ">0.1<" in text
    assert text.startswith("<table>") and text.endswith("</table>")


def test_figures(objects):
    scores = {"m1": {"cloud": 0.5, "tank": 0.1}, "m2": {"cloud": 0.2, "tank": 0.3}}
    fig = gt.plot_scores(scores, {"cloud": "cloud share", "tank": "tank share"},
                         times={"m1": 0.01, "m2": 1.0}, reference={"cloud": 0.25})
    assert len(fig.axes) == 2
    images = torch.rand(2, 3, 4, 4)
    fig = gt.show_objects(images, objects, {"a": torch.rand(2, 1, 4, 4),
                                            "b": torch.rand(2, 3, 4, 4)})
    assert len(fig.axes) == 2 * 3 + 1  # the panels and one colour bar
