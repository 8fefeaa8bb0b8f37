"""Explanations asked for in one way: Captum's methods, sample masks and LANs, timed alike.

One call, :func:`attribute` (also ``lanlib.attribute``), runs one method on a batch;
:func:`attribute_many` runs several on the same batch and the same targets, so that
their maps can be scored side by side. Each result is an :class:`Attribution`: the
importance maps (1 = needed) and the wall-clock time the method took per input.
:class:`LatentAttention` offers the sample masks behind Captum's interface, and
:func:`explain_func` turns any method into the ``explain_func`` that evaluation
toolkits such as Quantus call.

Methods, by name (options in brackets, with their defaults):

- ``"saliency"``: the absolute input gradient of the target logit (Simonyan et al.).
- ``"input_x_gradient"``: gradient times input.
- ``"integrated_gradients"``: gradients averaged on the straight path from the baseline
  to the input, times their difference (Sundararajan et al.) [``n_steps=32``].
- ``"occlusion"``: the drop of the target logit when a square window of the input is
  replaced by the baseline, averaged over the windows covering each element
  [``window=6``, ``stride=3``; images only].
- ``"feature_ablation"``: the same drop for a fixed partition of the input into
  ``patch x patch`` squares (each element alone for non-image inputs) [``patch=4``].
- ``"random"``: uniform noise, a baseline that knows nothing about the model.
- ``"sample_masks"``: one mask per input, fitted by :func:`lanlib.fit_sample_masks`
  (Eq. 4 of the paper); the options are its keyword arguments: ``beta``, ``steps``,
  ``lr``, ``mask_shape``, ``seed``, ``loss``, ``schedule``, ... and [``noise=None``],
  [``progress=False``]. With ``beta`` (or ``max_distortion``) given, every setting not
  given is :func:`lanlib.fit_sample_masks`'s default and ``noise=None`` replaces the
  masked elements by the ``baselines`` (a constant 0 unless given, the reference that
  occlusion and feature ablation use too); pass ``lanlib.noise.uniform()`` or
  ``lanlib.noise.bootstrap(pool)`` for the paper's choices. Given neither, the settings
  not given come from :func:`sample_mask_defaults`, which reads them off the inputs'
  shape and F's output (blur noise, a coarse mask and β from ``D_full`` for images; the
  batch's mean input as the replacement for other inputs): the model and a batch are
  enough.

A method may also be

- a trained Latent Attention Network: any ``nn.Module`` other than the model; its
  output ``lan(inputs)`` is the mask (no options);
- a Captum attribution class (e.g. ``captum.attr.GuidedBackprop``; ``options`` go to
  its ``attribute``);
- any callable ``fn(model, inputs, target, baselines) -> Tensor`` shaped like ``inputs``.

Layout, chosen by ``reduce``. Attributions (Captum's methods, ``"random"``, callables):
by default ``(N, 1, H, W)`` importance maps for images (absolute values summed over
the channels, ``"abs_sum"``; ``"abs_max"`` takes their maximum), ``"abs"`` gives
``|attribution|`` shaped like the inputs and ``"none"`` Captum's signed attributions
unchanged. Masks (``"sample_masks"`` and LANs): the importance is ``1 - mask``, its
spatial dimensions upsampled to the inputs' (bilinear, :func:`lanlib.upsample_mask`,
as in the fit). ``"abs_sum"`` and ``"abs_max"`` combine the mask's own channels: a mask
shared by the channels, ``(N, 1, h, w)``, gives exactly ``1 - mask`` at ``(N, 1, H, W)``
(in [0, 1]); a mask per channel gives the sum (in [0, C]) or the maximum of the
channels' importances. ``"abs"`` and ``"none"`` broadcast ``1 - mask`` to the inputs'
shape. For inputs without channels, ``(N, D)``, the maps are shaped like the inputs.

Targets: Captum's methods explain one class per input, by default the model's
prediction. Masks take no target: the KL objective keeps the whole output
distribution, so ``target`` is ignored for them.

Time: every method is timed alike, from its first call to its last (after the inputs
and the model are on the device and the targets computed; CUDA is synchronised at both
ends): the fit for sample masks, the forward passes for a LAN.

The model (and a LAN) is put in eval mode without parameter gradients, on the device,
during the call and restored after (:func:`lanlib.loop.explained`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    >>> x = torch.rand(5, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    >>> lan = nn.Sequential(nn.Conv2d(2, 1, 3, padding=1), nn.Sigmoid())  # untrained
    >>> out = attribute_many(model, x, ["saliency", "occlusion", "sample_masks", lan],
    ...                      options={"occlusion": {"window": 2, "stride": 2},
    ...                               "sample_masks": {"beta": 0.1, "steps": 5}}, seed=0)
    >>> {label: tuple(a.maps.shape) for label, a in out.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'saliency': (5, 1, 4, 4), 'occlusion': (5, 1, 4, 4), 'sample_masks': (5, 1, 4, 4),
     'Sequential': (5, 1, 4, 4)}
    >>> all(a.seconds_per_image > 0 for a in out.values())
    True

The tank chapter (``notebooks/06_tank_story``) scores these methods against ground truth.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .core import (
    check_inputs,
    check_mask,
    importance,
    model_output,
    objective,
    upsample_mask,
)
from .fit import fit_sample_masks
from .loop import explained, generator, resolve_device, synchronize
from .noise import Noise, blur, constant

__all__ = ["DEFAULT_METHODS", "METHODS", "Attribution", "LatentAttention", "attribute",
           "attribute_many", "explain_func", "image_mask_settings", "patch_partition",
           "sample_mask_defaults"]

#: The methods :func:`attribute` knows by name.
METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "occlusion",
           "feature_ablation", "random", "sample_masks")
#: What :func:`attribute_many` runs when no methods are named.
DEFAULT_METHODS = ("saliency", "integrated_gradients", "occlusion", "feature_ablation", "random")
_REDUCE = ("abs_sum", "abs_max", "abs", "none")


@dataclass
class Attribution:
    """What one method said about a batch.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Attributes:
        method (str): the method's name.
        maps (Tensor): ``(N, 1, H, W)`` importance maps for images (``reduce="abs_sum"`` or
            ``"abs_max"``), else shaped like the inputs (see the module docstring).
        seconds (float): wall-clock time of the whole batch.
        seconds_per_image (float): ``seconds / N``.
    """

    method: str
    maps: torch.Tensor
    seconds: float
    seconds_per_image: float


# ----------------------------------------------------------------------------- methods


def _captum():
    try:
        from captum import attr
    except ImportError as exc:  # pragma: no cover - captum is in the book's requirements
        raise ImportError(
            "lanlib.attribution needs Captum: pip install captum (or the book's extras)"
        ) from exc
    return attr


def _image(inputs: torch.Tensor, method: str) -> None:
    if inputs.ndim != 4:
        raise ValueError(
            f"{method} slides square windows over images (N, C, H, W); got inputs of shape "
            f"{tuple(inputs.shape)}. Use 'feature_ablation' for other inputs."
        )


def _saliency(model, inputs, target, baselines, **options):
    return _captum().Saliency(model).attribute(inputs, target=target, abs=False, **options)


def _input_x_gradient(model, inputs, target, baselines, **options):
    return _captum().InputXGradient(model).attribute(inputs, target=target, **options)


def _integrated_gradients(model, inputs, target, baselines, *, n_steps: int = 32, **options):
    return _captum().IntegratedGradients(model).attribute(
        inputs, baselines=baselines, target=target, n_steps=n_steps, **options)


def _occlusion(model, inputs, target, baselines, *, window: int = 6, stride: int = 3,
               **options):
    _image(inputs, "occlusion")
    channels = inputs.shape[1]
    return _captum().Occlusion(model).attribute(
        inputs, sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride), baselines=baselines, target=target, **options)


def patch_partition(shape: Sequence[int], patch: int) -> torch.Tensor:
    """Number the ``patch x patch`` squares of an image: a ``(1, 1, H, W)`` long tensor.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Squares at the right and bottom edges may be smaller. The channels share one
    partition.

    Example:
        >>> patch_partition((1, 4, 4), 2)[0, 0]
        tensor([[0, 0, 1, 1],
                [0, 0, 1, 1],
                [2, 2, 3, 3],
                [2, 2, 3, 3]])
    """
    height, width = int(shape[-2]), int(shape[-1])
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive int, got {patch!r}")
    rows = torch.arange(height) // patch
    cols = torch.arange(width) // patch
    per_row = -(-width // patch)
    return (rows[:, None] * per_row + cols[None, :]).view(1, 1, height, width)


def _feature_ablation(model, inputs, target, baselines, *, patch: int = 4, **options):
    if inputs.ndim == 4 and "feature_mask" not in options:
        options["feature_mask"] = patch_partition(inputs.shape, patch).to(inputs.device)
    return _captum().FeatureAblation(model).attribute(
        inputs, baselines=baselines, target=target, **options)


def _random(model, inputs, target, baselines, *, generator: torch.Generator | None = None):
    if generator is None:
        generator = torch.Generator(device=inputs.device)
        generator.seed()
    return torch.rand(inputs.shape, generator=generator, device=inputs.device,
                      dtype=inputs.dtype)


class _Fixed(Noise):
    """The replacement of a tensor baseline: the same values at every draw."""

    def __init__(self, values: torch.Tensor):
        super().__init__()
        self.values = values

    def sample(self, inputs, generator):
        return self.values.expand_as(inputs)


#: Steps of the default fit (:func:`sample_mask_defaults`).
DEFAULT_STEPS = 50
#: The default β as a share of the batch's mean ``D_full`` (:func:`sample_mask_defaults`).
DEFAULT_BETA_SHARE = 0.5


def _spatial(inputs: torch.Tensor) -> bool:
    """Images ``(N, C, H, W)``: the inputs the defaults treat as having a spatial layout."""
    return inputs.ndim == 4


def image_mask_settings(height: int, width: int) -> tuple[float, tuple[int, int, int]]:
    """The blur σ and the mask shape that :func:`sample_mask_defaults` picks for images.

    Chapter 05 (``notebooks/05_imagenet.ipynb``) explains it.

    Args:
        height, width (int): the images' size in pixels.

    Returns:
        tuple: ``(sigma, (1, h, w))``: ``sigma = max(1, max(H, W) * 10 / 224)`` and
        ``h = min(H, max(8, round(H / 8)))`` (``w`` alike); see :func:`sample_mask_defaults`.

    Example:
        >>> image_mask_settings(224, 224)
        (10.0, (1, 28, 28))
    """
    sigma = max(1.0, max(height, width) * 10 / 224)
    return sigma, (1, *(min(n, max(8, round(n / 8))) for n in (height, width)))


def sample_mask_defaults(model: nn.Module, inputs: torch.Tensor, noise=None, *,
                         seed: int | None = None, device=None) -> dict[str, Any]:
    r"""Settings of :func:`lanlib.fit_sample_masks` read off the inputs' shape and F's output.

    Chapter 05 (``notebooks/05_imagenet.ipynb``) explains it and measures the masks they
    give against Captum's Occlusion, Feature Ablation and Integrated Gradients.

    :func:`attribute` uses them for ``"sample_masks"`` when neither ``beta`` nor
    ``max_distortion`` is given (options given override them one by one; with
    ``batch_size``, each chunk gets its own), so that
    ``lanlib.attribute(model, images, "sample_masks")`` needs nothing else. Each
    setting, and why:

    - ``noise``, for images ``(N, C, H, W)``: :func:`lanlib.noise.blur` with
      ``sigma = max(H, W) * 10 / 224``, the σ of 10 px at 224 px of Fong & Vedaldi's
      meaningful perturbations (2017), and 1 px at least (a smaller σ hardly changes an
      image). A blurred region keeps its colours and coarse shape and loses its detail,
      so the corrupted image stays close to natural images; uniform noise (the
      paper's) is far from them and breaks the network wherever it lies. For other
      inputs (e.g. the bag-of-words counts ``(N, V)`` of a DAN), the
      batch's mean input, one fixed replacement for every row (needs two rows or more;
      one row gets a constant 0): a non-spatial choice that, unlike a constant 0, is
      not undone by a model that rescales its input: a DAN averages its word vectors,
      so scaling all counts of a post by one factor, as a uniform mask over a constant
      0 does, changes nothing, and chapter 04 shows per-post masks against a constant 0
      failing to single out the words of its DAN.
    - ``mask_shape``, for images: ``(1, h, w)``, one mask shared by the channels at
      about an eighth of the image's side (``h = min(H, max(8, round(H / 8)))``, the
      same for ``w``: 20 x 20 at 160 px, 28 x 28 at 224 px, 8 x 8 at 32 px), upsampled
      bilinearly as in the fit. A coarse mask cannot be fitted as an adversarial
      pattern of single pixels and ranks regions, which is what deletion and
      insertion curves and a reader look at. For other inputs: one value per element
      (the inputs' shape).
    - ``beta``: ``DEFAULT_BETA_SHARE`` (0.5) times the batch's mean ``D_full``, the
      distortion (in the units of ``loss``, nats for the KL) when the whole input is
      replaced by that noise, computed with one forward pass. Replacing everything
      then costs more than it earns, keeping everything earns nothing, and an element
      is replaced when its share of the distortion is below its share of half of
      ``D_full``: the trade is in F's own units whatever F's confidence. (The paper's
      fixed β values exceed ``D_full`` on some models, where the best mask replaces
      everything.) A model that ignores the noise (``D_full = 0``) gets a tiny β.
    - ``steps``: ``DEFAULT_STEPS`` (50), at ``lr=0.1`` (the fit's default; Adam then
      moves each logit by up to about 5, enough to reach 0.01 or 0.99 from 0.5).
      Longer fits lower the objective but fit the noise more closely: on chapter 05's
      photos (``python -m lanlib.bench``, masks fitted with uniform noise), 300-step
      masks ranked worse than 50-step ones under blur and grey fills. At 50 steps a
      fit costs about as much as Occlusion with a window stepped over a 15 x 15 grid
      (chapter 05 measures both).
    - ``tv``: 0 (off). The coarse, bilinearly upsampled mask is already smooth. Tried
      at ``tv = beta / 4`` (where a lone cell's total variation costs about what its
      area earns) on chapter 05's photos: blobbier masks and higher insertion areas,
      but higher deletion areas under every fill except the fit's own blur.
    - ``init``, ``schedule``, ``loss``: the fit's defaults (0.5, constant, ``"kl"``).

    Args:
        model (nn.Module): F, returning logits (frozen during the forward pass).
        inputs (Tensor (N, ...)): the batch the masks are for.
        noise (callable, optional): use this noise instead of the default one (β is then
            computed with it).
        seed (int, optional): seeds the noise draw of ``D_full``.
        device (str or torch.device, optional): where to compute; default the model's.

    Returns:
        dict: keyword arguments of :func:`lanlib.fit_sample_masks`: ``noise``, ``beta``,
        ``mask_shape``, ``steps``, ``lr``, ``tv``.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 4))
        >>> x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> settings = sample_mask_defaults(model, x)
        >>> settings["mask_shape"], settings["steps"], round(settings["noise"].sigma, 2)
        ((1, 8, 8), 50, 2.86)
        >>> settings["beta"] > 0
        True
    """
    check_inputs(inputs)
    device = resolve_device(model, device)
    x = inputs.detach().to(device)
    if _spatial(x):
        sigma, mask_shape = image_mask_settings(*x.shape[-2:])
        if noise is None:
            noise = blur(sigma)
    else:
        if noise is None:
            noise = _Fixed(x.mean(0, keepdim=True)) if len(x) > 1 else constant(0.0)
        mask_shape = tuple(x.shape[1:])
    with explained(model, device), torch.no_grad():
        d_full = objective(model, x, torch.ones_like(x[:1]), noise, beta=1.0,
                           generator=generator(seed, device))["distortion"].mean().item()
    return {"noise": noise, "beta": max(DEFAULT_BETA_SHARE * d_full, 1e-6),
            "mask_shape": mask_shape, "steps": DEFAULT_STEPS, "lr": 0.1, "tv": 0.0}


def _sample_masks(model, inputs, target, baselines, *, noise=None, progress: bool = False,
                  **options):
    if "beta" not in options and "max_distortion" not in options:
        defaults = sample_mask_defaults(model, inputs, noise, seed=options.get("seed"),
                                        device=inputs.device)
        options = {**defaults, **options}
        noise = options.pop("noise")
    elif noise is None:
        noise = _Fixed(baselines) if isinstance(baselines, torch.Tensor) else constant(baselines)
    return fit_sample_masks(model, inputs, noise, progress=progress, device=inputs.device,
                            **options)


_BY_NAME: dict[str, Callable[..., torch.Tensor]] = {
    "saliency": _saliency,
    "input_x_gradient": _input_x_gradient,
    "integrated_gradients": _integrated_gradients,
    "occlusion": _occlusion,
    "feature_ablation": _feature_ablation,
    "random": _random,
    "sample_masks": _sample_masks,
}


class _Method(NamedTuple):
    name: str
    run: Callable[..., torch.Tensor]
    masks: bool = False  # run returns masks (1 = ignored), not attributions
    modules: tuple[nn.Module, ...] = ()  # frozen beside the model during the call


def _resolve(method) -> _Method:
    if isinstance(method, str):
        if method not in _BY_NAME:
            raise ValueError(
                f"unknown method {method!r}; use one of {', '.join(METHODS)}, a trained LAN "
                "(nn.Module), a Captum attribution class or a callable "
                "fn(model, inputs, target, baselines)"
            )
        return _Method(method, _BY_NAME[method], masks=method == "sample_masks")
    if isinstance(method, nn.Module):  # a trained LAN: its output is the mask
        def run(model, inputs, target, baselines):
            with torch.no_grad():
                return method(inputs)

        return _Method(type(method).__name__, run, masks=True, modules=(method,))
    if isinstance(method, type):  # a Captum attribution class
        if not hasattr(method, "attribute"):
            raise TypeError(f"{method.__name__} has no attribute(); pass a Captum class")

        def run(model, inputs, target, baselines, **options):
            return method(model).attribute(inputs, target=target, **options)

        return _Method(method.__name__, run)
    if callable(method):
        return _Method(getattr(method, "__name__", type(method).__name__), method)
    raise TypeError(f"a method is a name, a LAN, a Captum class or a callable, got {method!r}")


# ----------------------------------------------------------------------------- running


def _reduce(attributions: torch.Tensor, reduce: str) -> torch.Tensor:
    if reduce == "none":
        return attributions
    magnitude = attributions.abs()
    if reduce == "abs" or attributions.ndim < 3:
        return magnitude
    if reduce == "abs_sum":
        return magnitude.sum(dim=1, keepdim=True)
    return magnitude.amax(dim=1, keepdim=True)


def _from_attributions(out, inputs: torch.Tensor, reduce: str, name: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.shape != inputs.shape:
        raise ValueError(
            f"method {name!r} returned {getattr(out, 'shape', type(out))}, "
            f"not a tensor shaped like its inputs {tuple(inputs.shape)}"
        )
    return _reduce(out.detach(), reduce)


def _from_mask(mask, inputs: torch.Tensor, reduce: str, name: str) -> torch.Tensor:
    """Importance ``1 - mask`` at the inputs' spatial size, channels as ``reduce`` says."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"method {name!r} returned {type(mask).__name__}, not a mask tensor")
    full = check_mask(upsample_mask(mask.detach(), inputs), inputs,
                      source=f"the mask of {name!r}")
    if reduce in ("abs", "none") or inputs.ndim < 3:
        return importance(full)
    if mask.shape[1] == 1:  # shared by the channels: counted once
        return importance(full[:, :1])
    per_channel = importance(full)
    if reduce == "abs_sum":
        return per_channel.sum(dim=1, keepdim=True)
    return per_channel.amax(dim=1, keepdim=True)


