"""The corruption of Eq. 2, the objective of Eqs. 3-4, and the checks they share.

Masks follow the paper: 1 marks what the model ignores (replaceable by noise),
0 what it needs. Plots show ``importance(mask) = 1 - mask``.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from . import losses
from .gates import resolve as resolve_gates

__all__ = ["corrupt", "importance", "upsample_mask", "frozen", "objective", "total_variation"]


def _broadcast_shape(name: str, shape: torch.Size, target: torch.Size) -> None:
    try:
        out = torch.broadcast_shapes(shape, target)
    except RuntimeError:
        out = None
    if out != target:
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to the inputs' shape "
            f"{tuple(target)}; give it the inputs' shape or size-1 dimensions"
        )


def check_inputs(inputs) -> torch.Tensor:
    """Raise a clear error unless ``inputs`` is a non-empty batched floating tensor, all finite.

    Returns:
        Tensor: ``inputs``, detached from any autograd graph (the fits never write to
        the inputs' ``.grad`` nor backpropagate into the graph that made them).
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(
            f"inputs must be floating point, got {inputs.dtype}; convert with inputs.float() "
            "(and scale images to the range the model was trained on)"
        )
    if inputs.ndim < 2:
        raise ValueError(f"inputs must be batched (N, ...), got shape {tuple(inputs.shape)}")
    if inputs.shape[0] == 0 or inputs.numel() == 0:
        raise ValueError(
            f"inputs are empty (shape {tuple(inputs.shape)}); pass at least one sample"
        )
    return check_finite(inputs.detach(), "inputs", "clean or drop those samples first")


def check_finite(values: torch.Tensor, what: str, advice: str) -> torch.Tensor:
    """Raise ``ValueError`` naming ``what``, with ``advice``, unless all ``values`` are finite.

    One reduction and one device sync; meant for checks made once, not in a loop.

    Returns:
        Tensor: ``values``.

    Example:
        >>> check_finite(torch.tensor([1.0, float("inf")]), "the noise", "bound it")
        Traceback (most recent call last):
        ...
        ValueError: the noise must be finite, but 1 of 2 values are NaN or infinite; bound it
    """
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{what} must be finite, but {bad} of {values.numel()} values are NaN or "
            f"infinite; {advice}"
        )
    return values


def check_module(name: str, model) -> nn.Module:
    """Raise a clear ``TypeError`` unless ``model`` is an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module, got {type(model).__name__}; wrap a plain "
            "function f in a module whose forward returns f(x)"
        )
    return model


def check_mask(mask, inputs: torch.Tensor, source: str = "mask") -> torch.Tensor:
    """Raise a clear error unless ``mask`` is a tensor in [0, 1] broadcastable to ``inputs``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{source} must be a tensor, got {type(mask).__name__}")
    _broadcast_shape(source, mask.shape, inputs.shape)
    lo, hi = torch.aminmax(mask.detach())
    if torch.isnan(mask).any() or lo < 0 or hi > 1:
        raise ValueError(
            f"{source} must lie in [0, 1], got values in [{lo.item():.4g}, {hi.item():.4g}]; "
            "end the mask network with a sigmoid"
        )
    return mask


