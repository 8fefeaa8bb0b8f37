"""Chapter 02, translated MNIST: the grid, and predicting where F fails (Section 5.1).

A Latent Attention Network trained to explain a small convolutional classifier F
on translated MNIST draws two things into its masks: a blob that follows the
digit, and a fixed pattern across the background that does not move with it.
The paper (Figures 2-3) reads the fixed pattern as the lattice of places where F
detects digits and predicts from it where F will fail. This module holds the
pieces the chapter ``notebooks/02_mnist_grid`` uses to test that:

- training, once, through lanlib's cache: :func:`load_or_train_classifier` (F of
  Appendix A, on digits placed afresh every batch by
  :func:`lanlib.data.translated_loader`), :func:`load_or_train_lan` (the LAN of
  Appendix A, with bootstrapped noise) and :func:`load_or_train_feature_lan` (an
  improved LAN, ours, that reads F's feature maps);
- the stationary part of the masks: :func:`stationary_mask` (the mask at pixels
  far from the digit), :func:`window_mean` (its mean over the box a digit would
  cover);
- its periodicity: :func:`periodicity` (variance explained by the lattice phase,
  against chance) and :func:`phase_table` (the mean per phase);
- F's side: :func:`accuracy_map` (accuracy on small digits centred at every pixel)
  and :func:`receptive_field_count` (how many last-layer units see each pixel);
- comparisons: :func:`region_mask`, :func:`inside_outside`, :func:`distance_to_border`
  (correlations of maps: :func:`lanlib.metrics.correlation`);
- whether importance follows the digit: :func:`near_ink` (the pixels within a few pixels
  of the digit's ink) and :func:`importance_near_ink` (the share of importance there);
- figures: :func:`plot_digits_and_masks` (Figure 2), :func:`plot_map` (Figure 3's
  panels), :func:`plot_periodicity`, :func:`plot_explorer_state`.

Maps are ``(H, W)`` float tensors indexed by pixel (row, column), with NaN where a
quantity is undefined (e.g. no digit centre can sit there). Importance is
``1 - mask`` throughout, as in the rest of lanlib.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> masks = torch.rand(64, 1, 28, 28, generator=g)
    >>> positions = torch.randint(0, 17, (64, 2), generator=g)
    >>> stationary_mask(masks, positions, digit_size=12).shape
    torch.Size([28, 28])
    >>> lattice = torch.zeros(28, 28); lattice[::4, ::4] = 1
    >>> scores = periodicity(lattice, periods=(3, 4))
    >>> scores[4]["explained"] > 0.99 and scores[3]["explained"] < 0.2
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..cache import cached_classifier, cached_lan
from ..data.translated import allowed_positions, place_everywhere, shrink_digits, translated_loader
from ..models.mnist import build_translated_mnist_net
from ..nets import FeatureMaskNet, MLPMaskNet
from ..noise import bootstrap
from ..plot import IMPORTANCE_LABEL, OKABE_ITO, as_numpy, axes_grid, outline, root_figure

__all__ = [
    "accuracy_map",
    "distance_to_border",
    "importance_near_ink",
    "inside_outside",
    "load_or_train_classifier",
    "load_or_train_feature_lan",
    "load_or_train_lan",
    "near_ink",
    "periodicity",
    "phase_table",
    "plot_digits_and_masks",
    "plot_explorer_state",
    "plot_map",
    "plot_periodicity",
    "receptive_field_count",
    "region_mask",
    "stationary_mask",
    "window_mean",
]

# ----------------------------------------------------------------------------- training


def load_or_train_classifier(images: torch.Tensor, labels: torch.Tensor, *, steps: int,
                             lr: float = 1e-3, batch_size: int = 64,
                             exclude: Sequence[int] | None = None, padding: int = 0,
                             seed: int = 0, device=None, verbose: bool = True
                             ) -> tuple[nn.Module, dict, bool]:
    """F of Appendix A, trained once on freshly translated digits, then loaded from the cache.

    Trained with :func:`lanlib.cache.cached_classifier`: each batch places
    ``batch_size`` training digits, shrunk to 12x12, at new random positions on a 28x28
    canvas (never overlapping ``exclude``; :func:`lanlib.data.translated_loader` seeded
    with ``seed``), and Adam minimises the cross-entropy.

    Args:
        images (Tensor (N, 1, 28, 28)), labels (Tensor (N,)): the training digits.
        steps (int): Adam steps (the paper: 100,000).
        lr (float): learning rate (the paper: 1e-3). Default 1e-3.
        batch_size (int): digits per step. Default 64.
        exclude (sequence of 4 int, optional): ``(top, left, height, width)`` region the
            training digits never overlap (Figure 3c-d: ``(16, 16, 12, 12)``).
        padding (int): of both convolutions (see :mod:`lanlib.models.mnist`). Default 0.
        seed (int): seeds the initial weights, the placements and the batch order.
        device: where to train. Default CPU.
        verbose (bool): print whether the network was loaded or trained.

    Returns:
        tuple: F (in eval mode, on ``device``), its cache key (pass it to
        :func:`load_or_train_lan`), and whether it was loaded from the cache.
    """
    exclude = None if exclude is None else [int(v) for v in exclude]
    config = {"model": "appendix-A", "padding": int(padding), "init_seed": int(seed),
              "exclude": exclude, "train_digits": len(images), "version": 2}
    return cached_classifier(
        "mnist-grid-F", build_translated_mnist_net,
        lambda: translated_loader(images, labels, int(batch_size), exclude=exclude,
                                  seed=int(seed)),
        config=config, steps=int(steps), lr=float(lr), batch_size=int(batch_size),
        seed=int(seed), device=device, verbose=verbose)


def load_or_train_lan(model: nn.Module, model_config: dict, images: torch.Tensor,
                      labels: torch.Tensor, noise_pool: dict, *, beta: float, steps: int,
                      lr: float = 1e-4, batch_size: int = 64, hidden: Sequence[int] = (100,),
                      exclude: Sequence[int] | None = None, seed: int = 0, device=None,
                      verbose: bool = True) -> tuple[nn.Module, bool]:
    """The LAN of Appendix A, trained to explain ``model`` once (:func:`lanlib.cache.cached_lan`).

    The LAN is ``MLPMaskNet((1, 28, 28), hidden)`` (FC(100, leaky ReLU), FC(784,
    sigmoid)); it sees freshly translated training digits every batch (placements
    seeded with ``seed + 1``, so not those of F) and is trained with
    :func:`lanlib.fit_lan` and bootstrapped noise: η is a canvas drawn from
    ``noise_pool["canvases"]``.

    Args:
        model (nn.Module): F; ``model_config`` is its cache key (from
            :func:`load_or_train_classifier`), so that a new F means a new LAN.
        images, labels: the training digits the LAN sees (placed afresh every batch).
        noise_pool (dict): ``{"canvases": Tensor (M, 1, 28, 28), "spec": dict}``, the
            bootstrap pool and a JSON description of how it was made (part of the key).
        beta (float): the paper uses 5. steps (int): the paper uses 100,000.
        lr (float): Adam's learning rate (the paper: 1e-4). Default 1e-4.
        batch_size (int): Default 64. hidden (sequence of int): Default ``(100,)``.
        exclude (sequence of 4 int, optional): region the LAN's training digits avoid.
        seed (int): seeds the initial weights, batch order and noise draws (the
            placements: ``seed + 1``).
        device: where to train. Default CPU.
        verbose (bool): print whether the LAN was loaded or trained.

    Returns:
        tuple: the LAN (eval mode, on ``device``) and whether it was loaded.
    """
    exclude = None if exclude is None else [int(v) for v in exclude]
    hidden = [int(h) for h in hidden]
    config = {"lan": "mlp", "hidden": hidden, "noise": {"bootstrap": noise_pool["spec"]},
              "exclude": exclude, "train_digits": len(images), "placement_seed": int(seed) + 1,
              "version": 2}
    return cached_lan(
        "mnist-grid-LAN", model, lambda key: MLPMaskNet((1, 28, 28), hidden=tuple(hidden)),
        lambda: translated_loader(images, labels, int(batch_size), exclude=exclude,
                                  seed=int(seed) + 1),
        bootstrap(noise_pool["canvases"]), explains=model_config, config=config,
        beta=float(beta), steps=int(steps), lr=float(lr), batch_size=int(batch_size),
        seed=int(seed), device=device, verbose=verbose)


def load_or_train_feature_lan(model: nn.Module, model_config: dict, images: torch.Tensor,
                              labels: torch.Tensor, noise_pool: dict, *, beta: float,
                              steps: int, lr: float = 2e-3, tv: float = 0.0,
                              batch_size: int = 64,
                              layers: Sequence[str] = ("features.1", "features.3"),
                              width: int = 16, seed: int = 0, device=None,
                              verbose: bool = True) -> tuple[nn.Module, bool]:
    """An improved LAN (not the paper's) that reads F's feature maps, trained once.

    :class:`lanlib.nets.FeatureMaskNet` on the outputs of F's two convolutional layers
    (after their leaky ReLUs), so the mask is computed from what F itself detected in
    this canvas; its statistics come from the first 256 canvases of the noise pool.
    Everything else is as in :func:`load_or_train_lan`: freshly translated training
    digits (placements seeded with ``seed + 1``), bootstrapped noise from
    ``noise_pool``, :func:`lanlib.fit_lan` with ``beta``, here with a total-variation
    prior of weight ``tv`` (Fong & Vedaldi 2017).

    Args:
        model, model_config, images, labels, noise_pool: as for :func:`load_or_train_lan`.
        beta (float): the reward for larger masks. steps (int): Adam steps.
        lr (float): Adam's learning rate. Default 2e-3.
        tv (float): weight of the total-variation prior. Default 0.0.
        batch_size (int): Default 64.
        layers (sequence of str): F's submodules read. Default the two leaky ReLUs.
        width (int): channels of the mask head. Default 16.
        seed (int): seeds the initial weights, batch order and noise draws.
        device: where to train. Default CPU.
        verbose (bool): print whether the LAN was loaded or trained.

    Returns:
        tuple: the LAN (eval mode, on ``device``) and whether it was loaded.
    """
    layers = [str(name) for name in layers]
    example = noise_pool["canvases"][:256]
    config = {"lan": "feature", "layers": layers, "width": int(width),
              "example": "first 256 of the noise pool",
              "noise": {"bootstrap": noise_pool["spec"]}, "train_digits": len(images),
              "placement_seed": int(seed) + 1, "version": 1}
    return cached_lan(
        "mnist-grid-feature-LAN", model,
        lambda key: FeatureMaskNet(model, layers, example.to(device or "cpu"), width=int(width)),
        lambda: translated_loader(images, labels, int(batch_size), seed=int(seed) + 1),
        bootstrap(noise_pool["canvases"]), explains=model_config, config=config,
        beta=float(beta), steps=int(steps), lr=float(lr), batch_size=int(batch_size),
        seed=int(seed), device=device, verbose=verbose, tv=float(tv))


# ----------------------------------------------------------------------------- masks


def stationary_mask(masks: torch.Tensor, positions: torch.Tensor, digit_size: int = 12,
                    margin: int = 2) -> torch.Tensor:
    """The part of the masks that does not move with the digit.

    At each pixel, the mean mask over the samples whose digit box lies more than
    ``margin`` pixels away from that pixel (Chebyshev distance): what the LAN
    outputs there when the digit is elsewhere.

    Args:
        masks (Tensor (N, 1, H, W) or (N, H, W)): masks in [0, 1].
        positions (Tensor (N, 2)): top-left corner ``(row, col)`` of each sample's digit box.
        digit_size (int): side of the digit box. Default 12.
        margin (int): pixels kept clear around the box. Default 2.

    Returns:
        Tensor (H, W): the stationary mask; NaN where no sample qualifies.
    """
    masks = masks.reshape(len(masks), *masks.shape[-2:]).double()
    height, width = masks.shape[-2:]
    rows = torch.arange(height)[None, :, None]
    cols = torch.arange(width)[None, None, :]
    top, left = positions[:, 0, None, None], positions[:, 1, None, None]
    far = ((rows < top - margin) | (rows > top + digit_size - 1 + margin)
           | (cols < left - margin) | (cols > left + digit_size - 1 + margin))
    count = far.sum(0)
    total = (masks * far).sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan).float()


def window_mean(values: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Mean of ``values`` over the ``size x size`` box centred at each pixel (odd ``size``).

    A digit of side ``size`` centred at a pixel covers exactly that box, so this is
    what a map says about the pixels that digit would occupy.

    Returns:
        Tensor (H, W): the box means at the pixels where the whole box fits; NaN elsewhere.
    """
    if size % 2 != 1:
        raise ValueError(f"size must be odd so that boxes have a centre pixel, got {size}")
    pooled = F.avg_pool2d(values[None, None].double(), size, stride=1)[0, 0]
    out = torch.full(values.shape, torch.nan, dtype=torch.float64)
    half = size // 2
    out[half:values.shape[0] - half, half:values.shape[1] - half] = pooled
    return out.float()


def phase_table(values: torch.Tensor, period: int = 4, valid: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Mean of ``values`` per lattice phase ``(row mod period, col mod period)``.

    Args:
        values (Tensor (H, W)): a map.
        period (int): the lattice period. Default 4.
        valid (BoolTensor (H, W), optional): the pixels to use (e.g. the interior).

    Returns:
        Tensor (period, period): entry ``[a, b]`` is the mean over pixels with
        ``row % period == a`` and ``col % period == b``.
    """
    valid = _valid(values, valid)
    rows, cols = torch.meshgrid(torch.arange(values.shape[0]), torch.arange(values.shape[1]),
                                indexing="ij")
    phase = ((rows % period) * period + cols % period)[valid]
    sums = torch.zeros(period * period, dtype=torch.float64).index_add_(
        0, phase, values[valid].double())
    counts = torch.bincount(phase, minlength=period * period).double()
    return (sums / counts).reshape(period, period).float()


def periodicity(values: torch.Tensor, periods: Sequence[int] = (2, 3, 4, 5, 6, 7, 8),
                valid: torch.Tensor | None = None) -> dict[int, dict[str, float]]:
    """How much of a map's variance a lattice of each period explains.

    For each period ``p``, the pixels are grouped by their phase ``(row mod p, col
    mod p)`` and the share of the variance explained by the group means is computed
    (an analysis of variance). A map without any lattice still gets a share of
    about ``(p*p - 1) / (n - 1)`` by chance (n valid pixels); ``ratio`` divides by
    that, so 1 means "no better than chance" and a true period-``p`` lattice scores
    far higher at ``p`` (and at its multiples).

    Args:
        values (Tensor (H, W)): a map, e.g. the stationary importance.
        periods (sequence of int): the periods to test. Default 2 to 8.
        valid (BoolTensor (H, W), optional): the pixels to use. Default: all finite ones.

    Returns:
        dict: ``{p: {"explained": share in [0, 1], "chance": its expected value
        without a lattice, "ratio": explained / chance}}``.
    """
    valid = _valid(values, valid)
    n = int(valid.sum())
    flat = values[valid].double()
    total = float(((flat - flat.mean()) ** 2).sum())
    out = {}
    for p in periods:
        table = phase_table(values, p, valid).double().reshape(-1)
        rows, cols = torch.meshgrid(torch.arange(values.shape[0]),
                                    torch.arange(values.shape[1]), indexing="ij")
        phase = ((rows % p) * p + cols % p)[valid]
        between = float(((table[phase] - flat.mean()) ** 2).sum())
        explained = between / total if total > 0 else 0.0
        groups = int(torch.unique(phase).numel())
        chance = (groups - 1) / (n - 1)
        out[int(p)] = {"explained": explained, "chance": chance, "ratio": explained / chance}
    return out


def _valid(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if values.ndim != 2:
        raise ValueError(f"expected a map (H, W), got shape {tuple(values.shape)}")
    finite = torch.isfinite(values)
    return finite if valid is None else finite & valid.bool()


# ----------------------------------------------------------------------------- F's side


@torch.no_grad()
def accuracy_map(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                 digit_size: int = 7, canvas_size: int = 28, batch_size: int = 16384,
                 device=None) -> torch.Tensor:
    """F's accuracy on digits of side ``digit_size`` centred at every possible pixel.

    Every digit is placed at every top-left corner (no Python loop over digits or
    positions: the canvases are built and classified in batches of ``batch_size``).

    Args:
        model (nn.Module): F, mapping canvases to logits.
        images (Tensor (N, 1, H, W)): the digits (full MNIST frames, shrunk here).
        labels (Tensor (N,)): their classes.
        digit_size (int): side of the digit box, odd so that it has a centre. Default 7.
        canvas_size (int): canvas side. Default 28.
        batch_size (int): canvases per forward pass. Default 16384.
        device: where to run F; default the model's device.

    Returns:
        Tensor (canvas_size, canvas_size): accuracy of the digits centred at each pixel,
        NaN at pixels where no box of that size can be centred.
    """
    if digit_size % 2 != 1:
        raise ValueError(f"digit_size must be odd so that digits have a centre, got {digit_size}")
    was_training = model.training
    model.eval()
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    digits = shrink_digits(images, digit_size)
    positions = allowed_positions(canvas_size, digit_size)
    per_chunk = max(1, batch_size // len(digits))
    correct = []
    try:
        for start in range(0, len(positions), per_chunk):
            chunk = positions[start:start + per_chunk]
            canvases = place_everywhere(digits, chunk, canvas_size).flatten(0, 1)
            predicted = model(canvases.to(device)).argmax(1).cpu().reshape(len(chunk), -1)
            correct.append((predicted == labels[None]).double().mean(1))
    finally:
        model.train(was_training)
    out = torch.full((canvas_size, canvas_size), torch.nan, dtype=torch.float64)
    centres = positions + digit_size // 2
    out[centres[:, 0], centres[:, 1]] = torch.cat(correct)
    return out.float()


def receptive_field_count(features: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """How many spatial units of ``features``' output have each input pixel in their view.

    The receptive field of an output location is the set of pixels its value
    depends on, found by differentiating it (summed over channels) with respect to
    the input. For two 4x4 convolutions at stride 2 the fields are 10 pixels wide at
    a stride of 4, so interior pixels are seen by 2 or 3 fields per axis depending
    on their position modulo 4: a lattice built into the architecture.

    Args:
        features (nn.Module): maps ``(1, *input_shape)`` to ``(1, C, h, w)``.
        input_shape (sequence of int): ``(C_in, H, W)``.

    Returns:
        Tensor (H, W): the count per pixel.
    """
    first = next(features.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(0))
    x = x.to(device).requires_grad_(True)
    params = {p: p.requires_grad for p in features.parameters()}
    for p in params:
        p.requires_grad_(False)
    try:
        out = features(x)[0].sum(0)
        count = torch.zeros(input_shape[-2:])
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                (grad,) = torch.autograd.grad(out[i, j], x, retain_graph=True)
                count += (grad[0].abs().sum(0) > 0).float().cpu()
    finally:
        for p, flag in params.items():
            p.requires_grad_(flag)
    return count


# ----------------------------------------------------------------------------- comparisons


def region_mask(canvas_size: int, region: Sequence[int]) -> torch.Tensor:
    """Boolean ``(canvas_size, canvas_size)`` map of a rectangle ``(top, left, height, width)``."""
    top, left, height, width = region
    out = torch.zeros(canvas_size, canvas_size, dtype=torch.bool)
    out[top:top + height, left:left + width] = True
    return out


def inside_outside(values: torch.Tensor, inside: torch.Tensor) -> tuple[float, float]:
    """Mean of the finite values of a map inside and outside a boolean region."""
    finite = torch.isfinite(values)
    a, b = values[finite & inside], values[finite & ~inside]
    if a.numel() == 0 or b.numel() == 0:
        raise ValueError("the region leaves no finite value inside or none outside")
    return float(a.double().mean()), float(b.double().mean())


def distance_to_border(canvas_size: int = 28, digit_size: int = 7) -> torch.Tensor:
    """For each pixel, how far a box of side ``digit_size`` centred there is from the border.

    0 means the box touches the canvas edge; NaN where no box fits.
    """
    half = digit_size // 2
    idx = torch.arange(canvas_size, dtype=torch.float32)
    gap = torch.minimum(idx - half, canvas_size - 1 - half - idx)
    out = torch.minimum(gap[:, None], gap[None, :])
    return torch.where(out >= 0, out, torch.nan)


def near_ink(canvases: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """The pixels within ``radius`` of the digit's ink, per canvas.

    The canvases of :func:`lanlib.data.translate_digits` are 0 except where the pasted
    digit has ink, so the ink is ``canvases > 0`` (the digit's own pixels; their faint
    anti-aliased rim included). It is dilated by a ``(2 radius + 1)``-square max pooling:
    a pixel counts as near when some ink pixel lies at most ``radius`` rows and
    ``radius`` columns away (Chebyshev distance).

    Args:
        canvases (Tensor (N, 1, H, W)): the canvases, background exactly 0.
        radius (int): the distance in pixels, >= 0. Default 3.

    Returns:
        BoolTensor (N, 1, H, W): True near the ink (the ink included).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    ink = (canvases > 0).float()
    return F.max_pool2d(ink, 2 * radius + 1, stride=1, padding=radius) > 0


def importance_near_ink(importance: torch.Tensor, near: torch.Tensor) -> torch.Tensor:
    """Each canvas's share of its importance mass that lies on the pixels ``near`` its ink.

    ``sum(importance * near) / sum(importance)`` per canvas. An importance spread evenly
    over the canvas scores the share of the canvas that ``near`` covers; one that
    follows the digit scores close to 1.

    Args:
        importance (Tensor (N, 1, H, W)): non-negative importance, e.g. ``1 - mask``.
        near (BoolTensor (N, 1, H, W)): from :func:`near_ink`.

    Returns:
        Tensor (N,): the shares in [0, 1] (0 for a canvas with no importance at all).
    """
    importance = importance.double()
    if bool((importance < 0).any()):
        raise ValueError("importance must be non-negative (e.g. 1 - mask)")
    total = importance.sum((1, 2, 3))
    return ((importance * near).sum((1, 2, 3)) / total.clamp_min(1e-12)).float()


# ----------------------------------------------------------------------------- figures


def plot_digits_and_masks(canvases: torch.Tensor, masks: torch.Tensor, *, cols: int = 6,
                          titles: Sequence[str] | None = None, ax=None):
    """Figure 2: each canvas above its importance ``1 - mask`` (viridis: yellow = important).

    Args:
        canvases (Tensor (N, 1, H, W)): the inputs.
        masks (Tensor (N, 1, H, W)): their masks in [0, 1] (1 = ignored).
        cols (int): pairs per row. Default 6.
        titles (sequence of str, optional): one title per canvas.
        ax (array of Axes, optional): ``2 * ceil(N / cols) x cols`` axes. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    n = len(canvases)
    rows = -(-n // cols)
    axes = axes_grid(ax, 2 * rows, cols, size=(1.55, 1.55))
    fig = root_figure(axes[0, 0])
    image = None
    for k in range(rows * cols):
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        for a in (top, bottom):
            a.set_xticks([])
            a.set_yticks([])
            a.set_frame_on(k < n)
        if k >= n:
            continue
        top.imshow(as_numpy(canvases[k, 0]), cmap="gray", vmin=0, vmax=1)
        image = bottom.imshow(as_numpy(1 - masks[k, 0]), cmap="viridis", vmin=0, vmax=1)
        if titles is not None:
            top.set_title(titles[k], fontsize="small")
    for r in range(rows):
        axes[2 * r, 0].set_ylabel("input")
        axes[2 * r + 1, 0].set_ylabel("importance")
    fig.colorbar(image, ax=list(axes[1::2].flat), label=IMPORTANCE_LABEL, shrink=0.8)
    return fig


def plot_map(values: torch.Tensor, *, ax=None, title: str = "", label: str = "",
             cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
             region: torch.Tensor | None = None):
    """One ``(H, W)`` map with a labelled colour bar; NaN pixels in light grey.

    Args:
        values (Tensor (H, W)): the map.
        ax (Axes, optional): where to draw. Default: a new figure.
        title (str): the panel title.
        label (str): what the colour bar shows.
        cmap (str): a colour-blind-safe map. Default "viridis".
        vmin, vmax (float, optional): the colour range. Default: the finite range.
        region (BoolTensor (H, W), optional): a region whose border is drawn in vermillion.

    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib

    axes = axes_grid(ax, 1, 1, size=(3.3, 3.0))
    fig = root_figure(axes[0, 0])
    a = axes[0, 0]
    colours = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
    image = a.imshow(as_numpy(values), cmap=colours, vmin=vmin, vmax=vmax)
    if region is not None:
        outline(a, region)
    a.set_title(title, fontsize="medium")
    a.set_xticks([0, 8, 16, 24])
    a.set_yticks([0, 8, 16, 24])
    fig.colorbar(image, ax=a, label=label, shrink=0.85)
    return fig


def plot_periodicity(scores: dict[int, dict[str, float]], table: torch.Tensor,
                     coverage: torch.Tensor, *, ax=None):
    """The lattice behind the grid: periodicity scores, the mean per phase, the coverage.

    Args:
        scores (dict): the output of :func:`periodicity` for a map.
        table (Tensor (p, p)): the output of :func:`phase_table` for it.
        coverage (Tensor (H, W)): :func:`receptive_field_count` of F's feature layers.
        ax (array of 3 Axes, optional): where to draw. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    axes = axes_grid(ax, 1, 3, size=(3.4, 3.0))
    fig = root_figure(axes[0, 0])
    a, b, c = axes[0]
    periods = sorted(scores)
    a.bar([str(p) for p in periods], [scores[p]["ratio"] for p in periods], color=OKABE_ITO[0])
    a.axhline(1.0, color=OKABE_ITO[1], linestyle="--", label="chance")
    a.set_xlabel("lattice period p (pixels)")
    a.set_ylabel("variance explained / chance")
    a.set_title("(i) periodicity of the grid", fontsize="medium")
    a.legend(fontsize="small")
    image = b.imshow(as_numpy(table), cmap="viridis")
    b.set_xlabel(f"column mod {len(table)}")
    b.set_ylabel(f"row mod {len(table)}")
    b.set_xticks(range(len(table)))
    b.set_yticks(range(len(table)))
    b.set_title("(ii) mean importance per phase", fontsize="medium")
    fig.colorbar(image, ax=b, label=IMPORTANCE_LABEL, shrink=0.85)
    image = c.imshow(as_numpy(coverage), cmap="cividis")
    c.set_title("(iii) receptive fields per pixel", fontsize="medium")
    c.set_xticks([0, 8, 16, 24])
    c.set_yticks([0, 8, 16, 24])
    fig.colorbar(image, ax=c, label="last-layer units that see the pixel", shrink=0.85)
    return fig


def plot_explorer_state(canvas: torch.Tensor, mask: torch.Tensor, probs: torch.Tensor, *,
                        label: int | None = None, title: str = "", ax=None):
    """One state of the chapter's explorer: canvas, importance ``1 - mask``, F's probabilities.

    Args:
        canvas (Tensor (1, H, W)): the input.
        mask (Tensor (1, H, W)): its mask in [0, 1].
        probs (Tensor (classes,)): F's class probabilities.
        label (int, optional): the true class, drawn in a second colour.
        title (str): a title over the three panels.
        ax (array of 3 Axes, optional): where to draw. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    axes = axes_grid(ax, 1, 3, size=(2.3, 2.2))
    fig = root_figure(axes[0, 0])
    a, b, c = axes[0]
    a.imshow(as_numpy(canvas[0]), cmap="gray", vmin=0, vmax=1)
    a.set_title("canvas", fontsize="small")
    image = b.imshow(as_numpy(1 - mask[0]), cmap="viridis", vmin=0, vmax=1)
    b.set_title("importance = 1 − mask", fontsize="small")
    for p in (a, b):
        p.set_xticks([])
        p.set_yticks([])
    fig.colorbar(image, ax=b, shrink=0.8)
    colours = [OKABE_ITO[1] if k == label else OKABE_ITO[0] for k in range(len(probs))]
    c.bar(range(len(probs)), as_numpy(probs), color=colours)
    c.set_ylim(0, 1)
    c.set_xticks(range(len(probs)))
    c.set_title("F's probabilities" + ("" if label is None else " (vermillion: true class)"),
                fontsize="small")
    if title:  # on the innermost (sub)figure, so that several states can share one figure
        a.get_figure(root=False).suptitle(title, fontsize="medium")
    return fig