def _baselines_for(baselines, start: int, stop: int, chunk: torch.Tensor):
    if not isinstance(baselines, torch.Tensor):
        return float(baselines)
    b = baselines.to(chunk.device, chunk.dtype)
    if b.ndim == chunk.ndim and b.shape[0] not in (1,):
        b = b[start:stop]
    try:
        return b.expand_as(chunk).contiguous()
    except RuntimeError as exc:
        raise ValueError(
            f"baselines of shape {tuple(baselines.shape)} do not broadcast to the inputs "
            f"{tuple(chunk.shape)}; give one per input, one for all (1, ...) or a number"
        ) from exc


def _targets(model: nn.Module, inputs: torch.Tensor, target, batch_size: int) -> torch.Tensor:
    if target is None:
        with torch.no_grad():
            return torch.cat([model_output(model, inputs[i:i + batch_size]).argmax(dim=1)
                              for i in range(0, len(inputs), batch_size)])
    target = torch.as_tensor(target, device=inputs.device).long()
    if target.ndim == 0:
        target = target.expand(len(inputs))
    if target.shape != (len(inputs),):
        raise ValueError(f"target must be a class index or one per input ({len(inputs)},), "
                         f"got shape {tuple(target.shape)}")
    return target


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    method="saliency",
    *,
    target=None,
    baselines=0.0,
    reduce: str = "abs_sum",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    device=None,
    **options: Any,
) -> Attribution:
    """Run one explanation method on a batch and time it.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Args:
        model (nn.Module): the classifier, mapping ``(N, ...)`` to logits ``(N, classes)``.
        inputs (Tensor (N, ...)): what to explain, e.g. images ``(N, C, H, W)``.
        method (str, nn.Module, Captum class or callable): a name of :data:`METHODS`
            (``"sample_masks"`` included), a trained LAN, a Captum class or a callable;
            see the module docstring. Default "saliency".
        target (int or LongTensor (N,), optional): the class explained; default the
            model's prediction for each input. Ignored by masks (sample masks, LANs).
        baselines (float or Tensor): the reference for integrated gradients, occlusion,
            feature ablation and (as their default noise) sample masks: a number, one
            input ``(1, ...)`` or one per input ``(N, ...)``. Default 0.
        reduce (str): ``"abs_sum"`` (default) or ``"abs_max"`` over the channels, giving
            ``(N, 1, H, W)`` for images; ``"abs"``: magnitudes shaped like the inputs;
            ``"none"``: the signed attributions. Masks give ``1 - mask``; see the module
            docstring for how ``reduce`` applies to them.
        batch_size (int, optional): inputs per call of the method (bounds memory);
            default all at once. Sample masks are fitted chunk by chunk, each with the
            same ``seed``, so their noise draws (not their objective) depend on it.
        generator (torch.Generator, optional): randomness of the ``"random"`` method.
        device (str or torch.device, optional): where to compute; default the model's.
        **options: passed to the method (e.g. ``n_steps=64``, ``window=8``, ``patch=6``;
            ``beta=1.0, steps=300, seed=0, noise=...`` for ``"sample_masks"``).

    Returns:
        Attribution: the maps (on the inputs' device) and the time per input.

    Example:
        >>> import lanlib
        >>> model = nn.Linear(6, 2)
        >>> x = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
        >>> out = lanlib.attribute(model, x, "sample_masks", beta=0.1, steps=10, seed=0)
        >>> out.method, tuple(out.maps.shape), bool(0 <= out.maps.min() <= out.maps.max() <= 1)
        ('sample_masks', (3, 6), True)
    """
    check_inputs(inputs)
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    spec = _resolve(method)
    if any(module is model for module in spec.modules):
        raise ValueError("the method is the model itself; pass a trained LAN (mask network) "
                         "as the method, the classifier as the model")
    if spec.name == "random":
        options["generator"] = generator
    n = len(inputs)
    batch_size = n if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = resolve_device(model, device)
    x = inputs.detach().to(device)
    maps = []
    with contextlib.ExitStack() as stack:
        for module in (model, *spec.modules):
            stack.enter_context(explained(module, device))
        targets = None if spec.masks else _targets(model, x, target, batch_size)
        synchronize(device)
        start_time = time.perf_counter()
        for start in range(0, n, batch_size):
            chunk = x[start:start + batch_size]
            if not spec.masks:  # gradient methods need inputs requiring gradients
                chunk = chunk.detach().requires_grad_(True)
            out = spec.run(model, chunk,
                           None if targets is None else targets[start:start + len(chunk)],
                           _baselines_for(baselines, start, start + len(chunk), chunk),
                           **options)
            convert = _from_mask if spec.masks else _from_attributions
            maps.append(convert(out, chunk, reduce, spec.name))
        synchronize(device)
        seconds = time.perf_counter() - start_time
    return Attribution(method=spec.name, maps=torch.cat(maps).to(inputs.device),
                       seconds=seconds, seconds_per_image=seconds / n)


