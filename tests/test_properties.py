"""Properties that hold for every shape, batch, seed and model, checked with Hypothesis.

- shapes: ``corrupt`` and ``upsample_mask`` follow the broadcasting rules, the mask
  networks and ``fit_sample_masks`` return the mask shape asked for;
- batch independence: a row's mask does not depend on the other rows nor on the batch
  size, from a LAN (untrained or trained) and from ``fit_sample_masks``;
- seeding: the same seed gives the same result, another seed another one, and torch's
  global generator is left as it was;
- restoration: ``frozen`` and both fits give back every submodule's train/eval mode,
  every ``requires_grad`` flag and every buffer (BatchNorm statistics included).

Examples are few and derandomised (the same ones on every run), with no deadline and no
shrinking: the suite stays fast, and a failure replays and reports its example.
"""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import nn

import lanlib
from lanlib import noise
from lanlib.core import corrupt, frozen, upsample_mask
from lanlib.nets import ConvMaskNet, MLPMaskNet

# No shrinking: the examples are small already, and shrinking a failing fit takes minutes.
FEW = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate],
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

seeds = st.integers(0, 2**31 - 1)


@st.composite
def shape_and_broadcastable(draw, min_dims=1, max_dims=3):
    """An input shape ``(N, *S)`` and a per-sample shape where any entry may be 1."""
    n = draw(st.integers(1, 4))
    sample = draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=max_dims))
    kept = [size if draw(st.booleans()) else 1 for size in sample]
    return (n, *sample), tuple(kept)


# ---------------------------------------------------------------- shapes


@FEW
@given(shapes=shape_and_broadcastable(), eta_kept=st.booleans(), seed=seeds)
def test_corrupt_broadcasts_mask_and_noise_to_the_inputs(shapes, eta_kept, seed):
    shape, mask_shape = shapes
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    mask = torch.rand((shape[0], *mask_shape), generator=g, dtype=torch.float64)
    eta = torch.rand(shape if eta_kept else (1, *mask_shape), generator=g, dtype=torch.float64)
    out = corrupt(x, mask, eta)
    assert out.shape == x.shape
    full_mask, full_eta = mask.expand(shape), eta.expand(shape)
    torch.testing.assert_close(out, full_mask * full_eta + (1 - full_mask) * x)
    torch.testing.assert_close(corrupt(x, torch.zeros_like(mask), eta), x)  # 0 keeps
    torch.testing.assert_close(corrupt(x, torch.ones_like(mask), eta), full_eta)  # 1 replaces


@FEW
@given(shapes=shape_and_broadcastable(), where=st.data())
def test_corrupt_refuses_a_mask_that_does_not_broadcast(shapes, where):
    shape, _ = shapes
    dim = where.draw(st.integers(1, len(shape) - 1))
    bad = list(shape)
    bad[dim] = shape[dim] + 1  # neither the size nor 1
    with pytest.raises(ValueError, match="does not broadcast"):
        corrupt(torch.rand(shape), torch.rand(bad), torch.rand(shape))
    with pytest.raises(ValueError, match="does not broadcast"):  # more rows than the inputs
        corrupt(torch.rand(shape), torch.rand(shape[0] + 1, *shape[1:]), torch.rand(shape))


@st.composite
def coarse_and_fine(draw):
    """A coarse mask shape and the image shape it is upsampled to, by whole factors."""
    n, channels = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3]))
    coarse = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    factors = draw(st.lists(st.integers(1, 3), min_size=len(coarse), max_size=len(coarse)))
    mask_channels = draw(st.sampled_from(sorted({1, channels})))
    fine = [c * f for c, f in zip(coarse, factors, strict=True)]
    return (n, mask_channels, *coarse), (n, channels, *fine), factors


@FEW
@given(shapes=coarse_and_fine(), seed=seeds)
def test_upsample_mask_blocks_repeat_each_coarse_value(shapes, seed):
    coarse_shape, fine_shape, factors = shapes
    mask = torch.rand(coarse_shape, generator=torch.Generator().manual_seed(seed))
    blocks = upsample_mask(mask, fine_shape, smooth=False)
    assert blocks.shape == fine_shape
    expected = mask
    for dim, factor in enumerate(factors, start=2):
        expected = expected.repeat_interleave(factor, dim=dim)
    torch.testing.assert_close(blocks, expected.expand(fine_shape), rtol=0, atol=0)


