"""Translated MNIST: digits shrunk and pasted at random or chosen places on a blank canvas.

Positions are the top-left corner ``(row, col)`` of the digit's square box on the
canvas. An optional exclusion region ``(top, left, height, width)`` is a rectangle
the digit's box never overlaps (not a single pixel of the box lies in it, so no
ink can either); random positions are drawn uniformly among the positions that
respect it. All randomness comes from the ``seed`` argument (an int or a
``torch.Generator``), never from global random state.

- :func:`translate_digits`, :func:`load_translated_mnist`: one placement per digit;
- :class:`TranslatedStream`, :func:`translated_loader`: fresh random placements every
  batch, for training on the fly;
- :func:`shrink_digits`, :func:`place_everywhere`: every digit at every position,
  one big batch (e.g. to map a classifier's accuracy over the canvas).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from .mnist import load_mnist

__all__ = [
    "TranslatedStream",
    "allowed_positions",
    "load_translated_mnist",
    "place_everywhere",
    "shrink_digits",
    "translate_digits",
    "translated_loader",
]


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _overlaps(
    rows: torch.Tensor, cols: torch.Tensor, size: int, region: Sequence[int]
) -> torch.Tensor:
    """Whether ``size x size`` boxes with top-left corners ``(rows, cols)`` overlap ``region``."""
    top, left, height, width = region
    return (
        (rows < top + height) & (rows + size > top) & (cols < left + width) & (cols + size > left)
    )


def _check_region(exclude: Sequence[int], canvas_size: int) -> tuple[int, ...]:
    region = tuple(exclude)
    if len(region) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in region):
        raise ValueError(f"exclude must be four ints (top, left, height, width), got {exclude!r}")
    top, left, height, width = region
    if height < 1 or width < 1 or top < 0 or left < 0:
        raise ValueError(f"exclude={region} needs top, left >= 0 and height, width >= 1")
    if top + height > canvas_size or left + width > canvas_size:
        raise ValueError(
            f"exclude={region} reaches outside the {canvas_size}x{canvas_size} canvas; "
            f"keep top + height and left + width <= {canvas_size}"
        )
    return region


def allowed_positions(
    canvas_size: int = 28, digit_size: int = 12, exclude: Sequence[int] | None = None
) -> torch.Tensor:
    """List every top-left corner where a digit box fits on the canvas and avoids ``exclude``.

    Args:
        canvas_size (int): canvas side in pixels. Default 28.
        digit_size (int): digit box side in pixels. Default 12.
        exclude (Sequence[int] | None): ``(top, left, height, width)`` the box must
            not overlap, or None. Default None.

    Returns:
        Tensor: int64 ``(K, 2)`` of ``(row, col)`` corners, in row-major order.

    Raises:
        ValueError: non-positive sizes, a digit larger than the canvas, or a region
            outside the canvas.

    Example:
        >>> allowed_positions(28, 12, exclude=(16, 16, 12, 12)).shape
        torch.Size([145, 2])
    """
    _positive_int("canvas_size", canvas_size)
    _positive_int("digit_size", digit_size)
    if digit_size > canvas_size:
        raise ValueError(
            f"digit_size={digit_size} is larger than the canvas ({canvas_size}); "
            "use a smaller digit or a larger canvas"
        )
    span = torch.arange(canvas_size - digit_size + 1)
    rows, cols = torch.meshgrid(span, span, indexing="ij")
    allowed = torch.ones_like(rows, dtype=torch.bool)
    if exclude is not None:
        allowed = ~_overlaps(rows, cols, digit_size, _check_region(exclude, canvas_size))
    return torch.stack([rows[allowed], cols[allowed]], dim=1)


def shrink_digits(images: torch.Tensor, digit_size: int) -> torch.Tensor:
    """Resize frames ``(N, C, H, W)`` to ``digit_size`` squares, as :func:`translate_digits` does.

    Antialiased bilinear interpolation, so values stay within the input's range.
    Shrinking once and then placing the small digits (a same-size resize is the
    identity) saves the resize on every batch.

    Args:
        images (Tensor (N, C, H, W)): float frames, e.g. MNIST ``(N, 1, 28, 28)``.
        digit_size (int): side of the result.

    Returns:
        Tensor (N, C, digit_size, digit_size).

    Example:
        >>> shrink_digits(torch.rand(3, 1, 28, 28), 7).shape
        torch.Size([3, 1, 7, 7])
    """
    return F.interpolate(images, size=(digit_size, digit_size), mode="bilinear", antialias=True)


def translate_digits(
    images: torch.Tensor,
    positions: torch.Tensor | Sequence[int] | None = None,
    *,
    canvas_size: int = 28,
    digit_size: int = 12,
    exclude: Sequence[int] | None = None,
    seed: int | torch.Generator = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink each image to ``digit_size`` and paste it on a blank canvas.

    The whole input frame (for MNIST: the 28x28 image with its border) is resized
    with antialiased bilinear interpolation, so values stay within the input's
    range. All digits are placed at once with index arithmetic, no Python loop.

    Args:
        images (Tensor): float ``(N, C, H, W)``, e.g. MNIST ``(N, 1, 28, 28)``.
        positions (Tensor | Sequence[int] | None): top-left corners, int
            ``(N, 2)`` as ``(row, col)``, or one ``(row, col)`` for all digits; None
            draws them uniformly from :func:`allowed_positions`. Default None.
        canvas_size (int): canvas side in pixels. Default 28.
        digit_size (int): side of the digit's box in pixels. Default 12.
        exclude (Sequence[int] | None): ``(top, left, height, width)`` region the
            digit's box never overlaps, e.g. ``(16, 16, 12, 12)`` for the bottom-right
            12x12 corner of a 28x28 canvas. Default None.
        seed (int | torch.Generator): source of the random positions; an int seeds a
            fresh generator, so equal seeds give equal outputs. Default 0.

    Returns:
        tuple[Tensor, Tensor]: canvases ``(N, C, canvas_size, canvas_size)`` with
        the images' dtype (background 0), and the positions used, int64 ``(N, 2)``.

    Raises:
        TypeError: ``images`` is not a floating tensor or ``seed`` has a wrong type.
        ValueError: wrong shapes, a digit larger than the canvas, a region outside
            the canvas, no allowed position left, or a given position off the
            canvas or overlapping ``exclude``.

    Example:
        >>> canvases, where = translate_digits(torch.rand(5, 1, 28, 28), exclude=(16, 16, 12, 12))
        >>> canvases.shape, where.shape
        (torch.Size([5, 1, 28, 28]), torch.Size([5, 2]))
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor of shape (N, C, H, W)")
    if images.dim() != 4:
        raise ValueError(
            f"images must have shape (N, C, H, W), got {tuple(images.shape)}; "
            "add the channel axis with images.unsqueeze(1)"
        )
    candidates = allowed_positions(canvas_size, digit_size, exclude)
    count = images.shape[0]
    if positions is None:
        if len(candidates) == 0:
            raise ValueError(
                f"no position for a {digit_size}-pixel digit on a {canvas_size}-pixel "
                f"canvas avoids exclude={tuple(exclude)}; shrink the region or the digit"
            )
        if isinstance(seed, torch.Generator):
            generator = seed
        elif isinstance(seed, int) and not isinstance(seed, bool):
            generator = torch.Generator().manual_seed(seed)
        else:
            raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
        positions = candidates[torch.randint(len(candidates), (count,), generator=generator)]
    else:
        positions = torch.as_tensor(positions)
        if positions.is_floating_point() or positions.dtype == torch.bool:
            raise TypeError(f"positions must hold ints, got dtype {positions.dtype}")
        if positions.shape not in ((2,), (count, 2)):
            raise ValueError(
                f"positions must have shape ({count}, 2) or (2,), got {tuple(positions.shape)}"
            )
        positions = positions.to(torch.int64).expand(count, 2)
        ok = (positions >= 0).all(1) & (positions <= canvas_size - digit_size).all(1)
        if exclude is not None:
            ok &= ~_overlaps(positions[:, 0], positions[:, 1], digit_size, tuple(exclude))
        if not ok.all():
            bad = int((~ok).nonzero()[0])
            raise ValueError(
                f"position {positions[bad].tolist()} of digit {bad} puts its {digit_size}-pixel "
                f"box off the {canvas_size}-pixel canvas or over exclude={exclude}; "
                "corners must be in allowed_positions(...)"
            )
    digits = shrink_digits(images, digit_size)
    offsets = torch.arange(digit_size)
    rows = (positions[:, 0, None] + offsets)[:, :, None]
    cols = (positions[:, 1, None] + offsets)[:, None, :]
    canvases = images.new_zeros(count, images.shape[1], canvas_size, canvas_size)
    canvases[torch.arange(count)[:, None, None], :, rows, cols] = digits.permute(0, 2, 3, 1)
    return canvases, positions.clone()


def load_translated_mnist(
    split: str = "train",
    n: int | None = None,
    *,
    canvas_size: int = 28,
    digit_size: int = 12,
    exclude: Sequence[int] | None = None,
    seed: int | torch.Generator = 0,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Load MNIST and place each digit at a random allowed position (see :func:`translate_digits`).

    Args:
        split (str): ``"train"`` or ``"test"`` (see :func:`~lanlib.data.load_mnist`,
            whose offline train split has 10,000 digits). Default ``"train"``.
        n (int | None): use the first ``n`` digits; None for all. Default None.
        canvas_size, digit_size, exclude, seed: as in :func:`translate_digits`.
        root (str | PathLike | None): data root. Default None.
        download (bool): allow downloading MNIST. Default True.

    Returns:
        tuple[Tensor, Tensor, Tensor]: canvases float32 ``(N, 1, canvas_size,
        canvas_size)`` in [0, 1], labels int64 ``(N,)``, positions int64 ``(N, 2)``.

    Example:
        >>> x, y, where = load_translated_mnist("test", n=100, exclude=(16, 16, 12, 12), seed=1)
        >>> x.shape
        torch.Size([100, 1, 28, 28])
    """
    if n is not None:
        _positive_int("n", n)
    images, labels = load_mnist(split, root=root, download=download)
    canvases, positions = translate_digits(
        images[:n], canvas_size=canvas_size, digit_size=digit_size, exclude=exclude, seed=seed
    )
    return canvases, labels[:n], positions


