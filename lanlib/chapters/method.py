"""Chapter 01, the method: the paper's framework drawn, and a task whose right answer is known.

:func:`plot_framework` draws the framework of the paper's Figure 1. In the task, the
images are uniform noise; the classifier's logits are a fixed linear
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
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..plot import OKABE_ITO, new_figure, root_figure

if TYPE_CHECKING:  # matplotlib is imported lazily, when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["KnownPixelsClassifier", "KnownPixelsTask", "known_pixels_task", "plot_framework"]


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


# ----------------------------------------------------------------------------- Figure 1

#: The framework's boxes: name -> (label, centre x, centre y, width, height, colour), in the
#: drawing's units (14 wide, 5 high); colour None is grey. Who computes a value shares its colour.
_BOXES = {
    "x": ("input $x$", 1.0, 4.7, 1.5, 0.8, None),
    "A": ("LAN $A$\n(trained)", 1.0, 2.8, 1.5, 0.9, OKABE_ITO[0]),
    "mask": ("mask $A(x) \\in [0, 1]^d$", 3.3, 2.8, 2.3, 0.8, OKABE_ITO[0]),
    "eta": ("noise $\\eta \\sim H$", 6.45, 1.15, 1.9, 0.7, OKABE_ITO[4]),
    "tilde": ("corrupted input (Eq. 2)\n"
              "$\\tilde{x} = A(x) \\odot \\eta + (1 - A(x)) \\odot x$",
              6.45, 2.8, 3.4, 0.9, OKABE_ITO[4]),
    "F": ("$F$ (fixed)", 9.15, 4.7, 1.3, 0.8, None),
    "F~": ("$F$ (fixed)", 9.15, 2.8, 1.3, 0.8, None),
    "Fx": ("$F(x)$", 10.6, 4.7, 1.0, 0.7, None),
    "Fx~": ("$F(\\tilde{x})$", 10.6, 2.8, 1.0, 0.7, None),
    "loss": ("loss of $A$ (Eq. 3)\n$L_F(F(x), F(\\tilde{x}))$\n"
             "$-\\ \\beta \\cdot \\mathrm{mean}\\, A(x)$", 12.75, 3.75, 2.2, 1.5,
             OKABE_ITO[1]),
}


def _edge(name: str, side: str, shift: float = 0.0) -> tuple[float, float]:
    """The middle of one side ("left", "right", "top", "bottom") of a box, moved by ``shift``
    along that side."""
    _, cx, cy, w, h, _ = _BOXES[name]
    return {"left": (cx - w / 2, cy + shift), "right": (cx + w / 2, cy + shift),
            "top": (cx + shift, cy + h / 2), "bottom": (cx + shift, cy - h / 2)}[side]


def plot_framework(ax: Axes | None = None) -> Figure:
    """The LAN framework (the paper's Figure 1) as a diagram of boxes and arrows.

    The input x goes to the fixed network F and to the LAN A, whose mask A(x) mixes noise
    η ~ H into x (Eq. 2); F is applied to x and to the corrupted x̃, and A is trained on
    the loss of Eq. 3, the distortion L_F between the two outputs minus β times the mean
    mask. Chapter 01 (``notebooks/01_method.ipynb``) shows it.

    Args:
        ax (Axes, optional): where to draw. Default: a new figure.

    Returns:
        matplotlib.figure.Figure

    Example:
        >>> fig = plot_framework()
        >>> "$F(x)$" in [t.get_text() for t in fig.axes[0].texts]
        True
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        ax = new_figure((9.0, 3.7)).subplots()
    ax.set_xlim(0.1, 13.95)
    ax.set_ylim(0.25, 5.25)
    ax.set_axis_off()
    for label, cx, cy, w, h, colour in _BOXES.values():
        edge = colour or "0.35"
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                                    boxstyle="round,pad=0,rounding_size=0.12",
                                    facecolor=to_rgba(edge, 0.12), edgecolor=edge, linewidth=1.3))
        ax.text(cx, cy, label, ha="center", va="center", fontsize=10, linespacing=1.5)

    def arrow(*points, dashed=False):
        # A polyline through the points, with the head at the last one.
        xs, ys = zip(*points, strict=True)
        style = (0, (4, 2)) if dashed else "-"
        ax.plot(xs[:-1], ys[:-1], color="0.2", linewidth=1.1, linestyle=style,
                solid_capstyle="butt")
        ax.annotate("", xy=points[-1], xytext=points[-2],
                    arrowprops={"arrowstyle": "-|>", "color": "0.2", "linewidth": 1.1,
                                "linestyle": style, "shrinkA": 0, "shrinkB": 0,
                                "mutation_scale": 11})

    arrow(_edge("x", "right"), _edge("F", "left"))
    junction = (_BOXES["tilde"][1], _BOXES["x"][2])
    ax.plot(*junction, "o", color="0.2", markersize=3.5)
    arrow(junction, _edge("tilde", "top"))
    arrow(_edge("x", "bottom"), _edge("A", "top"))
    arrow(_edge("A", "right"), _edge("mask", "left"))
    arrow(_edge("mask", "right"), _edge("tilde", "left"))
    arrow(_edge("eta", "top"), _edge("tilde", "bottom"))
    arrow(_edge("tilde", "right"), _edge("F~", "left"))
    arrow(_edge("F", "right"), _edge("Fx", "left"))
    arrow(_edge("F~", "right"), _edge("Fx~", "left"))
    arrow(_edge("Fx", "right"), _edge("loss", "left", 0.4))
    arrow(_edge("Fx~", "right"), _edge("loss", "left", -0.4))
    below = 0.45  # the mask's way to the loss, under the noise box
    start, end = _edge("mask", "bottom"), _edge("loss", "bottom")
    arrow(start, (start[0], below), (end[0], below), end, dashed=True)
    ax.text(end[0] - 0.2, below + 0.1, "mean mask: the reward, weighted by $\\beta$",
            ha="right", va="bottom", fontsize=9, color="0.2")
    return root_figure(ax)
