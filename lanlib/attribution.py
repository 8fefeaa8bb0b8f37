"""Other explanation methods, run the same way: a thin wrapper around Captum.

One call, :func:`attribute`, runs one method on a batch; :func:`attribute_many` runs
several on the same batch and the same targets, so that their maps can be scored side
by side with the masks of a LAN. Each result is an :class:`Attribution`: the maps and
the wall-clock time the method took per input.

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

A method may also be a Captum attribution class (e.g. ``captum.attr.GuidedBackprop``;
``options`` go to its ``attribute``) or any callable
``fn(model, inputs, target, baselines) -> Tensor`` shaped like ``inputs``.

Layout: by default the maps are importance maps in lanlib's layout, ``(N, 1, H, W)``
for images (absolute values summed over the channels) and ``|attribution|`` shaped like
the inputs otherwise; ``reduce="none"`` returns Captum's signed attributions unchanged,
shaped like the inputs.

The model is put in eval mode without parameter gradients during the call
(:func:`lanlib.frozen`), and restored after.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    >>> x = torch.rand(5, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    >>> out = attribute_many(model, x, ["saliency", "occlusion"],
    ...                      options={"occlusion": {"window": 2, "stride": 2}})
    >>> out["saliency"].maps.shape, out["occlusion"].maps.shape
    (torch.Size([5, 1, 4, 4]), torch.Size([5, 1, 4, 4]))
    >>> out["saliency"].seconds_per_image >= 0
    True

The tank chapter (``notebooks/06_tank_story``) scores these methods against ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .core import check_inputs, frozen, model_output
from .loop import resolve_device

__all__ = ["DEFAULT_METHODS", "METHODS", "Attribution", "attribute", "attribute_many"]

#: The methods :func:`attribute` knows by name.
METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "occlusion",
           "feature_ablation", "random")
#: What :func:`attribute_many` runs when no methods are named.
DEFAULT_METHODS = ("saliency", "integrated_gradients", "occlusion", "feature_ablation", "random")
_REDUCE = ("abs_sum", "abs_max", "abs", "none")


@dataclass
class Attribution:
    """What one method said about a batch.

    Attributes:
        method (str): the method's name.
        maps (Tensor): ``(N, 1, H, W)`` importance maps for images (``reduce="abs_sum"`` or
            ``"abs_max"``), else shaped like the inputs.
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


_BY_NAME: dict[str, Callable[..., torch.Tensor]] = {
    "saliency": _saliency,
    "input_x_gradient": _input_x_gradient,
    "integrated_gradients": _integrated_gradients,
    "occlusion": _occlusion,
    "feature_ablation": _feature_ablation,
    "random": _random,
}


def _resolve(method) -> tuple[str, Callable[..., torch.Tensor]]:
    if isinstance(method, str):
        if method not in _BY_NAME:
            raise ValueError(
                f"unknown method {method!r}; use one of {', '.join(METHODS)}, a Captum "
                "attribution class or a callable fn(model, inputs, target, baselines)"
            )
        return method, _BY_NAME[method]
    if isinstance(method, type):  # a Captum attribution class
        if not hasattr(method, "attribute"):
            raise TypeError(f"{method.__name__} has no attribute(); pass a Captum class")

        def run(model, inputs, target, baselines, **options):
            return method(model).attribute(inputs, target=target, **options)

        return method.__name__, run
    if callable(method):
        return getattr(method, "__name__", type(method).__name__), method
    raise TypeError(f"a method is a name, a Captum class or a callable, got {method!r}")


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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

    Args:
        model (nn.Module): the classifier, mapping ``(N, ...)`` to logits ``(N, classes)``.
        inputs (Tensor (N, ...)): what to explain, e.g. images ``(N, C, H, W)``.
        method (str, Captum class or callable): see the module docstring. Default "saliency".
        target (int or LongTensor (N,), optional): the class explained; default the
            model's prediction for each input.
        baselines (float or Tensor): the reference for integrated gradients, occlusion
            and feature ablation: a number, one input ``(1, ...)`` or one per input
            ``(N, ...)``. Default 0.
        reduce (str): ``"abs_sum"`` (default) or ``"abs_max"`` over the channels, giving
            ``(N, 1, H, W)`` for images; ``"abs"``: magnitudes shaped like the inputs;
            ``"none"``: the signed attributions.
        batch_size (int, optional): inputs per call of the method (bounds memory);
            default all at once.
        generator (torch.Generator, optional): randomness of the ``"random"`` method.
        device (str or torch.device, optional): where to compute; default the model's.
        **options: passed to the method (e.g. ``n_steps=64``, ``window=8``, ``patch=6``).

    Returns:
        Attribution: the maps (on the inputs' device) and the time per input.
    """
    check_inputs(inputs)
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    name, run = _resolve(method)
    if name == "random":
        options["generator"] = generator
    n = len(inputs)
    batch_size = n if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = resolve_device(model, device)
    home = inputs.device
    first = next(iter(model.parameters()), None)
    model_home = first.device if first is not None else device
    x = inputs.to(device)
    maps = []
    with frozen(model):
        model.to(device)
        try:
            targets = _targets(model, x, target, batch_size)
            _sync(device)
            start_time = time.perf_counter()
            for start in range(0, n, batch_size):
                # Gradient methods need the inputs to require gradients (Captum warns if not).
                chunk = x[start:start + batch_size].detach().requires_grad_(True)
                out = run(model, chunk, targets[start:start + batch_size],
                          _baselines_for(baselines, start, start + len(chunk), chunk),
                          **options)
                if not isinstance(out, torch.Tensor) or out.shape != chunk.shape:
                    raise ValueError(
                        f"method {name!r} returned {getattr(out, 'shape', type(out))}, "
                        f"not a tensor shaped like its inputs {tuple(chunk.shape)}"
                    )
                maps.append(_reduce(out.detach(), reduce))
            _sync(device)
            seconds = time.perf_counter() - start_time
        finally:
            model.to(model_home)
    return Attribution(method=name, maps=torch.cat(maps).to(home), seconds=seconds,
                       seconds_per_image=seconds / n)


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

    Args:
        model, inputs, baselines, reduce, batch_size, device: as in :func:`attribute`.
        methods (sequence or mapping): method names, Captum classes or callables; a
            mapping ``{label: method}`` chooses the result keys. Default
            :data:`DEFAULT_METHODS`.
        target (int or LongTensor (N,), optional): default the model's predictions,
            computed once and shared by all methods.
        options (mapping label -> dict, optional): per-method options, e.g.
            ``{"occlusion": {"window": 8}}``.
        seed (int, optional): seeds the ``"random"`` method.

    Returns:
        dict label -> Attribution, in the order of ``methods``.
    """
    check_inputs(inputs)
    labelled = dict(methods) if isinstance(methods, Mapping) else {
        _resolve(m)[0]: m for m in methods}
    options = dict(options or {})
    unknown = set(options) - set(labelled)
    if unknown:
        raise ValueError(f"options for {sorted(unknown)}, which are not among the methods "
                         f"{list(labelled)}")
    if target is None:
        dev = resolve_device(model, device)
        with frozen(model):
            home = next(iter(model.parameters()), torch.empty(0)).device
            model.to(dev)
            try:
                target = _targets(model, inputs.to(dev), None, batch_size or len(inputs))
            finally:
                model.to(home)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=resolve_device(model, device)).manual_seed(seed)
    return {
        label: attribute(model, inputs, method, target=target, baselines=baselines,
                         reduce=reduce, batch_size=batch_size, generator=generator,
                         device=device, **dict(options.get(label, {})))
        for label, method in labelled.items()
    }