def place_everywhere(digits: torch.Tensor, positions: torch.Tensor, canvas_size: int = 28
                     ) -> torch.Tensor:
    """Every digit at every position, in one batch (no Python loop).

    Args:
        digits (Tensor (N, C, s, s)): digits already shrunk to their box size ``s``
            (see :func:`shrink_digits`).
        positions (Tensor (P, 2)): top-left corners ``(row, col)``.
        canvas_size (int): canvas side. Default 28.

    Returns:
        Tensor (P, N, C, canvas_size, canvas_size): ``out[p, n]`` is digit ``n`` at
        ``positions[p]``.

    Example:
        >>> place_everywhere(torch.rand(3, 1, 7, 7), allowed_positions(28, 7)[:5]).shape
        torch.Size([5, 3, 1, 28, 28])
    """
    n, size = len(digits), digits.shape[-1]
    repeated = digits.repeat(len(positions), 1, 1, 1)
    corners = positions.repeat_interleave(n, dim=0)
    canvases, _ = translate_digits(repeated, corners, canvas_size=canvas_size, digit_size=size)
    return canvases.reshape(len(positions), n, *canvases.shape[1:])


class TranslatedStream(IterableDataset):
    """An endless stream of batches of digits placed at fresh random positions.

    Every batch draws ``batch_size`` digits (with replacement) and a random allowed
    position for each, so a network trained on it never sees the same canvas twice
    ("generated on the fly"). All randomness comes from ``seed``: iterating twice
    gives the same batches.

    Args:
        images (Tensor (N, 1, H, W)): the digits, e.g. MNIST in [0, 1].
        labels (Tensor (N,)): their classes.
        batch_size (int): canvases per batch. Default 64.
        canvas_size (int): canvas side. Default 28.
        digit_size (int): side of the digit's box. Default 12.
        exclude (Sequence[int] | None): ``(top, left, height, width)`` the digits never
            overlap. Default None.
        seed (int): seed of the digit and position draws. Default 0.

    Yields:
        tuple[Tensor, Tensor]: canvases ``(batch_size, 1, canvas_size, canvas_size)`` and
        labels ``(batch_size,)``.

    Example:
        >>> stream = iter(TranslatedStream(torch.rand(10, 1, 28, 28), torch.arange(10), 4))
        >>> [tuple(t.shape) for t in next(stream)]
        [(4, 1, 28, 28), (4,)]
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, *,
                 canvas_size: int = 28, digit_size: int = 12,
                 exclude: Sequence[int] | None = None, seed: int = 0):
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.digits = shrink_digits(images, digit_size)
        self.labels = labels
        self.batch_size, self.canvas_size, self.digit_size = batch_size, canvas_size, digit_size
        self.exclude = None if exclude is None else tuple(exclude)
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        while True:
            index = torch.randint(len(self.digits), (self.batch_size,), generator=gen)
            canvases, _ = translate_digits(self.digits[index], canvas_size=self.canvas_size,
                                           digit_size=self.digit_size, exclude=self.exclude,
                                           seed=gen)
            yield canvases, self.labels[index]


def translated_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64,
                      **kwargs) -> DataLoader:
    """A DataLoader over a :class:`TranslatedStream` (keyword arguments go to it).

    Pass it as ``data`` to :func:`lanlib.train.train_classifier` or :func:`lanlib.fit_lan`.

    Example:
        >>> x, y = next(iter(translated_loader(torch.rand(10, 1, 28, 28), torch.arange(10), 4)))
        >>> x.shape, y.shape
        (torch.Size([4, 1, 28, 28]), torch.Size([4]))
    """
    return DataLoader(TranslatedStream(images, labels, batch_size, **kwargs), batch_size=None)
