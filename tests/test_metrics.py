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
