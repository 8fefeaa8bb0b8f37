"""The path of a student without the offline mirror and without internet.

Chapters that need a dataset that cannot be had must stop at their first data cell with
the loaders' "how to get the data" error, not somewhere later with a confusing one. Each
chapter runs under papermill with ``LANLIB_DATA_MIRROR`` unset and an empty data root, so
that neither the mirror nor anything decoded or trained before is found. (The machines
that run the tests have no internet; where there is internet the loaders would download
the data, and the chapter would go on: the test then only checks that it got past setup.)
Chapter 05 runs to its end on the photos that ship in Python packages
(``tests/test_imagenet_offline.py``); chapters 01 and 06 need no data at all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from tests._requirements import require_module, unavailable

ROOT = Path(__file__).resolve().parents[1]
NEEDS_DATA = ["02_mnist_grid", "03_cifar10", "04_newsgroups"]


@pytest.fixture
def offline_student(tmp_path, monkeypatch):
    monkeypatch.delenv("LANLIB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def _first_data_cell(nb) -> str:
    """The source of the first code cell that calls a loader (``load_...(``)."""
    for cell in nb.cells:
        calls = [line for line in cell.source.splitlines() if re.search(r"\bload_\w+\(", line)
                 and not line.lstrip().startswith(("from", "import"))]
        if cell.cell_type == "code" and calls:
            return cell.source
    raise AssertionError("no cell loads data")


@pytest.mark.parametrize("chapter", NEEDS_DATA)
def test_chapter_stops_at_its_first_data_cell_with_the_how_to(chapter, offline_student):
    papermill = require_module("papermill", "pip install -e '.[book]'")
    source = ROOT / "notebooks" / f"{chapter}.ipynb"
    output = offline_student / f"{chapter}.ipynb"
    try:
        papermill.execute_notebook(str(source), str(output), cwd=str(ROOT / "notebooks"),
                                   kernel_name="python3", progress_bar=False,
                                   parameters={"profile": "quick", "device": "cpu"})
    except papermill.PapermillExecutionError as exc:
        assert exc.ename == "DataNotFoundError", f"{chapter} failed with {exc.ename}: {exc.evalue}"
        assert "LANLIB_DATA_MIRROR" in exc.evalue and "To provide it" in exc.evalue
        executed = nbformat.read(output, as_version=4)
        first = _first_data_cell(nbformat.read(source, as_version=4))
        failed = [cell.source for cell in executed.cells if cell.cell_type == "code" and any(
            out.get("output_type") == "error" for out in cell.get("outputs", []))]
        assert failed == [first], f"{chapter} failed in {failed}, not at its first data cell"
    else:
        assert os.environ.get("LANLIB_DATA_MIRROR") is None
        unavailable(f"{chapter} found its data without the mirror: this machine has internet, "
                    "and the test needs one without", what="offline")
