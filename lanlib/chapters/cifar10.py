"""Chapter 03 (``notebooks/03_cifar10``): CIFAR-10's augmentation, the images picked, Figure 4.

The chapter trains F of the paper's Appendix B (:class:`lanlib.models.cifar.CifarNet`)
with a small random affine augmentation, explains it with an amortised LAN and with
sample-specific masks, and measures the masks with :mod:`lanlib.metrics`.

- :class:`RandomAffine`: the augmentation, drawing from a ``torch.Generator`` (the
  ``augment`` argument of :func:`lanlib.train.train_classifier` and
  :func:`lanlib.cache.cached_classifier`).
- :func:`load_or_train_classifier`: the chapter's F, trained once through lanlib's cache
  (other pages, e.g. "Explaining a whole dataset", load the same network with it).
- :func:`pick_per_class`: the first correctly classified test images of each class.
- :func:`show_class_columns`: images above their importance maps, one column per class
  (the layout of the paper's Figure 4).
- :func:`average_share` and :func:`lattice_share`: how much of a set of masks is one
  average mask, and how much of a map is F's stride lattice (why the paper's LAN draws
  nearly the same mask for every image).

Example (a few steps on random data):
    >>> import torch
    >>> from lanlib.models.cifar import CifarNet
    >>> from lanlib.train import train_classifier
    >>> x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> y = torch.arange(32) % 10
    >>> net = train_classifier(CifarNet(), (x, y), steps=2, batch_size=16,
    ...                        augment=RandomAffine(), seed=0, progress=False)
    >>> net(x).shape
    torch.Size([32, 10])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import plot
from ..cache import cached_classifier
from ..models.cifar import CifarNet

__all__ = ["AUGMENT", "RandomAffine", "average_share", "lattice_share",
           "load_or_train_classifier", "pick_per_class", "show_class_columns"]

#: The chapter's augmentation: the arguments of :class:`RandomAffine`.
AUGMENT = {"degrees": 10.0, "translate": 0.1, "scale": 0.1, "flip": True}


class RandomAffine:
    """A small random affine map per image: rotation, scaling, shift and a horizontal flip.

    Each image of the batch gets its own angle in ``[-degrees, degrees]``, scale in
    ``[1 - scale, 1 + scale]``, shift in ``[-translate, translate]`` (a fraction of the
    side, per axis) and, when ``flip``, a mirror with probability 1/2. Pixels that
    come from outside the image repeat the border. All randomness comes from the
    generator passed at call time, so a seeded training run is reproducible.

    Args:
        degrees (float): largest rotation, in degrees. Default 10.
        translate (float): largest shift, as a fraction of the image side. Default 0.1.
        scale (float): largest relative zoom in or out. Default 0.1.
        flip (bool): mirror half of the images left-right. Default True.

    Call:
        ``augment(batch (N, C, H, W), generator) -> (N, C, H, W)``.

    Example:
        >>> aug = RandomAffine()
        >>> x = torch.rand(4, 3, 32, 32)
        >>> aug(x, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, scale: float = 0.1,
                 flip: bool = True):
        if degrees < 0 or translate < 0 or not 0 <= scale < 1:
            raise ValueError("degrees and translate must be >= 0 and scale in [0, 1)")
        self.degrees, self.translate, self.scale, self.flip = degrees, translate, scale, flip

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
                f"scale={self.scale}, flip={self.flip})")

    def __call__(self, batch: torch.Tensor, generator: torch.Generator | None = None):
        if batch.ndim != 4:
            raise ValueError(f"RandomAffine takes (N, C, H, W) images, got {tuple(batch.shape)}")
        n, device = len(batch), batch.device

        def uniform(bound: float, size=(n,)) -> torch.Tensor:
            u = torch.rand(size, generator=generator, device=generator.device if generator
                           else device).to(device, batch.dtype)
            return (2 * u - 1) * bound

        angle = uniform(math.radians(self.degrees))
        zoom = 1 + uniform(self.scale)
        shift = uniform(2 * self.translate, (n, 2))  # grid coordinates span [-1, 1]
        mirror = torch.ones(n, device=device, dtype=batch.dtype)
        if self.flip:
            mirror = torch.where(uniform(1.0) < 0, -1.0, 1.0).to(batch.dtype)
        # The grid maps output coordinates to input ones: rotate, scale, mirror, shift.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
                             torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)


