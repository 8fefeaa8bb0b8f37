"""Rules every chapter notebook follows, checked on the committed files (nothing is executed).

- One ``parameters`` cell (papermill) of flat literal assignments, with ``profile = "auto"``.
- Stripped as ``tools/strip_outputs.py`` defines it, and every ``# NBVAL_CHECK_OUTPUT``
  cell holds the reference output that ``pytest --nbval-lax`` compares against.
- Those reference outputs state claims, not snapshots: no float with more than one
  significant figure unless it is the threshold of a comparison (see :func:`snapshots`).
- The first cell is a title with a Colab badge that opens this very notebook; the first code
  cell installs lanlib on Colab and nowhere else, and no other cell installs anything.
- The kernelspec is ``python3``, the name papermill and nbval look up.
- Every sphinx-exercise ``{exercise}`` has a label and a ``{solution}`` pointing at it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from tools.strip_outputs import CHECK_MARKER, problems

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COLAB_PREFIX = (
    "https://colab.research.google.com/github/latent-attention/latent-attention-book/blob/main/"
)


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _source_without_magics(source: str) -> str:
    """Cell source that ``ast`` can parse: IPython magics and shell lines become ``pass``."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def test_one_parameters_cell_of_flat_values(notebook):
    path, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', expected 1"
    cell = tagged[0]
    assert cell.cell_type == "code", f"{path.name}: the parameters cell must be a code cell"
    values = {}
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{path.name}: the parameters cell must hold only assignments `name = value`, "
            f"got line {statement.lineno}: {ast.unparse(statement)}"
        )
        target = statement.targets[0]
        assert isinstance(target, ast.Name), f"{path.name}: assign to plain names only"
        try:
            values[target.id] = ast.literal_eval(statement.value)
        except ValueError:
            pytest.fail(f"{path.name}: {target.id} must be a literal (papermill replaces it)")
    assert values.get("profile") == "auto", f'{path.name}: needs profile = "auto"'


def test_stripped(notebook):
    path, nb = notebook
    found = problems(nb)
    assert not found, (
        f"{path.name} is not stripped: {found}; run python tools/strip_outputs.py {path}"
    )


def test_checked_cells_hold_reference_outputs(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or CHECK_MARKER not in cell.source:
            continue
        assert cell.outputs, (
            f"{path.name} cell {i} is marked {CHECK_MARKER} but stores no output for nbval; "
            "execute the notebook, then strip it"
        )
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name} cell {i} stores an error as its reference output"


def test_title_and_colab_badge(notebook):
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{path.name}: the first cell must be a markdown cell starting with a '# ' title"
    )
    badge = COLAB_PREFIX + f"notebooks/{path.name}"
    assert badge in first.source, f"{path.name}: the Colab badge must link to {badge}"


def test_first_code_cell_installs_on_colab_only(notebook):
    path, nb = notebook
    cells = _code_cells(nb)
    assert cells, f"{path.name} has no code cells"
    tree = ast.parse(_source_without_magics(cells[0].source))
    guards = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.If) and '"google.colab" in sys.modules' in ast.unparse(node.test)
        .replace("'", '"')
    ]
    assert guards, f'{path.name}: the first code cell must test `"google.colab" in sys.modules`'
    install = re.compile(r"^(\s*)[%!]\s*pip\s+install", re.MULTILINE)
    lines = install.findall(cells[0].source)
    assert lines, f"{path.name}: the first code cell must %pip install lanlib on Colab"
    assert all(indent for indent in lines), (
        f"{path.name}: every pip install of the first cell must sit inside the Colab test"
    )
    for i, cell in enumerate(cells[1:], start=1):
        assert not install.search(cell.source) and "pip install" not in cell.source, (
            f"{path.name}: code cell {i} installs packages; only the first (Colab) cell may"
        )


def test_kernelspec_is_python3(notebook):
    path, nb = notebook
    name = nb.metadata.get("kernelspec", {}).get("name")
    assert name == "python3", f"{path.name}: kernelspec name is {name!r}, expected 'python3'"