@FEW
@given(shapes=coarse_and_fine(), seed=seeds)
def test_upsample_mask_smooth_stays_within_the_coarse_values_and_blends_them(shapes, seed):
    coarse_shape, fine_shape, factors = shapes
    mask = torch.rand(coarse_shape, generator=torch.Generator().manual_seed(seed))
    smooth = upsample_mask(mask, torch.empty(fine_shape))  # smooth is the default
    assert smooth.shape == fine_shape
    # interpolation is a weighted average of neighbours: never outside a row's range
    rows = mask.flatten(1)
    assert (smooth.flatten(1).amin(1) >= rows.amin(1) - 1e-6).all()
    assert (smooth.flatten(1).amax(1) <= rows.amax(1) + 1e-6).all()
    # each row is upsampled on its own
    torch.testing.assert_close(smooth[-1:], upsample_mask(mask[-1:], (1, *fine_shape[1:])))
    # a dimension of two or more values, at least doubled: new values appear between them
    if any(size > 1 and factor > 1 for size, factor in zip(coarse_shape[2:], factors,
                                                           strict=True)):
        values = mask.flatten()
        new = (smooth.flatten()[:, None] - values[None, :]).abs().amin(1) > 1e-6
        assert new.any(), "smooth upsampling gave only the coarse values: that is blocks"


@FEW
@given(shapes=coarse_and_fine(), seed=seeds)
def test_upsample_mask_keeps_a_constant_mask_constant(shapes, seed):
    coarse_shape, fine_shape, _ = shapes
    value = torch.rand((), generator=torch.Generator().manual_seed(seed))
    for smooth in (True, False):
        out = upsample_mask(torch.full(coarse_shape, value.item()), fine_shape, smooth=smooth)
        torch.testing.assert_close(out, torch.full(fine_shape, value.item()))


@FEW
@given(shapes=coarse_and_fine())
def test_upsample_mask_refuses_another_number_of_dimensions(shapes):
    coarse_shape, fine_shape, _ = shapes
    with pytest.raises(ValueError, match="one entry per input dimension"):
        upsample_mask(torch.rand(coarse_shape[1:]), fine_shape)


@FEW
@given(shapes=shape_and_broadcastable(), hidden=st.integers(1, 6), seed=seeds)
def test_mlp_mask_net_gives_its_mask_shape_and_checks_its_input(shapes, hidden, seed):
    shape, mask_shape = shapes
    torch.manual_seed(seed)
    lan = MLPMaskNet(shape[1:], hidden=(hidden,), mask_shape=mask_shape)
    out = lan(torch.rand(shape))
    assert out.shape == (shape[0], *mask_shape)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="was built for inputs"):
        lan(torch.rand(shape[0], *shape[1:-1], shape[-1] + 1))
    with pytest.raises(ValueError, match="one entry per input dimension"):
        MLPMaskNet(shape[1:], mask_shape=(*mask_shape, 1))


@FEW
@given(shapes=shape_and_broadcastable(), seed=seeds)
def test_fit_sample_masks_returns_the_mask_shape_asked_for(shapes, seed):
    shape, mask_shape = shapes
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape[1:]), 2))
    x = torch.rand(shape)
    masks = lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=2,
                                    mask_shape=mask_shape, seed=seed, progress=False)
    assert masks.shape == (shape[0], *mask_shape)
    assert masks.min() >= 0 and masks.max() <= 1
    default = lanlib.fit_sample_masks(model, x, noise.uniform(), beta=1.0, steps=1, seed=seed,
                                      progress=False)
    assert default.shape == shape


# ---------------------------------------------------------------- batch independence


def _subset(data, n):
    """Random rows of a batch of ``n``, in a random order (at least one)."""
    size = data.draw(st.integers(1, n))
    return data.draw(st.permutations(range(n)))[:size]


def _linear_classifier(inputs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, 6), nn.Tanh(), nn.Linear(6, 3)).double()


