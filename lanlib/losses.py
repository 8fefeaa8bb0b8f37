"""Distortion losses L_F(F(x), F(x~)) between the model's outputs (Eq. 3 of the paper).

Every loss maps ``(reference, corrupted)`` outputs of shape ``(N, ...)`` to one value
per sample, shape ``(N,)``. ``reference`` is F(x), computed once without gradients;
``corrupted`` is F(x~) and carries the gradient to the mask.

- ``"kl"``: KL(softmax(F(x)) || softmax(F(x~))), for models returning logits.
- ``"ce"``: cross-entropy of F(x~) against F(x)'s predicted class.
- ``"mse"``: mean squared difference of the raw outputs.

A model with ONE output per row (``(N,)`` or ``(N, 1)``) is taken as a binary
classifier returning the logit ``z`` of the positive class: ``"kl"`` and ``"ce"``
then use ``p = sigmoid(z)`` (the softmax of the two logits ``(0, z)``, see
:func:`class_logits`), i.e. the Bernoulli KL divergence and the binary
cross-entropy. (A softmax over a single class would make every distortion 0 and
every mask drift to 1.) Use ``"mse"`` for a one-output regression model.

A callable ``loss(reference, corrupted)`` may be given instead; it returns ``(N,)``
per-sample values, or a scalar taken as the batch mean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["kl", "ce", "mse", "resolve", "LOSSES", "class_logits", "at_least_float32"]


def _flat(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.reshape(outputs.shape[0], -1)


def class_logits(outputs: torch.Tensor) -> torch.Tensor:
    """Outputs ``(N, ...)`` as class logits ``(N, C)``; one output per row becomes two classes.

    Chapter 01 (``notebooks/01_method.ipynb``) explains the losses that use it.

    A single logit ``z`` (outputs ``(N,)`` or ``(N, 1)``) is a binary classifier's:
    it becomes the logits ``(0, z)``, whose softmax is ``(1 - sigmoid(z), sigmoid(z))``.

    Example:
        >>> class_logits(torch.tensor([2.0, -1.0])).softmax(dim=1)[:, 1]
        tensor([0.8808, 0.2689])
    """
    flat = _flat(outputs)
    if flat.shape[1] == 1:
        flat = torch.cat([torch.zeros_like(flat), flat], dim=1)
    return flat


def at_least_float32(outputs: torch.Tensor) -> torch.Tensor:
    """``outputs`` in float32 if they are of a lower precision (bfloat16, float16), else as is.

    Chapter 01 (``notebooks/01_method.ipynb``) explains the losses that use it.
    """
    if outputs.is_floating_point() and torch.finfo(outputs.dtype).bits < 32:
        return outputs.float()
    return outputs


def kl(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """KL divergence from the reference class distribution to the corrupted one, per sample.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """
    log_p = F.log_softmax(class_logits(reference), dim=1)
    log_q = F.log_softmax(class_logits(corrupted), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def ce(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the corrupted logits against the reference's predicted class.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """
    return F.cross_entropy(class_logits(corrupted), class_logits(reference).argmax(dim=1),
                           reduction="none")


def mse(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the raw outputs, per sample.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """
    return (_flat(corrupted) - _flat(reference)).pow(2).mean(dim=1)


#: The distortions by name, as ``loss=`` of the fits takes them.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kl": kl,
    "ce": ce,
    "mse": mse,
}


def resolve(loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Turn a loss name or callable into a callable returning per-sample values ``(N,)``.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it.
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; use one of {sorted(LOSSES)} or a callable")
        return LOSSES[loss]
    if not callable(loss):
        raise TypeError(
            f"loss must be a name ({sorted(LOSSES)}) or a callable, got {type(loss).__name__}"
        )

    def per_sample(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
        value = loss(reference, corrupted)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"the loss callable must return a tensor, got {type(value).__name__}")
        if value.ndim == 0:
            return value.expand(reference.shape[0])
        if value.shape != (reference.shape[0],):
            raise ValueError(
                f"the loss callable must return a scalar or one value per sample "
                f"({reference.shape[0]},), got shape {tuple(value.shape)}"
            )
        return value

    return per_sample
