"""Figures the chapters share: masks beside their inputs, loss histories, beta sweeps.

Every function takes tensors in lanlib's layout (batch first, images ``(N, C, H, W)``),
converts them itself, draws into the axes given as ``ax`` (or into a new figure
when ``ax`` is None) and returns the figure. None of them calls ``plt.show()``, and
the figures they create are not registered with pyplot: a notebook displays the
returned figure once (make it the cell's last expression), a script saves it with
``fig.savefig``.

Masks follow the paper (1 = the model ignores this element, 0 = it needs it);
the figures show ``importance = 1 - mask`` and every colour bar says so. Colour
maps and line colours are colour-blind safe (viridis and the Okabe-Ito palette).

Example:
    >>> import torch
    >>> from lanlib import plot
    >>> x = torch.rand(3, 1, 8, 8)
    >>> masks = torch.rand(3, 1, 8, 8)
    >>> fig = plot.show_masks(x, {"sample masks": masks}, truth=x[0] > 0.9)
    >>> len(fig.axes)  # 3 rows of input | truth | importance, and one colour bar
    10

The method chapter (``notebooks/01_method``) uses each of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .core import upsample_mask

if TYPE_CHECKING:  # matplotlib is imported lazily, when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "IMPORTANCE_CMAP",
    "IMPORTANCE_LABEL",
    "MARKERS",
    "OKABE_ITO",
    "as_numpy",
    "axes_grid",
    "mask_explorer",
    "new_figure",
    "outline",
    "plot_beta_sweep",
    "plot_history",
    "plot_perturbation_curves",
    "show_images",
    "show_masks",
    "root_figure",
    "use_book_style",
]

#: The colour-bar label of every importance map.
IMPORTANCE_LABEL = "importance = 1 − mask"
#: The colour map of every importance map (perceptually uniform, colour-blind safe).
IMPORTANCE_CMAP = "viridis"
#: Okabe & Ito's colour-blind-safe palette (black left out), for lines and outlines.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
#: Line markers, one per series, to tell series apart without colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_OUTLINE_COLOUR = "#D55E00"  # vermillion: visible on grey inputs and on viridis

_HISTORY_LABELS = {
    "objective": "objective",
    "distortion": "distortion  L(F(x), F(x̃))",
    "mask_mean": "mean mask",
}


# ----------------------------------------------------------------------------- helpers


def use_book_style() -> None:
    """The book's plotting defaults: Okabe & Ito's palette for lines, :data:`IMPORTANCE_CMAP`
    for images."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
        "image.cmap": IMPORTANCE_CMAP,
    })


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure outside pyplot's registry: shown once when a notebook cell returns it, freed
    when no longer referenced, and never displayed behind the caller's back."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def root_figure(ax: Axes) -> Figure:
    """The top-level figure of ``ax`` (also for axes inside a sub-figure)."""
    from matplotlib.figure import Figure

    fig = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def axes_grid(ax, rows: int, cols: int, *, size: tuple[float, float]) -> np.ndarray:
    """``ax`` as a ``(rows, cols)`` array of Axes, or a new figure's axes if ``ax`` is None."""
    if ax is None:
        fig = new_figure((size[0] * cols, size[1] * rows))
        return fig.subplots(rows, cols, squeeze=False)
    grid = np.asarray(ax, dtype=object)
    if grid.size != rows * cols:
        raise ValueError(
            f"this figure needs {rows * cols} axes ({rows} rows x {cols} columns), "
            f"got {grid.size}; pass e.g. plt.subplots({rows}, {cols})[1]"
        )
    return grid.reshape(rows, cols)


def as_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=float)


