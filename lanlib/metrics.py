"""Numbers that score masks: ranking quality against a known truth, and faithfulness.

- :func:`auroc`: how well an importance map ranks the truly relevant elements first.
- :func:`output_agreement`: the share of inputs whose predicted class survives corruption.
"""

from __future__ import annotations

import torch
from torch import nn

from .core import corrupt, frozen, model_output

__all__ = ["auroc", "output_agreement"]


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one half).

    It is the probability that a random relevant element scores higher than a random
    irrelevant one: 1 is a perfect ranking, 0.5 is chance.

    Args:
        scores (Tensor): any shape, e.g. importance ``1 - mask`` of shape ``(N, C, H, W)``.
        labels (Tensor): same shape, truthy where the element is relevant.

    Returns:
        float: the AUROC over all elements.

    Example:
        >>> auroc(torch.tensor([0.9, 0.8, 0.1, 0.3]), torch.tensor([1, 1, 0, 0]))
        1.0
    """
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must have one shape"
        )
    scores, labels = scores.reshape(-1).double(), labels.reshape(-1).bool()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("labels must contain both relevant and irrelevant elements")
    # Mid-ranks give tied scores half credit (the Mann-Whitney U statistic).
    values, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mid_rank = (ends - (counts.double() - 1) / 2)[inverse]
    u = mid_rank[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


@torch.no_grad()
def output_agreement(
    model: nn.Module,
    inputs: torch.Tensor,
    mask: torch.Tensor,
    noise,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """Share of ``inputs`` whose predicted class is unchanged after corruption by ``mask``.

    Args:
        model (nn.Module): F, returning logits ``(N, classes)``.
        inputs (Tensor (N, ...)): the inputs.
        mask (Tensor): masks in [0, 1] broadcastable to ``inputs``.
        noise (callable): ``noise(inputs, generator) -> eta``.
        generator (torch.Generator, optional): source of the noise draw.

    Returns:
        float: in [0, 1].
    """
    with frozen(model):
        before = model_output(model, inputs).argmax(dim=1)
        after = model_output(model, corrupt(inputs, mask, noise(inputs, generator))).argmax(dim=1)
    return float((before == after).double().mean())