def attribute_many(
    model: nn.Module,
    inputs: torch.Tensor,
    methods=DEFAULT_METHODS,
    *,
    target=None,
    baselines=0.0,
    reduce: str = "abs_sum",
    batch_size: int | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int | None = None,
    device=None,
) -> dict[str, Attribution]:
    """Run several methods on the same inputs and the same targets.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Args:
        model, inputs, baselines, reduce, batch_size, device: as in :func:`attribute`.
        methods (sequence or mapping): method names, trained LANs, Captum classes or
            callables; a mapping ``{label: method}`` chooses the result keys (a sequence
            labels each by its name, which must then differ). Default
            :data:`DEFAULT_METHODS`.
        target (int or LongTensor (N,), optional): default the model's predictions,
            computed once and shared by all methods (masks ignore it).
        options (mapping label -> dict, optional): per-method options, e.g.
            ``{"occlusion": {"window": 8}, "sample_masks": {"beta": 1.0, "steps": 300}}``.
        seed (int, optional): seeds the ``"random"`` method, and the sample masks whose
            options give no ``seed``.

    Returns:
        dict label -> Attribution, in the order of ``methods``.
    """
    check_inputs(inputs)
    if isinstance(methods, Mapping):
        labelled = dict(methods)
    else:
        labelled = {}
        for m in methods:
            label = _resolve(m).name
            if label in labelled:
                raise ValueError(f"two methods are named {label!r}; pass a mapping "
                                 "{label: method} to tell them apart")
            labelled[label] = m
    specs = {label: _resolve(m) for label, m in labelled.items()}
    options = dict(options or {})
    unknown = set(options) - set(labelled)
    if unknown:
        raise ValueError(f"options for {sorted(unknown)}, which are not among the methods "
                         f"{list(labelled)}")
    dev = resolve_device(model, device)
    if target is None and not all(spec.masks for spec in specs.values()):
        with explained(model, dev):
            target = _targets(model, inputs.to(dev), None, batch_size or len(inputs))
    generator = None if seed is None else torch.Generator(device=dev).manual_seed(seed)
    results = {}
    for label, method in labelled.items():
        method_options = dict(options.get(label, {}))
        if specs[label].name == "sample_masks" and seed is not None:
            method_options.setdefault("seed", seed)
        results[label] = attribute(model, inputs, method, target=target, baselines=baselines,
                                   reduce=reduce, batch_size=batch_size, generator=generator,
                                   device=device, **method_options)
    return results


