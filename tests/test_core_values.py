"""Fast value tests of lanlib.core on small known cases (issue 21).

Each test calls one function of lanlib.core directly on a few numbers, so that the mutation
run reaches it within its per-mutant budget. Placement is checked on the "meta" device with
a noise that draws nothing (no generator lives on meta).
"""

import pytest
import torch
from torch import nn

from lanlib.core import check_mask, generator_for, objective, upsample_mask

META = torch.device("meta")


def _no_noise(inputs, generator=None):
    return torch.zeros_like(inputs)


def _mse(ref, out):
    return (ref - out).pow(2).flatten(1).mean(dim=1)


def test_check_mask_names_the_mask_in_its_errors_by_default():
    inputs = torch.zeros(1, 2)
    with pytest.raises(TypeError, match=r"^mask must be a tensor"):
        check_mask([0.5, 0.5], inputs)
    with pytest.raises(ValueError, match=r"^mask of shape \(3,\) does not broadcast"):
        check_mask(torch.zeros(3), inputs)


def test_generator_for_makes_its_fresh_generator_on_the_device_asked():
    assert generator_for(torch.device("cpu")).device.type == "cpu"
    # torch has no generator on meta: refused, never a CPU generator handed back instead
    with pytest.raises(RuntimeError):
        generator_for(META)


def test_upsample_mask_names_the_mask_when_it_does_not_broadcast():
    with pytest.raises(ValueError, match=r"^mask of shape \(1, 3\) does not broadcast"):
        upsample_mask(torch.zeros(1, 3), torch.Size((1, 2)))


def test_upsample_mask_expands_a_channel_shared_mask_over_four_spatial_dimensions():
    # Four spatial dimensions cannot be interpolated, but equal ones need no interpolation.
    mask = torch.arange(16.0).reshape(1, 1, 2, 2, 2, 2) / 16
    full = upsample_mask(mask, torch.Size((1, 3, 2, 2, 2, 2)))
    assert full.shape == (1, 3, 2, 2, 2, 2)
    for c in range(3):
        assert torch.equal(full[:, c], mask[:, 0])
    with pytest.raises(ValueError, match="cannot interpolate a mask over 4 spatial"):
        upsample_mask(mask[..., :1], torch.Size((1, 3, 2, 2, 2, 2)))


def test_objective_without_upsample_takes_the_mask_as_it_broadcasts():
    # A (1, 4) mask broadcasts over inputs (2, 1, 4) as it is; upsample_mask would refuse it.
    inputs = torch.ones(2, 1, 4)
    mask = torch.tensor([[0.0, 0.5, 1.0, 1.0]])
    terms = objective(nn.Identity(), inputs, mask, _no_noise, beta=1.0, loss=_mse)
    assert torch.allclose(terms["mask_mean"], torch.tensor([0.625, 0.625]))
    # corrupted = [1, 0.5, 0, 0]: the squared error averages (0 + 0.25 + 1 + 1) / 4
    assert torch.allclose(terms["distortion"], torch.tensor([0.5625, 0.5625]))
    # A coarse mask is not interpolated without upsample, and is with it.
    coarse = torch.tensor([[[0.0, 1.0]], [[1.0, 1.0]]])
    with pytest.raises(ValueError, match="does not broadcast"):
        objective(nn.Identity(), inputs, coarse, _no_noise, beta=1.0, loss=_mse)
    terms = objective(nn.Identity(), inputs, coarse, _no_noise, beta=1.0, loss=_mse,
                      upsample=True)
    assert terms["mask_mean"].shape == (2,)


def test_objective_multiplier_takes_the_distortions_dtype():
    inputs = torch.ones(2, 3, dtype=torch.float64)
    mask = torch.full((2, 3), 0.5, dtype=torch.float64)
    terms = objective(nn.Identity(), inputs, mask, _no_noise, loss=_mse,
                      max_distortion=0.1, multiplier=0.1)
    assert terms["multiplier"].dtype == torch.float64
    assert terms["objective"].dtype == torch.float64
    # distortion = 0.25, so -0.5 + 0.1 * (0.25 - 0.1), all in float64
    expected = torch.full((2,), -0.5 + 0.1 * (0.25 - 0.1), dtype=torch.float64)
    assert torch.equal(terms["objective"], expected)


def test_objective_multiplier_lives_on_the_inputs_device():
    inputs = torch.empty(2, 3, device=META)
    mask = torch.empty(2, 3, device=META)
    terms = objective(nn.Identity(), inputs, mask, _no_noise, loss=_mse,
                      max_distortion=0.1, multiplier=2.0)
    assert terms["multiplier"].device == META
    assert terms["objective"].device == META


def _gate_terms(seed, logits):
    generator = torch.Generator().manual_seed(seed)
    return objective(nn.Identity(), torch.ones(2, 3), logits, _no_noise, beta=1.0,
                     loss=_mse, gates="hard_concrete", generator=generator)


def test_objective_draws_the_gates_from_the_generator_given():
    logits = torch.tensor([[0.0, 0.5, -0.5], [1.0, -1.0, 0.0]])
    torch.manual_seed(1)
    first = _gate_terms(0, logits)
    torch.manual_seed(2)
    again = _gate_terms(0, logits)
    other = _gate_terms(1, logits)
    assert torch.equal(first["mask_mean"], again["mask_mean"])
    assert not torch.equal(first["mask_mean"], other["mask_mean"])


def test_objective_corrupts_with_the_gates_sample_not_the_logits():
    # Logits far from 0 give gates of exactly 0 and 1, whatever the draw.
    logits = torch.tensor([[50.0, 50.0, 50.0], [-50.0, -50.0, 50.0]])
    terms = _gate_terms(0, logits)
    assert torch.equal(terms["mask_mean"], torch.tensor([1.0, 1 / 3]))


def test_objective_expected_replaced_is_one_share_per_sample():
    logits = torch.tensor([[50.0, 50.0, 50.0], [-50.0, -50.0, 50.0]])
    terms = _gate_terms(0, logits)
    assert terms["expected_replaced"].shape == (2,)
    assert torch.allclose(terms["expected_replaced"], torch.tensor([1.0, 1 / 3]))
