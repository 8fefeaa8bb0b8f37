"""pyproject.toml and environment.yml install the same packages.

pyproject.toml is what pip (``make``) and Colab use; environment.yml is for
conda users. Both must name the same packages with the same version
specifiers, or one of the two installs drifts away from what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

#: conda-forge names of packages that PyPI knows under another name.
CONDA_TO_PYPI = {"pytorch": "torch"}
#: conda packages that are tools, not Python dependencies of the project.
CONDA_ONLY = {"python", "pip", "nodejs"}
#: The extras of pyproject.toml that environment.yml must cover.
EXTRAS = ("book", "test")

CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def pyproject_requirements() -> dict[str, SpecifierSet]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    found: dict[str, SpecifierSet] = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in found and found[name] != req.specifier:
            pytest.fail(
                f"pyproject.toml names {name} twice with different specifiers: "
                f"{found[name]} and {req.specifier}"
            )
        found[name] = req.specifier
    return found


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def environment_requirements() -> dict[str, SpecifierSet]:
    found: dict[str, SpecifierSet] = {}
    for entry in environment()["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.strip().startswith("-"):
                    continue  # pip options such as "-e ."
                req = Requirement(line)
                found[canonicalize_name(req.name)] = req.specifier
            continue
        match = CONDA_SPEC.match(str(entry))
        assert match, f"environment.yml: cannot read conda entry {entry!r}"
        name, spec = match.groups()
        if name in CONDA_ONLY:
            continue
        try:
            specifier = SpecifierSet(spec)
        except ValueError:
            pytest.fail(
                f"environment.yml: write {entry!r} with a pip-style specifier "
                "(e.g. 'numpy>=1.24') so it can be compared with pyproject.toml"
            )
        found[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = specifier
    return found


def test_same_packages_and_specifiers() -> None:
    pyproject = pyproject_requirements()
    conda = environment_requirements()
    lines = []
    for name in sorted(set(pyproject) - set(conda)):
        lines.append(f"  only in pyproject.toml:  {name}{pyproject[name]}")
    for name in sorted(set(conda) - set(pyproject)):
        lines.append(f"  only in environment.yml: {name}{conda[name]}")
    for name in sorted(set(pyproject) & set(conda)):
        if pyproject[name] != conda[name]:
            lines.append(
                f"  {name}: pyproject.toml says '{pyproject[name]}', "
                f"environment.yml says '{conda[name]}'"
            )
    assert not lines, "pyproject.toml and environment.yml disagree:\n" + "\n".join(lines)


def test_environment_installs_the_library() -> None:
    pip_lines = [
        line
        for entry in environment()["dependencies"]
        if isinstance(entry, dict)
        for line in entry.get("pip", [])
    ]
    assert "-e ." in pip_lines, "environment.yml should install lanlib itself ('-e .' under pip)"


def test_environment_python_is_supported() -> None:
    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    pythons = [
        str(e).split("=", 1)[1]
        for e in environment()["dependencies"]
        if isinstance(e, str) and e.startswith("python=")
    ]
    assert pythons, "environment.yml should pin python=X.Y"
    assert Version(pythons[0]) in requires, (
        f"environment.yml's python={pythons[0]} is outside requires-python '{requires}'"
    )
