"""The options of fit_lan and fit_sample_masks, checked by the values they must give.

A linear F and constant noise 0 make the first step known by hand: with every mask at
``m``, the corrupted input is ``(1 - m) * x``, so the first recorded distortion is the
loss between ``F(x)`` and ``F((1 - m) x)``.
"""

import pytest
import torch
from torch import nn

import lanlib
from lanlib import losses, noise
from lanlib.nets import MLPMaskNet

X = torch.rand(6, 4, generator=torch.Generator().manual_seed(0))


def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def first_distortion(model, loss, m: float) -> float:
    with torch.no_grad():
        return float(losses.resolve(loss)(model(X), model((1 - m) * X)).mean())


def halving_lan() -> MLPMaskNet:
    """A LAN whose every mask starts at 0.5 (all its weights zero)."""
    lan = MLPMaskNet((4,), hidden=(3,))
    for p in lan.parameters():
        nn.init.zeros_(p)
    return lan


def absolute(reference, corrupted):
    return (reference - corrupted).abs().sum(1)


@pytest.mark.parametrize("loss", ["kl", "ce", "mse", absolute])
def test_sample_masks_fit_the_loss_they_are_given(loss):
    model, history = linear(), lanlib.History()
    lanlib.fit_sample_masks(model, X, noise.constant(0.0), beta=0.1, steps=2, loss=loss,
                            init=0.3, seed=0, progress=False, history=history)
    assert history.distortion[0] == pytest.approx(first_distortion(model, loss, 0.3), rel=1e-5)


@pytest.mark.parametrize("loss", ["kl", "mse", absolute])
def test_a_lan_fits_the_loss_it_is_given(loss):
    model, history = linear(), lanlib.History()
    lanlib.fit_lan(model, halving_lan(), X, noise.constant(0.0), beta=0.1, steps=2, loss=loss,
                   batch_size=6, seed=0, progress=False, history=history)
    assert history.distortion[0] == pytest.approx(first_distortion(model, loss, 0.5), rel=1e-5)


@pytest.mark.parametrize("init", [0.1, 0.8])
def test_sample_masks_start_at_init(init):
    history = lanlib.History()
    masks = lanlib.fit_sample_masks(linear(), X, noise.constant(0.0), beta=0.1, steps=1,
                                    lr=1e-8, init=init, seed=0, progress=False,
                                    history=history)
    torch.testing.assert_close(masks, torch.full_like(X, init))
    assert history.mask_mean == [pytest.approx(init)]


def test_history_records_every_step_of_both_fits():
    model, beta = linear(), 0.1
    h = lanlib.History()
    lanlib.fit_sample_masks(model, X, noise.constant(0.0), beta=beta, steps=5, seed=0,
                            progress=False, history=h)
    assert len(h) == 5 and sorted(h.series) == ["distortion", "mask_mean", "objective"]
    for d, m, o in zip(h.distortion, h.mask_mean, h.objective, strict=True):
        assert o == pytest.approx(d - beta * m, abs=1e-6)
    assert h.mask_mean[-1] > h.mask_mean[0]  # a reward for larger masks makes them grow
    lan_history = lanlib.History()
    lanlib.fit_lan(model, halving_lan(), X, noise.constant(0.0), beta=beta, steps=4,
                   batch_size=3, seed=0, progress=False, history=lan_history)
    assert len(lan_history) == 4 and lan_history.mask_mean[0] == pytest.approx(0.5)
    assert lan_history.mask_mean[-1] > 0.5


def test_device_names_where_the_fits_run():
    model = linear()
    here = lanlib.fit_sample_masks(model, X, noise.constant(0.0), beta=0.1, steps=3,
                                   seed=0, progress=False, device="cpu")
    default = lanlib.fit_sample_masks(model, X, noise.constant(0.0), beta=0.1, steps=3,
                                      seed=0, progress=False)
    assert torch.equal(here, default) and here.device == X.device
    lan = lanlib.fit_lan(model, halving_lan(), X, noise.constant(0.0), beta=0.1, steps=2,
                         seed=0, progress=False, device=torch.device("cpu"))
    assert next(lan.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            lanlib.fit_sample_masks(model, X, noise.constant(0.0), beta=0.1, steps=1,
                                    progress=False, device="cuda")
        with pytest.raises(ValueError, match="CUDA device"):
            lanlib.fit_lan(model, halving_lan(), X, noise.constant(0.0), beta=0.1, steps=1,
                           progress=False, device="cuda")


@pytest.mark.parametrize("init", [0.0, 1.0, True, "0.5"])
def test_init_must_lie_strictly_inside_the_unit_interval(init):
    with pytest.raises(ValueError, match="init must lie strictly between 0 and 1"):
        lanlib.fit_sample_masks(linear(), X, noise.constant(0.0), beta=0.1, steps=1,
                                init=init, progress=False)