def corrupt(inputs: torch.Tensor, mask: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``x~ = mask * eta + (1 - mask) * inputs``.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.

    Args:
        inputs (Tensor (N, ...)): the inputs x.
        mask (Tensor): A(x) in [0, 1], broadcastable to ``inputs`` (e.g. ``(N, 1, H, W)``
            shared across channels). 1 = replace by noise, 0 = keep.
        eta (Tensor): the noise η, broadcastable to ``inputs``.

    Returns:
        Tensor: the corrupted inputs, shaped like ``inputs``.

    Example:
        >>> import torch
        >>> corrupt(torch.ones(1, 3), torch.tensor([[0.0, 0.5, 1.0]]), torch.zeros(1, 3))
        tensor([[1.0000, 0.5000, 0.0000]])
    """
    _broadcast_shape("mask", mask.shape, inputs.shape)
    _broadcast_shape("noise", eta.shape, inputs.shape)
    return mask * eta + (1 - mask) * inputs


def importance(mask: torch.Tensor) -> torch.Tensor:
    """What the model attends to: ``1 - mask`` (1 = needed, 0 = ignored).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """
    return 1 - mask


def upsample_mask(
    mask: torch.Tensor, like: torch.Tensor | torch.Size, *, smooth: bool = True
) -> torch.Tensor:
    r"""Expand a coarse or channel-shared mask ``(N, *mask_shape)`` to the shape of ``like``.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it; chapters 05 and 06 use it.

    Dimensions of size 1 broadcast; spatial dimensions (all after the channel
    dimension) that differ are interpolated: linear, bilinear or trilinear when
    ``smooth`` (the default), else each coarse element becomes a block (nearest).

    Args:
        mask (Tensor (N, C', \*S')): the coarse mask, same number of dimensions as ``like``.
        like (Tensor or Size (N, C, \*S)): the target.
        smooth (bool): interpolate smoothly (True) or by blocks (False).

    Returns:
        Tensor (N, C, \*S): the mask at full resolution.
    """
    shape = torch.Size(like.shape if isinstance(like, torch.Tensor) else like)
    if mask.ndim != len(shape):
        raise ValueError(
            f"mask has {mask.ndim} dimensions but the inputs {len(shape)}; "
            f"give mask_shape one entry per input dimension (after the batch), e.g. "
            f"{tuple(shape[1:])}"
        )
    if mask.shape[2:] != shape[2:] and len(shape) > 2:
        modes = {1: "linear", 2: "bilinear", 3: "trilinear"}
        if len(shape) - 2 not in modes:
            raise ValueError(f"cannot interpolate a mask over {len(shape) - 2} spatial dimensions")
        if smooth:
            mask = F.interpolate(mask, size=tuple(shape[2:]), mode=modes[len(shape) - 2],
                                 align_corners=False)
        else:
            mask = F.interpolate(mask, size=tuple(shape[2:]), mode="nearest")
    _broadcast_shape("mask", mask.shape, shape)
    return mask.expand(shape)


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Put ``model`` in eval mode with no parameter gradients; restore both on exit.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.

    The restore happens even when the body raises. Parameters are never changed.
    """
    check_module("model", model)
    modes = {m: m.training for m in model.modules()}
    flags = {p: p.requires_grad for p in model.parameters()}
    model.eval()
    for p in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, training in modes.items():
            m.training = training
        for p, flag in flags.items():
            p.requires_grad_(flag)


def model_output(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``model(inputs)``, checked to be a batched tensor."""
    out = model(inputs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"the model must return a tensor of outputs (N, ...), got {type(out).__name__}; "
            "wrap it so forward returns the logits"
        )
    if out.ndim < 1 or out.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"the model returned shape {tuple(out.shape)} for {inputs.shape[0]} inputs; "
            "it must return one output row per input"
        )
    return out


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    r"""Per-sample total variation of a mask: the mean absolute difference between
    neighbouring elements along each spatial dimension, summed over those dimensions.

    No chapter uses it yet; the method chapter (``notebooks/01_method.ipynb``) explains
    the objective it is added to (``tv=`` of :func:`objective` and the fits).

    The spatial dimensions are those after the channel dimension: ``L`` of ``(N, C, L)``,
    ``H`` and ``W`` of ``(N, C, H, W)``. For a 2-D mask ``m`` it is
    ``mean|m[i+1, j] - m[i, j]| + mean|m[i, j+1] - m[i, j]|`` (the means over the channels
    too); a dimension of size 1 adds 0. It is the anisotropic, first-power form of the
    total-variation term that Fong & Vedaldi (2017, "Interpretable explanations of black
    boxes by meaningful perturbation", arXiv:1704.03296) add to keep masks
    free of speckle.

    Args:
        mask (Tensor (N, C, \*S)): masks with at least one spatial dimension.

    Returns:
        Tensor (N,): the total variation of each sample's mask, in [0, len(S)] for masks
        in [0, 1].

    Example:
        >>> half = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]] * 4]])  # (1, 1, 4, 4), a vertical edge
        >>> total_variation(half)  # 4 of the 12 horizontal neighbours differ by 1
        tensor([0.3333])
    """
    if mask.ndim < 3:
        raise ValueError(
            f"tv needs a mask with spatial dimensions after the channel one, (N, C, L) or "
            f"(N, C, H, W), got shape {tuple(mask.shape)}; leave tv=0 for masks over "
            "features without neighbours"
        )
    parts = [mask.diff(dim=d).abs().flatten(1).mean(dim=1)
             for d in range(2, mask.ndim) if mask.shape[d] > 1]
    if not parts:
        return mask.new_zeros(mask.shape[0])
    return torch.stack(parts).sum(dim=0)


def objective(
    model: nn.Module,
    inputs: torch.Tensor,
    mask: torch.Tensor,
    noise,
    *,
    beta: float | None = None,
    loss="kl",
    reference: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    max_distortion: float | None = None,
    multiplier: torch.Tensor | float | None = None,
    tv: float = 0.0,
    gates=None,
    upsample: bool = False,
) -> dict[str, torch.Tensor]:
    r"""The per-sample objective of Eqs. 3-4: ``L_F(F(x), F(x~)) - beta * mean(mask)``.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.

    One draw of η estimates the expectation over the noise. The model is used as
    it is (wrap the call in :func:`frozen` to keep its parameters out of autograd).
    The corrupted inputs are given to F in the inputs' dtype (a float32 mask on
    bfloat16 inputs still feeds F bfloat16), and the loss is computed in float32 at
    least. The terms are not checked for NaN here; the fitting loops check them.

    With the defaults this is the paper's objective, unchanged. Three options, off by
    default, shape the masks (write D for the distortion, S for the mask-size reward,
    ``mean(mask)`` or, with gates, the expected share replaced):

    - ``tv``: adds ``tv * total_variation(mask)`` (:func:`total_variation`, on the mask
      at its own resolution), the smoothness prior of Fong & Vedaldi (2017).
    - ``max_distortion`` (instead of ``beta``): the constraint form of DiffMask (De Cao
      et al. 2020, arXiv:2004.14992): maximise S subject to ``D <= max_distortion``,
      through its Lagrangian ``-S + multiplier * (D - max_distortion)``, which the fits
      minimise over the mask and maximise over the multiplier.
    - ``gates``: ``mask`` holds the logits of hard-concrete gates (:mod:`lanlib.gates`,
      Louizos et al. 2018); the corruption uses one reparameterised sample of them, and
      S is the expected share of elements fully replaced (the complement of the
      expected L0 norm of the keep-gates), in closed form.

    Args:
        model (nn.Module): F, mapping inputs ``(N, ...)`` to outputs ``(N, ...)`` (logits
            for the ``"kl"`` and ``"ce"`` losses).
        inputs (Tensor (N, ...)): x.
        mask (Tensor): A(x) in [0, 1], broadcastable to ``inputs`` (with ``upsample``,
            ``(N, *mask_shape)`` as :func:`upsample_mask` takes it); with ``gates``, the
            gate logits of that shape instead.
        noise (callable): ``noise(inputs, generator) -> eta`` (see :mod:`lanlib.noise`).
        beta (float, optional): weight of the mask-size reward, > 0. Exactly one of
            ``beta`` and ``max_distortion`` is given.
        loss (str or callable): ``"kl"``, ``"ce"``, ``"mse"`` or ``loss(ref, out)``.
        reference (Tensor, optional): F(x) if already computed; else computed here
            without gradients.
        generator (torch.Generator, optional): source of the noise draw and of the gates'
            sample.
        max_distortion (float, optional): the bound ε on the distortion, > 0, for the
            constraint form.
        multiplier (Tensor () or (N,), or float): the Lagrange multiplier λ >= 0 of the
            constraint form (one per sample or one for all); required with
            ``max_distortion``, refused with ``beta``.
        tv (float): weight of the total-variation prior, >= 0. Default 0.0 (off).
        gates (None, str or HardConcrete): None (default) for the paper's masks in [0, 1];
            ``"hard_concrete"`` or a :class:`lanlib.gates.HardConcrete` for gates.
        upsample (bool): bring ``mask`` (or the gates' sample) to the inputs' shape with
            :func:`upsample_mask` before corrupting, as the per-sample fit does with its
            coarse or channel-shared masks. Default False: ``mask`` broadcasts as it is.

    Returns:
        dict of ``(N,)`` tensors: ``"objective"``, ``"distortion"`` (the loss term) and
        ``"mask_mean"`` (mean of each sample's mask, as used in the corruption); with the
        options also ``"tv"`` (the unweighted total variation), ``"expected_replaced"``
        (gates) and ``"multiplier"`` (λ, detached).

    Example (a distortion of 0.3 against a bound of 0.1, a multiplier of 2):
        >>> def loss(ref, out):
        ...     return torch.full((1,), 0.3)
        >>> terms = objective(nn.Identity(), torch.zeros(1, 4), torch.full((1, 4), 0.5),
        ...                   lambda x, generator=None: x, loss=loss, max_distortion=0.1,
        ...                   multiplier=2.0)
        >>> round(terms["objective"].item(), 4)  # -0.5 + 2 * (0.3 - 0.1)
        -0.1
    """
    beta, max_distortion = check_trade_off(beta, max_distortion)
    tv = check_tv(tv)
    gates = resolve_gates(gates)
    if max_distortion is None and multiplier is not None:
        raise ValueError("multiplier goes with max_distortion (the constraint form); with beta "
                         "leave it None")
    if max_distortion is not None and multiplier is None:
        raise ValueError("max_distortion needs the Lagrange multiplier: pass multiplier "
                         "(a float or a tensor () or (N,), >= 0)")
    if reference is None:
        with torch.no_grad():
            reference = model_output(model, inputs)
    eta = noise(inputs, generator=generator)
    shaped = mask if gates is None else gates.rsample(mask, generator_for(mask.device, generator))
    full = upsample_mask(shaped, inputs) if upsample else shaped
    corrupted = corrupt(inputs, full, eta)
    if corrupted.dtype != inputs.dtype:  # a float32 mask on low-precision inputs: F keeps its dtype
        corrupted = corrupted.to(inputs.dtype)
    corrupted = model_output(model, corrupted)
    distortion = losses.resolve(loss)(losses.at_least_float32(reference),
                                      losses.at_least_float32(corrupted))
    n = inputs.shape[0]
    mask_mean = full.expand(n, *full.shape[1:]).flatten(1).mean(dim=1)
    terms = {"distortion": distortion, "mask_mean": mask_mean}
    size = mask_mean
    if gates is not None:
        size = gates.expected_replaced(mask)
        size = size.expand(n, *size.shape[1:]).flatten(1).mean(dim=1)
        terms["expected_replaced"] = size
    if beta is not None:
        value = distortion - beta * size
    else:
        multiplier = torch.as_tensor(multiplier, dtype=distortion.dtype, device=distortion.device)
        if multiplier.shape not in ((), (n,)):
            raise ValueError(f"multiplier must be a number or a tensor of shape () or ({n},), "
                             f"one per sample; got shape {tuple(multiplier.shape)}")
        value = -size + multiplier * (distortion - max_distortion)
        terms["multiplier"] = multiplier.detach().expand(n)
    if tv:
        smooth = total_variation(shaped).expand(n)
        value = value + tv * smooth
        terms["tv"] = smooth
    return {"objective": value, **terms}


def check_trade_off(beta, max_distortion) -> tuple[float | None, float | None]:
    """Raise a clear error unless exactly one of ``beta`` and ``max_distortion`` is a
    positive number.

    Returns:
        tuple: ``(beta, max_distortion)``, the one given as a float, the other None.

    Example:
        >>> check_trade_off(0.5, None)
        (0.5, None)
    """
    if (beta is None) == (max_distortion is None):
        raise ValueError(
            "give exactly one of beta (the weight of the mask-size reward, the paper's form) "
            "and max_distortion (the most distortion the mask may cost, the constrained form); "
            f"got {'neither' if beta is None else 'both'}"
        )
    if beta is not None:
        return check_positive("beta", beta), None
    return None, check_positive("max_distortion", max_distortion)


def check_tv(tv) -> float:
    """Raise a clear error unless ``tv`` is a finite real number >= 0 (not a bool).

    Returns:
        float: ``tv``.
    """
    if (isinstance(tv, bool) or not isinstance(tv, numbers.Real) or not math.isfinite(tv)
            or tv < 0):
        raise ValueError(f"tv must be a number >= 0 (the weight of the total-variation prior; "
                         f"0 turns it off), got {tv!r}")
    return float(tv)


def generator_for(device: torch.device, *preferred: torch.Generator | None) -> torch.Generator:
    """The first generator among ``preferred`` that is not None, checked to live on
    ``device``'s type; else a fresh one on ``device`` seeded from the operating system.
    """
    for g in preferred:
        if g is not None:
            if g.device.type != device.type:
                raise ValueError(
                    f"the random generator lives on {g.device} but the inputs on {device}; "
                    f"pass torch.Generator(device='{device.type}')"
                )
            return g
    g = torch.Generator(device=device)
    g.seed()
    return g


def check_positive(name: str, value) -> float:
    """Raise a clear error unless ``value`` is a finite real number > 0 (not a bool).

    NumPy scalars such as ``np.float32(0.1)`` are accepted.

    Returns:
        float: ``value``.
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_steps(steps) -> int:
    """Raise a clear error unless ``steps`` is an integer >= 1 (not a bool); return it as int."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


def check_seed(seed) -> int | None:
    """The one check of a ``seed`` argument: an integer of at most 64 bits, or None.

    Strings, floats (``1.7`` would silently act as 1) and bools are refused; NumPy
    integers are accepted.

    Returns:
        int or None: ``seed`` as a Python int.

    Example:
        >>> check_seed(1.7)
        Traceback (most recent call last):
        ...
        TypeError: seed must be an integer or None, got 1.7
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must fit in 64 bits, got {seed}")
    return int(seed)


def check_hyper(beta, max_distortion, steps, lr) -> tuple[float | None, float | None, int, float]:
    """Raise a clear error unless exactly one of beta and max_distortion is positive, or for
    fewer than one step or a bad rate.

    Returns:
        tuple: ``(beta, max_distortion, steps, lr)``, the numbers as Python floats and int
        (the one of beta and max_distortion not given stays None).
    """
    beta, max_distortion = check_trade_off(beta, max_distortion)
    return beta, max_distortion, check_steps(steps), check_positive("lr", lr)
