"""The tank detector of the tank story (``notebooks/06_tank_story``): a small CNN.

Appendix G of the paper tells the story without a network; this one is ours. Three
3x3 convolution blocks (ReLU, max pooling after the first two) and a global max
pool feed one linear layer with two logits (0 = no tank, 1 = tank). The global max
pool lets a single small object anywhere in the image decide the answer, which a
tank detector needs; it does not make the network look for tanks rather than
clouds: what it learns depends only on its training data.

The chapter's module :mod:`lanlib.chapters.tank_story` draws the scenes, trains the
network on them and caches it (``load_tank_cnn``).

Example:
    >>> import torch
    >>> TankCNN(width=8)(torch.rand(2, 3, 48, 48)).shape
    torch.Size([2, 2])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TankCNN"]


class TankCNN(nn.Module):
    """A small convolutional classifier for ``(N, 3, H, W)`` images in [0, 1].

    The images are centred (``inputs - 0.5``) before the first convolution.

    Args:
        width (int): channels of the first block; the next ones have 2x and 4x. Default 16.
        classes (int): number of logits. Default 2.

    Shape:
        input ``(N, 3, H, W)`` (any H, W >= 8), output ``(N, classes)`` logits.
    """

    def __init__(self, width: int = 16, classes: int = 2):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs - 0.5))
