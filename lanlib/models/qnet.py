"""The Q-network of the reinforcement-learning chapter (``notebooks/09_rl``).

The network of MinAtar's DQN baseline (Young & Tian 2019), a small version of the
network of Mnih et al. (2015): one 3x3 convolution with 16 channels (stride 1, no
padding) and ReLU, one hidden layer of 128 units with ReLU, and one linear output per
action, the action values Q(s, a). The input is a MinAtar state, one binary 10x10
plane per kind of object, channels first.

The chapter's module :mod:`lanlib.chapters.rl` plays the game, trains the network by
DQN and caches it.

Example:
    >>> import torch
    >>> QNet(channels=4, actions=3)(torch.rand(2, 4, 10, 10)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["QNet"]


class QNet(nn.Module):
    """Action values of a grid state: convolution, hidden layer, one output per action.

    Args:
        channels (int): input planes, one per kind of object.
        actions (int): number of actions (outputs).
        width (int): channels of the convolution. Default 16.
        hidden (int): units of the hidden layer. Default 128.
        size (int): side of the square grid. Default 10 (MinAtar).

    Shape:
        input ``(N, channels, size, size)`` with values in [0, 1], output ``(N, actions)``.
    """

    def __init__(self, channels: int, actions: int, width: int = 16, hidden: int = 128,
                 size: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, width, 3), nn.ReLU(), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(width * (size - 2) ** 2, hidden), nn.ReLU(),
                                  nn.Linear(hidden, actions))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(states))
