"""Chapter 05 on a student's machine: no offline mirror, no internet.

The chapter runs under papermill (quick profile, CPU) with ``LANLIB_DATA_MIRROR`` removed
from the kernel's environment and an empty data root, so the ImageNet sample photos are
not found and the chapter works on the photos that ship in Python packages. Every HTTP(S)
proxy variable points at a closed local port, so a download that anything attempts fails
at once instead of waiting for a network that is not there, and the chapter stops: the
test shows that it needs no network. It takes a few minutes (about five under load).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from lanlib.data import package_photos
from lanlib.data.imagenet import PACKAGE_PHOTO_LABELS
from tests._requirements import require_module

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "05_imagenet"
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def offline_student(tmp_path, monkeypatch):
    monkeypatch.delenv("LANLIB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LANLIB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, CLOSED_PORT)
        monkeypatch.setenv(name.upper(), CLOSED_PORT)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_chapter_runs_to_its_end_on_the_package_photos(offline_student):
    papermill = require_module("papermill", "pip install -e '.[book]'")
    output = offline_student / f"{CHAPTER}.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{CHAPTER}.ipynb"), str(output),
                               cwd=str(ROOT / "notebooks"), kernel_name="python3",
                               progress_bar=False, execution_timeout=600,
                               parameters={"profile": "quick", "device": "cpu"})
    executed = nbformat.read(output, as_version=4)
    printed = "".join(out.get("text", "") for cell in executed.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert "ImageNet sample photos not found" in printed

    _, names = package_photos(8)
    labelled = sum(name in PACKAGE_PHOTO_LABELS for name in names)
    assert f"0 ImageNet photos and {len(names)} package photos" in printed
    results = json.loads((offline_student / "data" / "results" / f"{CHAPTER}.json").read_text())
    assert results["n_photos"] == len(names) and results["imagenet_photos"] == 0
    assert results["labelled_photos"] == labelled and len(set(results["photos"])) == len(
        results["photos"])
