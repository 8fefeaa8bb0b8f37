"""Tests of lanlib.metrics: the measures of masks that several chapters share."""

import math

import pytest
import torch
from torch import nn

from lanlib import metrics, noise


def _reader():
    """A linear classifier that reads only input element 0 (class 0 if positive)."""
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, 0], model.weight[1, 0] = 5.0, -5.0
        model.bias.zero_()
    return model


def test_binary_entropy_of_hard_and_undecided_masks():
    h = metrics.binary_entropy(torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.5, 1.0]]))
    assert h.shape == (3,) and h[0] < 1e-6
    assert math.isclose(float(h[1]), 1.0) and math.isclose(float(h[2]), 0.5, abs_tol=1e-6)


def test_mask_correlation_and_class_consistency():
    base = torch.rand(2, 16, generator=torch.Generator().manual_seed(0))
    jitter = 0.05 * torch.rand(8, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    masks = base[labels] + jitter
    corr = metrics.mask_correlation(masks)
    assert corr.shape == (8, 8) and torch.allclose(corr.diagonal(), torch.ones(8, dtype=corr.dtype))
    constant = metrics.mask_correlation(torch.stack([torch.ones(16), masks[0]]))
    assert constant[0, 1] == 0 and constant[0, 0] == 1
    stats = metrics.class_consistency(masks, labels, permutations=50,
                                      generator=torch.Generator().manual_seed(0))
    assert stats["within"] > 0.9 and stats["gap"] > 0.1 and stats["p_value"] < 0.1
    shuffled = metrics.class_consistency(masks, torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]))
    assert shuffled["gap"] < stats["gap"] and "p_value" not in shuffled
    with pytest.raises(ValueError, match="two samples"):
        metrics.class_consistency(masks[:2], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        metrics.class_consistency(masks, labels[:4])


def test_swap_test_prefers_own_masks():
    model = _reader()
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    masks = torch.tensor([[0.0, 1, 1, 1], [1.0, 1, 1, 1]])  # the first keeps what F reads
    stats = metrics.swap_test(model, x, masks, torch.tensor([1, 0]), noise.constant(-1.0),
                              draws=2)
    assert stats["own_better"] == 0.5  # image 0 loses by borrowing, image 1 gains
    assert stats["swapped"] == pytest.approx(stats["own"])
    with pytest.raises(ValueError, match="differ"):
        metrics.swap_test(model, x, masks, torch.tensor([0, 1]), noise.constant(0.0))
    with pytest.raises(ValueError, match="one row per input"):
        metrics.swap_test(model, x, masks[:1], torch.tensor([1, 0]), noise.constant(0.0))


def test_output_agreement_per_input_over_draws():
    model = _reader()
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    masks = torch.tensor([[0.0, 1, 1, 1], [1.0, 1, 1, 1]])  # the second replaces what F reads
    flip = noise.constant(-1.0)
    rate = metrics.output_agreement(model, x, masks, flip, draws=4, per_input=True)
    assert rate.tolist() == [1.0, 0.0] and rate.dtype == torch.float64
    assert metrics.output_agreement(model, x, masks, flip, draws=4) == 0.5
    assert metrics.output_agreement(model, x, masks, flip) == 0.5  # one draw, pooled
    shared = metrics.output_agreement(model, x, masks[:1], flip, draws=3, per_input=True)
    assert shared.tolist() == [1.0, 1.0]  # one mask for all inputs broadcasts
    with pytest.raises(ValueError, match="draws"):
        metrics.output_agreement(model, x, masks, flip, draws=0)


def test_output_agreement_draws_differ_per_input_and_are_seeded():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    half = torch.full((5, 4), 0.5)

    def rates(seed):
        return metrics.output_agreement(model, x, half, noise.uniform(-3.0, 3.0), draws=64,
                                        per_input=True,
                                        generator=torch.Generator().manual_seed(seed))

    first = rates(0)
    assert torch.equal(first, rates(0)) and first.shape == (5,)
    assert bool(((first > 0) & (first < 1)).any())  # a share of draws, not only 0 or 1


def test_correlation_needs_two_finite_pairs():
    nan = float("nan")
    with pytest.raises(ValueError, match="finite in both maps"):
        metrics.correlation(torch.tensor([nan, 1.0, nan]), torch.tensor([1.0, nan, 2.0]))


def test_perturbation_curve_follows_the_target_class():
    model = _reader()
    x = torch.tensor([[1.0, 0, 0, 0], [2.0, 0, 0, 0]])  # both predicted class 0
    importance = torch.tensor([[1.0, 0, 0, 0], [1.0, 0.5, 0.5, 0.5]])
    high, low = torch.sigmoid(torch.tensor([10.0, 20.0])), torch.sigmoid(torch.tensor([-10.0,
                                                                                       -20.0]))
    flipped = torch.sigmoid(torch.tensor(10.0))  # element 0 replaced by -1: class 1 at 10

    def curve(mode, target=None):
        return metrics.perturbation_curve(model, x, importance, noise.constant(-1.0), mode=mode,
                                          steps=4, target=target,
                                          generator=torch.Generator().manual_seed(0))

    # deleting element 0 first (a quarter of the elements): class 0 falls at the first step
    default = curve("deletion")
    torch.testing.assert_close(default["fractions"], torch.linspace(0, 1, 5))
    torch.testing.assert_close(default["probs"][:, 0], high)
    torch.testing.assert_close(default["probs"][:, 1:], torch.full((2, 4), 1 - flipped))
    followed = curve("deletion", target=[1, 1])
    torch.testing.assert_close(followed["probs"][:, 0], low)
    torch.testing.assert_close(followed["probs"][:, 1:], torch.full((2, 4), flipped))
    expected_auc = torch.trapezoid(followed["probs"], followed["fractions"], dim=1)
    torch.testing.assert_close(followed["auc"], expected_auc)
    # insertion starts from the noise and restores element 0 first
    inserted = curve("insertion", target=torch.tensor([0, 1]))
    torch.testing.assert_close(inserted["probs"][:, 0], torch.stack([1 - flipped, flipped]))
    torch.testing.assert_close(inserted["probs"][:, 1:],
                               torch.stack([high[0].expand(4), low[1].expand(4)]))
    with pytest.raises(ValueError, match=r"one class per input, shape \(2,\), got \(3,\)"):
        curve("deletion", target=[0, 1, 1])



def test_correlation_is_pearson_by_default_and_spearman_on_ranks():
    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.0, 3.0, 10.0])
    xa, xb = a - a.mean(), b - b.mean()
    pearson = float((xa * xb).sum() / (xa.norm() * xb.norm()))
    assert metrics.correlation(a, b) == pytest.approx(pearson) and pearson < 0.95
    assert metrics.correlation(a, b, rank=True) == pytest.approx(1.0)
    assert metrics.correlation(a, -b) == pytest.approx(-pearson)
    # non-finite elements of either map are left out, pairwise
    nan = float("nan")
    gappy = metrics.correlation(torch.tensor([1.0, nan, 2.0, 3.0, 4.0]),
                                torch.tensor([1.0, 5.0, 2.0, 3.0, 10.0]))
    assert gappy == pytest.approx(pearson)
    assert metrics.correlation([1.0, 2.0], [3.0, 1.0]) == pytest.approx(-1.0)  # lists too
    with pytest.raises(ValueError, match="one shape"):
        metrics.correlation(a, b[:3])
    with pytest.raises(ValueError, match="constant"):
        metrics.correlation(a, torch.ones(4))


