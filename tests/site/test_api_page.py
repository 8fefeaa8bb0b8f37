"""The API reference page (book/api.md) lists every public name of lanlib.

Sphinx's autodoc writes one anchor ``id="<module>.<name>"`` per documented object;
this test reads the built page and asks, module by module, for every name in the
module's ``__all__``. It also asks that every public module of the library has its
section, so that a new module cannot be left out, and that each of the top-level
names (``lanlib.fit_lan``, ``lanlib.attribute``, ...) is documented in its home module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import lanlib

ROOT = Path(__file__).resolve().parents[2]
PAGE_SOURCE = ROOT / "book" / "api.md"
#: The benchmark is documented by ``python -m lanlib.bench --help`` and benchmarks/README.md.
NOT_IN_REFERENCE = ("lanlib.bench",)

pytestmark = pytest.mark.browser


def documented_modules() -> list[str]:
    return re.findall(r"^\.\. automodule:: (\S+)", PAGE_SOURCE.read_text(), re.MULTILINE)


def library_modules() -> list[str]:
    """Public modules; a subpackage that re-exports its modules' names (``lanlib.data``)
    stands for them, a docstring-only one (``lanlib.models``) is replaced by them."""
    documented = set(documented_modules())
    names = []
    for info in pkgutil.walk_packages(lanlib.__path__, "lanlib."):
        parts = info.name.split(".")
        parent = ".".join(parts[:-1])
        if any(p.startswith("_") for p in parts) or info.name.startswith(NOT_IN_REFERENCE):
            continue
        if parent != "lanlib" and parent in documented:
            continue
        if info.ispkg and not getattr(importlib.import_module(info.name), "__all__", None):
            continue
        names.append(info.name)
    return names


@pytest.fixture(scope="module")
def anchors(built_site: Path) -> set[str]:
    page = built_site / "book" / "api.html"
    assert page.is_file(), f"{page} is missing: is book/api listed in _toc.yml?"
    return set(re.findall(r'id="(lanlib[^"]*)"', page.read_text()))


def test_every_library_module_has_a_section():
    missing = sorted(set(library_modules()) - set(documented_modules()))
    assert not missing, f"book/api.md has no automodule section for {missing}"


@pytest.mark.parametrize("module", [m for m in documented_modules() if m != "lanlib"])
def test_every_public_name_is_documented(anchors: set[str], module: str):
    mod = importlib.import_module(module)
    public = getattr(mod, "__all__", None)
    assert public, f"{module} defines no __all__: say which names are public"
    missing = [name for name in public if f"{module}.{name}" not in anchors]
    assert not missing, f"the API page lacks {module}: {missing}"


def test_top_level_names_are_documented_where_they_live(anchors: set[str]):
    missing = []
    for name in lanlib.__all__:
        obj = getattr(lanlib, name)
        if isinstance(obj, types.ModuleType) or name == "__version__":
            continue
        home = f"{obj.__module__}.{name}"
        if home not in anchors:
            missing.append(f"lanlib.{name} (expected {home})")
    assert not missing, f"the API page lacks {missing}"


def test_documented_packages_re_export_their_modules_names():
    """A package documented as a whole (``lanlib.data``) must export what its modules
    make public, or those names would be missing from the page."""
    missing = []
    for package in documented_modules():
        pkg = importlib.import_module(package)
        if package == "lanlib" or not hasattr(pkg, "__path__"):
            continue
        exported = set(getattr(pkg, "__all__", ()))
        for info in pkgutil.iter_modules(pkg.__path__, f"{package}."):
            if info.name.rsplit(".", 1)[1].startswith("_"):
                continue
            names = getattr(importlib.import_module(info.name), "__all__", ())
            missing += [f"{info.name}.{n}" for n in names if n not in exported]
    assert not missing, f"not exported by their package: {missing}"
