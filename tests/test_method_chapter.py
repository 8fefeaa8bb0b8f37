"""Tests of chapter 01's known-answer task (lanlib.chapters.method)."""

import pytest
import torch

from lanlib.chapters.method import KnownPixelsClassifier, known_pixels_task, plot_framework


def test_the_classifier_reads_the_true_pixels_and_nothing_else():
    task = known_pixels_task(50, shape=(1, 6, 6), relevant=4, classes=3, seed=1)
    assert task.inputs.shape == (50, 1, 6, 6) and task.truth.shape == (1, 6, 6)
    assert int(task.truth.sum()) == 4 and task.labels.shape == (50,)
    assert int(task.labels.max()) < 3
    changed = torch.where(task.truth, task.inputs, torch.rand(50, 1, 6, 6))
    torch.testing.assert_close(task.model(changed), task.model(task.inputs))
    moved = torch.where(task.truth, torch.rand(50, 1, 6, 6), task.inputs)
    assert not torch.allclose(task.model(moved), task.model(task.inputs))


def test_the_task_depends_on_its_seed_only():
    a, b = known_pixels_task(8, seed=3), known_pixels_task(8, seed=3)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.truth, b.truth)
    assert not torch.equal(a.truth, known_pixels_task(8, seed=4).truth)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="relevant must be between 1 and 143"):
        known_pixels_task(4, relevant=144)
    with pytest.raises(ValueError, match="classes must be at least 2"):
        known_pixels_task(4, classes=1)
    with pytest.raises(ValueError, match="one row per relevant pixel"):
        KnownPixelsClassifier(torch.ones(1, 2, 2, dtype=torch.bool), torch.ones(3, 2))


def test_the_framework_figure_names_every_part_of_the_method():
    from matplotlib.figure import Figure

    fig = plot_framework()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    texts = " | ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("input $x$", "LAN $A$", "mask $A(x)", r"noise $\eta \sim H$",
                 r"$\tilde{x} = A(x) \odot \eta + (1 - A(x)) \odot x$", "$F$ (fixed)", "$F(x)$",
                 r"$F(\tilde{x})$", r"$L_F(F(x), F(\tilde{x}))$", r"\beta \cdot \mathrm{mean}"):
        assert part in texts, f"{part!r} is not in the figure's labels: {texts}"
    fig.canvas.draw()  # the labels' mathtext parses


def test_the_framework_figure_draws_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert plot_framework(ax=ax) is fig and ax.texts