def load_or_train_classifier(x_train: torch.Tensor, y_train: torch.Tensor, *, steps: int,
                             lr: float = 1e-3, batch_size: int = 64, dropout: float = 0.3,
                             lrn: bool = False, augment: dict | None = None, seed: int = 0,
                             device=None, verbose: bool = True):
    """F of Appendix B, trained on CIFAR-10 with :class:`RandomAffine`, once (lanlib's cache).

    The cache key holds every setting, so chapter 03 and any other page that calls this
    with the same settings share one trained network; another setting trains another.

    Args:
        x_train (Tensor (N, 3, 32, 32)), y_train (LongTensor (N,)): the training set.
        steps (int): Adam steps (800 in the chapter's quick profile).
        lr (float): Adam's learning rate. Default 1e-3.
        batch_size (int): Default 64.
        dropout (float): dropout rate before each fully connected layer. Default 0.3.
        lrn (bool): local response normalisation after the first two convolutions.
            Default False.
        augment (dict, optional): the arguments of :class:`RandomAffine`; default
            :data:`AUGMENT`.
        seed (int): seeds the initial weights and the batches. Default 0.
        device: where to train. Default CPU.
        verbose (bool): say whether F was loaded or trained. Default True.

    Returns:
        tuple: F (eval mode), its cache key (the ``explains=`` of a LAN trained on it)
        and whether it was loaded.
    """
    augment = dict(AUGMENT if augment is None else augment)
    return cached_classifier(
        "cifar10_f", lambda key: CifarNet(dropout=key["dropout"], lrn=key["lrn"]),
        (x_train, y_train),
        config={"version": 1, "data": "cifar10-train", "dropout": float(dropout),
                "lrn": bool(lrn), "augment": augment},
        steps=int(steps), lr=float(lr), batch_size=int(batch_size),
        augment=RandomAffine(**augment), seed=int(seed), device=device, verbose=verbose)


