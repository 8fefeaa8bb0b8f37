"""Value tests of lanlib.noise: which generator draws, what is drawn, what the blur gives."""

import math
import re

import pytest
import torch
from torch.utils.data import TensorDataset

from lanlib import noise


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


POOL = torch.arange(5.0).reshape(5, 1).expand(5, 3).clone()  # sample i is (i, i, i)


def drawn(eta: torch.Tensor) -> list[int]:
    """The pool index of each drawn sample (every sample of POOL is constant)."""
    assert torch.equal(eta.min(1).values, eta.max(1).values), "a drawn sample was mixed"
    return [int(v) for v in eta[:, 0]]


def test_bootstrap_draws_the_indices_of_the_call_generator():
    x = torch.zeros(40, 3)
    expected = torch.randint(5, (40,), generator=seeded(7)).tolist()
    # the generator passed at call time wins over the factory's
    eta = noise.bootstrap(POOL, generator=seeded(0))(x, generator=seeded(7))
    assert drawn(eta) == expected
    # without one, the factory's generator draws
    assert drawn(noise.bootstrap(POOL, generator=seeded(7))(x)) == expected


def test_bootstrap_reaches_every_sample_of_its_pool_the_last_one_too():
    x = torch.zeros(200, 3)
    assert set(drawn(noise.bootstrap(POOL)(x, generator=seeded(0)))) == set(range(5))
    pair = POOL[:2]
    assert set(drawn(noise.bootstrap(pair)(x, generator=seeded(1)))) == {0, 1}


def test_bootstrap_from_a_dataset_of_pairs_draws_the_same_inputs_as_from_the_tensor():
    x = torch.zeros(12, 3)
    pairs = TensorDataset(POOL, torch.zeros(5))
    from_tensor = noise.bootstrap(POOL)(x, generator=seeded(3))
    from_pairs = noise.bootstrap(pairs)(x, generator=seeded(3))
    assert torch.equal(from_pairs, from_tensor)
    singles = [POOL[i] for i in range(5)]  # a map-style pool yielding bare inputs
    assert torch.equal(noise.bootstrap(_Indexable(singles))(x, generator=seeded(3)), from_tensor)