def test_mid_ranks_share_the_mean_rank_of_ties():
    values = torch.tensor([[3.0, 1.0], [3.0, 3.0]])
    assert metrics.mid_ranks(values).tolist() == [3.0, 1.0, 3.0, 3.0]
    assert metrics.mid_ranks(torch.tensor([2.0, 1.0, 2.0, 0.0])).tolist() == [3.5, 2.0, 3.5,
                                                                                1.0]


def _scene():
    """Two 2x4 images; the object is the first row of each."""
    importance = torch.tensor([[[3.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 2.0]],
                               [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    cloud = torch.zeros(2, 1, 2, 4, dtype=torch.bool)
    cloud[:, 0, 0] = True
    return importance, cloud


def test_object_shares_per_image_and_on_average():
    importance, cloud = _scene()
    shares = metrics.object_shares(importance.unsqueeze(1), {"cloud": cloud}, per_image=True)
    # image 0: 4 of 8 on the cloud; image 1 has no importance: the areas, 1/2 each
    assert shares["cloud"].tolist() == [0.5, 0.5] and shares["rest"].tolist() == [0.5, 0.5]
    channels = importance.unsqueeze(1).expand(2, 3, 2, 4) / 3  # channels are summed
    assert metrics.object_shares(channels, {"cloud": cloud}) == pytest.approx(
        {"cloud": 0.5, "rest": 0.5})
    top = torch.zeros(2, 2, 4, dtype=torch.bool)
    top[:, 0, :2] = True  # overlapping objects count for each, the rest is neither
    shares = metrics.object_shares(importance, {"cloud": cloud[:, 0], "top": top})
    assert shares == pytest.approx({"cloud": (0.5 + 0.5) / 2, "top": (0.5 + 0.25) / 2,
                                    "rest": 0.5})
    assert metrics.area_shares({"top": top}) == {"top": 0.25, "rest": 0.75}
    with pytest.raises(ValueError, match="'rest' is reserved"):
        metrics.object_shares(importance, {"rest": top})
    with pytest.raises(ValueError, match="non-negative"):
        metrics.object_shares(-importance - 1, {"top": top})
    with pytest.raises(ValueError, match="contains NaN"):
        metrics.object_shares(importance * float("nan"), {"top": top})
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, H, W\)"):
        metrics.object_shares(importance[0], {"top": top})
    with pytest.raises(ValueError, match="one channel"):
        metrics.object_shares(importance, {"top": top.unsqueeze(1).expand(2, 2, 2, 4)})
    with pytest.raises(ValueError, match="must match"):
        metrics.object_shares(importance, {"top": top[:, :, :2]})


def test_object_auroc_averages_the_images_that_show_the_object():
    importance, cloud = _scene()
    # image 0: cloud pixels (3, 1, 0, 0) against (1, 1, 0, 2): wins 5, ties 4 of 16
    per_image = metrics.object_auroc(importance, cloud, per_image=True)
    assert per_image[0].item() == pytest.approx(7 / 16) and per_image[1].item() == 0.5
    hidden = cloud.clone()
    hidden[1] = False  # image 1 does not show it: left out of the mean
    assert metrics.object_auroc(importance, hidden) == pytest.approx(7 / 16)
    assert torch.isnan(metrics.object_auroc(importance, hidden, per_image=True)[1])
    with pytest.raises(ValueError, match="no image holds the object"):
        metrics.object_auroc(importance, torch.ones_like(cloud))
    result = metrics.score(importance, {"cloud": cloud, "none": ~cloud}, auroc_for=["cloud"])
    assert list(result) == ["cloud", "none", "rest", "auroc_cloud"]
    assert result["auroc_cloud"] == pytest.approx((7 / 16 + 0.5) / 2)
    with pytest.raises(ValueError, match=r"auroc_for names \['sky'\]"):
        metrics.score(importance, {"cloud": cloud}, auroc_for=["sky"])
