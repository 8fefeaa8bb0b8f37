"""Scoring importance maps against the pixels of known objects.

When we drew the images ourselves we know where every object is. Two numbers say
whether an explanation points at an object:

- the **share** of the importance that falls on the object's pixels
  (:func:`object_shares`): per image, ``sum(importance on the object) / sum(importance)``,
  averaged over the images. A map that knows nothing (uniform importance) gets the
  object's share of the area (:func:`area_shares`);
- the **AUROC** of the importance for the object's pixels (:func:`object_auroc`): per
  image, the probability that a random pixel of the object is more important than a
  random pixel elsewhere (:func:`lanlib.metrics.auroc`), averaged over the images that
  hold the object. 0.5 is chance, 1 a perfect ranking; it ignores the scale of the map.

Importance maps are non-negative, ``(N, C, H, W)`` or ``(N, H, W)`` (channels are
summed): ``1 - mask`` for a LAN (upsampled to the image size with
:func:`lanlib.upsample_mask` if the mask was coarser), or the magnitude of another
method's attributions (:mod:`lanlib.attribution`). Object masks are boolean,
``(N, 1, H, W)`` or ``(N, H, W)``.

Example:
    >>> import torch
    >>> importance = torch.zeros(1, 1, 4, 4); importance[0, 0, 0, :2] = 1.0
    >>> cloud = torch.zeros(1, 1, 4, 4, dtype=torch.bool); cloud[0, 0, 0, :] = True
    >>> score(importance, {"cloud": cloud})
    {'cloud': 1.0, 'rest': 0.0, 'auroc_cloud': 0.75}

The tank chapter (``notebooks/06_tank_story``) uses it to score a LAN and Captum's
methods on a classifier with a known shortcut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .metrics import auroc

if TYPE_CHECKING:  # matplotlib is imported lazily, when a figure is drawn
    from matplotlib.figure import Figure

__all__ = [
    "area_shares",
    "html_table",
    "markdown_table",
    "object_auroc",
    "object_shares",
    "plot_scores",
    "score",
    "show_objects",
]


def _planes(importance: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` float64 importance, channels summed; checked non-negative."""
    importance = torch.as_tensor(importance).detach()
    if importance.ndim == 4:
        importance = importance.sum(dim=1)
    if importance.ndim != 3:
        raise ValueError(
            f"importance must be (N, C, H, W) or (N, H, W), got shape {tuple(importance.shape)}"
        )
    importance = importance.double().cpu()
    if torch.isnan(importance).any():
        raise ValueError("importance contains NaN")
    if (importance < 0).any():
        raise ValueError(
            "importance must be non-negative; pass magnitudes (attributions.abs()) or "
            "1 - mask"
        )
    return importance


def _object_planes(mask: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    mask = torch.as_tensor(mask).detach().cpu()
    if mask.ndim == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"object mask {name!r} must have one channel, got {tuple(mask.shape)}")
        mask = mask[:, 0]
    if mask.shape != like.shape:
        raise ValueError(
            f"object mask {name!r} has shape {tuple(mask.shape)} but the importance maps "
            f"{tuple(like.shape)} (after summing channels); they must match"
        )
    return mask.bool()


def object_shares(importance: torch.Tensor, objects: Mapping[str, torch.Tensor], *,
                  per_image: bool = False) -> dict[str, float] | dict[str, torch.Tensor]:
    """Share of each image's importance on each object's pixels, and on the rest.

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance.
        objects (mapping name -> BoolTensor (N, 1, H, W) or (N, H, W)): object pixels.
            Objects may overlap (a pixel then counts for each); ``"rest"`` is the pixels
            of no object.
        per_image (bool): return ``(N,)`` tensors instead of their means. Default False.

    Returns:
        dict: one share per object and ``"rest"``. An image with no importance at all
        gives each region its share of the area.
    """
    planes = _planes(importance)
    masks = {k: _object_planes(v, planes, k) for k, v in objects.items()}
    if "rest" in masks:
        raise ValueError("'rest' is reserved for the pixels of no object; rename that object")
    anywhere = torch.zeros_like(planes, dtype=torch.bool)
    for m in masks.values():
        anywhere |= m
    masks["rest"] = ~anywhere
    total = planes.flatten(1).sum(dim=1)
    empty = total <= 0
    area = planes[0].numel()
    shares = {}
    for k, m in masks.items():
        share = (planes * m).flatten(1).sum(dim=1) / total.clamp_min(1e-300)
        share = torch.where(empty, m.flatten(1).sum(dim=1).double() / area, share)
        shares[k] = share if per_image else float(share.mean())
    return shares


