"""Load-or-train cache for trained networks, so notebooks train each network once.

A network is identified by a ``name`` and a JSON-serialisable ``config``. Its
checkpoint lives at ``<data root>/checkpoints/<name>-<key>.pt``, where ``key`` is the
first 12 hex digits of the SHA-256 of the canonical JSON of ``{"name", "config"}``
(sorted keys, no spaces), so changing any config value trains a new network.

A checkpoint is a ``torch.save`` of ``{"format", "meta", "tensors", "sha256"}``:
``tensors`` is the ``state_dict`` (on the CPU), ``meta`` holds ``name``, ``config``
and ``lanlib_version``, and ``sha256`` covers both, so a damaged file is detected.
It is written atomically and read with ``torch.load(..., weights_only=True)``.

A damaged checkpoint raises :class:`~lanlib.data.CorruptFileError` rather than
retraining silently (training may take long): delete the file to retrain.

Example:
    >>> from torch import nn
    >>> def build(config):
    ...     return nn.Linear(config["inputs"], 2)
    >>> def train(model, config):
    ...     pass  # an optimisation loop
    >>> model, loaded = load_or_train("demo", {"inputs": 4}, build, train)  # doctest: +SKIP
    lanlib: trained demo in 0.0 s, saved to .../checkpoints/demo-1a2b3c4d5e6f.pt
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

import lanlib

from .data._files import data_root, load_tensor_file, save_tensor_file

__all__ = ["CheckpointMismatchError", "checkpoint_path", "load_or_train"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not belong to the requested name/config or to the built network."""


def _canonical(name: str, config: dict[str, Any]) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"name must be letters, digits, '_', '.' or '-' (starting with a letter or "
            f"digit), got {name!r}; it becomes part of a file name"
        )
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    try:
        return json.dumps(
            {"name": name, "config": config},
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"config of {name!r} must be JSON-serialisable (dicts with str keys, lists, "
            f"str, int, finite float, bool, None): {exc}"
        ) from exc


def checkpoint_path(
    name: str, config: dict[str, Any], root: str | os.PathLike[str] | None = None
) -> Path:
    """Return the checkpoint file for ``(name, config)``, whether or not it exists.

    Args:
        name (str): network name, used in the file name.
        config (dict): JSON-serialisable settings that define the network and its training.
        root (str | PathLike | None): data root; default :func:`lanlib.data.data_root`.

    Returns:
        Path: ``<root>/checkpoints/<name>-<12 hex digits>.pt``.

    Raises:
        ValueError: ``name`` is not a plain file-name fragment.
        TypeError: ``config`` is not a JSON-serialisable dict.

    Example:
        >>> checkpoint_path("mlp", {"hidden": 64}, root="/tmp/x").name  # doctest: +SKIP
        'mlp-3f1c0a9b2d4e.pt'
    """
    key = hashlib.sha256(_canonical(name, config).encode()).hexdigest()[:12]
    return data_root(root) / "checkpoints" / f"{name}-{key}.pt"


def load_or_train(
    name: str,
    config: dict[str, Any],
    build: Callable[[dict[str, Any]], nn.Module],
    train: Callable[[nn.Module, dict[str, Any]], object],
    *,
    root: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> tuple[nn.Module, bool]:
    """Return a trained network: load its checkpoint if there is one, else train and save it.

    ``build(config)`` makes the untrained network in both cases. If the checkpoint
    exists, its state is loaded into that network; otherwise ``train(module, config)``
    trains it in place (its return value is ignored) and the ``state_dict`` is saved.
    Either way the network is returned in ``eval()`` mode, and one line says whether
    it was loaded (from where) or trained (and saved where).

    Args:
        name (str): network name (letters, digits, ``_ . -``), used in the file name.
        config (dict): JSON-serialisable settings; part of the cache key and stored
            in the checkpoint. Put everything that changes the result in it
            (architecture, data, epochs, seed, a version number of the training code).
        build (Callable[[dict], nn.Module]): makes the untrained network.
        train (Callable[[nn.Module, dict], object]): trains it in place.
        root (str | PathLike | None): data root; default :func:`lanlib.data.data_root`.
        verbose (bool): print the one-line message. Default True.

    Returns:
        tuple[nn.Module, bool]: the network and whether it was loaded (False: trained now).

    Raises:
        ValueError: bad ``name``.
        TypeError: ``config`` is not a JSON-serialisable dict.
        CheckpointMismatchError: the checkpoint was saved for another name/config
            under the same key, or its tensors do not fit the network ``build`` makes.
        CorruptFileError: the checkpoint is truncated or damaged (delete it to retrain).

    Example:
        >>> model, loaded = load_or_train("mlp", {"hidden": 64}, build, train)  # doctest: +SKIP
        lanlib: loaded mlp from data/checkpoints/mlp-3f1c0a9b2d4e.pt
    """
    canonical = _canonical(name, config)
    path = checkpoint_path(name, config, root)
    module = build(config)
    if path.is_file():
        state, meta = load_tensor_file(path)
        stored = _canonical(meta.get("name"), meta.get("config"))
        if stored != canonical:
            raise CheckpointMismatchError(
                f"{path} holds {stored}, not the requested {canonical} (hash collision or "
                "edited file); delete it to retrain."
            )
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointMismatchError(
                f"{path} does not fit the network that build() makes for {name!r}; the "
                "model code changed since it was saved. Delete the file to retrain, or "
                f"add a version number to the config.\n{exc}"
            ) from exc
        loaded, message = True, f"loaded {name} from {path}"
    else:
        start = time.perf_counter()
        train(module, config)
        meta = {
            "name": name,
            "config": json.loads(canonical)["config"],
            "lanlib_version": getattr(lanlib, "__version__", None),
        }
        save_tensor_file(path, module.state_dict(), meta)
        loaded = False
        message = f"trained {name} in {time.perf_counter() - start:.1f} s, saved to {path}"
    if verbose:
        print(f"lanlib: {message}")
    return module.eval(), loaded