def _image(x: torch.Tensor) -> np.ndarray:
    """One image ``(C, H, W)`` or ``(H, W)`` as an array imshow accepts."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 3 and x.shape[0] == 3:
        lo, hi = x.min(), x.max()
        return ((x - lo) / (hi - lo).clamp_min(1e-12)).permute(1, 2, 0).numpy()
    if x.ndim != 2:
        raise ValueError(
            f"an image must be (H, W), (1, H, W) or (3, H, W), got shape {tuple(x.shape)}"
        )
    return x.numpy()


def _plane(mask: torch.Tensor) -> np.ndarray:
    """One mask ``(C, H, W)`` or ``(H, W)`` as an ``(H, W)`` importance map (channel mean)."""
    mask = torch.as_tensor(mask).detach().float().cpu()
    if mask.ndim == 3:
        mask = mask.mean(dim=0)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W) or (C, H, W), got shape {tuple(mask.shape)}")
    return (1 - mask).numpy()


def _truth_plane(truth: torch.Tensor) -> np.ndarray:
    truth = torch.as_tensor(truth).detach().cpu().bool()
    if truth.ndim == 3:
        truth = truth.any(dim=0)
    if truth.ndim != 2:
        raise ValueError(f"truth must be (H, W) or (C, H, W), got shape {tuple(truth.shape)}")
    return truth.numpy()


def _named_masks(masks, titles) -> dict[str, torch.Tensor]:
    if isinstance(masks, torch.Tensor):
        masks = [masks]
    if isinstance(masks, Mapping):
        if titles is not None:
            raise ValueError("give titles either as the keys of masks or as titles, not both")
        return dict(masks)
    masks = list(masks)
    if titles is None:
        titles = ["importance"] if len(masks) == 1 else [f"masks {i}" for i in range(len(masks))]
    if len(titles) != len(masks):
        raise ValueError(f"got {len(titles)} titles for {len(masks)} sets of masks")
    return dict(zip(titles, masks, strict=True))


def outline(ax: Axes, truth, *, color: str = _OUTLINE_COLOUR, linewidth: float = 1.5) -> None:
    """Draw the pixel-exact border of the True region of ``truth`` (``(H, W)``) on ``ax``."""
    from matplotlib.collections import LineCollection

    t = np.pad(_truth_plane(truth), 1)
    segments = []
    # Horizontal borders: a pixel differs from the one below it.
    for a, j in zip(*np.nonzero(t[:-1, 1:-1] != t[1:, 1:-1]), strict=True):
        segments.append([(j - 0.5, a - 0.5), (j + 0.5, a - 0.5)])
    # Vertical borders: a pixel differs from the one to its right.
    for i, b in zip(*np.nonzero(t[1:-1, :-1] != t[1:-1, 1:]), strict=True):
        segments.append([(b - 0.5, i - 0.5), (b - 0.5, i + 0.5)])
    ax.add_collection(LineCollection(segments, colors=color, linewidths=linewidth))


def _bare(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------- figures


def show_masks(
    inputs: torch.Tensor,
    masks,
    truth: torch.Tensor | None = None,
    *,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    ax=None,
    cmap: str = IMPORTANCE_CMAP,
    input_cmap: str = "gray",
    outline_truth: bool = True,
) -> Figure:
    """Inputs beside the truth and the importance ``1 - mask`` of one or more sets of masks.

    One row per input: the input, the truth (when given), then one importance panel per
    set of masks, with the truth's border drawn on top when ``outline_truth``. One shared
    colour bar right of the importance panels, labelled "importance = 1 − mask", spans
    their common range [0, 1].

    Args:
        inputs (Tensor (N, C, H, W) or (N, H, W)): the images; C is 1 (grey, each
            panel scaled to its own range) or 3 (colour).
        masks (Tensor (N, C', H, W), a sequence of them, or a mapping title -> Tensor):
            masks in [0, 1] (1 = ignored). C' may be 1 or C; channels are averaged.
        truth (BoolTensor (H, W), (C, H, W) or (N, C, H, W), optional): the elements the
            model really uses, shared by all inputs or one per input.
        titles (sequence of str, optional): column titles of the mask sets when
            ``masks`` is a tensor or a sequence. Default "importance".
        row_labels (sequence of str, optional): one label per input, left of its row.
        ax (array of Axes, optional): ``N x (1 + [truth] + sets)`` axes to draw into,
            e.g. ``plt.subplots(N, 3)[1]``. Default: a new figure.
        cmap (str): colour map of the importance panels. Default "viridis".
        input_cmap (str): colour map of grey inputs. Default "gray".
        outline_truth (bool): draw the truth's border on the importance panels. Default True.

    Returns:
        matplotlib.figure.Figure: the figure drawn into.
    """
    inputs = torch.as_tensor(inputs)
    if inputs.ndim == 3:
        inputs = inputs.unsqueeze(1)
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W) or (N, H, W), got {tuple(inputs.shape)}")
    named = _named_masks(masks, titles)
    n = len(inputs)
    for name, m in named.items():
        if len(m) != n:
            raise ValueError(f"masks {name!r} has {len(m)} rows but there are {n} inputs")
    if truth is not None:
        truth = torch.as_tensor(truth)
        truths = [truth[i] for i in range(n)] if truth.ndim == 4 else [truth] * n
    if row_labels is not None and len(row_labels) != n:
        raise ValueError(f"got {len(row_labels)} row labels for {n} inputs")

    has_truth = truth is not None
    cols = 1 + has_truth + len(named)
    grid = axes_grid(ax, n, cols, size=(1.9, 1.9))
    first = 1 + has_truth  # the first importance column
    importance_axes, image = [], None
    for i in range(n):
        row = grid[i]
        row[0].imshow(_image(inputs[i]), cmap=input_cmap)
        if has_truth:
            row[1].imshow(_truth_plane(truths[i]), cmap="gray", vmin=0, vmax=1)
        for k, m in enumerate(named.values(), start=first):
            image = row[k].imshow(_plane(m[i]), cmap=cmap, vmin=0.0, vmax=1.0)
            importance_axes.append(row[k])
            if has_truth and outline_truth:
                outline(row[k], truths[i])
        for a in row:
            _bare(a)
        if row_labels is not None:
            row[0].set_ylabel(row_labels[i])
    grid[0, 0].set_title("input")
    if has_truth:
        grid[0, 1].set_title("truth (white = used)")
    for k, name in enumerate(named, start=first):
        grid[0, k].set_title(name)
    fig = root_figure(grid[0, 0])
    # Right of the importance panels, which come last: the inputs and the truth have
    # scales of their own.
    grid[0, 0].figure.colorbar(image, ax=importance_axes, label=IMPORTANCE_LABEL, shrink=0.9)
    return fig


def show_images(
    images,
    *,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    ax=None,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    cbar_label: str = "pixel value",
) -> Figure:
    """A grid of grey images on one shared scale, with one labelled colour bar.

    Args:
        images (Tensor or list): ``(R, K, C, H, W)``, ``(K, C, H, W)``, or a list of rows
            of ``(H, W)`` / ``(1, H, W)`` tensors: ``R`` rows of ``K`` images (one row for a
            4-D tensor).
        titles (sequence of str, optional): one title per panel, row by row.
        row_labels (sequence of str, optional): one label per row, left of it.
        ax (array of Axes, optional): ``R x K`` axes to draw into. Default: a new figure.
        cmap (str): colour map. Default "gray".
        vmin, vmax (float): the value range the colour map spans. Default [0, 1].
        cbar_label (str): what the colour bar shows. Default "pixel value".

    Returns:
        matplotlib.figure.Figure: the figure drawn into.
    """
    if isinstance(images, torch.Tensor):
        if images.ndim == 4:
            images = images.unsqueeze(0)
        if images.ndim != 5:
            raise ValueError(
                f"images must be (R, K, C, H, W) or (K, C, H, W), got {tuple(images.shape)}"
            )
    rows = [list(r) for r in images]
    cols = len(rows[0])
    if any(len(r) != cols for r in rows):
        raise ValueError("every row of images needs the same number of images")
    if titles is not None and len(titles) != len(rows) * cols:
        raise ValueError(f"got {len(titles)} titles for {len(rows) * cols} images")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"got {len(row_labels)} row labels for {len(rows)} rows")
    grid = axes_grid(ax, len(rows), cols, size=(1.9, 1.9))
    image = None
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            image = grid[i, j].imshow(_image(img), cmap=cmap, vmin=vmin, vmax=vmax)
            _bare(grid[i, j])
            if titles is not None:
                grid[i, j].set_title(titles[i * cols + j])
        if row_labels is not None:
            grid[i, 0].set_ylabel(row_labels[i])
    grid[0, 0].figure.colorbar(image, ax=list(grid.flat), label=cbar_label, shrink=0.9)
    return root_figure(grid[0, 0])


def _series(history, key: str, label: str) -> list[float]:
    """The per-step values ``key`` of a History (or of a mapping name -> list)."""
    try:
        values = history[key]
    except (KeyError, TypeError):
        values = getattr(history, key, None)
    if values is None or len(values) == 0:
        name = f"history {label!r}" if label else "the history"
        raise ValueError(
            f"{name} has no values for {key!r}; pass it as history= to a fit "
            f"(e.g. lanlib.fit_sample_masks) before plotting"
        )
    return list(values)


def plot_history(
    history,
    *,
    keys: Sequence[str] = ("objective", "distortion", "mask_mean"),
    ax=None,
    log_distortion: bool = True,
) -> Figure:
    """Per-step curves of a fit: one panel per recorded quantity.

    Args:
        history (lanlib.History or mapping label -> History): the record of one fit, or of
            several fits drawn on the same panels with a legend.
        keys (sequence of str): the series to draw. Default the three terms the mask fits
            record: ``"objective"``, ``"distortion"`` and ``"mask_mean"``.
        ax (Axes or sequence of Axes, optional): one Axes per key. Default: a new figure.
        log_distortion (bool): logarithmic y axis for ``"distortion"``. Default True.

    Returns:
        matplotlib.figure.Figure: the figure drawn into.
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    grid = axes_grid(ax, 1, len(keys), size=(3.4, 2.6))[0]
    for k, key in enumerate(keys):
        a = grid[k]
        for r, (label, h) in enumerate(runs.items()):
            values = _series(h, key, label)
            a.plot(np.arange(1, len(values) + 1), values, color=OKABE_ITO[r % len(OKABE_ITO)],
                   label=label or None, linewidth=1.5)
        if key == "distortion" and log_distortion:
            a.set_yscale("log")
        a.set_xlabel("step")
        a.set_title(_HISTORY_LABELS.get(key, key))
        a.grid(alpha=0.3)
        if len(runs) > 1:
            a.legend(fontsize="small")
    return root_figure(grid[0])


def plot_beta_sweep(
    betas: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str = "value",
) -> Figure:
    """Scores of masks fitted at several values of beta, against beta on a log axis.

    Args:
        betas (sequence of float (B,)): the values of beta, all > 0.
        curves (mapping label -> sequence of float (B,)): e.g. ``{"mean mask": [...],
            "AUROC": [...], "output agreement": [...]}``.
        ax (Axes, optional): where to draw. Default: a new figure.
        title (str, optional): the panel's title.
        ylabel (str): the y axis label. Default "value".

    Returns:
        matplotlib.figure.Figure: the figure drawn into.
    """
    betas = as_numpy(betas).reshape(-1)
    if (betas <= 0).any():
        raise ValueError("every beta must be > 0 for a logarithmic axis")
    if ax is None:
        ax = new_figure((5.2, 3.4)).subplots()
    for r, (label, values) in enumerate(curves.items()):
        values = as_numpy(values).reshape(-1)
        if len(values) != len(betas):
            raise ValueError(f"curve {label!r} has {len(values)} values for {len(betas)} betas")
        ax.plot(betas, values, marker=MARKERS[r % len(MARKERS)],
                color=OKABE_ITO[r % len(OKABE_ITO)], label=label, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("β (reward for larger masks)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    if title is not None:
        ax.set_title(title)
    return root_figure(ax)


def plot_perturbation_curves(curves: Mapping[str, Mapping[str, dict]], *, ax=None) -> Figure:
    """Deletion and insertion curves of several importance maps, mean over inputs, with areas.

    Args:
        curves (mapping str -> mapping mode -> dict): for each method, the results of
            :func:`lanlib.metrics.perturbation_curve` for ``"deletion"`` and/or
            ``"insertion"``.
        ax (sequence of Axes, optional): one per mode present. Default: a new figure.

    Returns:
        matplotlib.figure.Figure: the figure drawn into.

    Example:
        >>> curve = {"fractions": torch.linspace(0, 1, 3), "probs": torch.rand(4, 3),
        ...          "auc": torch.rand(4)}
        >>> len(plot_perturbation_curves({"LAN": {"deletion": curve}}).axes)
        1
    """
    modes = [m for m in ("deletion", "insertion") if any(m in c for c in curves.values())]
    grid = axes_grid(ax, 1, len(modes), size=(4.2, 3.2))[0]
    styles = ("-", "--", ":", "-.")
    for a, mode in zip(grid, modes, strict=True):
        for r, (name, result) in enumerate(curves.items()):
            if mode not in result:
                continue
            res = result[mode]
            auc = float(res["auc"].mean())
            a.plot(as_numpy(res["fractions"]), as_numpy(res["probs"].mean(dim=0)),
                   color=OKABE_ITO[r % len(OKABE_ITO)], linestyle=styles[r % len(styles)],
                   linewidth=1.8, label=f"{name} (area {auc:.3f})")
        word = "replaced by noise" if mode == "deletion" else "restored from noise"
        a.set_xlabel(f"fraction of the most important pixels {word}")
        a.set_ylabel("probability of the original class")
        a.set_title(f"{mode} ({'lower' if mode == 'deletion' else 'higher'} area is better)")
        a.set_ylim(0, 1)
        a.grid(alpha=0.3)
        a.legend(fontsize="small")
    return root_figure(grid[0])


def mask_explorer(images: torch.Tensor, masks: torch.Tensor, betas: Sequence[float],
                  names: Sequence[str], *, notes=None, cmap: str = IMPORTANCE_CMAP):
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
        notes (Tensor (B, N) of float, optional): a number shown over each panel, the
            output agreement of that mask (:func:`lanlib.metrics.output_agreement`).
        cmap (str): colour map of the importance. Default "viridis".

    Returns:
        ipywidgets.VBox: the picker (a row of an image and a beta chooser, then the panel).

    Example:
        >>> widget = mask_explorer(torch.rand(2, 3, 8, 8), torch.rand(1, 2, 1, 4, 4), [1.0],
        ...                        ["a", "b"])
        >>> bytes(widget.children[1].value)[:4]  # the panel shown, a PNG
        b'\x89PNG'
    """
    import io

    import ipywidgets as widgets

    pngs = {}
    for b, beta in enumerate(betas):
        for i in range(len(images)):
            full = upsample_mask(masks[b, i : i + 1].float(), images[i : i + 1])[0]
            fig = new_figure((4.4, 2.3))
            ax = fig.subplots(1, 2)
            ax[0].imshow(images[i].cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            shown = ax[1].imshow(_plane(full), cmap=cmap, vmin=0, vmax=1)
            fig.colorbar(shown, ax=ax[1], label=IMPORTANCE_LABEL)
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
