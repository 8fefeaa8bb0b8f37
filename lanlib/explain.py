"""Masks for a whole dataset, written as they are made, and read back lazily.

:func:`explain_dataset` cuts the data into fixed global batches (batch ``b`` holds
the items ``b*B`` to ``(b+1)*B - 1``), fits each batch's masks with a seed made from
``(seed, b)`` and writes them as one shard, so the masks do not depend on how many
processes share the work nor on where a run was interrupted. Under ``torchrun`` rank
``r`` of ``N`` takes the batches ``r, r + N, ...``.

The folder ``out`` holds::

    index.json           format, lanlib version, configuration, shards and checksums
    shards/000000.npy    the masks of batch 0, a NumPy array (N_b, *mask_shape)
    shards/000000.json   that shard's record: items, shape, dtype, SHA-256, configuration

Every file is written atomically (a temporary name, then a rename), so a killed run
leaves whole files only. A shard counts as finished when its record exists and its
checksum matches: a rerun with ``resume=True`` keeps those and redoes the rest. The
index is written first (unfinished) and rewritten with every shard once all ranks are
done; :func:`load_explanations` reads only a finished one. (Shards are NumPy files
rather than safetensors: safetensors is not among lanlib's dependencies.)

Example (a model that reads the first two of eight features):
    >>> import tempfile, torch
    >>> from torch import nn
    >>> import lanlib
    >>> model = nn.Linear(8, 2)
    >>> x = torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    >>> out = tempfile.mkdtemp()
    >>> store = lanlib.explain_dataset(model, x, lanlib.noise.constant(0.0), out=out,
    ...                                beta=0.05, steps=20, batch_size=4, progress=False)
    >>> len(store), tuple(store[0:3].shape), store.config["steps"]
    (10, (3, 8), 20)

The page "Explaining a whole dataset" of the book (``book/explain_dataset.md``) shows
it on the CIFAR-10 test set, in one process and under ``torchrun``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import numbers
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, SequentialSampler
from torch.utils.data.dataloader import default_collate
from tqdm.auto import tqdm

from ._version import __version__
from .core import check_inputs, check_mask, check_module, check_seed
from .data._files import CorruptFileError, atomic_write
from .fit import fit_sample_masks, join_process_group
from .loop import explained, resolve_device

__all__ = [
    "ConfigurationMismatchError",
    "ExplanationStore",
    "explain_dataset",
    "load_explanations",
    "run_processes",
]

FORMAT = "lanlib-explanations-1"
INDEX = "index.json"
SHARDS = "shards"

#: The variables torchrun sets for each process; a job started from inside one must not see them.
_LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                 "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                 "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE")

#: Options of :func:`lanlib.fit_sample_masks` that :func:`explain_dataset` sets itself or
#: that make no sense across batches.
_NOT_PASSED_ON = ("seed", "progress", "device", "history", "callback")


class ConfigurationMismatchError(ValueError):
    """``out`` holds masks made with another configuration, or by another number of processes.

    The page ``book/explain_dataset.md`` (after ``notebooks/06_tank_story``) explains it.
    """


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (any dtype, any device)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    head = f"{flat.dtype}{tuple(tensor.shape)}".encode()
    return _digest(head + flat.view(torch.uint8).numpy().tobytes())


def _module_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state (parameters and buffers, by name)."""
    hasher = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        hasher.update(name.encode())
        if isinstance(value, torch.Tensor):
            hasher.update(_tensor_digest(value).encode())
    return hasher.hexdigest()


