"""Strip notebooks down to what is committed: sources and the reference outputs nbval checks.

For every code cell, outputs and execution counts are cleared, except in cells whose
source contains the comment ``# NBVAL_CHECK_OUTPUT``: those keep their outputs, the
references that ``pytest --nbval-lax`` compares against, and an execution count (nbval
skips cells without one), renumbered 1, 2, 3... so that re-executing the notebook does
not change the committed file. Volatile metadata is removed:
papermill's and nbclient's timings, the widget state, and any ``injected-parameters``
cell that papermill adds when run with ``-p``.

Usage::

    python tools/strip_outputs.py notebooks/*.ipynb          # strip in place
    python tools/strip_outputs.py --check notebooks/*.ipynb  # exit 1 if any is not stripped

The usual cycle after changing a chapter: execute it (papermill, default parameters),
strip it with this tool, then run ``pytest --nbval-lax`` on it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

__all__ = ["CHECK_MARKER", "is_stripped", "problems", "strip", "main"]

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
INJECTED_TAG = "injected-parameters"
VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets", "execution")
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime", "widgets")


def keeps_output(cell) -> bool:
    """Whether ``cell`` is a code cell whose outputs are references for nbval."""
    return cell.get("cell_type") == "code" and CHECK_MARKER in "".join(cell.get("source", ""))


def _injected(cell) -> bool:
    return INJECTED_TAG in cell.get("metadata", {}).get("tags", [])


def _expected_counts(cells) -> list[int | None]:
    """The execution count each cell should carry once stripped.

    nbval compares only cells that were run (non-null count), so a cell that keeps its
    reference outputs needs one. They are numbered 1, 2, 3... in order, which keeps the
    committed file the same from one execution to the next; every other cell gets None.
    """
    expected, n = [], 0
    for cell in cells:
        if cell.get("cell_type") == "code" and keeps_output(cell) and cell.get("outputs"):
            n += 1
            expected.append(n)
        else:
            expected.append(None)
    return expected


def strip(nb: dict) -> dict:
    """Return a stripped copy of the notebook ``nb`` (a dict or ``nbformat.NotebookNode``)."""
    nb = copy.deepcopy(nb)
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.get("metadata", {}).pop(key, None)
    nb["cells"] = [cell for cell in nb.get("cells", []) if not _injected(cell)]
    for cell in nb["cells"]:
        metadata = cell.get("metadata", {})
        for key in VOLATILE_CELL_KEYS:
            metadata.pop(key, None)
        if cell.get("cell_type") == "code" and not keeps_output(cell):
            cell["outputs"] = []
    for cell, count in zip(nb["cells"], _expected_counts(nb["cells"]), strict=True):
        if cell.get("cell_type") != "code":
            continue
        cell["execution_count"] = count
        for output in cell.get("outputs", []):
            if "execution_count" in output:
                output["execution_count"] = count
    return nb


def problems(nb: dict) -> list[str]:
    """What keeps ``nb`` from being stripped, one line per kind of problem (empty if none)."""
    found = []
    cells = nb.get("cells", [])
    if any(_injected(c) for c in cells):
        found.append("has a papermill injected-parameters cell")
    leftover = [key for key in VOLATILE_NOTEBOOK_KEYS if key in nb.get("metadata", {})]
    if leftover:
        found.append(f"notebook metadata holds {', '.join(leftover)}")
    volatile, counted, outputs = [], [], []
    for i, (cell, expected) in enumerate(zip(cells, _expected_counts(cells), strict=True)):
        if any(key in cell.get("metadata", {}) for key in VOLATILE_CELL_KEYS):
            volatile.append(i)
        if cell.get("cell_type") != "code":
            continue
        # A checked cell with outputs needs a count (any: strip() renumbers them 1, 2, 3...,
        # but counts left by a plain execution are fine); every other cell needs none.
        count = cell.get("execution_count")
        if (expected is None) != (count is None):
            counted.append(i)
        if cell.get("outputs") and not keeps_output(cell):
            outputs.append(i)
    for cells_hit, what in (
        (volatile, f"volatile metadata ({', '.join(VOLATILE_CELL_KEYS)})"),
        (counted, f"execution counts missing (on {CHECK_MARKER} cells with outputs) or "
                  "left over (elsewhere)"),
        (outputs, f"outputs without a {CHECK_MARKER} comment"),
    ):
        if cells_hit:
            found.append(f"{what} in cells {', '.join(map(str, cells_hit))}")
    return found


def is_stripped(nb: dict) -> bool:
    """Whether ``nb`` is stripped: :func:`problems` finds nothing (``strip(nb)`` always is)."""
    return not problems(nb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and list the notebooks not stripped")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        found = problems(nb)
        if not found:
            continue
        dirty.append(path)
        if args.check:
            print(f"{path}: not stripped")
            for line in found:
                print(f"    {line}")
        else:
            nbformat.write(nbformat.from_dict(strip(nb)), path)
            print(f"stripped {path}")
    if args.check and dirty:
        print(f"{len(dirty)} notebook(s) not stripped; run: python tools/strip_outputs.py "
              + " ".join(str(p) for p in dirty))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