def area_shares(objects: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """The shares of a uniform importance map: each object's (and the rest's) mean area."""
    first = next(iter(objects.values()))
    like = torch.ones(first.shape[0], *first.shape[-2:])
    return object_shares(like, objects)


def object_auroc(importance: torch.Tensor, mask: torch.Tensor, *,
                 per_image: bool = False) -> float | torch.Tensor:
    """AUROC of the importance for an object's pixels against all other pixels.

    Computed per image (the ranking inside each map is what matters, not how maps of
    different images compare) and averaged over the images where the object is visible
    and does not fill the whole image.

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance.
        mask (BoolTensor (N, 1, H, W) or (N, H, W)): the object's pixels.
        per_image (bool): return ``(N,)`` values, NaN where the object is absent.

    Returns:
        float (or Tensor (N,)): the mean AUROC.

    Raises:
        ValueError: no image holds the object.
    """
    planes = _planes(importance)
    mask = _object_planes(mask, planes, "mask")
    values = torch.full((len(planes),), float("nan"), dtype=torch.float64)
    for i in range(len(planes)):
        positives = int(mask[i].sum())
        if 0 < positives < mask[i].numel():
            values[i] = auroc(planes[i], mask[i])
    if per_image:
        return values
    valid = ~torch.isnan(values)
    if not valid.any():
        raise ValueError("no image holds the object (or it fills every image); cannot score")
    return float(values[valid].mean())


def score(importance: torch.Tensor, objects: Mapping[str, torch.Tensor], *,
          auroc_for: Sequence[str] | None = None) -> dict[str, float]:
    """Shares of importance per object (and ``"rest"``), and AUROCs as ``"auroc_<name>"``.

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance.
        objects (mapping name -> BoolTensor): object pixels, as in :func:`object_shares`.
        auroc_for (sequence of str, optional): objects to compute the AUROC for; default all.

    Returns:
        dict str -> float.
    """
    names = list(objects) if auroc_for is None else list(auroc_for)
    missing = set(names) - set(objects)
    if missing:
        raise ValueError(f"auroc_for names {sorted(missing)}, which are not among the objects")
    out = object_shares(importance, objects)
    for name in names:
        out[f"auroc_{name}"] = object_auroc(importance, objects[name])
    return out


# ----------------------------------------------------------------------------- reporting


def markdown_table(rows: Mapping[str, Mapping[str, float]],
                   columns: Mapping[str, str] | None = None, *, digits: int = 2,
                   first: str = "method") -> str:
    """A Markdown table, one row per entry of ``rows`` (e.g. per method).

    Args:
        rows (mapping label -> mapping key -> number): the values.
        columns (mapping key -> header, optional): which keys to show, in order, and their
            headers. Default every key of the first row, as its own header.
        digits (int): decimals of floats. Default 2.
        first (str): header of the label column. Default "method".

    Returns:
        str: the table (display it with ``IPython.display.Markdown``).

    Example:
        >>> print(markdown_table({"random": {"cloud": 0.1}}, {"cloud": "cloud share"}))
        | method | cloud share |
        |---|---:|
        | random | 0.10 |
    """
    rows = dict(rows)
    if not rows:
        raise ValueError("rows is empty")
    if columns is None:
        columns = {k: k for k in next(iter(rows.values()))}

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join([first, *columns.values()]) + " |",
             "|---|" + "---:|" * len(columns)]
    for label, values in rows.items():
        lines.append("| " + " | ".join([label, *(cell(values.get(k, "")) for k in columns)])
                     + " |")
    return "\n".join(lines)