def _describe(value):
    """A JSON value that stands for ``value`` in the configuration (stable between runs)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list, torch.Size)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, torch.Tensor):
        return {"tensor_sha256": _tensor_digest(value)}
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, nn.Module):
        return {"module": type(value).__qualname__, "sha256": _module_digest(value)}
    if type(value).__repr__ is not object.__repr__:  # lanlib's noises and gates say what they are
        return repr(value)
    kind = value if callable(value) and hasattr(value, "__qualname__") else type(value)
    return f"{getattr(kind, '__module__', '')}.{kind.__qualname__}"


def batch_seed(seed: int, batch: int) -> int:
    """The seed of global batch ``batch`` of a run seeded with ``seed`` (63 bits)."""
    raw = hashlib.sha256(f"lanlib.explain_dataset:{seed}:{batch}".encode()).digest()
    return int.from_bytes(raw[:8], "big") >> 1


class _Source:
    """Indexed access to the items of a tensor, a map-style Dataset or a DataLoader's dataset."""

    def __init__(self, data):
        self.tensor = self.dataset = None
        self.collate = default_collate
        if isinstance(data, torch.Tensor):
            self.tensor = check_inputs(data)
            return
        if isinstance(data, DataLoader):
            if not isinstance(data.sampler, SequentialSampler):
                raise ValueError(
                    "explain_dataset takes the batches in the data's own order (batch b holds "
                    "items b*B to (b+1)*B - 1), but this DataLoader shuffles or samples; pass "
                    "its dataset, or a DataLoader with shuffle=False")
            self.collate = data.collate_fn
            data = data.dataset
        if isinstance(data, IterableDataset) or not isinstance(data, Dataset) or not hasattr(
                data, "__len__"):
            raise TypeError(
                "data must be a tensor (N, ...), a map-style Dataset with a length, or a "
                f"DataLoader over one (masks are stored by item index), got {type(data).__name__}")
        if len(data) == 0:
            raise ValueError("the dataset is empty; pass at least one item")
        self.dataset = data

    def __len__(self) -> int:
        return len(self.tensor if self.tensor is not None else self.dataset)

    def items(self, start: int, stop: int) -> torch.Tensor:
        """The inputs of items ``start`` to ``stop - 1`` as one batch (labels dropped)."""
        if self.tensor is not None:
            return self.tensor[start:stop]
        batch = self.collate([self.dataset[i] for i in range(start, stop)])
        return check_inputs(batch[0] if isinstance(batch, (tuple, list)) else batch)


def _configuration(model, source: _Source, noise, method, beta, steps, batch_size, seed,
                   fit_kwargs) -> dict:
    """Everything the masks depend on, as JSON: a rerun must match it to reuse shards."""
    n = len(source)
    first, last = source.items(0, 1), source.items(n - 1, n)
    config = {
        "model": _describe(model),
        "data": {"items": n, "item_shape": list(first.shape[1:]), "dtype": str(first.dtype),
                 "first_and_last_sha256": _digest((_tensor_digest(first)
                                                   + _tensor_digest(last)).encode())},
        "noise": _describe(noise),
        "batch_size": batch_size,
        "seed": seed,
    }
    if isinstance(method, nn.Module):
        config["method"] = "lan"
        config["lan"] = _describe(method)
    else:
        config.update(method="sample_masks", beta=_describe(beta), steps=steps,
                      fit=_describe(fit_kwargs))
    return config


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            found.append(f"{prefix}{key}: {json.dumps(a)} then, {json.dumps(b)} now")
    return found


def _write_json(path: Path, value: dict) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(value, indent=1, sort_keys=True).encode())


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{what} {path} is damaged ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptFileError(f"{what} {path} is damaged (not a JSON object)")
    return value


def _unwritable(out: Path, exc: OSError) -> OSError:
    return OSError(exc.errno, f"cannot write the masks to {out} ({exc.strerror or exc}); pass "
                              "an out= folder you can write (the shards already there are kept)")


def _prepare(out: Path, config: dict, world: int, resume: bool) -> None:
    """On rank 0: check that ``out`` may receive this run's shards; mark the run unfinished.

    Raises before anything is written: ``out`` holds another configuration's masks, an
    unfinished run of another number of processes, or files that are not lanlib's; or
    cannot be written.
    """
    index_path = out / INDEX
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out={out} is a file; pass a folder for the masks")
    if index_path.exists():
        index = _read_json(index_path, "the index")
        if index.get("format") != FORMAT:
            raise ConfigurationMismatchError(
                f"{index_path} is not an index of lanlib.explain_dataset (format "
                f"{index.get('format')!r}); pass another out=")
        changed = _differences(index.get("config", {}), config)
        if changed:
            raise ConfigurationMismatchError(
                f"out={out} holds masks made with another configuration; it differs in "
                + "; ".join(changed) + ". Nothing was changed there: pass another out=, or "
                "delete that folder to start over")
        if resume and not index["complete"] and index["world_size"] != world:
            raise ConfigurationMismatchError(
                f"out={out} holds an unfinished run started by {index['world_size']} "
                f"process(es), and this one has {world}; nothing was changed there. Resume it "
                f"with {index['world_size']} (torchrun --nproc-per-node ...), or pass "
                "resume=False to redo every shard")
        if resume and index["complete"]:
            _check_can_write(out)  # the finished index stays until the shards are checked
            return
    elif out.exists() and any(out.iterdir()):
        raise ConfigurationMismatchError(
            f"out={out} is not empty and holds no {INDEX}: it is not a folder of "
            "lanlib.explain_dataset; pass a new or empty folder")
    try:
        (out / SHARDS).mkdir(parents=True, exist_ok=True)
        _write_json(index_path, {"format": FORMAT, "lanlib_version": __version__,
                                 "config": config, "world_size": world, "complete": False,
                                 "shards": []})
    except OSError as exc:
        raise _unwritable(out, exc) from exc


