"""Noise distributions H for corrupting inputs (Section 3.1 of the paper).

Each factory returns a callable ``noise(inputs, generator=None) -> eta`` with
``eta`` shaped like ``inputs``, on the same device and of the same dtype. The
randomness comes from the ``generator`` passed at call time (the fitting
functions pass one seeded from their ``seed``), else from the generator given
to the factory, else from a fresh generator seeded from the operating system:
never from torch's global random state.

Example:
    >>> import torch
    >>> from lanlib import noise
    >>> x = torch.zeros(4, 1, 8, 8)
    >>> noise.constant(0.5)(x).unique().tolist()
    [0.5]
    >>> eta = noise.uniform(-1.0, 1.0)(x, generator=torch.Generator().manual_seed(0))
    >>> bool(eta.min() >= -1.0 and eta.max() <= 1.0)
    True
    >>> noise.blur(2.0)(torch.ones(1, 3, 8, 8)).unique().tolist()  # a blur keeps a flat image
    [1.0]

The book's method chapter (``notebooks/01_method``) compares the paper's three kinds;
:func:`blur` is the perturbation of Fong & Vedaldi (2017) and Fong et al. (2019).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .core import check_finite, generator_for

__all__ = ["Noise", "constant", "uniform", "bootstrap", "blur"]


def _finite_number(name: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}; noise replaces inputs by it")
    return float(value)


class Noise:
    """Base class of the noise callables: ``noise(inputs, generator=None) -> eta``.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def __call__(self, inputs: torch.Tensor, generator: torch.Generator | None = None):
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"noise expects a tensor of inputs, got {type(inputs).__name__}")
        return self.sample(inputs, generator)

    def sample(self, inputs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


class _Constant(Noise):
    def __init__(self, value: float):
        super().__init__()
        self.value = _finite_number("the constant noise value", value)

    def sample(self, inputs, generator):
        return torch.full_like(inputs, self.value)

    def __repr__(self):
        return f"constant({self.value})"


class _Uniform(Noise):
    def __init__(self, low: float, high: float, generator):
        super().__init__(generator)
        low, high = _finite_number("low", low), _finite_number("high", high)
        if not high > low:
            raise ValueError(f"uniform noise needs low < high, got low={low}, high={high}")
        self.low, self.high = low, high

    def sample(self, inputs, generator):
        g = generator_for(inputs.device, generator, self.generator)
        u = torch.rand(inputs.shape, generator=g, device=inputs.device, dtype=inputs.dtype)
        return self.low + (self.high - self.low) * u

    def __repr__(self):
        return f"uniform({self.low}, {self.high})"


def _gaussian_along(x: torch.Tensor, dim: int, sigma: float) -> torch.Tensor:
    """``x`` convolved along ``dim`` with a normalised Gaussian of std ``sigma``, reflect-padded.

    The kernel reaches ``ceil(4 * sigma)`` elements each way, or ``size - 1`` where the
    dimension is shorter (reflect padding reaches no further).
    """
    size = x.shape[dim]
    radius = min(math.ceil(4 * sigma), size - 1)
    if radius == 0:
        return x
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    moved = x.movedim(dim, -1)
    rows = F.pad(moved.reshape(-1, 1, size), (radius, radius), mode="reflect")
    return F.conv1d(rows, kernel.view(1, 1, -1)).reshape(moved.shape).movedim(-1, dim)


class _Blur(Noise):
    def __init__(self, sigma: float):
        super().__init__()
        sigma = _finite_number("sigma", sigma)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0 (the blur's standard deviation, in elements: "
                             f"pixels of an image, steps of a sequence), got {sigma}")
        self.sigma = sigma

    def sample(self, inputs, generator):
        if inputs.ndim < 3:
            raise ValueError(
                f"blur noise needs inputs with spatial dimensions after the channel one, "
                f"(N, C, L) or (N, C, H, W), got shape {tuple(inputs.shape)}; for features "
                "without neighbours use constant, uniform or bootstrap noise"
            )
        wide = inputs.to(torch.promote_types(inputs.dtype, torch.float32))
        for dim in range(2, inputs.ndim):
            wide = _gaussian_along(wide, dim, self.sigma)
        return wide.to(inputs.dtype)

    def __repr__(self):
        return f"blur({self.sigma})"


class _Bootstrap(Noise):
    def __init__(self, samples, generator):
        super().__init__(generator)
        if isinstance(samples, torch.Tensor):
            if samples.ndim < 1 or len(samples) == 0:
                raise ValueError("bootstrap noise needs at least one sample, got an empty tensor")
            if not samples.is_floating_point():
                raise TypeError(
                    f"bootstrap samples must be floating point like the inputs, got {samples.dtype}"
                )
            check_finite(samples, "the bootstrap pool", "drop or clean those samples")
        elif isinstance(samples, (list, tuple)):
            raise TypeError(
                f"bootstrap noise takes a tensor of samples (M, ...) or a map-style Dataset, "
                f"got a {type(samples).__name__}; stack it first, e.g. torch.stack(samples) or "
                "torch.as_tensor(samples, dtype=torch.float32)"
            )
        elif not (hasattr(samples, "__getitem__") and hasattr(samples, "__len__")):
            raise TypeError(
                "bootstrap noise takes a tensor of samples (N, ...) or a map-style Dataset, "
                f"got {type(samples).__name__}"
            )
        elif len(samples) == 0:
            raise ValueError("bootstrap noise needs at least one sample, got an empty dataset")
        self.samples = samples
        self._on_device: dict[torch.device, torch.Tensor] = {}

    def _draw(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        if isinstance(self.samples, torch.Tensor):
            if device not in self._on_device:
                self._on_device[device] = self.samples.to(device)
            return self._on_device[device][index.to(device)]
        items = [self.samples[i] for i in index.tolist()]
        items = [item[0] if isinstance(item, Sequence) else item for item in items]
        eta = torch.stack([torch.as_tensor(item) for item in items])
        # a Dataset pool cannot be checked whole up front: check what is drawn
        return check_finite(eta, "a bootstrap sample", "drop or clean it in the pool").to(device)

    def sample(self, inputs, generator):
        if inputs.ndim < 1:
            raise ValueError("bootstrap noise needs batched inputs (N, ...), got a scalar")
        # Indices are drawn on the generator's device, then moved if needed.
        g = generator_for(inputs.device, generator, self.generator)
        index = torch.randint(len(self.samples), (inputs.shape[0],), generator=g, device=g.device)
        eta = self._draw(index, inputs.device)
        if eta.shape[1:] != inputs.shape[1:]:
            raise ValueError(
                f"bootstrap samples have shape {tuple(eta.shape[1:])} but the inputs have "
                f"{tuple(inputs.shape[1:])} per sample; pass samples from the same domain"
            )
        return eta.to(inputs.dtype)

    def __repr__(self):
        return f"bootstrap({len(self.samples)} samples)"


def constant(value: float = 0.0) -> Noise:
    """Constant noise, η = ``value`` everywhere (the paper's text experiments use 0).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapter 04 use it.

    Args:
        value (float): the replacement value, finite. Default 0.0.

    Returns:
        Noise: callable ``noise(inputs, generator=None)`` returning ``full_like(inputs, value)``.
    """
    return _Constant(value)


def uniform(low: float = 0.0, high: float = 1.0, *, generator: torch.Generator | None = None):
    """Independent uniform noise in ``[low, high)`` per element (the paper's ImageNet runs).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapter 05 use it.

    Args:
        low (float): lower bound, finite. Default 0.0.
        high (float): upper bound, finite, greater than ``low``. Default 1.0.
        generator (torch.Generator, optional): used when the call passes none.

    Returns:
        Noise: callable ``noise(inputs, generator=None)``.
    """
    return _Uniform(low, high, generator)


def bootstrap(samples, *, generator: torch.Generator | None = None) -> Noise:
    """Bootstrapped noise: η is a whole random sample of the data, one per input.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 02 and 04 use it.

    This is the paper's choice for MNIST and CIFAR-10: the corrupted input stays
    on the data manifold pixel by pixel.

    Args:
        samples (Tensor (M, ...) or Dataset): the pool to draw from, each sample shaped like
            one input, all values finite (a tensor pool is checked here, a Dataset's
            samples when drawn). A Dataset may yield ``(input, label)`` pairs; the input
            is used. A plain list is refused: stack it into a tensor first.
        generator (torch.Generator, optional): used when the call passes none.

    Returns:
        Noise: callable ``noise(inputs, generator=None)`` returning ``samples[idx]`` with
        ``idx`` drawn uniformly with replacement, shaped like ``inputs``.
    """
    return _Bootstrap(samples, generator)


def blur(sigma: float) -> Noise:
    r"""Blur noise: η is the input convolved with a Gaussian of standard deviation ``sigma``.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) uses it, to fit masks and to score them;
    chapter 01 (``notebooks/01_method.ipynb``) explains the noises it sits beside.

    The perturbation of Fong & Vedaldi (2017, "Interpretable explanations of black boxes
    by meaningful perturbation", arXiv:1704.03296) and of Fong, Patrick &
    Vedaldi (2019, "Understanding deep networks via extremal perturbations and smooth
    masks", arXiv:1910.08485): a replaced region keeps its colours and coarse shape but
    loses its detail, so the corrupted input stays closer to natural images than under
    uniform noise. The Gaussian is separable: one 1-D convolution per spatial dimension
    (those after the channel dimension), with reflect padding, the kernel cut at
    ``ceil(4 * sigma)`` elements (or the dimension's size - 1 if shorter) and normalised
    to sum 1, so a constant input stays constant. The blur is deterministic: the
    generator is ignored.

    Args:
        sigma (float): the standard deviation in elements (pixels), finite, > 0.

    Returns:
        Noise: callable ``noise(inputs, generator=None)`` taking inputs ``(N, C, L)``,
        ``(N, C, H, W)`` or more spatial dimensions, returning the blurred inputs, same
        shape, dtype and device (computed in float32 at least).

    Example:
        >>> spike = torch.zeros(1, 1, 11)  # (N, C, L)
        >>> spike[0, 0, 5] = 1.0
        >>> [round(v, 3) for v in blur(1.0)(spike).flatten().tolist()]  # the Gaussian itself
        [0.0, 0.0, 0.004, 0.054, 0.242, 0.399, 0.242, 0.054, 0.004, 0.0, 0.0]
    """
    return _Blur(sigma)