def html_table(rows: Mapping[str, Mapping[str, float]],
               columns: Mapping[str, str] | None = None, *, digits: int = 2,
               first: str = "method") -> str:
    """The table of :func:`markdown_table` as HTML (display it with ``IPython.display.HTML``).

    Static pages render HTML outputs as they are, whatever their Markdown settings.

    Example:
        >>> text = html_table({"random": {"cloud": 0.1}}, {"cloud": "cloud share"})
        >>> print(text.splitlines()[3])
        <tr><td style="text-align:left">random</td><td style="text-align:right">0.10</td></tr>
    """
    import html

    rows = dict(rows)
    if not rows:
        raise ValueError("rows is empty")
    if columns is None:
        columns = {k: k for k in next(iter(rows.values()))}
    left, right = 'style="text-align:left"', 'style="text-align:right"'

    def cell(value) -> str:
        return html.escape(f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    head = "".join([f"<th {left}>{html.escape(first)}</th>",
                    *(f"<th {right}>{html.escape(h)}</th>" for h in columns.values())])
    body = ["<tr>" + "".join([f"<td {left}>{html.escape(label)}</td>",
                              *(f"<td {right}>{cell(values.get(k, ''))}</td>" for k in columns)])
            + "</tr>" for label, values in rows.items()]
    return "\n".join(["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body,
                      "</tbody>", "</table>"])


def plot_scores(
    scores: Mapping[str, Mapping[str, float]],
    keys: Mapping[str, str],
    *,
    times: Mapping[str, float] | None = None,
    reference: Mapping[str, float] | None = None,
    ax=None,
    title: str | None = None,
) -> Figure:
    """Grouped bars: for each method, one bar per score; optionally a panel of times.

    Args:
        scores (mapping method -> mapping key -> float): e.g. from :func:`score`.
        keys (mapping key -> label): the scores to draw, and their legend labels.
        times (mapping method -> seconds per image, optional): drawn in a second panel
            on a logarithmic axis.
        reference (mapping key -> float, optional): a dashed line per score (e.g. the area
            shares, what a map that knows nothing gets), in the bar's colour.
        ax (Axes or two Axes, optional): where to draw (two when ``times`` is given).
        title (str, optional): title of the score panel.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from .plot import OKABE_ITO

    methods = list(scores)
    panels = 2 if times is not None else 1
    if ax is None:
        fig = Figure(figsize=(6.0 + 3.6 * (panels - 1), 3.6), layout="constrained")
        axes = list(fig.subplots(1, panels, squeeze=False,
                                 width_ratios=[1.7, 1][:panels])[0])
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != panels:
            raise ValueError(f"this figure needs {panels} axes, got {len(axes)}")
        fig = axes[0].figure
    a = axes[0]
    width = 0.8 / len(keys)
    positions = np.arange(len(methods))
    hatches = ("", "//", "..", "xx", "\\\\")
    for k, (key, label) in enumerate(keys.items()):
        values = [scores[m][key] for m in methods]
        colour = OKABE_ITO[k % len(OKABE_ITO)]
        a.bar(positions + (k - (len(keys) - 1) / 2) * width, values, width, label=label,
              color=colour, hatch=hatches[k % len(hatches)], edgecolor="white")
        if reference is not None and key in reference:
            a.axhline(reference[key], color=colour, linestyle="--", linewidth=1)
    a.set_xticks(positions, methods, rotation=30, ha="right")
    a.set_ylim(0, 1.3)  # room for the legend above the bars
    a.set_yticks(np.linspace(0, 1, 6))
    a.grid(axis="y", alpha=0.3)
    a.legend(fontsize="small", loc="upper center", ncols=min(len(keys), 4), frameon=False)
    if title:
        a.set_title(title)
    if times is not None:
        b = axes[1]
        b.barh(positions, [max(times[m], 1e-9) for m in methods], color=OKABE_ITO[5])
        b.set_yticks(positions, methods)
        b.invert_yaxis()
        b.set_xscale("log")
        b.set_xlabel("seconds per image (log scale)")
        b.grid(axis="x", alpha=0.3)
        b.set_title("time per image")
    return fig


def show_objects(
    images: torch.Tensor,
    objects: Mapping[str, torch.Tensor],
    maps: Mapping[str, torch.Tensor],
    *,
    colours: Mapping[str, str] | None = None,
    cmap: str = "viridis",
    row_labels: Sequence[str] | None = None,
    ax=None,
) -> Figure:
    """Images with their objects outlined, beside importance maps with the same outlines.

    Each importance map is divided by its own maximum, so every panel spans [0, 1]
    (the maps of different methods have different units); the colour bar says so.

    Args:
        images (Tensor (N, 3, H, W) or (N, 1, H, W)): the images, in [0, 1].
        objects (mapping name -> BoolTensor (N, 1, H, W)): object pixels, outlined in
            the colours of ``colours`` (default: Okabe-Ito colours in order).
        maps (mapping title -> Tensor (N, C, H, W)): non-negative importance per method.
        cmap (str): colour map of the importance. Default "viridis".
        row_labels (sequence of str, optional): one label per image.
        ax (array of Axes, optional): ``N x (1 + len(maps))`` axes. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from .plot import OKABE_ITO, outline

    images = torch.as_tensor(images).detach().float().cpu()
    n, cols = len(images), 1 + len(maps)
    palette = dict(colours or {})
    for i, name in enumerate(objects):
        palette.setdefault(name, OKABE_ITO[(i + 1) % len(OKABE_ITO)])
    if ax is None:
        fig = Figure(figsize=(1.75 * cols + 1.0, 1.75 * n + 0.5), layout="constrained")
        grid = fig.subplots(n, cols, squeeze=False)
    else:
        grid = np.asarray(ax, dtype=object).reshape(n, cols)
        fig = grid[0, 0].figure
    shown = None
    for i in range(n):
        img = images[i].permute(1, 2, 0).clamp(0, 1).numpy()
        grid[i, 0].imshow(img if img.shape[2] == 3 else img[..., 0], cmap="gray")
        for name, m in objects.items():
            outline(grid[i, 0], m[i, 0], color=palette[name], linewidth=1.0)
        for j, values in enumerate(maps.values(), start=1):
            plane = _planes(values[i:i + 1])[0]
            plane = plane / plane.max().clamp_min(1e-12)
            shown = grid[i, j].imshow(plane.numpy(), cmap=cmap, vmin=0, vmax=1)
            for name, m in objects.items():
                outline(grid[i, j], m[i, 0], color=palette[name], linewidth=0.8)
        for a in grid[i]:
            a.set_xticks([])
            a.set_yticks([])
        if row_labels is not None:
            grid[i, 0].set_ylabel(row_labels[i], fontsize="small")
    grid[0, 0].set_title("image", fontsize="small")
    for j, title in enumerate(maps, start=1):
        grid[0, j].set_title(title, fontsize="small")
    if shown is not None:
        fig.colorbar(shown, ax=list(grid[:, 1:].flat), shrink=0.8,
                     label="importance / its maximum per image")
    handles = [Line2D([], [], color=palette[k], label=f"{k} outline") for k in objects]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
               fontsize="small", frameon=False)
    return fig