def _check_can_write(out: Path) -> None:
    try:
        with atomic_write(out / SHARDS / ".write-test"):
            pass
        (out / SHARDS / ".write-test").unlink()
    except OSError as exc:
        raise _unwritable(out, exc) from exc


def _shard_paths(out: Path, batch: int) -> tuple[Path, Path]:
    stem = out / SHARDS / f"{batch:06d}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json")


def _finished(out: Path, batch: int, start: int, stop: int, config_sha256: str) -> bool:
    """Whether shard ``batch`` is whole: its record matches this run and its checksum holds."""
    data_path, record_path = _shard_paths(out, batch)
    try:
        record = json.loads(record_path.read_bytes())
        return (record.get("config_sha256") == config_sha256
                and (record.get("start"), record.get("stop")) == (start, stop)
                and _digest(data_path.read_bytes()) == record.get("sha256"))
    except (OSError, ValueError):
        return False


def _write_shard(out: Path, batch: int, start: int, stop: int, masks: torch.Tensor,
                 config_sha256: str) -> None:
    buffer = io.BytesIO()
    masks = masks.detach().cpu()
    array = (masks.float() if masks.dtype == torch.bfloat16 else masks).numpy()  # NumPy has no bf16
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    data_path, record_path = _shard_paths(out, batch)
    try:
        with atomic_write(data_path) as f:
            f.write(data)
        _write_json(record_path, {"batch": batch, "start": start, "stop": stop,
                                  "shape": list(array.shape), "dtype": str(array.dtype),
                                  "sha256": _digest(data), "config_sha256": config_sha256,
                                  "file": f"{SHARDS}/{data_path.name}"})
    except OSError as exc:
        raise _unwritable(out, exc) from exc


def _all_ranks(world: int, action):
    """Run ``action()`` here; if it raised on any rank, raise on every rank (none waits forever).

    The failing rank raises its own exception, the others a copy of the first one.
    """
    error, result = None, None
    try:
        result = action()
    except Exception as exc:  # shared with the other ranks, then raised
        if world == 1:
            raise
        error = exc
    if world > 1:
        errors = [None] * world
        dist.all_gather_object(errors, error)
        if error is not None:
            raise error
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
    return result


def _finish(out: Path, count: int, batch_size: int, n: int, config: dict, config_sha256: str,
            world: int) -> None:
    """On rank 0, once all ranks are done: the finished index, from the shards' records."""
    shards = []
    for batch in range(count):
        record_path = _shard_paths(out, batch)[1]
        if not record_path.exists():
            raise FileNotFoundError(
                f"the record of shard {batch} ({record_path}) is missing although its rank "
                "finished: out must be one folder every process (every node) can see")
        record = _read_json(record_path, "the shard record")
        if record.get("config_sha256") != config_sha256:
            raise ConfigurationMismatchError(
                f"shard {batch} was made with another configuration while this run went on "
                f"(two runs share out={out}?); rerun with resume=True to redo it")
        shards.append({k: record[k] for k in ("file", "start", "stop", "shape", "dtype",
                                               "sha256")})
    first = shards[0]
    _write_json(out / INDEX, {
        "format": FORMAT, "lanlib_version": __version__, "config": config,
        "world_size": world, "complete": True, "items": n, "batch_size": batch_size,
        "mask_shape": first["shape"][1:], "dtype": first["dtype"], "shards": shards})


