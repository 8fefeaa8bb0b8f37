"""The house rules of the package, read from the code's own imports.

- lanlib's modules outside ``lanlib/chapters/`` never import a chapter module;
- a chapter module never imports another chapter module;
- ``lanlib/data/`` and ``lanlib/models/`` import no plotting (matplotlib, ipywidgets,
  ``lanlib.plot``);
- lanlib imports its own modules at the top of a file, not inside functions
  (``if TYPE_CHECKING:`` blocks excepted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LANLIB = Path(__file__).resolve().parents[1] / "lanlib"
FILES = sorted(LANLIB.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(LANLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, ast.AST, bool]]:
    """(absolute module imported, node, whether at module level) for every import."""
    tree = ast.parse(path.read_text())
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []

    def visit(node, top: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, child, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")
                if child.level:
                    base = base[: len(base) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                found.append((name, child, top))
                found.extend((f"{name}.{a.name}", child, top) for a in child.names)
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, True)
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(LANLIB.parent)))
def test_imports_follow_the_house_rules(path: Path):
    me = _module_name(path)
    problems = []
    for name, node, top in _imports(path):
        where = f"{path.relative_to(LANLIB.parent)}:{node.lineno} imports {name}"
        chapter = name.startswith("lanlib.chapters.") and name != "lanlib.chapters"
        if chapter and not me.startswith("lanlib.chapters"):
            problems.append(f"{where}: only chapters may use chapter code")
        if chapter and me.startswith("lanlib.chapters.") and not name.startswith(me):
            problems.append(f"{where}: a chapter module may not import another")
        plotting = name.split(".")[0] in ("matplotlib", "ipywidgets") or name.startswith(
            "lanlib.plot")
        if plotting and me.startswith(("lanlib.data", "lanlib.models")):
            problems.append(f"{where}: data and models draw nothing")
        if name.startswith("lanlib") and not top:
            problems.append(f"{where}: import lanlib's modules at the top of the file")
    assert not problems, "\n".join(problems)
