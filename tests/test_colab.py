"""The way into a chapter from Colab: its badge, its launch button and its install cell.

The repository's address is written once, as ``repository.url`` in ``_config.yml``;
everything here is derived from it:

- every chapter's "Open in Colab" badge opens this very notebook of that repository,
  on ``repository.branch``, the same URL the book theme's launch button (the rocket)
  builds from ``launch_buttons.colab_url``;
- every chapter's first code cell installs ``lanlib[chapters] @ git+<repository.url>`` on Colab
  (the extra brings what the chapters import beyond the core: Captum, matplotlib, ...),
  and no cell names another repository;
- what that cell installs works: the package built as a wheel from this checkout,
  installed into a fresh virtual environment, imports every module of ``lanlib``
  (each subpackage is in the wheel) and runs a tiny fit; the modules import nothing at
  load time beyond ``[project] dependencies``, which is all pip brings along on Colab.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COLAB = "https://colab.research.google.com"


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> tuple[str, str, str]:
    """``(url, branch, path_to_book)`` from _config.yml."""
    repo = book_config()["repository"]
    return repo["url"].rstrip("/"), repo.get("branch") or "main", repo.get("path_to_book") or ""


def colab_url(notebook: str) -> str:
    """Where Colab opens ``notebooks/<notebook>`` of the repository (badge and launch button)."""
    url, branch, path_to_book = repository()
    owner_repo = urlsplit(url).path.strip("/")
    in_repo = "/".join(p for p in (path_to_book.strip("/"), "notebooks", notebook) if p)
    return f"{COLAB}/github/{owner_repo}/blob/{branch}/{in_repo}"


def install_requirement() -> str:
    return f"lanlib[chapters] @ git+{repository()[0]}"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_repository_url_is_set_once():
    url, branch, _ = repository()
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "github.com", (
        f"repository.url must be https://github.com/<owner>/<name> (Colab opens GitHub "
        f"notebooks), got {url!r}"
    )
    assert re.fullmatch(r"/[\w.-]+/[\w.-]+", parts.path), f"not a repository address: {url}"
    assert not parts.path.endswith(".git") and re.fullmatch(r"[\w./-]+", branch)


def test_launch_button_is_configured():
    config = book_config()
    assert config["launch_buttons"]["colab_url"].rstrip("/") == COLAB
    assert config["html"].get("use_repository_button") is True
    theme = config["sphinx"]["config"].get("html_theme_options", {})
    assert theme.get("use_download_button") is True, "the .ipynb download button is on"
    toc = (ROOT / "_toc.yml").read_text()
    assert "file: notebooks/" in toc, "the launch button only shows on notebook pages"


def test_badge_opens_this_notebook_in_colab(notebook):
    path, nb = notebook
    badge = f"[![Open In Colab]({COLAB}/assets/colab-badge.svg)]({colab_url(path.name)})"
    assert badge in nb.cells[0].source, (
        f"{path.name}: the first cell needs the badge\n    {badge}\n"
        "(derived from repository.url and repository.branch in _config.yml)"
    )


def test_install_cell_installs_from_the_repository(notebook):
    path, nb = notebook
    first = next(c for c in nb.cells if c.cell_type == "code")
    installs = re.findall(r"^\s*%pip install (.*)$", first.source, re.MULTILINE)
    assert installs == [f'-q "{install_requirement()}"'], (
        f"{path.name}: the first code cell must run, on Colab only, exactly\n"
        f'    %pip install -q "{install_requirement()}"\n(found {installs})'
    )


def test_no_other_repository_is_named(notebook):
    path, nb = notebook
    url = repository()[0]
    owner_repo = urlsplit(url).path.strip("/")
    text = "\n".join(c.source for c in nb.cells)
    for found in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", text):
        if found.split("github.com/")[1].lower().startswith(owner_repo.lower()):
            continue
        # a link to another project (a paper's code) is fine; an install or badge is not
        assert f"git+{found}" not in text and f"/github/{found[19:]}" not in text, (
            f"{path.name} installs from or opens {found}, not {url}"
        )
    for found in re.findall(rf"{re.escape(COLAB)}/github/([\w.-]+/[\w.-]+)", text):
        assert found == owner_repo, f"{path.name}: a Colab link to {found}, not {owner_repo}"


# ------------------------------------------------------------------ the install path


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _source_modules() -> list[str]:
    """Every module of the lanlib source tree, as dotted names."""
    names = []
    for path in sorted((ROOT / "lanlib").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _load_time_imports(path: Path) -> set[str]:
    """Top-level packages a module imports when it is loaded (not inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(statements) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


def test_modules_import_only_declared_dependencies():
    declared = {canonicalize_name(Requirement(r).name) for r in _pyproject()["project"][
        "dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted((ROOT / "lanlib").rglob("*.py")):
        for top in sorted(_load_time_imports(path)):
            if top in sys.stdlib_module_names or top in ("lanlib", "__future__"):
                continue
            dists = {canonicalize_name(d) for d in distributions.get(top, [top])}
            if not dists & declared:
                missing.append(f"{path.relative_to(ROOT)} imports {top} ({', '.join(dists)})")
    assert not missing, (
        "modules that fail to import after `pip install lanlib` (on Colab: only [project] "
        "dependencies are installed); import these inside the functions that need them, "
        "or declare them:\n    " + "\n    ".join(missing)
    )


def _copy_package_source(dest: Path) -> None:
    """The files a wheel is built from, copied so the build leaves the checkout alone."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(
        ROOT / "lanlib", dest / "lanlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


def _can_build_here() -> bool:
    """Whether this interpreter has what pyproject.toml's build-system requires."""
    try:
        setuptools = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    if Version(setuptools) >= Version("70.1"):  # bdist_wheel without the wheel package
        return True
    try:
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return Version(setuptools) >= Version("68")


TINY_FIT = r"""
import importlib, importlib.util, json, pkgutil, sys
import torch
import lanlib
from lanlib import nets, noise

expected = json.loads(sys.argv[1])
for name in expected:
    importlib.import_module(name)
found = ["lanlib"] + sorted(m.name for m in pkgutil.walk_packages(lanlib.__path__, "lanlib."))
g = torch.Generator().manual_seed(0)
x = torch.rand(32, 1, 6, 6, generator=g)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
lan = nets.MLPMaskNet((1, 6, 6), hidden=(16,))
lan = lanlib.fit_lan(model, lan, x, noise.bootstrap(x), beta=0.1, steps=5, batch_size=16,
                     seed=0, progress=False)
masks = lan(x[:4]).detach()
sample = lanlib.fit_sample_masks(model, x[:4], noise.uniform(), beta=0.1, steps=5, seed=0,
                                 progress=False)
print(json.dumps({
    "file": lanlib.__file__,
    "version": importlib.metadata.version("lanlib"),
    "modules": found,
    "shape": list(masks.shape),
    "sample_shape": list(sample.shape),
    "in_unit_interval": bool(((masks >= 0) & (masks <= 1)).all()),
    "extras_visible": [m for m in ("matplotlib", "captum", "sklearn", "torchvision")
                       if importlib.util.find_spec(m) is not None],
}))
"""


def _closure(names) -> set[str]:
    """The installed distributions that ``names`` need, with theirs, extras left out."""
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _link_core_dependencies(folder: Path) -> None:
    """Links to the files of ``[project] dependencies`` and of what they need, nothing else."""
    folder.mkdir()
    for name in sorted(_closure(Requirement(r).name for r in _pyproject()["project"][
            "dependencies"])):
        dist = importlib.metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)


def test_wheel_installs_into_a_fresh_environment(tmp_path):
    """Build the wheel, install it into a new venv that has only the core dependencies, use it.

    ``pip install lanlib`` needs torch, numpy and tqdm and nothing else: the venv sees
    this environment's copies of those (and of what they need) through a .pth file,
    and neither matplotlib, Captum nor scikit-learn.
    """
    source = tmp_path / "src"
    source.mkdir()
    _copy_package_source(source)
    wheels = tmp_path / "wheels"
    # Offline when this environment can build the wheel itself; else pip fetches the
    # build requirements of pyproject.toml into an isolated environment.
    offline = ["--no-build-isolation", "--no-index"] if _can_build_here() else []
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q", str(source),
         "-w", str(wheels)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert build.returncode == 0, f"building the wheel failed:\n{build.stdout}{build.stderr}"
    (wheel,) = wheels.glob("lanlib-*.whl")

    expected = _source_modules()
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    module_files = {
        "/".join(name.split(".")) + ("/__init__.py" if (ROOT / name.replace(".", "/")).is_dir()
                                     else ".py")
        for name in expected
    }
    assert not module_files - files, f"the wheel lacks {sorted(module_files - files)}"

    # A fresh environment without pip; torch, numpy and tqdm (and what they need) come
    # from this interpreter's site-packages through links in a folder named by a .pth
    # file, so the editable install of this checkout and the extras stay invisible.
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    deps = tmp_path / "core-dependencies"
    _link_core_dependencies(deps)
    Path(purelib, "_core_dependencies.pth").write_text(f"{deps}\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", purelib, str(wheel)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}{install.stderr}"

    run = subprocess.run(
        [str(python), "-I", "-c", TINY_FIT, json.dumps(expected)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, f"using the installed wheel failed:\n{run.stderr[-3000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).is_relative_to(purelib), (
        f"imported {result['file']}, not the installed wheel"
    )
    assert result["version"] == _pyproject()["project"]["version"]
    assert sorted(result["modules"]) == sorted(expected), (
        f"installed modules differ from the source tree: "
        f"{sorted(set(expected) ^ set(result['modules']))}"
    )
    assert result["shape"] == [4, 1, 6, 6] and result["in_unit_interval"]
    assert result["sample_shape"] == [4, 1, 6, 6]
    assert result["extras_visible"] == [], "the core environment should not see the extras"
