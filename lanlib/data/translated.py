"""Translated MNIST: digits shrunk and pasted at random or chosen places on a blank canvas.

Positions are the top-left corner ``(row, col)`` of the digit's square box on the
canvas. An optional exclusion region ``(top, left, height, width)`` is a rectangle
the digit's box never overlaps (not a single pixel of the box lies in it, so no
ink can either); random positions are drawn uniformly among the positions that
respect it. All randomness comes from the ``seed`` argument (an int or a
``torch.Generator``), never from global random state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .mnist import load_mnist

__all__ = ["allowed_positions", "load_translated_mnist", "translate_digits"]


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
    digits = F.interpolate(images, size=(digit_size, digit_size), mode="bilinear", antialias=True)
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
