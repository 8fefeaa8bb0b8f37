"""Distortion losses L_F(F(x), F(x~)) between the model's outputs (Eq. 3 of the paper).

Every loss maps ``(reference, corrupted)`` outputs of shape ``(N, ...)`` to one value
per sample, shape ``(N,)``. ``reference`` is F(x), computed once without gradients;
``corrupted`` is F(x~) and carries the gradient to the mask.

- ``"kl"``: KL(softmax(F(x)) || softmax(F(x~))), for models returning logits.
- ``"ce"``: cross-entropy of F(x~) against F(x)'s predicted class.
- ``"mse"``: mean squared difference of the raw outputs.

A callable ``loss(reference, corrupted)`` may be given instead; it returns ``(N,)``
per-sample values, or a scalar taken as the batch mean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["kl", "ce", "mse", "resolve", "LOSSES"]


def _flat(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.reshape(outputs.shape[0], -1)


def kl(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """KL divergence from the reference class distribution to the corrupted one, per sample."""
    log_p = F.log_softmax(_flat(reference), dim=1)
    log_q = F.log_softmax(_flat(corrupted), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def ce(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the corrupted logits against the reference's predicted class."""
    return F.cross_entropy(_flat(corrupted), _flat(reference).argmax(dim=1), reduction="none")


def mse(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the raw outputs, per sample."""
    return (_flat(corrupted) - _flat(reference)).pow(2).mean(dim=1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kl": kl,
    "ce": ce,
    "mse": mse,
}


def resolve(loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Turn a loss name or callable into a callable returning per-sample values ``(N,)``."""
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