_EXERCISE = re.compile(r"^```\{exercise\}.*?\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SOLUTION = re.compile(r"^```\{solution\}\s*(\S+)", re.MULTILINE)


def test_every_exercise_has_a_labelled_solution(notebook):
    path, nb = notebook
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    labels = []
    for body in _EXERCISE.findall(text):
        found = re.search(r"^:label:\s*(\S+)", body, re.MULTILINE)
        assert found, f"{path.name}: an exercise has no :label:"
        labels.append(found.group(1))
    assert labels, f"{path.name}: every chapter ends with exercises, this one has none"
    assert len(labels) == len(set(labels)), f"{path.name}: exercise labels repeat: {labels}"
    solved = _SOLUTION.findall(text)
    assert sorted(solved) == sorted(labels), (
        f"{path.name}: exercises {sorted(labels)} but solutions for {sorted(solved)}"
    )


# ---------------------------------------------------------------- the strip tool itself


def _executed_notebook():
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 1.0}, "widgets": {}})
    injected = nbformat.v4.new_code_cell('profile = "quick"', execution_count=1)
    injected.metadata["tags"] = ["injected-parameters"]
    plain = nbformat.v4.new_code_cell("print(1)", execution_count=2, outputs=[
        nbformat.v4.new_output("stream", text="1\n")])
    plain.metadata["papermill"] = {"duration": 0.1}
    checked = nbformat.v4.new_code_cell(f"{CHECK_MARKER}\n1 + 1", execution_count=7, outputs=[
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=7)])
    prose = nbformat.v4.new_markdown_cell("text")
    nb.cells = [injected, plain, checked, prose]
    return nb


def test_strip_keeps_only_checked_outputs():
    from tools.strip_outputs import is_stripped, strip

    nb = _executed_notebook()
    assert not is_stripped(nb)
    found = problems(nb)
    assert any("injected-parameters" in line for line in found)
    assert any("without a" in line and "cells 1" in line for line in found)
    out = strip(nb)
    assert is_stripped(out) and is_stripped(strip(out))
    assert [c.source for c in out.cells] == [c.source for c in nb.cells[1:]]
    plain, checked = out.cells[0], out.cells[1]
    assert plain.outputs == [] and plain.execution_count is None and not plain.metadata
    assert checked.outputs[0]["data"] == {"text/plain": "2"}
    assert checked.execution_count == 1 and checked.outputs[0]["execution_count"] == 1
    assert "papermill" not in out.metadata and "widgets" not in out.metadata
    assert nb.cells[1].outputs, "strip must not change its argument"


def test_strip_cli_check_and_fix(tmp_path, capsys):
    from tools.strip_outputs import main

    path = tmp_path / "chapter.ipynb"
    nbformat.write(_executed_notebook(), path)
    assert main(["--check", str(path)]) == 1
    assert "chapter.ipynb: not stripped" in capsys.readouterr().out
    assert main([str(path)]) == 0
    assert main(["--check", str(path)]) == 0


def test_papermill_reads_every_parameter(notebook):
    """Papermill must parse each line, or it warns "Passed unknown parameter" on every run."""
    from papermill.translators import PythonTranslator

    path, nb = notebook
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = [p.name for p in PythonTranslator.inspect(cell)]
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert names == assigned, f"{path.name}: papermill reads {names}, the cell assigns {assigned}"


# ---------------------------------------------------------------- check cells state claims

# A number printed as a decimal fraction, a percentage or in scientific notation (not an
# integer: counts of posts or photos are facts of the data, not of the arithmetic).
_FLOAT = re.compile(
    r"(?<![\w.])(?:\d+(?:\.\d+)?\s?%|\d*\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?!\w)"
)
# A comparison that makes the number after it a threshold (the text ends with it).
_COMPARISON_BEFORE = re.compile(
    r"(?:<=?|>=?|≤|≥|\b(?:above|below|under|over|at least|at most|within|exceeds?"
    r"|(?:more|less|fewer|greater|higher|lower) than))\s*$"
)
_VERDICT = re.compile(r"\b(?:True|False|holds|FAILS)\b")


def significant_figures(number: str) -> int:
    """Digits from the first non-zero one on; an integer's trailing zeros do not count."""
    mantissa = re.split(r"[eE]", number.rstrip("%").strip())[0]
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits if "." in mantissa else digits.rstrip("0"))


def snapshots(line: str, typed: str = "") -> list[str]:
    """The numbers of one output line that pin a result instead of stating a claim.

    A float with more than one significant figure (0.53, 1.00, 13%, 2.5e-03) is a snapshot
    unless it is the threshold of a claim: the text right before it ends with a comparison
    (``<``, ``>=``, ``≥``, "above", "at most", "more than", "within", ...) and the line
    carries the claim's verdict (True, False, "holds" or "FAILS"). Also exempt: one
    significant figure (0.4, 8%, 10 %), coarse enough to print as it is, and a number
    written as it is in ``typed``, the cell's source (a setting quoted, not a result).
    """
    verdict = bool(_VERDICT.search(line))
    written = set(_FLOAT.findall(typed))
    return [m.group() for m in _FLOAT.finditer(line)
            if significant_figures(m.group()) > 1 and m.group() not in written
            and not (verdict and _COMPARISON_BEFORE.search(line[: m.start()]))]


@pytest.mark.parametrize(("line", "pinned"), [
    ("F is better than chance (accuracy above 0.4): True", []),
    ("the paper's betas (1.5, 3, 5) lie below D_full: True", []),  # 1.5 is in the source
    ("cloud AUROC > 0.75: True; tank AUROC < 0.5: False", []),
    ("higher by over 0.35 (>= 0.95): True", []),
    ("clouds cover 8% of a scene, the tank 3%", []),
    ("chance is 10 % and the mask 0.5", []),
    ("test accuracy of F: 0.53 (20 groups: chance is 0.05)", ["0.53"]),
    ("accuracy 0.53, above 0.4: True", ["0.53"]),
    ("P(cloud | tank) = 1.00, P(cloud | no tank) = 0.50", ["1.00", "0.50"]),
    ("mean mask above 0.997", ["0.997"]),
    ("clouds cover 13% of a scene; loss 2.5e-03; gap .25", ["13%", "2.5e-03", ".25"]),
])
def test_snapshot_rule(line, pinned):
    assert snapshots(line, typed='print("the paper\'s betas (1.5, 3, 5)", x > 0.4)') == pinned


def _output_lines(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            yield from output.get("text", "").splitlines()
        for kind in ("text/plain", "text/markdown"):
            yield from output.get("data", {}).get(kind, "").splitlines()


def test_check_cells_state_claims_not_snapshots(notebook):
    """nbval compares check outputs as text: a printed 0.53 pins BLAS and thread count.

    Every ``# NBVAL_CHECK_OUTPUT`` cell prints claims that could turn out False; the
    numbers themselves go into the prose (``book.glue``) or into unchecked cells.
    """
    path, nb = notebook
    found = [f"cell {i}: {number} in {line.strip()!r}"
             for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and CHECK_MARKER in cell.source
             for line in _output_lines(cell) for number in snapshots(line, cell.source)]
    assert not found, (
        f"{path.name}: check cells print snapshots, not claims (a float with more than one "
        "significant figure must be the threshold of a comparison on a line with a verdict; "
        "glue the value into the prose instead): " + "; ".join(found)
    )
