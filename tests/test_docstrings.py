"""The method's public names each say which chapter explains them.

A reader of the API reference (book/api.md) should find the chapter that shows a
function at work; a reader of a chapter finds the reference through its links.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import nbformat
import pytest

METHOD_MODULES = ("core", "fit", "noise", "gates", "losses", "nets", "metrics", "attribution")


def _public_callables():
    for name in METHOD_MODULES:
        module = importlib.import_module(f"lanlib.{name}")
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"lanlib.{name}.{attr}", obj


@pytest.mark.parametrize(("name", "obj"), list(_public_callables()),
                         ids=[n for n, _ in _public_callables()])
def test_names_the_chapter_that_explains_it(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert "notebooks/0" in doc, f"{name}'s docstring names no chapter (``notebooks/NN_name``)"


@pytest.mark.parametrize("notebook", sorted(
    (Path(__file__).parents[1] / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_chapters_link_to_the_reference(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    assert any(c.cell_type == "markdown" and "../book/api" in c.source for c in cells), (
        f"{notebook.name} has no link to the API reference ({{doc}}`... <../book/api>`)")
