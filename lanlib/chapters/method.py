"""Chapter 01, the method: a task whose right answer is known.

The images are uniform noise; the classifier's logits are a fixed linear
function of a handful of chosen pixels and ignore every other one. A good mask
must therefore mark exactly those pixels as needed. The chapter
``notebooks/01_method`` checks both variants of the method against that truth
(the AUROC of their importance), and lanlib's tests use the same task.

Example:
    >>> task = known_pixels_task(100, shape=(1, 8, 8), relevant=5, seed=0)
    >>> task.inputs.shape, int(task.truth.sum())
    (torch.Size([100, 1, 8, 8]), 5)
    >>> bool((task.model(task.inputs).argmax(1) == task.labels).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["KnownPixelsClassifier", "KnownPixelsTask", "known_pixels_task"]


class KnownPixelsClassifier(nn.Module):
    """Logits ``(x[truth] - 0.5) @ weight``: reads the pixels in ``truth`` and nothing else.

    Args:
        truth (BoolTensor (C, H, W)): the pixels the classifier reads.
        weight (Tensor (K, classes)): one row per read pixel, in ``truth``'s flattened order.
    """

    def __init__(self, truth: torch.Tensor, weight: torch.Tensor):
        super().__init__()
        if weight.shape[0] != int(truth.sum()):
            raise ValueError(
                f"weight needs one row per relevant pixel ({int(truth.sum())}), "
                f"got {weight.shape[0]}"
            )
        self.register_buffer("truth", truth.bool())
        self.weight = nn.Parameter(weight.float())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        read = inputs.flatten(1)[:, self.truth.flatten()]
        return (read - 0.5) @ self.weight


@dataclass
class KnownPixelsTask:
    """Inputs ``(N, *shape)`` in [0, 1], their labels ``(N,)``, the ``truth`` mask
    (``(*shape)``, True where the classifier reads) and the ``model`` itself."""

    inputs: torch.Tensor
    labels: torch.Tensor
    truth: torch.Tensor
    model: KnownPixelsClassifier


def known_pixels_task(
    n: int,
    *,
    shape=(1, 12, 12),
    relevant: int = 6,
    classes: int = 2,
    scale: float = 4.0,
    seed: int = 0,
) -> KnownPixelsTask:
    """Make ``n`` noise images and a classifier that reads ``relevant`` random pixels.

    Args:
        n (int): number of images.
        shape (tuple): per-image shape. Default ``(1, 12, 12)``.
        relevant (int): how many pixels the classifier reads. Default 6.
        classes (int): number of classes. Default 2.
        scale (float): size of the weights; larger means more confident logits.
        seed (int): seeds the pixels, the weights and the images.

    Returns:
        KnownPixelsTask
    """
    size = math.prod(shape)
    if not 0 < relevant < size:
        raise ValueError(f"relevant must be between 1 and {size - 1}, got {relevant}")
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(size, dtype=torch.bool)
    truth[torch.randperm(size, generator=g)[:relevant]] = True
    truth = truth.reshape(shape)
    # Centred rows of equal norm: every read pixel moves the class scores equally.
    weight = torch.randn(relevant, classes, generator=g)
    weight = weight - weight.mean(dim=1, keepdim=True)
    model = KnownPixelsClassifier(truth, scale * weight / weight.norm(dim=1, keepdim=True))
    inputs = torch.rand(n, *shape, generator=g)
    with torch.no_grad():
        labels = model(inputs).argmax(dim=1)
    return KnownPixelsTask(inputs=inputs, labels=labels, truth=truth, model=model)
