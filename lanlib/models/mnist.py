"""F for translated MNIST: the small convolutional classifier of the paper's Appendix A.

Appendix A of Grimm et al. gives the classifier explained in Section 5.1 as
Conv(10 filters, 4x4, stride 2, leaky ReLU), Conv(20 filters, 4x4, stride 2, leaky
ReLU), FC(10, softmax), trained with Adam (learning rate 1e-3) on the
cross-entropy. :class:`TranslatedMNISTNet` builds exactly that and returns the
logits (the softmax lives in the loss, as everywhere in lanlib).

What the appendix leaves open, and what we chose:

- padding: not stated. The default ``padding=0`` (PyTorch's default, "valid"
  convolutions) makes the feature maps 28 -> 13 -> 5. Its consequence is worth
  knowing: the second layer's 10x10 receptive fields start at pixels 0, 4, ..., 16
  and end at pixel 25, so **the last two rows and columns of the canvas are never
  seen by F**. ``padding=1`` ("same"-like: 28 -> 14 -> 7) sees every pixel.
- the leaky ReLU slope: PyTorch's 0.01.

The chapter ``notebooks/02_mnist_grid`` trains and explains it.

Example:
    >>> import torch
    >>> net = TranslatedMNISTNet()
    >>> net(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> net.receptive_field
    (10, 4)
"""

from __future__ import annotations

import torch
from torch import nn

from ..loop import seeded

__all__ = ["TranslatedMNISTNet", "build_translated_mnist_net"]


class TranslatedMNISTNet(nn.Module):
    """Conv(10, 4x4, /2) - Conv(20, 4x4, /2) - FC(classes): F of Appendix A.

    Args:
        canvas_size (int): side of the square input canvas. Default 28.
        classes (int): number of classes. Default 10.
        padding (int): zero padding of both convolutions. Default 0 (see the module notes).
        negative_slope (float): slope of the leaky ReLUs. Default 0.01.

    Shape:
        input ``(N, 1, canvas_size, canvas_size)``, output logits ``(N, classes)``.

    Attributes:
        features (nn.Sequential): the two convolutions with their activations.
        head (nn.Sequential): flatten and the fully connected layer.
        receptive_field (tuple[int, int]): side and stride, in pixels, of the second
            layer's receptive fields: (10, 4).
    """

    def __init__(self, canvas_size: int = 28, classes: int = 10, padding: int = 0,
                 negative_slope: float = 0.01):
        super().__init__()
        self.canvas_size, self.padding = int(canvas_size), int(padding)
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=4, stride=2, padding=padding),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(10, 20, kernel_size=4, stride=2, padding=padding),
            nn.LeakyReLU(negative_slope),
        )
        with torch.no_grad():
            side = self.features(torch.zeros(1, 1, canvas_size, canvas_size)).shape[-1]
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(20 * side * side, classes))
        # two 4x4 kernels at stride 2: 4 + (4 - 1) * 2 = 10 pixels wide, stride 2 * 2 = 4
        self.receptive_field = (10, 4)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[1:] != (1, self.canvas_size, self.canvas_size):
            raise ValueError(
                f"TranslatedMNISTNet expects (N, 1, {self.canvas_size}, {self.canvas_size}) "
                f"canvases, got {tuple(inputs.shape)}"
            )
        return self.head(self.features(inputs))


def build_translated_mnist_net(config: dict | None = None) -> TranslatedMNISTNet:
    """Build F from a configuration dict (a ``build`` for :func:`lanlib.cache.cached_classifier`).

    Reads ``canvas_size`` (28), ``classes`` (10), ``padding`` (0) and ``init_seed`` (0):
    the initial weights depend on ``init_seed`` only, never on global random state.
    """
    config = dict(config or {})
    with seeded(int(config.get("init_seed", 0))):
        return TranslatedMNISTNet(
            canvas_size=int(config.get("canvas_size", 28)),
            classes=int(config.get("classes", 10)),
            padding=int(config.get("padding", 0)),
        )
