"""tools/student_edition.py: the chapters without their solutions, exercises kept."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools.student_edition import (
    StudentEditionError,
    main,
    student_notebook,
    write_student_edition,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

EXERCISES = """\
## Exercises

```{exercise}
:label: ex-one

Compute the mask.
```

```{solution} ex-one
:class: dropdown

SECRET-ONE: call the function.

~~~python
print("SECRET-ONE-CODE")
~~~
```

````{exercise}
:label: ex-two

Explain this code block:

```python
x = 1
```
````

````{solution} ex-two
:class: dropdown

```python
print("SECRET-TWO")
```
````

:::{exercise}
:label: ex-three

A colon-fenced exercise.
:::

:::{solution} ex-three
:class: dropdown

SECRET-THREE, with a nested block:

```python
print(":::")
```
:::

Text after the exercises.
"""

EXAMPLE_OF_SYNTAX = """\
How a solution is written (this is an example, not a solution):

```markdown
```{solution} label
```
"""


def _synthetic() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell('print("SECRET-TAGGED")')
    tagged.metadata["tags"] = ["solution", "hide-input"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell(EXERCISES),
        tagged,
        nbformat.v4.new_markdown_cell(
            "```{exercise-start}\n:label: ex-gated\n```\n\nA gated exercise.\n\n"
            "```{exercise-end}\n```"
        ),
        nbformat.v4.new_markdown_cell(
            "```{solution-start} ex-gated\n:class: dropdown\n```\n\nSECRET-GATED text."
        ),
        nbformat.v4.new_code_cell('print("SECRET-GATED-CODE")'),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```\n\nAfter the gate."),
        nbformat.v4.new_markdown_cell("```{solution} ex-one\nSECRET-ALONE\n```"),
        nbformat.v4.new_markdown_cell("````{solution} ex-two\nSECRET-FOUR\n````\n"),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    return nb


def _text(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells)


def test_synthetic_notebook_keeps_exercises_and_drops_every_solution():
    nb = _synthetic()
    student, report = student_notebook(nb)
    text = _text(student)
    assert "SECRET" not in text, text
    assert "{solution" not in text
    for label in ("ex-one", "ex-two", "ex-three", "ex-gated"):
        assert f":label: {label}" in text
    assert "x = 1" in text and "print(\":::\")" not in text
    assert "Text after the exercises." in text and "After the gate." in text
    assert report.exercises == 4
    assert sorted(report.solutions) == sorted(
        ["ex-one", "ex-two", "ex-three", "cell 3 (tagged 'solution')", "ex-gated",
         "ex-one", "ex-two"]
    )
    # the tagged cell, the code cell inside the gate, and three emptied markdown cells
    assert report.cells_dropped == 5
    assert [c.source for c in student.cells if c.cell_type == "code"] == ["x = 1", "y = 2"]
    nbformat.validate(student)
    assert "SECRET-TAGGED" in _text(nb), "the source notebook must not change"


def test_cut_leaves_tidy_markdown():
    student, _ = student_notebook(_synthetic())
    exercises = student.cells[2].source
    assert "\n\n\n" not in exercises
    assert exercises.startswith("## Exercises\n\n```{exercise}")
    assert re.search(r"^:::\n\nText after the exercises\.$", exercises, re.MULTILINE)


def test_solution_syntax_inside_a_code_block_is_only_text():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(EXAMPLE_OF_SYNTAX)]
    student, report = student_notebook(nb)
    assert student.cells[0].source == EXAMPLE_OF_SYNTAX
    assert report.solutions == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("```{solution} ex\nnever closed", r"cell 0, line 1: the \{solution\} directive"),
        ("````{solution} ex\n```\n", r"line 1: .*never closed .*at least 4 '`'"),
        (":::{solution} ex\ntext\n", r"line 1: the \{solution\} directive opened here with :::"),
        ("```{solution-end}\n```", r"\{solution-end\} without a \{solution-start\}"),
        ("```{solution-start} ex\n```\ntext", r"has no \{solution-end\}"),
    ],
)
def test_malformed_solutions_are_clear_errors(source, message):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(source)]
    with pytest.raises(StudentEditionError, match=message):
        student_notebook(nb, name="broken.ipynb")


def test_cli_writes_atomically_and_check_writes_nothing(tmp_path, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(_synthetic(), good)
    broken = nbformat.v4.new_notebook()
    broken.cells = [nbformat.v4.new_markdown_cell("text\n\n```{solution} ex\nopen")]
    nbformat.write(broken, bad)
    out = tmp_path / "student"

    assert main(["--check", "--out", str(out), str(good)]) == 0
    assert not out.exists()
    assert "would write" in capsys.readouterr().out

    assert main(["--out", str(out), str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "bad.ipynb: cell 0, line 3" in captured.err and "never closed" in captured.err
    assert [p.name for p in out.iterdir()] == ["good.ipynb"], "no temporary file is left"
    assert "SECRET" not in _text(nbformat.read(out / "good.ipynb", as_version=4))

    assert main(["--out", str(tmp_path), str(good)]) == 1
    assert "refusing to overwrite the source notebook" in capsys.readouterr().err


def _solution_lines(nb) -> list[str]:
    """Distinctive lines of every ```{solution}``` block (read independently of the tool)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    bodies = re.findall(r"^```\{solution\}[^\n]*\n(.*?)^```[ \t]*$", text, re.M | re.S)
    return [
        line.strip() for body in bodies for line in body.splitlines()
        if len(line.strip()) >= 25 and not line.strip().startswith(":class:")
    ]


def test_method_chapter_student_edition(tmp_path):
    source_path = ROOT / "notebooks" / "01_method.ipynb"
    source = nbformat.read(source_path, as_version=4)
    secrets = _solution_lines(source)
    assert secrets, "01_method.ipynb should have solutions to remove"
    labels = re.findall(r"^:label:\s*(\S+)", _text(source), re.MULTILINE)

    reports, errors = write_student_edition([source_path], tmp_path)
    assert not errors
    student = nbformat.read(tmp_path / "01_method.ipynb", as_version=4)
    text = _text(student)
    assert "{solution" not in text
    leaked = [line for line in secrets if line in text]
    assert not leaked, f"solution text left in the student edition: {leaked[:3]}"
    assert re.findall(r"^:label:\s*(\S+)", text, re.MULTILINE) == labels
    assert reports[source_path].exercises == len(labels) > 0
    assert [c.source for c in student.cells if c.cell_type == "code"] == [
        c.source for c in source.cells if c.cell_type == "code"
    ], "code cells (none is a solution) are kept as they are"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_chapter_has_a_student_edition(path):
    student, report = student_notebook(nbformat.read(path, as_version=4), name=path.name)
    assert report.exercises > 0, f"{path.name} has no exercises"
    assert "{solution" not in _text(student)
