"""Small mask networks: the fully connected LANs of the paper's appendices.

:class:`MLPMaskNet` flattens each input, applies fully connected layers with
leaky ReLU, and ends with a sigmoid reshaped to the mask shape. The paper's LANs
are all of this form:

- translated MNIST (Appendix A): ``MLPMaskNet((1, 28, 28), hidden=(100,))``;
- CIFAR-10 (Appendix B): ``MLPMaskNet((3, 32, 32), hidden=(500, 500, 500),
  mask_shape=(1, 32, 32))``, one mask shared by the three colour channels;
- 20 Newsgroups (Appendix C): ``MLPMaskNet((vocab,), hidden=(100, 1000))``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLPMaskNet"]


class MLPMaskNet(nn.Module):
    """Fully connected mask network ``A(x)`` with outputs in [0, 1].

    Args:
        input_shape (tuple): per-sample input shape, e.g. ``(1, 28, 28)``.
        hidden (tuple of int): widths of the hidden layers (leaky ReLU). Default ``(100,)``.
        mask_shape (tuple, optional): per-sample mask shape; default ``input_shape``. Use
            size-1 dimensions for a mask shared across them (e.g. colour channels).
        negative_slope (float): slope of the leaky ReLU. Default 0.01.

    Shape:
        input ``(N, *input_shape)``, output ``(N, *mask_shape)``.

    Example:
        >>> lan = MLPMaskNet((1, 28, 28), hidden=(100,))
        >>> lan(torch.rand(5, 1, 28, 28)).shape
        torch.Size([5, 1, 28, 28])
    """

    def __init__(self, input_shape, hidden=(100,), mask_shape=None, negative_slope: float = 0.01):
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.mask_shape = self.input_shape if mask_shape is None else tuple(mask_shape)
        if len(self.mask_shape) != len(self.input_shape):
            raise ValueError(
                f"mask_shape {self.mask_shape} needs one entry per input dimension "
                f"{self.input_shape}"
            )
        widths = [math.prod(self.input_shape), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(negative_slope)]
        layers += [nn.Linear(widths[-1], math.prod(self.mask_shape)), nn.Sigmoid()]
        self.net = nn.Sequential(nn.Flatten(), *layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(
                f"MLPMaskNet was built for inputs {self.input_shape} per sample, "
                f"got {tuple(inputs.shape[1:])}"
            )
        return self.net(inputs).reshape(len(inputs), *self.mask_shape)
