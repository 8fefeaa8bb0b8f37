"""Small mask networks: the fully connected LANs of the paper's appendices.

:class:`MLPMaskNet` flattens each input, applies fully connected layers with
leaky ReLU, and ends with a sigmoid reshaped to the mask shape. The paper's LANs
are all of this form:

- translated MNIST (Appendix A): ``MLPMaskNet((1, 28, 28), hidden=(100,))``;
- CIFAR-10 (Appendix B): ``MLPMaskNet((3, 32, 32), hidden=(500, 500, 500),
  mask_shape=(1, 32, 32))``, one mask shared by the three colour channels;
- 20 Newsgroups (Appendix C): ``MLPMaskNet((vocab,), hidden=(100, 1000))``.

Two image LANs that are not the paper's, used by the tank chapter
(``notebooks/06_tank_story``):

- :class:`CoarseMaskNet`: an :class:`MLPMaskNet` that predicts a coarser mask, shared by
  the colour channels and upsampled to the image;
- :class:`ConvMaskNet`: a small fully convolutional mask network, the same weights at
  every position.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["CoarseMaskNet", "ConvMaskNet", "MLPMaskNet"]


class MLPMaskNet(nn.Module):
    """Fully connected mask network ``A(x)`` with outputs in [0, 1].

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 02, 03, 04 and 06 use it.

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


class CoarseMaskNet(nn.Module):
    """A fully connected LAN with a coarser mask, upsampled to the image.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    An :class:`MLPMaskNet` sees the centred image (``inputs - 0.5``) and predicts a
    ``(1, mask_size, mask_size)`` mask shared by the colour channels; bilinear
    upsampling brings it to ``(1, H, W)``. Predicting a quarter of the values (for
    ``mask_size = H / 2``) makes the last layer four times smaller and the masks
    smoother; objects several pixels wide survive the coarser grid.

    Args:
        input_shape (tuple): ``(C, H, W)`` of the images.
        hidden (tuple of int): hidden widths of the MLP. Default ``(256,)``.
        mask_size (int): side of the coarse mask. Default 24.

    Shape:
        input ``(N, C, H, W)`` in [0, 1], output ``(N, 1, H, W)`` in [0, 1].

    Example:
        >>> lan = CoarseMaskNet((3, 48, 48), hidden=(32,), mask_size=24)
        >>> lan(torch.rand(2, 3, 48, 48)).shape
        torch.Size([2, 1, 48, 48])
    """

    def __init__(self, input_shape, hidden=(256,), mask_size: int = 24):
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape}")
        self.mlp = MLPMaskNet(self.input_shape, hidden=tuple(hidden),
                              mask_shape=(1, int(mask_size), int(mask_size)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        coarse = self.mlp(inputs - 0.5)  # centred, as the classifier sees them
        return nn.functional.interpolate(coarse, size=self.input_shape[1:], mode="bilinear",
                                         align_corners=False).clamp(0, 1)


class ConvMaskNet(nn.Module):
    """A small fully convolutional LAN: the same weights look for what matters everywhere.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Not the paper's architecture (its LANs are fully connected): on images, a
    convolutional mask network shares what it learns across positions, so it can mark
    *this* image's object rather than where such objects usually are. The centred image
    (``inputs - 0.5``) is halved (average pooling), passed through three 3x3
    convolutions with dilations 1, 2 and 4 (ReLU; a receptive field of 15 pixels at half
    resolution) and a 1x1 convolution; the logits are upsampled back to the input's
    size (bilinear) and squashed by a sigmoid. Works for any ``H, W >= 2``.

    Args:
        width (int): channels of the hidden convolutions. Default 16.
        channels (int): channels of the input images. Default 3.

    Shape:
        input ``(N, channels, H, W)`` in [0, 1], output ``(N, 1, H, W)`` in [0, 1].

    Example:
        >>> ConvMaskNet(width=4)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(self, width: int = 16, channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.net(inputs - 0.5)
        logits = nn.functional.interpolate(logits, size=inputs.shape[-2:], mode="bilinear",
                                           align_corners=False)
        return torch.sigmoid(logits)
