"""Value tests of lanlib.losses on outputs whose distortions are known by hand."""

import math
import warnings

import pytest
import torch

from lanlib import losses

REF = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
OUT = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, -1.0]])


def test_kl_is_the_divergence_from_the_reference_distribution():
    p, q = REF.softmax(1), OUT.softmax(1)
    expected = (p * (p.log() - q.log())).sum(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no implicit softmax dimension, no other warning
        torch.testing.assert_close(losses.kl(REF, OUT), expected)
    # not symmetric: KL(p || q) differs from KL(q || p)
    assert not torch.allclose(losses.kl(REF, OUT), losses.kl(OUT, REF))
    assert torch.equal(losses.kl(REF, REF), torch.zeros(2))


def test_ce_follows_the_references_predicted_class():
    expected = torch.stack([-OUT[0].log_softmax(0)[0], -OUT[1].log_softmax(0)[0]])
    torch.testing.assert_close(losses.ce(REF, OUT), expected)
    ref = torch.tensor([[0.0, 5.0, 1.0]])
    torch.testing.assert_close(losses.ce(ref, OUT[:1]), torch.tensor([math.log(3.0)]))


def test_mse_is_the_mean_squared_difference_per_row():
    ref = torch.tensor([[1.0, 2.0], [0.0, 0.0]]).reshape(2, 1, 2)
    out = torch.tensor([[1.0, 4.0], [3.0, -1.0]]).reshape(2, 1, 2)
    torch.testing.assert_close(losses.mse(ref, out), torch.tensor([2.0, 5.0]))


def test_one_output_per_row_is_a_binary_classifier():
    z = torch.tensor([2.0, -1.0])
    logits = losses.class_logits(z)
    torch.testing.assert_close(logits, torch.tensor([[0.0, 2.0], [0.0, -1.0]]))
    assert torch.equal(losses.class_logits(z.reshape(2, 1)), logits)
    wide = torch.rand(2, 2, 3)
    assert torch.equal(losses.class_logits(wide), wide.reshape(2, 6))
    p, q = torch.sigmoid(torch.tensor(2.0)), torch.sigmoid(torch.tensor(0.5))
    bernoulli = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    torch.testing.assert_close(losses.kl(torch.tensor([2.0]), torch.tensor([0.5])),
                               bernoulli.reshape(1))
    torch.testing.assert_close(losses.ce(torch.tensor([2.0]), torch.tensor([0.5])),
                               -q.log().reshape(1))


def test_at_least_float32_widens_low_precision_only():
    half = torch.ones(2, dtype=torch.bfloat16)
    assert losses.at_least_float32(half).dtype == torch.float32
    assert losses.at_least_float32(half.half()).dtype == torch.float32
    double = torch.ones(2, dtype=torch.float64)
    assert losses.at_least_float32(double) is double
    ints = torch.ones(2, dtype=torch.int64)
    assert losses.at_least_float32(ints) is ints


def test_resolve_names_and_callables():
    assert losses.resolve("kl") is losses.kl and losses.resolve("ce") is losses.ce
    assert losses.resolve("mse") is losses.mse
    per_row = losses.resolve(lambda r, c: (r - c).abs().sum(1))
    torch.testing.assert_close(per_row(REF, OUT), torch.tensor([2.0, 2.0]))
    scalar = losses.resolve(lambda r, c: (r - c).abs().sum())
    torch.testing.assert_close(scalar(REF, OUT), torch.tensor([4.0, 4.0]))
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        losses.resolve("l1")
    with pytest.raises(TypeError, match="got int"):
        losses.resolve(3)
    with pytest.raises(TypeError, match="must return a tensor, got float"):
        losses.resolve(lambda r, c: 1.0)(REF, OUT)
    with pytest.raises(ValueError, match=r"one value per sample \(2,\), got shape \(2, 3\)"):
        losses.resolve(lambda r, c: r - c)(REF, OUT)
