"""The CIFAR-10 classifier F of the paper's Appendix B, its augmentation, and mask statistics.

The chapter ``notebooks/03_cifar10`` explains this network with an amortised
Latent Attention Network (Eq. 3) and with sample-specific masks (Eq. 4).

- :class:`CifarNet`: five strided convolutions with leaky ReLU, then fully connected
  layers of 384 and 192 tanh units and 10 logits, with dropout.
- :class:`RandomAffine`: the small random affine augmentation used to train it,
  drawing from a ``torch.Generator`` (the ``augment`` argument of
  :func:`lanlib.train.train_classifier`).
- :func:`class_consistency`, :func:`swap_test`, :func:`lanlib.fit_sample_masks_over_beta`:
  the numbers the chapter measures about masks (they work on any image masks).

Example (a few steps on random data):
    >>> import torch
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
from torch import nn

from ..losses import resolve

__all__ = [
    "CifarNet",
    "RandomAffine",
    "agreement_rate",
    "binary_entropy",
    "class_consistency",
    "mask_correlation",
    "mask_explorer",
    "pick_per_class",
    "plot_perturbation_curves",
    "show_class_columns",
    "swap_test",
]


class CifarNet(nn.Module):
    """F of Appendix B: a small all-convolutional CIFAR-10 classifier returning logits.

    Layers (filters, stride, kernel), all with "same" padding and leaky ReLU:
    Conv(64, 2, 5x5) -> Conv(64, 2, 5x5) -> Conv(64, 1, 3x3) -> Conv(64, 1, 3x3) ->
    Conv(32, 2, 3x3), giving ``32 x 4 x 4`` features; then dropout, FC(384, tanh),
    dropout, FC(192, tanh), dropout, FC(10).

    Local response normalisation, which the paper lists as optional, is off by
    default (``lrn=False``); with ``lrn=True`` it follows the first two convolutions.

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


# ----------------------------------------------------------------------- mask statistics


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


def binary_entropy(masks: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy of each mask, in bits: 0 for a mask of hard 0s and 1s, 1 for all 0.5.

    A lower value is a "sharper" mask, one that decides for each element.

    Args:
        masks (Tensor (N, ...)): masks in [0, 1].

    Returns:
        Tensor (N,): the mean over each mask's elements.

    Example:
        >>> binary_entropy(torch.tensor([[0.0, 1.0], [0.5, 0.5]])).round(decimals=3).tolist()
        [0.0, 1.0]
    """
    m = masks.reshape(len(masks), -1).double().clamp(1e-12, 1 - 1e-12)
    bits = -(m * torch.log2(m) + (1 - m) * torch.log2(1 - m))
    return bits.mean(dim=1)


def mask_correlation(masks: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between every pair of masks, ``(N, N)``.

    Args:
        masks (Tensor (N, ...)): one mask (or importance map) per sample.

    Returns:
        Tensor (N, N): entry ``(i, j)`` is the correlation of masks i and j over their
        elements; a constant mask correlates 0 with everything (and 1 with itself).

    Example:
        >>> m = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 1.0]])
        >>> mask_correlation(m).round(decimals=2).tolist()
        [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    """
    flat = masks.reshape(len(masks), -1).double()
    flat = flat - flat.mean(dim=1, keepdim=True)
    norm = flat.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 1e-12, flat / norm.clamp_min(1e-12), torch.zeros_like(flat))
    corr = unit @ unit.T
    corr.fill_diagonal_(1.0)
    return corr