# ----------------------------------------------------------------------------- interfaces


class LatentAttention:
    """Sample masks behind Captum's interface: ``LatentAttention(model).attribute(x)``.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    For readers who know Captum: construct with the model, call ``attribute``, get a
    tensor shaped like the inputs. Each input gets its own mask, fitted by
    :func:`lanlib.fit_sample_masks` (Eq. 4 of the paper) through :func:`attribute`
    with ``method="sample_masks"`` and ``reduce="none"``.

    Args:
        forward_func (nn.Module): the model F, returning logits. A module, not a bare
            function, so that its parameters can be frozen during the fit.
        noise (callable, optional): ``noise(inputs, generator) -> eta`` (see
            :mod:`lanlib.noise`); default: with ``beta`` given, replace the masked
            elements by the ``baselines`` given to :meth:`attribute` (0 unless given);
            without, the noise of :func:`sample_mask_defaults`.
        **fit_kwargs: keyword arguments of :func:`lanlib.fit_sample_masks`: ``beta``,
            ``steps``, ``lr``, ``mask_shape``, ``seed``, ``loss``, ...; and
            ``batch_size`` and ``device`` of :func:`attribute`. Without ``beta`` and
            ``max_distortion``, the settings not given are :func:`sample_mask_defaults`'s.

    Example:
        >>> model = nn.Linear(6, 2)
        >>> x = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
        >>> explainer = LatentAttention(model, beta=0.1, steps=10, seed=0)
        >>> explainer.attribute(x, target=1).shape
        torch.Size([3, 6])
    """

    def __init__(self, forward_func: nn.Module, noise=None, **fit_kwargs: Any):
        if not isinstance(forward_func, nn.Module):
            raise TypeError(
                f"forward_func must be a torch.nn.Module, got {type(forward_func).__name__}; "
                "wrap a function in a module so that its parameters can be frozen"
            )
        self.forward_func = forward_func
        self.noise = noise
        self.fit_kwargs = fit_kwargs

    def attribute(self, inputs: torch.Tensor, target=None, baselines=0.0) -> torch.Tensor:
        """The importance ``1 - mask`` of each input's sample mask, shaped like ``inputs``.

        Args:
            inputs (Tensor (N, ...)): what to explain.
            target: accepted so that code written for Captum runs unchanged, and ignored:
                the KL objective explains the model's whole output distribution, not one
                class, so the masks do not depend on it.
            baselines (float or Tensor): the replacement when no ``noise`` was given, as
                in :func:`attribute`. Default 0.

        Returns:
            Tensor (N, ...): importance in [0, 1] (1 = needed), on the inputs' device.
        """
        return attribute(self.forward_func, inputs, "sample_masks", target=target,
                         baselines=baselines, reduce="none", noise=self.noise,
                         **self.fit_kwargs).maps


