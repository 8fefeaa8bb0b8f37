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
    >>> import torch
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
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._version import __version__
from .data._files import (
    check_writable,
    data_root,
    load_tensor_file,
    save_tensor_file,
    shown_path,
)
from .fit import fit_lan
from .loop import seeded
from .train import train_classifier

__all__ = [
    "CheckpointMismatchError",
    "cached_classifier",
    "cached_lan",
    "checkpoint_path",
    "load_or_train",
]

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

    Training is never lost to the file system: that the checkpoint folder can be
    written is checked before training starts, and if saving fails anyway the trained
    network is returned with a warning (and will be trained again next time).

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
        PermissionError: the checkpoint exists but may not be read, or (before any
            training) the checkpoint folder may not be written.

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
        loaded, message = True, f"loaded {name} from {shown_path(path)}"
    else:
        check_writable(path.parent, f"the checkpoint of {name!r}")  # before training, not after
        start = time.perf_counter()
        train(module, config)
        elapsed = time.perf_counter() - start
        meta = {
            "name": name,
            "config": json.loads(canonical)["config"],
            "lanlib_version": __version__,
        }
        loaded = False
        message = f"trained {name} in {elapsed:.1f} s, saved to {shown_path(path)}"
        try:
            save_tensor_file(path, module.state_dict(), meta)
        except (OSError, RuntimeError) as exc:  # torch.save wraps some write errors
            message = f"trained {name} in {elapsed:.1f} s, NOT saved"
            warnings.warn(f"lanlib: trained {name!r} but could not save it to {path} ({exc}); "
                          "the network is returned, but it will be trained again next time",
                          RuntimeWarning, stacklevel=2)
    if verbose:
        print(f"lanlib: {message}")
    return module.eval(), loaded


def _lazy(data):
    """``data()`` for a zero-argument callable (built only when training), else ``data``."""
    return data() if callable(data) and not isinstance(data, (nn.Module, torch.Tensor)) else data


def cached_classifier(
    name: str,
    build: Callable[[dict[str, Any]], nn.Module],
    data,
    *,
    config: Mapping[str, Any],
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int = 0,
    device=None,
    root: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> tuple[nn.Module, dict[str, Any], bool]:
    """A classifier F trained with :func:`lanlib.train.train_classifier`, once: later calls load it.

    The cache key is ``name`` and the whole configuration: ``config`` (what defines the
    network and its data; describe an ``augment`` function there too) plus the training
    settings given here. ``build(key)`` makes the untrained network under
    :func:`lanlib.seeded` ``(seed)``, so its initial weights depend on ``seed`` only.

    Args:
        name (str): the network's name, part of the file name.
        build (callable): ``build(key) -> nn.Module``, the untrained network; ``key`` is
            ``config`` with ``"train"`` (the settings below) added.
        data: what :func:`~lanlib.train.train_classifier` takes (``(inputs, labels)``, a
            Dataset or DataLoader), or a function of no arguments that returns it, called
            only when the network has to be trained.
        config (mapping): JSON-serialisable description of the network and its data.
        steps, lr, batch_size, weight_decay, augment, seed: passed to
            :func:`~lanlib.train.train_classifier`.
        device: where to train and where the network is returned. Default CPU.
        root (str | PathLike | None): data root; default :func:`lanlib.data.data_root`.
        verbose (bool): print whether it was loaded or trained. Default True.

    Returns:
        tuple: F (eval mode, on ``device``), its key (pass it to :func:`cached_lan` as
        ``explains``, so a new F means a new LAN) and whether it was loaded.

    Example:
        >>> from torch import nn
        >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        >>> y = (x[:, 0] > 0).long()
        >>> f, key, loaded = cached_classifier(
        ...     "demo-f", lambda key: nn.Linear(2, 2), (x, y), config={"data": "halfplane"},
        ...     steps=50, lr=0.05, root="/tmp/lanlib-doctest")  # doctest: +SKIP
        lanlib: trained demo-f in 0.1 s, saved to /tmp/lanlib-doctest/checkpoints/...
    """
    key = {**dict(config), "train": {"steps": steps, "lr": lr, "batch_size": batch_size,
                                     "weight_decay": weight_decay, "seed": seed}}

    def make(cfg):
        with seeded(seed):
            return build(cfg)

    def fit(model, cfg):
        train_classifier(model, _lazy(data), steps=steps, lr=lr, batch_size=batch_size,
                         weight_decay=weight_decay, augment=augment, seed=seed,
                         progress=False, device=device)

    model, loaded = load_or_train(name, key, make, fit, root=root, verbose=verbose)
    return model.to(device or "cpu").eval(), key, loaded


def cached_lan(
    name: str,
    model: nn.Module,
    build: Callable[[dict[str, Any]], nn.Module],
    data,
    noise,
    *,
    explains: Mapping[str, Any],
    config: Mapping[str, Any],
    beta: float,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device=None,
    root: str | os.PathLike[str] | None = None,
    verbose: bool = True,
    **fit_options: Any,
) -> tuple[nn.Module, bool]:
    """A LAN trained with :func:`lanlib.fit_lan` to explain ``model``, once: later calls load it.

    The cache key is ``name``, ``explains`` (the key of F, e.g. from
    :func:`cached_classifier`), ``config`` (the LAN's architecture, its data and its
    noise: describe them there, since a noise object cannot be hashed) and the fitting
    settings given here. ``build(key)`` makes the untrained LAN under
    :func:`lanlib.seeded` ``(seed)``.

    Args:
        name (str): the LAN's name, part of the file name.
        model (nn.Module): F, the network explained.
        build (callable): ``build(key) -> nn.Module``, the untrained mask network.
        data: the LAN's training inputs, as :func:`lanlib.fit_lan` takes them, or a
            function of no arguments that returns them (called only to train).
        noise (callable): η, see :mod:`lanlib.noise`.
        explains (mapping): JSON description of F (its cache key).
        config (mapping): JSON description of the LAN, its data and its noise.
        beta, steps, lr, batch_size, seed: passed to :func:`lanlib.fit_lan`.
        device: where to train and where the LAN is returned. Default CPU.
        root (str | PathLike | None): data root; default :func:`lanlib.data.data_root`.
        verbose (bool): print whether it was loaded or trained. Default True.
        **fit_options: further options of :func:`lanlib.fit_lan` (e.g. ``loss="mse"``);
            they are part of the key, except callables (a ``loss`` function), which,
            like the noise, cannot be hashed: describe those in ``config``.

    Returns:
        tuple: the LAN (eval mode, on ``device``) and whether it was loaded.
    """
    key = {"explains": dict(explains), **dict(config),
           "fit": {"beta": beta, "steps": steps, "lr": lr, "batch_size": batch_size,
                   "seed": seed,
                   **{k: v for k, v in fit_options.items() if not callable(v)}}}

    def make(cfg):
        with seeded(seed):
            return build(cfg)

    def fit(lan, cfg):
        fit_lan(model, lan, _lazy(data), noise, beta=beta, steps=steps, lr=lr,
                batch_size=batch_size, seed=seed, progress=False, device=device,
                **fit_options)

    lan, loaded = load_or_train(name, key, make, fit, root=root, verbose=verbose)
    return lan.to(device or "cpu").eval(), loaded