def class_consistency(
    masks: torch.Tensor,
    labels: torch.Tensor,
    *,
    permutations: int = 0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean correlation of masks within a class and between classes.

    If a network's attention is consistent within a class (the paper's reading of
    its CIFAR-10 Figure 4), masks of two images of the same class correlate more
    than masks of images of different classes. With ``permutations > 0`` the gap is
    compared with the gaps of randomly relabelled masks (the same masks, the labels
    shuffled), which says whether it could be chance.

    Args:
        masks (Tensor (N, ...)): one mask per sample.
        labels (Tensor (N,)): the class of each sample; at least one class must have
            two samples and there must be two classes.
        permutations (int): label shuffles for the permutation test. Default 0 (none).
        generator (torch.Generator, optional): source of the shuffles.

    Returns:
        dict: ``"within"`` (mean over pairs i < j of the same class), ``"between"``
        (mean over pairs of different classes), ``"gap"`` (within - between) and, with
        ``permutations``, ``"p_value"``: the share of shuffles whose gap is at least the
        observed one, counting the observed labelling as one of them.

    Example:
        >>> m = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9]])
        >>> stats = class_consistency(m, torch.tensor([0, 0, 1, 1]))
        >>> stats["within"] > 0.9 > stats["between"]
        True
    """
    labels = torch.as_tensor(labels).reshape(-1).to(masks.device)
    if len(labels) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    corr = mask_correlation(masks)
    upper = torch.ones(len(labels), len(labels), dtype=torch.bool,
                       device=corr.device).triu(diagonal=1)

    def means(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        same = lab[:, None] == lab[None, :]
        within, between = corr[same & upper], corr[~same & upper]
        if len(within) == 0 or len(between) == 0:
            raise ValueError("need two samples of one class and samples of two classes")
        return within.mean(), between.mean()

    w, b = means(labels)
    stats = {"within": float(w), "between": float(b), "gap": float(w - b)}
    if permutations:
        device = generator.device if generator is not None else labels.device
        at_least = 1
        for _ in range(permutations):
            order = torch.randperm(len(labels), generator=generator, device=device)
            pw, pb = means(labels[order.to(labels.device)])
            at_least += int(pw - pb >= w - b)
        stats["p_value"] = at_least / (permutations + 1)
    return stats


@torch.no_grad()
def swap_test(
    model: nn.Module,
    inputs: torch.Tensor,
    masks: torch.Tensor,
    partner: torch.Tensor,
    noise,
    *,
    draws: int = 8,
    loss="kl",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """How much a mask fits its own input better than another input's mask does.

    For every input i, the model's output on ``x_i`` corrupted through its own mask
    is compared (``loss``, e.g. the KL divergence) with the output on ``x_i`` corrupted
    through the mask of ``partner[i]``, with the same noise draws. A mask that tracks
    its individual image distorts the output much less than a borrowed one; a mask
    that is the same for every image of a class gains nothing from being its own.
    Both are averaged over ``draws`` noise draws.

    Args:
        model (nn.Module): F, returning logits.
        inputs (Tensor (N, C, H, W)): the inputs.
        masks (Tensor (N, ...)): their masks, broadcastable to ``inputs`` per sample
            (e.g. ``(N, 1, H, W)``).
        partner (LongTensor (N,)): for each input, whose mask it borrows (``partner[i]``
            != i, e.g. another image of the same class).
        noise (callable): ``noise(inputs, generator) -> eta``.
        draws (int): noise draws averaged. Default 8.
        loss (str or callable): distortion between the clean and corrupted outputs.
            Default ``"kl"``.
        generator (torch.Generator, optional): source of the noise.

    Returns:
        dict: ``"own"`` and ``"swapped"`` mean distortions, ``"ratio"`` (swapped / own)
        and ``"own_better"``, the share of inputs whose own mask distorts less.
    """
    from ..core import corrupt, frozen

    partner = torch.as_tensor(partner).reshape(-1)
    if len(partner) != len(inputs) or len(masks) != len(inputs):
        raise ValueError("inputs, masks and partner need one row per input")
    if bool((partner == torch.arange(len(inputs), device=partner.device)).any()):
        raise ValueError("partner[i] must differ from i")
    distortion = resolve(loss)
    own, swapped = torch.zeros(len(inputs)), torch.zeros(len(inputs))
    with frozen(model):
        reference = model(inputs)
        for _ in range(draws):
            eta = noise(inputs, generator=generator)
            own += distortion(reference, model(corrupt(inputs, masks, eta))).cpu()
            swapped += distortion(reference, model(corrupt(inputs, masks[partner], eta))).cpu()
    own, swapped = own / draws, swapped / draws
    return {
        "own": float(own.mean()),
        "swapped": float(swapped.mean()),
        "ratio": float(swapped.mean() / own.mean().clamp_min(1e-12)),
        "own_better": float((own < swapped).double().mean()),
    }


# ----------------------------------------------------------------------------- figures


def show_class_columns(images: torch.Tensor, masks, columns, *, ax=None, cmap: str = "viridis"):
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
    """
    import numpy as np
    from matplotlib.figure import Figure

    k = len(columns)
    if len(images) % k:
        raise ValueError(f"{len(images)} images do not split into {k} equal columns")
    per = len(images) // k
    rows = per * (1 + len(masks))
    if ax is None:
        fig = Figure(figsize=(1.35 * k + 1.2, 1.35 * rows), layout="constrained")
        ax = fig.subplots(rows, k, squeeze=False)
    ax = np.asarray(ax, dtype=object).reshape(rows, k)
    shown = None
    for c in range(k):
        for p in range(per):
            i, r = c * per + p, p * (1 + len(masks))
            ax[r, c].imshow(images[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            for s, m in enumerate(masks.values(), start=1):
                plane = 1 - m[i].detach().float().cpu().mean(dim=0)
                shown = ax[r + s, c].imshow(plane.numpy(), cmap=cmap, vmin=0, vmax=1)
        ax[0, c].set_title(columns[c])
    labels = ["image", *masks]
    for r in range(rows):
        ax[r, 0].set_ylabel(labels[r % (1 + len(masks))], fontsize="small")
        for a in ax[r]:
            a.set_xticks([])
            a.set_yticks([])
    fig = ax[0, 0].figure
    fig.colorbar(shown, ax=list(ax.flat), label="importance = 1 − mask", shrink=0.6)
    return fig


def plot_perturbation_curves(curves, *, ax=None):
    """Deletion and insertion curves of several importance maps, mean over inputs, with areas.

    Args:
        curves (mapping str -> mapping mode -> dict): for each method, the results of
            :func:`lanlib.metrics.perturbation_curve` for ``"deletion"`` and/or
            ``"insertion"``.
        ax (sequence of Axes, optional): one per mode present. Default: a new figure.

    Returns:
        matplotlib.figure.Figure: the figure drawn into.
    """
    from matplotlib.figure import Figure

    from ..plot import OKABE_ITO

    modes = [m for m in ("deletion", "insertion") if any(m in c for c in curves.values())]
    if ax is None:
        fig = Figure(figsize=(4.2 * len(modes), 3.2), layout="constrained")
        ax = fig.subplots(1, len(modes), squeeze=False)[0]
    styles = ("-", "--", ":", "-.")
    for a, mode in zip(ax, modes, strict=True):
        for r, (name, result) in enumerate(curves.items()):
            if mode not in result:
                continue
            res = result[mode]
            auc = float(res["auc"].mean())
            a.plot(res["fractions"].numpy(), res["probs"].mean(dim=0).numpy(),
                   color=OKABE_ITO[r % len(OKABE_ITO)], linestyle=styles[r % len(styles)],
                   linewidth=1.8, label=f"{name} (area {auc:.3f})")
        word = "replaced by noise" if mode == "deletion" else "restored from noise"
        a.set_xlabel(f"fraction of the most important pixels {word}")
        a.set_ylabel("probability of the original class")
        a.set_title(f"{mode} ({'lower' if mode == 'deletion' else 'higher'} area is better)")
        a.set_ylim(0, 1)
        a.grid(alpha=0.3)
        a.legend(fontsize="small")
    return ax[0].figure


@torch.no_grad()
def agreement_rate(model: nn.Module, inputs: torch.Tensor, masks: torch.Tensor, noise, *,
                   draws: int = 64, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per input, the share of noise draws after which F still predicts the same class.

    :func:`lanlib.metrics.output_agreement` pools all inputs and uses one draw; this
    repeats each input ``draws`` times, so that one image gets a rate, not a 0 or 1.

    Args:
        model (nn.Module): F, returning logits.
        inputs (Tensor (N, ...)): the inputs.
        masks (Tensor (N, ...)): their masks, broadcastable to ``inputs`` per sample.
        noise (callable): ``noise(inputs, generator) -> eta``.
        draws (int): noise draws per input. Default 64.
        generator (torch.Generator, optional): source of the noise.

    Returns:
        Tensor (N,): rates in [0, 1].
    """
    from ..core import corrupt, frozen

    n = len(inputs)
    rep = inputs.repeat_interleave(draws, dim=0)
    rep_masks = masks.repeat_interleave(draws, dim=0)
    with frozen(model):
        before = model(inputs).argmax(dim=1).repeat_interleave(draws)
        after = model(corrupt(rep, rep_masks, noise(rep, generator=generator))).argmax(dim=1)
    return (before == after).double().reshape(n, draws).mean(dim=1).cpu()


def mask_explorer(images: torch.Tensor, masks: torch.Tensor, betas, names, *,
                  notes=None, cmap: str = "viridis"):
    """An interactive picker: choose an image and a beta, see its importance map.

    Every (beta, image) panel is rendered once, as a PNG, when the widget is built, so
    the widget keeps working in a static page that saved its state (it shows the
    panel selected when the page was built).

    Args:
        images (Tensor (N, 3, H, W)): images in [0, 1].
        masks (Tensor (B, N, C', H', W')): ``masks[b, i]``, the mask of image i at
            ``betas[b]``; shown at the image's size.
        betas (sequence of float (B,)): the betas.
        names (sequence of str (N,)): a name per image.
        notes (Tensor (B, N) of float, optional): a number shown under each panel, e.g.
            the agreement rate.
        cmap (str): colour map of the importance. Default "viridis".

    Returns:
        ipywidgets.VBox: the picker.
    """
    import io

    import ipywidgets as widgets
    from matplotlib.figure import Figure

    from ..core import upsample_mask

    pngs = {}
    for b, beta in enumerate(betas):
        for i in range(len(images)):
            full = upsample_mask(masks[b, i : i + 1].float(), images[i : i + 1])[0]
            fig = Figure(figsize=(4.4, 2.3), layout="constrained")
            ax = fig.subplots(1, 2)
            ax[0].imshow(images[i].cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            shown = ax[1].imshow((1 - full.mean(dim=0)).cpu().numpy(), cmap=cmap, vmin=0, vmax=1)
            fig.colorbar(shown, ax=ax[1], label="importance = 1 − mask")
            title = f"β = {beta:g}"
            if notes is not None:
                title += f", agreement {float(notes[b, i]):.2f}"
            ax[1].set_title(title, fontsize="small")
            ax[0].set_title(names[i], fontsize="small")
            for a in ax:
                a.axis("off")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80)
            pngs[b, i] = buf.getvalue()
    picture = widgets.Image(value=pngs[0, 0], format="png")
    beta_pick = widgets.SelectionSlider(options=[(f"{b:g}", k) for k, b in enumerate(betas)],
                                        value=0, description="β")
    image_pick = widgets.Dropdown(options=[(n, k) for k, n in enumerate(names)], value=0,
                                  description="image")

    def redraw(_=None):
        picture.value = pngs[beta_pick.value, image_pick.value]

    beta_pick.observe(redraw, names="value")
    image_pick.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox([image_pick, beta_pick]), picture])