def _as_inputs(inputs, model: nn.Module) -> torch.Tensor:
    """A floating tensor of the inputs; numpy arrays take the model's dtype."""
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        return inputs
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    return torch.as_tensor(np.asarray(inputs), dtype=dtype)


def explain_func(method="saliency", **defaults: Any) -> Callable[..., np.ndarray]:
    """Any method as ``explain(model, inputs, targets, **kwargs) -> numpy.ndarray``.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    The signature that evaluation toolkits such as Quantus call (their
    ``explain_func``; nothing here imports them). The arrays it returns are shaped like
    the inputs: maps reduced over the channels (``reduce="abs_sum"`` or ``"abs_max"``)
    are repeated over them.

    Args:
        method: as in :func:`attribute` (a name, a trained LAN, a Captum class or a
            callable). Default "saliency".
        **defaults: keyword arguments of :func:`attribute` (``baselines``, ``reduce``,
            ``batch_size``, ``device``, the method's options...). ``reduce`` defaults to
            ``"abs"``. Keyword arguments given at call time override them.

    Returns:
        callable ``explain(model, inputs, targets=None, **kwargs)``: ``inputs`` a tensor
        or an array ``(N, ...)`` (arrays are converted to the model's dtype), ``targets``
        class indices ``(N,)`` or None (the predictions); returns a float numpy array
        shaped like ``inputs``.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
        >>> explain = explain_func("occlusion", window=2, stride=2)
        >>> explain(model, np.zeros((5, 2, 4, 4)), np.array([0, 1, 2, 0, 1])).shape
        (5, 2, 4, 4)
    """

    def explain(model: nn.Module, inputs, targets=None, **kwargs: Any) -> np.ndarray:
        options = {"reduce": "abs", **defaults, **kwargs}
        x = _as_inputs(inputs, model)
        maps = attribute(model, x, method, target=targets, **options).maps
        return maps.expand(x.shape).detach().cpu().numpy()

    return explain
