"""What every chapter notebook does first and last: one setup call, and its headline numbers saved.

A chapter's ``parameters`` cell holds flat values (``profile``, ``seed``, ``device``);
the cell after it calls :func:`setup`, which rejects mistyped values, turns ``"auto"``
into a concrete profile and device, limits torch to one thread on a CPU, seeds
torch's global generator and sets the plotting defaults. At the end, the chapter
saves its headline numbers with :func:`save_results` to ``data/results/<chapter>.json``.

Example:
    >>> run = setup("quick", seed=0, device="cpu", threads=None)
    >>> run.profile, run.device, run.seed
    ('quick', device(type='cpu'), 0)
    >>> profile, device, seed = run  # or unpack it

The method chapter (``notebooks/01_method``) shows them in use.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .data import data_root
from .data._files import atomic_write
from .loop import named_device
from .plot import use_book_style

__all__ = ["PROFILES", "Setup", "resolve_profile", "results_path", "save_results", "setup"]

#: The profiles every chapter offers: "quick" runs on a CPU in minutes, "full" wants a GPU.
PROFILES = ("quick", "full")


def resolve_profile(profile: str, device: str | torch.device = "auto") -> tuple[str, torch.device]:
    """Turn the ``profile`` and ``device`` of a parameters cell into concrete values.

    Args:
        profile (str): ``"quick"`` (CPU, minutes), ``"full"`` (GPU, the paper's sizes) or
            ``"auto"``: ``"full"`` when the resolved device is a CUDA GPU, else ``"quick"``.
        device (str or torch.device): ``"auto"`` (CUDA if available, else CPU), or any
            torch device string such as ``"cpu"`` or ``"cuda:0"``. Default ``"auto"``.

    Returns:
        tuple (str, torch.device): the profile, one of :data:`PROFILES`, and the device.

    Raises:
        ValueError: for an unknown profile or device, or a CUDA device without CUDA.
    """
    allowed = ("auto", *PROFILES)
    if profile not in allowed:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(map(repr, allowed))}")
    resolved = named_device(device)
    if profile == "auto":
        profile = "full" if resolved.type == "cuda" else "quick"
    return profile, resolved


class Setup(NamedTuple):
    """What :func:`setup` settled: the concrete profile, the device and the seed."""

    profile: str
    device: torch.device
    seed: int


def setup(profile: str = "auto", seed: int = 0, device: str | torch.device = "auto", *,
          threads: int | None = 1) -> Setup:
    """The first call of every chapter: check the parameters and set the run up.

    Args:
        profile (str): ``"quick"``, ``"full"`` or ``"auto"`` (see :func:`resolve_profile`).
        seed (int): the chapter's seed; torch's global generator is seeded with it, so
            that whatever draws from it (initial weights, dropout) repeats run to run.
        device (str or torch.device): ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        threads (int, optional): torch's intra-op threads when the device is a CPU.
            Default 1: the chapters' networks are small, and one thread is faster than
            two that compete on a shared machine. None leaves torch's choice.

    Returns:
        Setup: ``(profile, device, seed)``, a named tuple.

    Raises:
        TypeError: ``seed`` is not an integer.
        ValueError: unknown profile or device, a CUDA device without CUDA, or ``threads``
            not a positive integer.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    profile, resolved = resolve_profile(profile, device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if resolved.type == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    use_book_style()
    return Setup(profile, resolved, seed)


def _check_json(value: Any, where: str) -> None:
    """Raise TypeError (ValueError for NaN/inf) naming the first value JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}, which JSON cannot hold; store None or a string")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "JSON keys must be strings")
            _check_json(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    hint = ""
    if isinstance(value, torch.Tensor) or type(value).__module__.startswith("numpy"):
        hint = "; convert it with .item() (one number) or .tolist() (several)"
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}, which is not "
        f"JSON-serialisable{hint}"
    )


def results_path(notebook_name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`save_results` writes: ``<data root>/results/<notebook_name>.json``."""
    if not isinstance(notebook_name, str) or not notebook_name or any(
        sep in notebook_name for sep in ("/", "\\", os.sep)
    ) or notebook_name.startswith("."):
        raise ValueError(
            f"notebook_name must be a plain file stem such as '01_method', got {notebook_name!r}"
        )
    return data_root(root) / "results" / f"{notebook_name}.json"


def save_results(
    notebook_name: str,
    results: Mapping[str, Any],
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a chapter's headline numbers to ``<data root>/results/<notebook_name>.json``.

    The file is replaced atomically (written to a temporary file in the same folder,
    then renamed), so a reader never sees half of it.

    Args:
        notebook_name (str): the chapter's file stem, e.g. ``"01_method"``.
        results (mapping str -> JSON value): the numbers; must contain ``"profile"``
            (one of :data:`PROFILES`), so that quick and full results are never confused.
            Values are None, bool, int, finite float, str, lists and str-keyed mappings.
        root (str or PathLike, optional): the data root. Default:
            :func:`lanlib.data.data_root` (``$LANLIB_DATA_DIR``, else the checkout's
            ``data/``, else ``~/.cache/lanlib``).

    Returns:
        Path: the file written.

    Raises:
        TypeError: a value (named in the message) is not JSON-serialisable.
        ValueError: ``"profile"`` is missing or unknown, or a float is NaN or infinite.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping (dict), got {type(results).__name__}")
    if results.get("profile") not in PROFILES:
        raise ValueError(
            f"results must contain 'profile' (one of {PROFILES}), got {results.get('profile')!r}"
        )
    _check_json(results, "results")
    path = results_path(notebook_name, root)
    text = json.dumps(dict(results), indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as f:  # a temporary file in the same folder, then os.replace
        f.write(text.encode("utf-8"))
    return path
