"""Numbers that score masks: ranking quality against a known truth, and faithfulness.

- :func:`auroc`: how well an importance map ranks the truly relevant elements first.
- :func:`output_agreement`: the share of inputs whose predicted class survives corruption.
- :func:`perturbation_curve`: deletion and insertion curves (faithfulness): replace the
  most important elements first and follow the probability of the original class.
"""

from __future__ import annotations

import torch
from torch import nn

from .core import corrupt, frozen, model_output, upsample_mask

__all__ = ["auroc", "correlation", "mid_ranks", "output_agreement", "perturbation_curve"]


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
    u = mid_ranks(scores)[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def mid_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks of the elements of ``values`` (1 = smallest), ties sharing their mean rank.

    Args:
        values (Tensor): any shape; ranked as one flat sequence.

    Returns:
        Tensor (values.numel(),), float64: the mid-ranks, in the flattened order.

    Example:
        >>> mid_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist()
        [3.5, 1.0, 3.5, 2.0]
    """
    _, inverse, counts = torch.unique(values.reshape(-1), return_inverse=True,
                                      return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def correlation(a: torch.Tensor, b: torch.Tensor, *, rank: bool = False) -> float:
    """Pearson (``rank=True``: Spearman) correlation of two maps, over the elements finite in both.

    Args:
        a, b (Tensor): one shape; NaN or infinite elements (in either) are left out.
        rank (bool): correlate the mid-ranks (:func:`mid_ranks`) instead. Default False.

    Returns:
        float: in [-1, 1].

    Raises:
        ValueError: the shapes differ, or one map is constant where both are finite.

    Example:
        >>> a, b = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 9.0])
        >>> round(correlation(a, b, rank=True), 6)
        1.0
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must have one shape")
    keep = torch.isfinite(a) & torch.isfinite(b)
    x, y = a[keep].double(), b[keep].double()
    if rank:
        x, y = mid_ranks(x), mid_ranks(y)
    x, y = x - x.mean(), y - y.mean()
    denominator = float(x.norm() * y.norm())
    if denominator == 0:
        raise ValueError("one of the maps is constant where both are finite")
    return float((x * y).sum()) / denominator


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


@torch.no_grad()
def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    importance: torch.Tensor,
    noise,
    *,
    mode: str = "deletion",
    steps: int = 20,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Deletion or insertion curve of an importance map, and the area under it.

    Deletion replaces the most important elements of each input by noise first and
    follows F's probability for the class it predicted on the clean input: a faithful
    importance map makes it fall fast (small area). Insertion starts from pure noise
    and restores the most important elements first: it should rise fast (large area).
    Each input keeps one noise draw across the whole curve; ties in importance are
    broken at random.

    Args:
        model (nn.Module): F, returning logits ``(N, classes)``.
        inputs (Tensor (N, ...)): the inputs.
        importance (Tensor (N, *S)): importance per element, ``1 - mask``; ``S`` may be
            coarser or channel-shared (e.g. ``(N, 1, H, W)``): elements are ranked at
            that resolution and each coarse element replaces its whole block.
        noise (callable): ``noise(inputs, generator) -> eta``, the replacement.
        mode (str): ``"deletion"`` (default) or ``"insertion"``.
        steps (int): number of equal fractions between 0 and 1. Default 20.
        target (Tensor (N,), optional): the class to follow; default F's prediction.
        generator (torch.Generator, optional): source of the noise and the tie-breaks.

    Returns:
        dict: ``"fractions"`` ``(steps + 1,)``, ``"probs"`` ``(N, steps + 1)`` and ``"auc"``
        ``(N,)``, the trapezoidal area under each input's curve.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if importance.shape[0] != inputs.shape[0] or importance.ndim != inputs.ndim:
        raise ValueError(
            f"importance {tuple(importance.shape)} needs one map per input "
            f"{tuple(inputs.shape)}, with as many dimensions"
        )
    device = inputs.device
    if generator is None:
        generator = torch.Generator(device=device)
        generator.seed()
    with frozen(model):
        if target is None:
            target = model_output(model, inputs).argmax(dim=1)
        eta = noise(inputs, generator=generator)
        flat = importance.reshape(len(inputs), -1).to(device).double()
        jitter = torch.rand(flat.shape, generator=generator, device=device, dtype=flat.dtype)
        order = torch.argsort(flat + 1e-9 * jitter, dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(flat.shape[1], device=device).expand_as(order))
        fractions = torch.linspace(0, 1, steps + 1, device=device)
        probs = []
        for fraction in fractions:
            chosen = (rank < torch.round(fraction * flat.shape[1])).to(inputs.dtype)
            chosen = upsample_mask(chosen.reshape(importance.shape), inputs, smooth=False)
            mask = chosen if mode == "deletion" else 1 - chosen
            logits = model_output(model, corrupt(inputs, mask, eta))
            probs.append(logits.softmax(dim=1).gather(1, target.view(-1, 1)).squeeze(1))
    probs = torch.stack(probs, dim=1)
    auc = torch.trapezoid(probs, fractions, dim=1)
    return {"fractions": fractions.cpu(), "probs": probs.cpu(), "auc": auc.cpu()}
