"""lanlib.plot: panels that show the values given, drawing into given axes, labelled colour
bars, no show."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import lanlib
from lanlib import plot

plt.switch_backend("agg")  # no display needed, and plt.show() could not block anyway


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    """Fail any test whose code calls plt.show(); close whatever pyplot holds afterwards."""

    def refuse(*args, **kwargs):
        raise AssertionError("plot functions must never call plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    monkeypatch.setattr(Figure, "show", refuse)
    yield
    plt.close("all")


def _images(n=3, c=1, size=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g), torch.rand(n, 1, size, size, generator=g)


def _image_axes(fig):
    """Axes of a figure that are panels, not colour bars."""
    return [a for a in fig.axes if a.get_label() != "<colorbar>"]


def _shown(axes):
    """The array the first image of ``axes`` displays."""
    return np.asarray(axes.get_images()[0].get_array())


def _colour_bar_labels(fig):
    return [a.get_ylabel() or a.get_xlabel() for a in fig.axes if a.get_label() == "<colorbar>"]


@pytest.mark.parametrize("with_truth", [False, True])
@pytest.mark.parametrize("sets", [1, 2])
def test_show_masks_panels(with_truth, sets):
    x, m = _images()
    truth = torch.zeros(1, 6, 6, dtype=torch.bool)
    truth[0, 2:4, 2:4] = True
    masks = {f"set {k}": m for k in range(sets)}
    masks["set 0"] = 1 - m  # the sets differ
    fig = plot.show_masks(x, masks, truth=truth if with_truth else None)
    assert isinstance(fig, Figure)
    panels = _image_axes(fig)
    cols = 1 + with_truth + sets
    assert len(panels) == len(x) * cols
    for i in range(len(x)):  # row by row: the input, the truth, each set's importance
        row = panels[i * cols:(i + 1) * cols]
        np.testing.assert_allclose(_shown(row[0]), x[i, 0].numpy())
        if with_truth:
            np.testing.assert_array_equal(_shown(row[1]), truth[0].numpy())
        for panel, mask in zip(row[1 + with_truth:], masks.values(), strict=True):
            np.testing.assert_allclose(_shown(panel), 1 - mask[i, 0].numpy(), rtol=1e-6)
    assert _colour_bar_labels(fig) == [plot.IMPORTANCE_LABEL]
    assert plot.IMPORTANCE_LABEL == "importance = 1 − mask"


def test_show_masks_plots_importance_not_mask():
    x = torch.zeros(1, 1, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 0.0  # the one element the model needs
    fig = plot.show_masks(x, mask)
    shown = _image_axes(fig)[1].get_images()[0].get_array()
    assert shown[0, 0] == 1.0 and shown[1, 1] == 0.0


def test_show_masks_accepts_ax_and_colour_inputs():
    x, m = _images(n=2, c=3)
    fig, axes = plt.subplots(2, 3)
    out = plot.show_masks(x, [m.expand(2, 3, 6, 6) * torch.tensor([0.0, 0.5, 1.0])[:, None, None]],
                          truth=torch.ones(3, 6, 6, dtype=bool), ax=axes)
    assert out is fig
    # a colour image scaled to [0, 1] as a whole, channels last; a mask's channels averaged
    lo, hi = x[1].min(), x[1].max()
    np.testing.assert_allclose(_shown(axes[1, 0]), ((x[1] - lo) / (hi - lo)).permute(1, 2, 0),
                               rtol=1e-6)
    np.testing.assert_allclose(_shown(axes[1, 2]), 1 - 0.5 * m[1, 0].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="needs 6 axes"):
        plot.show_masks(x, m, truth=torch.ones(6, 6, dtype=bool), ax=axes[:, :2])


def test_show_masks_rejects_mismatched_rows():
    x, m = _images(n=3)
    with pytest.raises(ValueError, match="rows"):
        plot.show_masks(x, m[:2])


def test_figures_stay_out_of_pyplot():
    x, m = _images()
    before = set(plt.get_fignums())
    plot.show_masks(x, m)
    plot.show_images(torch.stack([x, x]))
    assert set(plt.get_fignums()) == before


def test_show_images_grid():
    x, _ = _images(n=3)
    fig = plot.show_images(torch.stack([x, 1 - x]), titles=[str(i) for i in range(6)],
                           cbar_label="pixel value")
    panels = _image_axes(fig)
    assert len(panels) == 6
    for k, panel in enumerate(panels):  # row by row
        expected = x[k % 3, 0] if k < 3 else 1 - x[k % 3, 0]
        np.testing.assert_allclose(_shown(panel), expected.numpy(), rtol=1e-6)
        assert panel.get_title() == str(k)
        assert panel.get_images()[0].get_clim() == (0.0, 1.0)
    assert _colour_bar_labels(fig) == ["pixel value"]
    fig, axes = plt.subplots(1, 3)
    assert plot.show_images(x, ax=axes) is fig


def _history(steps=5):
    h = lanlib.History()
    h.extend([{"objective": torch.tensor(1.0 / (i + 1)), "distortion": torch.tensor(0.5 / (i + 1)),
               "mask_mean": torch.tensor(i / steps)} for i in range(steps)])
    return h


def test_plot_history_panels_and_ax():
    fig = plot.plot_history(_history())
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for axes, key in zip(fig.axes, ("objective", "distortion", "mask_mean"), strict=True):
        (line,) = axes.get_lines()
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4, 5])  # steps from 1
        np.testing.assert_allclose(line.get_ydata(), _history()[key])
    fig = plot.plot_history({"a": _history(), "b": _history(8)}, keys=("distortion",))
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 2
    a, b = fig.axes[0].get_lines()
    assert (a.get_label(), b.get_label()) == ("a", "b")
    np.testing.assert_allclose(b.get_ydata(), [0.5 / (i + 1) for i in range(8)])
    assert fig.axes[0].get_yscale() == "log"
    fig, ax = plt.subplots()
    assert plot.plot_history(_history(), keys=("mask_mean",), ax=ax) is fig
    with pytest.raises(ValueError, match="no values"):
        plot.plot_history(lanlib.History())


def test_plot_beta_sweep():
    betas = [0.1, 1.0, 10.0]
    fig = plot.plot_beta_sweep(betas, {"mean mask": [0.5, 0.7, 0.9], "AUROC": [1.0, 1.0, 0.8]})
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 2
    mean_mask, auroc = fig.axes[0].get_lines()
    np.testing.assert_allclose(mean_mask.get_xdata(), betas)
    np.testing.assert_allclose(mean_mask.get_ydata(), [0.5, 0.7, 0.9])
    np.testing.assert_allclose(auroc.get_ydata(), [1.0, 1.0, 0.8])
    assert auroc.get_label() == "AUROC"
    assert fig.axes[0].get_xscale() == "log"
    fig, ax = plt.subplots()
    assert plot.plot_beta_sweep(betas, {"x": [1, 2, 3]}, ax=ax) is fig
    with pytest.raises(ValueError, match="values"):
        plot.plot_beta_sweep(betas, {"x": [1, 2]})


def test_axes_in_a_subfigure_return_the_whole_figure():
    x, m = _images(n=1)
    fig = Figure(layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    assert plot.show_masks(x, m, ax=top.subplots(1, 2)) is fig
    assert plot.show_images(x, ax=bottom.subplots(1, 1)) is fig


def test_outline_draws_the_border_of_the_truth():
    fig = Figure()
    ax = fig.subplots()
    truth = torch.zeros(4, 4, dtype=torch.bool)
    truth[1:3, 1:3] = True
    plot.outline(ax, truth)
    (lines,) = ax.collections
    segments = lines.get_segments()
    assert len(segments) == 8  # a 2x2 block has 8 unit edges on its border
    # on the pixels' edges around rows and columns 1-2: x and y between 0.5 and 2.5
    corners = np.concatenate(segments)
    assert corners.min() == 0.5 and corners.max() == 2.5
    assert all(np.abs(np.diff(s, axis=0)).sum() == 1.0 for s in segments)  # unit edges


def test_plot_perturbation_curves_and_mask_explorer():
    curve = {"fractions": torch.linspace(0, 1, 3), "probs": torch.rand(4, 3),
             "auc": torch.tensor([0.25, 0.5, 0.75, 1.0])}
    fig = plot.plot_perturbation_curves({"m": {"deletion": curve, "insertion": curve},
                                         "only deletion": {"deletion": curve}})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1
    line = fig.axes[1].lines[0]  # insertion: the mean curve over the inputs, and its area
    np.testing.assert_allclose(line.get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(line.get_ydata(), curve["probs"].mean(0).numpy(), rtol=1e-6)
    assert line.get_label() == "m (area 0.625)"
    widget = plot.mask_explorer(torch.rand(2, 3, 8, 8), torch.rand(2, 2, 1, 4, 4), [1.0, 2.0],
                                ["x", "y"], notes=torch.rand(2, 2))
    picture = widget.children[1]
    first = bytes(picture.value)
    assert first.startswith(b"\x89PNG")
    widget.children[0].children[1].value = 1  # the second beta
    assert bytes(picture.value) != first