def explain_dataset(
    model: nn.Module,
    data,
    noise,
    *,
    out,
    method="sample_masks",
    beta: float | None = None,
    steps: int = 300,
    batch_size: int = 64,
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    device=None,
    **fit_kwargs,
) -> ExplanationStore:
    r"""Masks for every item of a dataset, written shard by shard under ``out``; resumable.

    The page ``book/explain_dataset.md`` of the book (after ``notebooks/06_tank_story``)
    explains it.

    Global batch ``b`` holds the items ``b*B`` to ``(b+1)*B - 1`` (``B = batch_size``; the
    last may be shorter). Its masks come from :func:`lanlib.fit_sample_masks` with the
    seed :func:`batch_seed` ``(seed, b)``, or from a trained LAN; they go to one shard,
    written atomically with its checksum, and are then dropped, so memory holds one
    batch. The same call under ``torchrun`` (or in processes where
    ``torch.distributed`` is initialised) shares the batches: rank ``r`` of ``N`` takes
    ``r, r + N, ...``, and the masks are the same whatever ``N``. The index is written
    once every rank is done.

    Args:
        model (nn.Module): F, the network explained (frozen during the call, restored after).
        data (Tensor (N, ...), Dataset or DataLoader): the inputs, in a fixed order; a Dataset
            may yield ``(input, label)`` pairs. A DataLoader must not shuffle: its dataset
            and ``collate_fn`` are used, with this call's ``batch_size``.
        noise (callable): ``noise(inputs, generator) -> eta``, see :mod:`lanlib.noise`.
        out (str or Path): the folder of the shards and the index; new, empty, or holding
            an earlier run of this very configuration.
        method (str or nn.Module): ``"sample_masks"`` (Eq. 4, one mask per input, fitted) or
            a trained LAN (Eq. 3), whose output on each batch is stored. Default
            ``"sample_masks"``.
        beta (float, optional): reward for larger masks, as for :func:`lanlib.fit_sample_masks`
            (or give ``max_distortion`` among ``fit_kwargs``). Unused with a LAN.
        steps (int): optimisation steps per batch. Default 300. Unused with a LAN.
        batch_size (int): items per global batch and per shard. Default 64.
        seed (int): the run's seed; batch ``b`` is fitted with ``batch_seed(seed, b)``.
            Default 0.
        resume (bool): keep the shards of an earlier run of the same configuration whose
            checksums hold, and redo the others. False redoes every shard. Default True.
        progress (bool): a progress bar and a closing line, on rank 0. Default True.
        device (str or torch.device, optional): where to compute; default the model's device.
            Under ``torchrun`` a bare ``"cuda"`` means this process's GPU (``LOCAL_RANK``).
        **fit_kwargs: passed on to :func:`lanlib.fit_sample_masks` (``lr``, ``mask_shape``,
            ``loss``, ``tv``, ``max_distortion``, ...), and part of the configuration.

    Returns:
        ExplanationStore: the finished store (as :func:`load_explanations` gives), on every rank.

    Raises:
        ConfigurationMismatchError: ``out`` holds masks of another configuration, an
            unfinished run of another number of processes, or files that are not lanlib's;
            nothing there is changed.
        OSError: ``out`` cannot be written (the shards already written are kept).
        ValueError, TypeError: bad data, a shuffling DataLoader, bad fitting options.
    """
    check_module("model", model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or (
            batch_size < 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if check_seed(seed) is None:
        raise TypeError("seed must be an integer (batch b is fitted with a seed made from "
                        "(seed, b)); None would make every run different")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    refused = sorted(set(fit_kwargs) & set(_NOT_PASSED_ON))
    if refused:
        raise TypeError(f"explain_dataset sets {', '.join(refused)} itself; drop them from "
                        "its arguments")
    if isinstance(method, nn.Module):
        if fit_kwargs:
            raise TypeError(f"{', '.join(sorted(fit_kwargs))}: options of fit_sample_masks, "
                            "not used with a trained LAN; drop them")
    elif method != "sample_masks":
        raise ValueError(f"method must be 'sample_masks' or a trained LAN (an nn.Module), got "
                         f"{method!r}")
    batch_size, seed = int(batch_size), int(seed)
    rank, world, device = join_process_group(resolve_device(model, device))
    source = _Source(data)
    n = len(source)
    count = math.ceil(n / batch_size)
    config = _configuration(model, source, noise, method, beta, steps, batch_size, seed,
                            fit_kwargs)
    config_sha256 = _digest(json.dumps(config, sort_keys=True).encode())
    out = Path(out).expanduser()
    started = time.perf_counter()
    _all_ranks(world, lambda: _prepare(out, config, world, resume) if rank == 0 else None)

    def work() -> tuple[int, int]:
        done = kept = 0
        mine = range(rank, count, world)
        for batch in tqdm(mine, disable=not progress or rank != 0, desc="explain_dataset"):
            start, stop = batch * batch_size, min((batch + 1) * batch_size, n)
            if resume and _finished(out, batch, start, stop, config_sha256):
                kept += 1
                continue
            x = source.items(start, stop)
            if isinstance(method, nn.Module):
                with explained(method, device), torch.no_grad():
                    on = x.to(device)
                    masks = check_mask(method(on), on, source="the LAN's output")
            else:
                masks = fit_sample_masks(model, x, noise, beta=beta, steps=steps,
                                         seed=batch_seed(seed, batch), progress=False,
                                         device=device, **fit_kwargs)
            _write_shard(out, batch, start, stop, masks, config_sha256)
            done += 1
        return done, kept

    done, kept = _all_ranks(world, work)
    _all_ranks(world, lambda: _finish(out, count, batch_size, n, config, config_sha256, world)
               if rank == 0 else None)
    if world > 1:
        counts = [None] * world
        dist.all_gather_object(counts, (done, kept))
        done, kept = (sum(c[i] for c in counts) for i in (0, 1))
    if progress and rank == 0:
        print(f"explain_dataset: {done} shard(s) fitted, {kept} kept from an earlier run, "
              f"{n} items, {world} process(es), {time.perf_counter() - started:.1f} s")
    return load_explanations(out)


class ExplanationStore:
    """The masks :func:`explain_dataset` wrote under a folder: read-only, loaded lazily.

    The page ``book/explain_dataset.md`` (after ``notebooks/06_tank_story``) explains it.

    ``len(store)`` is the number of items; ``store[i]`` is item ``i``'s mask and
    ``store[a:b]`` (any slice) a batch of them, as new tensors (changing them leaves the
    files alone). A shard is read when first needed, its SHA-256 checked against the
    index, and kept until another shard is needed, so memory holds one shard.

    Attributes:
        path (Path): the folder.
        config (dict): the configuration the masks were made with (a copy).
        lanlib_version (str): the version of lanlib that made them.
        mask_shape (tuple): the shape of one mask.
        dtype (torch.dtype): the masks' dtype.
    """

    def __init__(self, path: Path, index: dict):
        self.path = path
        self._index = index
        self.lanlib_version = index["lanlib_version"]
        self.mask_shape = tuple(index["mask_shape"])
        self.dtype = getattr(torch, index["dtype"])
        self._starts = [s["start"] for s in index["shards"]]
        self._cached: tuple[int, torch.Tensor] | None = None

    @property
    def config(self) -> dict:
        return copy.deepcopy(self._index["config"])

    def __len__(self) -> int:
        return self._index["items"]

    def __repr__(self) -> str:
        return (f"ExplanationStore({len(self)} masks of shape {self.mask_shape}, "
                f"{len(self._starts)} shards, method {self._index['config']['method']!r})")

    def _shard(self, number: int) -> torch.Tensor:
        if self._cached is not None and self._cached[0] == number:
            return self._cached[1]
        entry = self._index["shards"][number]
        path = self.path / entry["file"]
        data = path.read_bytes()
        if _digest(data) != entry["sha256"]:
            raise CorruptFileError(
                f"shard {number} ({path}) is damaged: its SHA-256 does not match the index. "
                "Rerun lanlib.explain_dataset with the same arguments and resume=True: it "
                "redoes the damaged shards and keeps the others")
        masks = torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False))
        if list(masks.shape) != entry["shape"]:
            raise CorruptFileError(f"shard {number} ({path}) has shape {list(masks.shape)}, "
                                   f"the index says {entry['shape']}")
        self._cached = (number, masks)
        return masks

    def _item(self, i: int) -> torch.Tensor:
        number = (i // self._index["batch_size"])
        return self._shard(number)[i - self._starts[number]]

    def __getitem__(self, key) -> torch.Tensor:
        n = len(self)
        if isinstance(key, slice):
            picked = range(*key.indices(n))
            if key.step in (None, 1) and len(picked):
                size = self._index["batch_size"]
                parts = []
                for number in range(picked.start // size, (picked.stop - 1) // size + 1):
                    shard, base = self._shard(number), self._starts[number]
                    parts.append(shard[max(picked.start - base, 0):picked.stop - base])
                return torch.cat(parts).clone()
            if not len(picked):
                return torch.empty((0, *self.mask_shape), dtype=self.dtype)
            return torch.stack([self._item(i) for i in picked])
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"index the store with an integer or a slice, got {key!r}")
        i = int(key) + n if key < 0 else int(key)
        if not 0 <= i < n:
            raise IndexError(f"item {key} is out of range for {n} masks")
        return self._item(i).clone()

    def verify(self) -> None:
        """Read every shard and check its checksum (loading checks only the shards read).

        Raises:
            CorruptFileError: the first damaged shard, with what to do.
        """
        for number in range(len(self._starts)):
            self._shard(number)


def load_explanations(out) -> ExplanationStore:
    """Open the masks :func:`explain_dataset` wrote under ``out``, read-only and lazily.

    The page ``book/explain_dataset.md`` (after ``notebooks/06_tank_story``) explains it.

    Args:
        out (str or Path): the folder given to :func:`explain_dataset`.

    Returns:
        ExplanationStore: ``len(store)``, ``store[i]``, ``store[a:b]``, ``store.config``;
        each shard's checksum is checked when it is first read (``store.verify()`` checks
        them all).

    Raises:
        FileNotFoundError: no index under ``out``.
        ValueError: the run that writes there is not finished.
        CorruptFileError: the index is damaged.
    """
    out = Path(out).expanduser()
    index_path = out / INDEX
    if not index_path.exists():
        raise FileNotFoundError(f"{out} holds no {INDEX}: not a folder written by "
                                "lanlib.explain_dataset")
    index = _read_json(index_path, "the index")
    if index.get("format") != FORMAT:
        raise CorruptFileError(f"{index_path} is not an index of lanlib.explain_dataset "
                               f"(format {index.get('format')!r})")
    if not index.get("complete"):
        raise ValueError(f"the run writing to {out} is not finished; rerun lanlib.explain_dataset "
                         "with the same arguments (resume=True keeps the finished shards)")
    return ExplanationStore(out, index)


def run_processes(command: Sequence[str], processes: int = 1, *, threads: int = 1,
                  timeout: float | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run a Python script or module alone, or under ``torchrun --standalone`` in N processes.

    What the tests and the benchmark use to compare one process with several on one
    machine; a cluster uses ``torchrun`` or ``srun`` directly (the book's page
    "Explaining a whole dataset"). ``torchrun`` is started as
    ``python -m torch.distributed.run``, so the same interpreter runs every process.
    The job sees none of a surrounding launcher's variables, ``threads`` intra-op
    threads (``OMP_NUM_THREADS``) and the folder holding ``lanlib`` first on its
    ``PYTHONPATH``.

    Args:
        command (sequence of str): what follows ``python``: a script and its arguments,
            or ``["-m", "module", ...]``.
        processes (int): 1 (plain ``python``) or more (``torchrun --standalone
            --nproc-per-node processes``). Default 1.
        threads (int): intra-op threads per process. Default 1.
        timeout (float, optional): seconds before the job is killed.
        cwd (path, optional): the job's working directory.

    Returns:
        subprocess.CompletedProcess: with ``returncode``, ``stdout`` and ``stderr`` (text).
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be an integer >= 1, got {processes!r}")
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(processes)]
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_ENV}
    root = str(Path(__file__).resolve().parents[1])
    env.update(OMP_NUM_THREADS=str(int(threads)),
               PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])))
    return subprocess.run([*launcher, *command], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)
