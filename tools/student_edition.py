#!/usr/bin/env python3
"""Write the student edition of the chapters: the same notebooks without the solutions.

Every chapter ends with exercises written as sphinx-exercise directives in
markdown cells, each followed by its solution::

    ```{exercise}
    :label: ex-method-uniform
    ...
    ```

    ```{solution} ex-method-uniform
    :class: dropdown
    ...
    ```

The student edition keeps the exercises and removes, from every notebook:

* each ``{solution}`` directive of a markdown cell, fenced with backticks,
  tildes or colons (``:::{solution} label`` with MyST's ``colon_fence``), with
  whatever it contains (nested code fences included);
* each gated solution, from ``{solution-start}`` to ``{solution-end}``, with
  every cell between the two (code cells included);
* each cell tagged ``solution`` in its metadata (``"tags": ["solution"]``).

A markdown cell left empty is dropped. Everything else (sources, outputs,
metadata) is kept as it is. Fences are read as CommonMark reads them: a fence
closes on a line of at least as many of the same characters and nothing else,
and ``{solution}`` inside a plain code block is only text. A fence left open,
or a ``{solution-end}`` without its start, is an error that names the notebook,
the cell and the line. The result is checked again before it is written: a
student notebook holding anything that still reads as a solution is never
written. Files are written atomically (a temporary file, then a rename).

Usage::

    python tools/student_edition.py                      # notebooks/*.ipynb -> _build/student/
    python tools/student_edition.py notebooks/01_method.ipynb --out /tmp/student
    python tools/student_edition.py --check              # write nothing; exit 1 on any problem

Exit status: 0 when every notebook was converted (or, with ``--check``, could
be), 1 when any notebook has a problem (each listed), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "_build" / "student"

#: Cell tag that marks a whole cell as a solution.
SOLUTION_TAG = "solution"

__all__ = [
    "SOLUTION_TAG",
    "Report",
    "StudentEditionError",
    "main",
    "student_notebook",
    "write_student_edition",
]

# An opening or closing fence: indentation, three or more ` ~ or :, then the info string.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
# The directive name at the start of a fence's info string: {solution}, {prf:proof}, ...
_DIRECTIVE = re.compile(r"^\s*\{(?P<name>[A-Za-z0-9_:.+-]+)\}(?P<argument>.*)$")
# Directives whose body is code, not markdown: nothing inside them is a directive.
_CODE_DIRECTIVES = {"code", "code-block", "code-cell", "sourcecode", "literalinclude"}


class StudentEditionError(ValueError):
    """A notebook cannot be turned into its student edition; the message says where and why."""


@dataclass
class Report:
    """What :func:`student_notebook` removed and kept in one notebook."""

    exercises: int = 0  # exercise directives in the student edition
    solutions: list[str] = field(default_factory=list)  # labels of the removed solutions
    cells_dropped: int = 0  # whole cells removed (tagged, emptied or inside a gated solution)

    def summary(self) -> str:
        return (
            f"{self.exercises} exercise(s) kept, {len(self.solutions)} solution(s) removed"
            f" ({self.cells_dropped} cell(s) dropped)"
        )


@dataclass
class _Block:
    """Lines ``start``..``end`` (inclusive) of a cell that are a solution or a gate."""

    kind: str  # "solution", "solution-start" or "solution-end"
    start: int
    end: int
    label: str


@dataclass
class _Open:
    char: str
    length: int
    kind: str  # "code" (opaque), "directive" (markdown inside) or a _Block kind
    line: int
    label: str = ""
    name: str = ""


def _closes(line: str, fence: _Open) -> bool:
    match = _FENCE.match(line)
    return bool(
        match
        and match["fence"][0] == fence.char
        and len(match["fence"]) >= fence.length
        and not match["info"].strip()
    )


def _scan(lines: list[str], where: str) -> tuple[list[_Block], int]:
    """Find the outermost solution blocks and gates of a markdown cell.

    Returns the blocks, in order, and the number of exercise directives seen.
    ``where`` names the cell in error messages.
    """
    blocks: list[_Block] = []
    exercises = 0
    stack: list[_Open] = []
    for number, line in enumerate(lines):
        top = stack[-1] if stack else None
        if top is not None and _closes(line, top):
            stack.pop()
            if top.kind != "directive" and top.kind != "code" and not any(
                f.kind == "solution" for f in stack
            ):
                blocks.append(_Block(top.kind, top.line, number, top.label))
            continue
        if top is not None and top.kind == "code":
            continue  # the inside of a code block is only text
        match = _FENCE.match(line)
        if not match:
            continue
        char, length, info = match["fence"][0], len(match["fence"]), match["info"]
        if char == "`" and "`" in info:
            continue  # not a fence: inline code such as ```x```
        directive = _DIRECTIVE.match(info)
        if directive is None:
            if char == ":":
                continue  # MyST colon fences always name a directive
            stack.append(_Open(char, length, "code", number))
            continue
        name = directive["name"]
        label = directive["argument"].strip()
        if name in ("exercise", "exercise-start"):
            exercises += 1
        if name in ("solution", "solution-start", "solution-end"):
            stack.append(_Open(char, length, name, number, label, name))
        elif name in _CODE_DIRECTIVES:
            stack.append(_Open(char, length, "code", number, name=name))
        else:
            stack.append(_Open(char, length, "directive", number, name=name))
    if stack:
        fence = stack[0] if any(f.kind == "solution" for f in stack) else stack[-1]
        what = f"{{{fence.name}}} directive" if fence.name else "code block"
        raise StudentEditionError(
            f"{where}, line {fence.line + 1}: the {what} opened here with "
            f"{fence.char * fence.length} is never closed (close it with a line of at least "
            f"{fence.length} {fence.char!r} characters)"
        )
    return blocks, exercises


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _cut(lines: list[str], drop: list[bool]) -> str:
    """Join the kept lines; blank lines left around a cut collapse into one."""
    kept: list[str] = []
    after_cut = False
    for line, dropped in zip(lines, drop, strict=True):
        if dropped:
            after_cut = True
            continue
        if after_cut and not line.strip() and (not kept or not kept[-1].strip()):
            continue
        after_cut = after_cut and not line.strip()
        kept.append(line)
    return "\n".join(kept).strip("\n")


def student_notebook(nb: dict, name: str = "notebook") -> tuple[nbformat.NotebookNode, Report]:
    """Return the student edition of ``nb`` (a copy) and what was removed.

    Args:
        nb (dict | NotebookNode): a notebook (nbformat 4); not modified.
        name (str): how error messages name the notebook. Default "notebook".

    Returns:
        tuple[NotebookNode, Report]: the notebook without solutions, and a report.

    Raises:
        StudentEditionError: a fence is never closed, a gate is unbalanced, or the
            result still holds a solution.
    """
    nb = nbformat.from_dict(copy.deepcopy(dict(nb)))
    report = Report()
    cells = []
    gate: str | None = None  # where the open {solution-start} is, while inside one
    for index, cell in enumerate(nb.cells):
        where = f"{name}: cell {index}"
        if SOLUTION_TAG in _tags(cell):
            report.cells_dropped += 1
            report.solutions.append(f"cell {index} (tagged {SOLUTION_TAG!r})")
            continue
        if cell.cell_type != "markdown":
            if gate is None:
                cells.append(cell)
            else:
                report.cells_dropped += 1
            continue
        lines = cell.source.split("\n")
        blocks, _ = _scan(lines, where)
        drop = [gate is not None] * len(lines)
        position = 0
        for block in blocks:
            for i in range(position, block.start):
                drop[i] = gate is not None
            for i in range(block.start, block.end + 1):
                drop[i] = True
            position = block.end + 1
            if block.kind == "solution":
                if gate is None:
                    report.solutions.append(block.label or f"cell {index}")
            elif block.kind == "solution-start":
                if gate is not None:
                    raise StudentEditionError(
                        f"{where}, line {block.start + 1}: {{solution-start}} inside the "
                        f"gated solution opened at {gate}; close that one with {{solution-end}}"
                    )
                gate = f"{where}, line {block.start + 1}"
                report.solutions.append(block.label or f"cell {index}")
            else:  # solution-end
                if gate is None:
                    raise StudentEditionError(
                        f"{where}, line {block.start + 1}: {{solution-end}} without a "
                        "{solution-start} before it"
                    )
                gate = None
        for i in range(position, len(lines)):
            drop[i] = gate is not None
        if not any(drop):
            cells.append(cell)
            continue
        source = _cut(lines, drop)
        if source.strip():
            cell.source = source
            cells.append(cell)
        else:
            report.cells_dropped += 1
    if gate is not None:
        raise StudentEditionError(
            f"{gate}: the gated solution opened here has no {{solution-end}}"
        )
    nb.cells = cells
    report.exercises = _assert_no_solution(nb, name)
    return nb, report


def _assert_no_solution(nb: nbformat.NotebookNode, name: str) -> int:
    """Refuse a student notebook in which anything still reads as a solution.

    Returns the number of exercises it holds.
    """
    exercises = 0
    for index, cell in enumerate(nb.cells):
        where = f"{name}: student edition, cell {index}"
        if SOLUTION_TAG in _tags(cell):
            raise StudentEditionError(f"{where} is still tagged {SOLUTION_TAG!r}")
        if cell.cell_type == "markdown":
            blocks, found = _scan(cell.source.split("\n"), where)
            if blocks:
                raise StudentEditionError(
                    f"{where}, line {blocks[0].start + 1}: a {{{blocks[0].kind}}} was left in"
                )
            exercises += found
    return exercises


def _write_atomically(nb: nbformat.NotebookNode, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_student_edition(
    notebooks: list[Path], out: Path, *, check: bool = False
) -> tuple[dict[Path, Report], list[str]]:
    """Convert ``notebooks`` into ``out/<name>.ipynb`` (nothing is written with ``check``).

    Returns:
        tuple[dict[Path, Report], list[str]]: a report per converted notebook, and one
        message per notebook that could not be converted.
    """
    reports: dict[Path, Report] = {}
    errors: list[str] = []
    out = out.resolve()
    for path in notebooks:
        if path.resolve().parent == out:
            errors.append(f"{path}: refusing to overwrite the source notebook; pick another --out")
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as error:  # missing file, invalid JSON or notebook
            errors.append(f"{path}: cannot read the notebook: {error}")
            continue
        try:
            student, report = student_notebook(nb, name=str(path))
            nbformat.validate(student)
        except (StudentEditionError, nbformat.ValidationError) as error:
            errors.append(str(error).splitlines()[0])
            continue
        if not check:
            _write_atomically(student, out / path.name)
        reports[path] = report
    return reports, errors


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the chapters without their solutions (the student edition).",
        epilog="Default: every notebooks/*.ipynb into _build/student/.",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="the .ipynb files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the student notebooks (default: _build/student)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and list every notebook that cannot be "
                        "converted")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        parser.error("no notebooks given and none in notebooks/")
    reports, errors = write_student_edition(notebooks, args.out, check=args.check)
    for path, report in reports.items():
        verb = "would write" if args.check else "wrote"
        print(f"{verb} {_display(args.out / path.name)}: {report.summary()}")
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} notebook(s) not converted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
