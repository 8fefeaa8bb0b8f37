"""The CIFAR-10 classifier F of the paper's Appendix B.

The chapter ``notebooks/03_cifar10`` explains this network with an amortised
Latent Attention Network (Eq. 3) and with sample-specific masks (Eq. 4); the
augmentation it is trained with and the chapter's figures live in
:mod:`lanlib.chapters.cifar10`, the measures of its masks in :mod:`lanlib.metrics`.

- :class:`CifarNet`: five strided convolutions with leaky ReLU, then fully connected
  layers of 384 and 192 tanh units and 10 logits, with dropout.

Example (a few steps on random data):
    >>> import torch
    >>> from lanlib.train import train_classifier
    >>> x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> y = torch.arange(32) % 10
    >>> net = train_classifier(CifarNet(), (x, y), steps=2, batch_size=16, seed=0,
    ...                        progress=False)
    >>> net(x).shape
    torch.Size([32, 10])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CifarNet"]


class CifarNet(nn.Module):
    """F of Appendix B: a small all-convolutional CIFAR-10 classifier returning logits.

    Layers (filters, stride, kernel), all with "same" padding and leaky ReLU:
    Conv(64, 2, 5x5) -> Conv(64, 2, 5x5) -> Conv(64, 1, 3x3) -> Conv(64, 1, 3x3) ->
    Conv(32, 2, 3x3), giving ``32 x 4 x 4`` features; then dropout, FC(384, tanh),
    dropout, FC(192, tanh), dropout, FC(10).

    The paper applies local response normalisation (and dropout) at every layer but
    gives neither its parameters nor the dropout rate; here it is off by default
    (``lrn=False``), a deviation that chapter 03 lists, and ``lrn=True`` puts it after
    the first two convolutions.

    Args:
        dropout (float): dropout probability before each fully connected layer.
            Default 0.3.
        lrn (bool): add local response normalisation after the first two
            convolutions. Default False.
        negative_slope (float): slope of the leaky ReLU. Default 0.1.

    Shape:
        input ``(N, 3, 32, 32)`` in [0, 1], output ``(N, 10)`` logits.

    Example:
        >>> CifarNet()(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, dropout: float = 0.3, lrn: bool = False, negative_slope: float = 0.1):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        specs = [(3, 64, 2, 5), (64, 64, 2, 5), (64, 64, 1, 3), (64, 64, 1, 3), (64, 32, 2, 3)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out, stride, k) in enumerate(specs):
            layers += [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2),
                       nn.LeakyReLU(negative_slope)]
            if lrn and i < 2:
                layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(32 * 4 * 4, 384), nn.Tanh(),
            nn.Dropout(dropout), nn.Linear(384, 192), nn.Tanh(),
            nn.Dropout(dropout), nn.Linear(192, 10),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[1:] != (3, 32, 32):
            raise ValueError(f"CifarNet takes (N, 3, 32, 32) images, got {tuple(inputs.shape)}")
        return self.classifier(self.features(inputs))