class _Indexable:
    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def test_bootstrap_keeps_the_inputs_dtype_and_refuses_bad_pools():
    eta = noise.bootstrap(POOL)(torch.zeros(4, 3, dtype=torch.float64), generator=seeded(0))
    assert eta.dtype == torch.float64
    assert repr(noise.bootstrap(POOL)) == "bootstrap(5 samples)"
    with pytest.raises(ValueError, match="at least one sample"):
        noise.bootstrap(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="at least one sample"):
        noise.bootstrap(torch.tensor(1.0))
    with pytest.raises(ValueError, match="empty dataset"):
        noise.bootstrap(_Indexable([]))
    with pytest.raises(TypeError, match="floating point"):
        noise.bootstrap(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="stack it first"):
        noise.bootstrap([POOL[0], POOL[1]])
    with pytest.raises(TypeError, match="got int"):
        noise.bootstrap(3)
    with pytest.raises(ValueError, match="batched inputs"):
        noise.bootstrap(POOL)(torch.tensor(0.0))
    with pytest.raises(TypeError, match="got _Sized"):
        noise.bootstrap(_Sized())
    with pytest.raises(ValueError, match=re.escape(
            "the bootstrap pool must be finite, but 1 of 6 values are NaN or infinite; drop or "
            "clean those samples")):
        noise.bootstrap(torch.tensor([[math.inf, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=re.escape(
            "a bootstrap sample must be finite, but 2 of 6 values are NaN or infinite; drop or "
            "clean it in the pool")):
        noise.bootstrap(_Indexable([torch.tensor([math.nan, 0.0, 0.0])]))(torch.zeros(2, 3))


class _Sized:
    def __len__(self):
        return 3


def test_a_pool_of_scalars_serves_inputs_of_one_number_each():
    pool = torch.tensor([5.0, 7.0])
    eta = noise.bootstrap(pool)(torch.zeros(50), generator=seeded(0))
    assert set(eta.tolist()) == {5.0, 7.0}


def test_uniform_draws_from_the_call_generator_then_the_factorys():
    x = torch.zeros(6, 4)
    expected = -1.0 + 3.0 * torch.rand(6, 4, generator=seeded(5))
    torch.testing.assert_close(noise.uniform(-1.0, 2.0, generator=seeded(0))(
        x, generator=seeded(5)), expected)
    torch.testing.assert_close(noise.uniform(-1.0, 2.0, generator=seeded(5))(x), expected)
    assert noise.uniform()(x.double()).dtype == torch.float64
    assert repr(noise.uniform(-1.0, 2.0)) == "uniform(-1.0, 2.0)"
    with pytest.raises(ValueError, match="low < high"):
        noise.uniform(2.0, 1.0)
    # each bound is named in its own error, exactly
    with pytest.raises(TypeError, match=re.escape("low must be a number, got 'a'")):
        noise.uniform("a", 1.0)
    with pytest.raises(ValueError, match=re.escape("high must be finite, got inf;")):
        noise.uniform(0.0, math.inf)


def test_constant_takes_finite_numbers_only():
    assert repr(noise.constant(torch.tensor(0.25))) == "constant(0.25)"
    assert noise.constant(2)(torch.zeros(2, 2)).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    for bad in (True, "0.5", None):
        with pytest.raises(TypeError, match="must be a number"):
            noise.constant(bad)
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError, match="must be finite"):
            noise.constant(bad)
    with pytest.raises(ValueError, match=re.escape(
            "the constant noise value must be finite, got inf; noise replaces inputs by it")):
        noise.constant(math.inf)
    assert noise.constant()(torch.ones(1, 2)).tolist() == [[0.0, 0.0]]  # zero by default
    with pytest.raises(TypeError, match="expects a tensor"):
        noise.constant(0.0)([0.0, 1.0])
    with pytest.raises(NotImplementedError):
        noise.Noise()(torch.zeros(1))


def gaussian(sigma: float, radius: int) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def test_blur_of_a_spike_is_the_normalised_gaussian_cut_at_four_sigma():
    spike = torch.zeros(1, 1, 21, dtype=torch.float64)
    spike[0, 0, 10] = 1.0
    out = noise.blur(1.5)(spike)[0, 0]
    radius = math.ceil(4 * 1.5)  # 6
    expected = torch.zeros(21, dtype=torch.float64)
    expected[10 - radius:10 + radius + 1] = gaussian(1.5, radius)
    torch.testing.assert_close(out, expected)
    # in 2-D the blur is separable: the outer product of the 1-D kernels
    image = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    image[0, 0, 10, 10] = 1.0
    torch.testing.assert_close(noise.blur(1.5)(image)[0, 0],
                               torch.outer(expected, expected))


def test_blur_reflects_at_the_edges_and_shortens_its_kernel_on_small_inputs():
    ramp = torch.tensor([[[0.0, 1.0, 2.0]]], dtype=torch.float64)
    # radius min(ceil(4 * 2), 3 - 1) = 2, reflect padding: [2, 1, 0, 1, 2, 1, 0]
    k = gaussian(2.0, 2)
    padded = torch.tensor([2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    expected = torch.stack([padded[i:i + 5] @ k for i in range(3)])
    torch.testing.assert_close(noise.blur(2.0)(ramp)[0, 0], expected)
    pair = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)  # radius 1: padded [1, 0, 1, 0]
    k = gaussian(1.0, 1)
    torch.testing.assert_close(noise.blur(1.0)(pair)[0, 0],
                               torch.stack([k[0] + k[2], k[1]]))
    one = torch.full((2, 1, 1, 1), 3.0)
    assert torch.equal(noise.blur(1.0)(one), one)  # a single pixel has no neighbour


def test_blur_keeps_dtype_and_generator_and_refuses_flat_inputs_and_bad_sigmas():
    half = torch.rand(2, 3, 6, 6, generator=seeded(0)).to(torch.bfloat16)
    out = noise.blur(1.0)(half, generator=seeded(1))
    assert out.dtype == torch.bfloat16 and out.shape == half.shape
    # computed in float32, rounded once at the end
    assert torch.equal(out, noise.blur(1.0)(half.float()).to(torch.bfloat16))
    assert repr(noise.blur(2.5)) == "blur(2.5)"
    with pytest.raises(ValueError, match="spatial dimensions"):
        noise.blur(1.0)(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        noise.blur(0.0)
