"""Pieces every training loop of the library shares: batches, seeds, devices, history."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .core import check_inputs, check_module, check_seed, frozen

__all__ = ["History", "batches", "named_device", "seeded"]


class History:
    """Per-step records of a training loop, one list per named quantity.

    Pass an instance as ``history=`` to :func:`lanlib.fit_lan`,
    :func:`lanlib.fit_sample_masks` or :func:`lanlib.train.train_classifier`; it is
    filled when the call returns. Read a series as an attribute or by name, e.g.
    ``history.objective`` or ``history["loss"]``.

    Example:
        >>> h = History()
        >>> h.extend([{"loss": torch.tensor(2.0)}, {"loss": torch.tensor(1.0)}])
        >>> h.loss, len(h)
        ([2.0, 1.0], 2)
    """

    def __init__(self):
        self.series: dict[str, list[float]] = {}

    def extend(self, records: list[dict[str, torch.Tensor]]) -> None:
        """Append one record per step (a dict of scalar tensors); one device sync in all."""
        if not records:
            return
        for key in records[0]:
            values = torch.stack([r[key].detach().float() for r in records]).tolist()
            self.series.setdefault(key, []).extend(values)

    def __getitem__(self, key: str) -> list[float]:
        return self.series[key]

    def __getattr__(self, key: str) -> list[float]:
        series = self.__dict__.get("series", {})
        if key in series:
            return series[key]
        raise AttributeError(f"History has no series {key!r}; it has {sorted(series)}")

    def __len__(self) -> int:
        return max((len(v) for v in self.series.values()), default=0)

    def __repr__(self) -> str:
        return f"History({len(self)} steps: {', '.join(sorted(self.series))})"


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generators seeded by ``seed``, then restore them.

    For code that draws from the global generator and offers no ``generator``
    argument (e.g. the initial weights of an ``nn.Module``): its result depends on
    ``seed`` only, and the global random state after the block is what it was before.

    Args:
        seed (int): the seed.
    """
    if check_seed(seed) is None:
        raise TypeError("seed must be an integer, got None")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def named_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device that ``device`` names, checked to exist on this machine.

    Args:
        device (str or torch.device): ``"auto"`` (CUDA if available, else the CPU), or a
            device such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``torch.device("mps")``.

    Returns:
        torch.device: the device.

    Raises:
        ValueError: a name torch does not know, or a CUDA or MPS device this machine lacks.

    Example:
        >>> named_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device torch knows; use 'auto', 'cpu' or "
                         f"'cuda' ({exc})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"device {str(device)!r} was asked for, but this machine has "
                             f"{count} CUDA device(s) usable by torch; use device='cpu' or "
                             "leave device=None (the model's device)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but MPS is not available here; use "
                         "device='cpu'")
    return device


def resolve_device(model: nn.Module, device) -> torch.device:
    """``device`` if given (see :func:`named_device`), else the device of the model's first
    parameter or buffer. ``model`` must be an ``nn.Module``."""
    check_module("model", model)
    if device is None:
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        return first.device if first is not None else torch.device("cpu")
    return named_device(device)


def floating_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating parameter or buffer (None if it has none)."""
    return next((t.dtype for t in itertools.chain(module.parameters(), module.buffers())
                 if t.is_floating_point()), None)


@contextlib.contextmanager
def explained(model: nn.Module, device: torch.device):
    """Freeze ``model`` on ``device``; put it back where it was afterwards."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    home = first.device if first is not None else device
    with frozen(model):
        model.to(device)
        try:
            yield model
        finally:
            model.to(home)


def generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``, or from the OS when ``seed`` is None.

    The one place where lanlib turns a ``seed`` argument into random numbers: ``seed``
    is checked by :func:`lanlib.core.check_seed` (``"abc"``, ``1.7`` or ``True`` are refused).
    """
    seed = check_seed(seed)
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a CUDA GPU; nothing to wait for on a CPU).

    Call it before reading a clock, so that a timing covers the GPU's work too.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _split(item, labels: bool):
    pair = isinstance(item, (tuple, list))
    if not labels:
        return item[0] if pair else item
    if not pair or len(item) < 2:
        raise ValueError("the data must yield (input, label) pairs to train a classifier")
    return item[0], item[1]


def _draws_from_global(loader: DataLoader) -> bool:
    """Whether a pass over ``loader`` takes randomness from torch's global generator:
    a shuffling sampler without a generator of its own, or workers without one."""
    sampler = loader.batch_sampler.sampler if loader.batch_sampler is not None else loader.sampler
    return getattr(sampler, "generator", False) is None or (
        loader.num_workers > 0 and loader.generator is None)


def _passes(loader: DataLoader, gen: torch.Generator) -> Iterator:
    """One pass over ``loader``; if it shuffles from the global generator, from ``gen`` instead.

    A DataLoader draws its shuffling seed (and its workers' base seed) from torch's
    global generator when its pass starts. That start runs with the global CPU
    generator seeded from ``gen`` and restored afterwards, so the order depends on
    ``gen`` only and the caller's global random state is left as it was.
    """
    if not _draws_from_global(loader):
        yield from loader
        return
    seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        items = iter(loader)
        first = next(items, _END)
    if first is not _END:
        yield first
        yield from items


_END = object()


def batches(data, batch_size: int, gen: torch.Generator, device: torch.device, *,
            labels: bool = False):
    """An endless stream of shuffled batches, moved to ``device``.

    Args:
        data: a tensor ``(N, ...)`` of inputs, a pair of tensors ``(inputs, labels)``, a
            map-style Dataset or a DataLoader (yielding inputs or ``(input, label)`` pairs).
            A DataLoader that shuffles without a generator of its own is shuffled from
            ``gen`` (see :func:`_passes`). An IterableDataset is refused: wrap it in a
            DataLoader.
        batch_size (int): batch size for tensors and Datasets (a DataLoader keeps its own).
        gen (torch.Generator): source of the shuffling.
        device (torch.device): where the batches go.
        labels (bool): yield ``(inputs, labels)`` instead of inputs.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        x, y = check_inputs(data[0]).to(device), data[1].to(device)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        tensors = (x, y)
    elif isinstance(data, torch.Tensor):
        if labels:
            raise ValueError("pass (inputs, labels) to train a classifier, got only inputs")
        tensors = (check_inputs(data).to(device),)
    else:
        tensors = None
    if tensors is not None:
        n = len(tensors[0])
        while True:
            order = torch.randperm(n, generator=gen, device=gen.device).to(device)
            for start in range(0, max(n - batch_size, 0) + 1, batch_size):
                picked = tuple(t[order[start:start + batch_size]] for t in tensors)
                yield picked if labels else picked[0]
    if isinstance(data, IterableDataset):
        raise TypeError(
            f"an IterableDataset ({type(data).__name__}) cannot be shuffled or batched by "
            "lanlib; wrap it in a DataLoader yourself, e.g. DataLoader(dataset, "
            "batch_size=64), or batch_size=None if it yields whole batches"
        )
    if isinstance(data, Dataset):
        seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
        data = DataLoader(data, batch_size=batch_size, shuffle=True,
                          drop_last=len(data) >= batch_size,
                          generator=torch.Generator().manual_seed(seed))
    if not isinstance(data, DataLoader):
        raise TypeError(
            "data must be a tensor (N, ...), a pair (inputs, labels), a Dataset or a "
            f"DataLoader, got {type(data).__name__}"
        )
    while True:
        empty = True
        for item in _passes(data, gen):
            empty = False
            if labels:
                x, y = _split(item, True)
                yield check_inputs(x).to(device), y.to(device)
            else:
                yield check_inputs(_split(item, False)).to(device)
        if empty:
            raise ValueError("the DataLoader yielded no batches")