@pytest.fixture(scope="module")
def trained_lan():
    """A LAN trained for a few steps on a small classifier (its inputs (1, 4, 4))."""
    model = nn.Sequential(nn.Flatten(), *_linear_classifier(16, 0))
    x = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1)
    lan = MLPMaskNet((1, 4, 4), hidden=(12,)).double()
    lanlib.fit_lan(model, lan, x, noise.bootstrap(x), beta=0.5, steps=40, lr=1e-2,
                   batch_size=16, seed=0, progress=False)
    return lan.eval()


@FEW
@given(n=st.integers(2, 9), seed=seeds, data=st.data())
def test_a_lan_masks_each_row_on_its_own(trained_lan, n, seed, data):
    torch.manual_seed(seed)
    untrained = {"mlp": MLPMaskNet((1, 4, 4), hidden=(5,)).double(),
                 "conv": ConvMaskNet(width=3, channels=1).double()}
    x = torch.rand(n, 1, 4, 4, dtype=torch.float64)
    rows = _subset(data, n)
    with torch.no_grad():
        for lan in (*untrained.values(), trained_lan):
            torch.testing.assert_close(lan(x[rows]), lan(x)[rows], rtol=0, atol=1e-12)


@FEW
@given(n=st.integers(2, 6), seed=seeds, mask_shared=st.booleans(), data=st.data())
def test_fit_sample_masks_fits_each_row_on_its_own(n, seed, mask_shared, data):
    model = nn.Sequential(nn.Flatten(), *_linear_classifier(8, seed))
    x = torch.rand(n, 2, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    kwargs = dict(beta=0.3, steps=25, lr=0.1, seed=seed, progress=False,
                  mask_shape=(1, 4) if mask_shared else None)
    # constant noise: the draws cannot depend on the batch, so neither may the masks
    fill = noise.constant(data.draw(st.sampled_from([0.0, 0.5])))
    rows = _subset(data, n)
    whole = lanlib.fit_sample_masks(model, x, fill, **kwargs)
    part = lanlib.fit_sample_masks(model, x[rows], fill, **kwargs)
    torch.testing.assert_close(part, whole[rows], rtol=0, atol=1e-9)


# ---------------------------------------------------------------- seeding


def _fits(seed: int, noise_kind: str):
    """Masks and a trained LAN's weights from one seed, on a fixed small task."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand(12, 6, generator=g)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    fill = noise.uniform() if noise_kind == "uniform" else noise.bootstrap(torch.rand(40, 6,
                                                                           generator=g))
    masks = lanlib.fit_sample_masks(model, x, fill, beta=0.5, steps=4, seed=seed,
                                    progress=False)
    torch.manual_seed(4)
    lan = MLPMaskNet((6,), hidden=(4,))
    lanlib.fit_lan(model, lan, x, fill, beta=0.5, steps=4, batch_size=5, seed=seed,
                   progress=False)
    return masks, torch.cat([p.detach().flatten() for p in lan.parameters()])


@FEW
@given(seed=seeds, other=seeds, noise_kind=st.sampled_from(["uniform", "bootstrap"]),
       global_seed=seeds)
def test_fits_are_seeded_and_leave_the_global_generator_alone(seed, other, noise_kind,
                                                              global_seed):
    torch.manual_seed(global_seed)
    state = torch.get_rng_state()
    masks, weights = _fits(seed, noise_kind)
    torch.set_rng_state(state)
    again = _fits(seed, noise_kind)
    torch.testing.assert_close(again[0], masks, rtol=0, atol=0)
    torch.testing.assert_close(again[1], weights, rtol=0, atol=0)
    if other != seed:
        different = _fits(other, noise_kind)
        assert not torch.equal(different[0], masks)
        assert not torch.equal(different[1], weights)
    # the fits draw only from generators of their own, never from torch's global one
    model, lan, x = nn.Linear(6, 2), MLPMaskNet((6,), hidden=(3,)), torch.rand(4, 6)
    state = torch.get_rng_state()
    lanlib.fit_sample_masks(model, x, noise.uniform(), beta=0.5, steps=3, seed=seed,
                            progress=False)
    lanlib.fit_lan(model, lan, x, noise.uniform(), beta=0.5, steps=3, batch_size=2, seed=seed,
                   progress=False)
    assert torch.equal(torch.get_rng_state(), state), "a fit drew from torch's generator"


@FEW
@given(seed=seeds, other=seeds, pool=st.integers(2, 30), n=st.integers(1, 8))
def test_noise_draws_follow_the_generator_passed_at_call_time(seed, other, pool, n):
    samples = torch.arange(pool, dtype=torch.float32)[:, None].expand(pool, 3).contiguous()
    x = torch.zeros(n, 3)
    for fill in (noise.bootstrap(samples), noise.uniform(),
                 noise.bootstrap(samples, generator=torch.Generator().manual_seed(other))):
        state = torch.get_rng_state()
        first = fill(x, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(first, fill(x, generator=torch.Generator().manual_seed(seed)))
        assert torch.equal(torch.get_rng_state(), state)
        if other != seed:  # many draws: the chance that all coincide is negligible
            many = torch.zeros(64, 3)
            assert not torch.equal(fill(many, generator=torch.Generator().manual_seed(seed)),
                                   fill(many, generator=torch.Generator().manual_seed(other)))
    # bootstrap draws every sample of its pool, the last one too (missing one of them in
    # 64 draws per sample has a chance below pool * exp(-64))
    drawn = noise.bootstrap(samples)(torch.zeros(64 * pool, 3),
                                     generator=torch.Generator().manual_seed(seed))
    assert drawn[:, 0].unique().tolist() == list(range(pool))


# ---------------------------------------------------------------- restoration


_LAYERS = {
    "linear": lambda width: nn.Linear(width, width),
    "batchnorm": lambda width: nn.BatchNorm1d(width),
    "dropout": lambda width: nn.Dropout(0.3),
    "relu": lambda width: nn.ReLU(),
    "block": lambda width: nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width),
                                         nn.Tanh()),
}


@st.composite
def small_models(draw):
    """A random stack of layers with random modes, flags and BatchNorm statistics."""
    width = draw(st.integers(2, 5))
    kinds = draw(st.lists(st.sampled_from(sorted(_LAYERS)), min_size=1, max_size=4))
    torch.manual_seed(draw(seeds))
    model = nn.Sequential(*(_LAYERS[k](width) for k in kinds), nn.Linear(width, 3))
    for module in model.modules():  # set one by one: .train() would recurse
        module.training = draw(st.booleans())
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(draw(st.integers(0, 9)))
    for parameter in model.parameters():
        parameter.requires_grad_(draw(st.booleans()))
    return model, width


def _state(model):
    return ({name: m.training for name, m in model.named_modules()},
            {name: p.requires_grad for name, p in model.named_parameters()},
            copy.deepcopy(model.state_dict()))


def _assert_restored(model, before):
    modes, flags, tensors = _state(model)
    assert modes == before[0]
    assert flags == before[1]
    assert tensors.keys() == before[2].keys()
    for key, value in tensors.items():
        assert torch.equal(value, before[2][key]), key


@FEW
@given(built=small_models(), raises=st.booleans())
def test_frozen_restores_every_submodule(built, raises):
    model, width = built
    before = _state(model)

    class Stop(Exception):
        pass

    with pytest.raises(Stop) if raises else contextlib.nullcontext(), frozen(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
        model(torch.rand(3, width))  # eval mode: BatchNorm statistics stay
        if raises:
            raise Stop
    _assert_restored(model, before)


@FEW
@given(built=small_models(), seed=seeds)
def test_fits_restore_every_submodule(built, seed):
    model, width = built
    before = _state(model)
    x = torch.rand(6, width, generator=torch.Generator().manual_seed(seed))
    lanlib.fit_sample_masks(model, x, noise.bootstrap(x), beta=0.5, steps=2, seed=seed,
                            progress=False)
    _assert_restored(model, before)
    lanlib.fit_lan(model, MLPMaskNet((width,), hidden=(3,)), x, noise.bootstrap(x), beta=0.5,
                   steps=2, batch_size=3, seed=seed, progress=False)
    _assert_restored(model, before)