def pick_per_class(labels: torch.Tensor, classes, per_class: int,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the first ``per_class`` samples of each class in ``classes``, class by class.

    Args:
        labels (Tensor (N,)): the class of each sample.
        classes (sequence of int): the classes wanted, in the order wanted.
        per_class (int): samples per class.
        keep (BoolTensor (N,), optional): only samples where it is True count (e.g. the
            correctly classified ones).

    Returns:
        LongTensor (len(classes) * per_class,): the indices.

    Raises:
        ValueError: a class has fewer than ``per_class`` eligible samples.

    Example:
        >>> pick_per_class(torch.tensor([0, 1, 0, 1, 0]), [1, 0], 2).tolist()
        [1, 3, 0, 2]
    """
    labels = torch.as_tensor(labels).reshape(-1)
    ok = torch.ones_like(labels, dtype=torch.bool) if keep is None else keep.reshape(-1)
    picked = []
    for c in classes:
        found = torch.nonzero((labels == c) & ok).flatten()[:per_class]
        if len(found) < per_class:
            raise ValueError(f"class {c} has only {len(found)} eligible samples, "
                             f"{per_class} wanted")
        picked.append(found)
    return torch.cat(picked)


def show_class_columns(images: torch.Tensor, masks, columns, *, ax=None,
                       cmap: str = plot.IMPORTANCE_CMAP):
    """Images above their importance maps, one column per class (the layout of Figure 4).

    The images come class by class, ``P = len(images) // len(columns)`` per class. For
    each of the P images of a column, the figure shows the image and then, for every
    set of masks, its importance ``1 - mask`` (channels averaged) on the range [0, 1]
    with one shared, labelled colour bar.

    Args:
        images (Tensor (K * P, 3, H, W)): images in [0, 1], class by class.
        masks (mapping str -> Tensor (K * P, C', H, W)): titled sets of masks in [0, 1].
        columns (sequence of str): the K column titles (class names).
        ax (array of Axes (P * (1 + len(masks)), K), optional): where to draw.
        cmap (str): colour map of the importance panels. Default "viridis".

    Returns:
        matplotlib.figure.Figure: the figure drawn into.

    Example:
        >>> fig = show_class_columns(torch.rand(4, 3, 8, 8), {"LAN": torch.rand(4, 1, 8, 8)},
        ...                          ["cat", "dog"])
        >>> len(fig.axes)  # 2 images per column x (image + map), 2 columns, a colour bar
        9
    """
    k = len(columns)
    if len(images) % k:
        raise ValueError(f"{len(images)} images do not split into {k} equal columns")
    per = len(images) // k
    rows = per * (1 + len(masks))
    if ax is None:
        ax = plot.new_figure((1.35 * k + 1.2, 1.35 * rows)).subplots(rows, k, squeeze=False)
    grid = plot.axes_grid(ax, rows, k, size=(1.35, 1.35))
    shown = None
    for c in range(k):
        for p in range(per):
            i, r = c * per + p, p * (1 + len(masks))
            grid[r, c].imshow(images[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            for s, m in enumerate(masks.values(), start=1):
                plane = 1 - m[i].detach().float().cpu().mean(dim=0)
                shown = grid[r + s, c].imshow(plane.numpy(), cmap=cmap, vmin=0, vmax=1)
        grid[0, c].set_title(columns[c])
    labels = ["image", *masks]
    for r in range(rows):
        grid[r, 0].set_ylabel(labels[r % (1 + len(masks))], fontsize="small")
        for a in grid[r]:
            a.set_xticks([])
            a.set_yticks([])
    grid[0, 0].figure.colorbar(shown, ax=list(grid.flat), label=plot.IMPORTANCE_LABEL,
                               shrink=0.6)
    return plot.root_figure(grid[0, 0])


def average_share(masks: torch.Tensor) -> float:
    """The share of a set of masks' variation that their average mask accounts for.

    The masks' values vary around their overall mean, over images and pixels. Replacing
    every mask by the average mask (the per-pixel mean over the images) leaves only the
    part that changes from image to image. The share is
    ``1 - sum((m - mean over images)^2) / sum((m - overall mean)^2)``: 1 when every
    image gets the same mask, near 0 when the masks have nothing in common.

    Args:
        masks (Tensor (N, ...)): N >= 2 masks.

    Returns:
        float: the share, in [0, 1] (0 for masks that are one constant).

    Example:
        >>> base = torch.rand(1, 1, 4, 4)
        >>> average_share(base.repeat(3, 1, 1, 1))
        1.0
    """
    m = masks.detach().double().flatten(1)
    if len(m) < 2:
        raise ValueError(f"average_share needs at least 2 masks, got {len(m)}")
    total = (m - m.mean()).square().sum()
    if total == 0:
        return 0.0
    return float(1 - (m - m.mean(0)).square().sum() / total)


def lattice_share(plane: torch.Tensor, stride: int = 2) -> float:
    """The share of a map's spatial variation that a ``stride``-periodic lattice accounts for.

    F's first layer is a strided convolution, so how many of its windows cover a pixel
    depends on the pixel's row and column modulo the stride. The lattice part of a map is
    the mean over all pixels with the same (row mod stride, column mod stride); the share
    is the variance of that part over the variance of the map.

    Args:
        plane (Tensor (H, W)): the map, e.g. an average mask; H and W multiples of stride.
        stride (int): the lattice's period. Default 2.

    Returns:
        float: the share, in [0, 1] (0 for a constant map).

    Example:
        >>> checker = (torch.arange(4)[:, None] + torch.arange(4)) % 2 * 1.0
        >>> lattice_share(checker)
        1.0
    """
    h, w = plane.shape
    if h % stride or w % stride:
        raise ValueError(f"a {h}x{w} map does not split into {stride}x{stride} cells")
    p = plane.detach().double()
    cells = p.reshape(h // stride, stride, w // stride, stride).mean(dim=(0, 2))
    lattice = cells.repeat(h // stride, w // stride)
    total = (p - p.mean()).square().sum()
    if total == 0:
        return 0.0
    return float((lattice - p.mean()).square().sum() / total)
