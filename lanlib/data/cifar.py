"""CIFAR-10 from torchvision's original batches or from the offline ImageFolder archive.

Sources, in order (paths relative to the data root unless stated):

1. ``cifar-10-batches-py/``: the original Python batches, as a previous download
   by ``torchvision.datasets.CIFAR10`` left them (torchvision checks their md5s).
2. ``cifar10-imagefolder-decoded.pt``: the decoded ImageFolder archive, written by
   this module the first time it decodes it.
3. ``cifar10-imagefolder.tar.gz`` in the data root, then in ``$LANLIB_DATA_MIRROR``:
   all 60,000 images as ``cifar10/{train,test}/<class>/NNNN.jpg``. Decoding them
   takes a few seconds; the result is cached as (2), so it happens once.
4. Download of the originals with ``torchvision.datasets.CIFAR10`` into the data root.

The archive's images were re-encoded as JPEG (quality 75), so their pixels differ
slightly from the originals, and its samples come ordered by class (all airplanes
first) rather than in the original shuffled order: shuffle before taking subsets.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

import torch

from ._files import (
    CorruptFileError,
    DataNotFoundError,
    check_split,
    data_root,
    find_file,
    load_tensor_file,
    not_found_error,
    notice_once,
    safe_members,
    save_tensor_file,
    shown_path,
)

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

#: The ten class names, in the order of the labels 0 to 9.
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_ARCHIVE = "cifar10-imagefolder.tar.gz"
_DECODED = "cifar10-imagefolder-decoded.pt"
_TORCHVISION_DIR = "cifar-10-batches-py"
_ARCHIVE_NOTE = (
    "CIFAR-10 read from the offline ImageFolder copy: JPEG re-encoded (pixels differ "
    "slightly from the original batches) and ordered by class; shuffle before subsetting."
)


def _decode_archive(archive: Path) -> dict[str, torch.Tensor]:
    """Decode every JPEG of the ImageFolder archive into uint8 tensors, per split."""
    from torchvision.io import ImageReadMode, decode_jpeg

    entries = []
    with tarfile.open(archive) as tar:
        for member in safe_members(tar, archive):
            if member.isdir():
                continue
            parts = PurePosixPath(member.name).parts
            if (
                len(parts) != 4
                or parts[0] != "cifar10"
                or parts[1] not in ("train", "test")
                or parts[2] not in CIFAR10_CLASSES
            ):
                raise CorruptFileError(
                    f"{archive} has an unexpected member {member.name!r}; expected "
                    "cifar10/{train,test}/<CIFAR-10 class>/<image>.jpg"
                )
            data = bytearray(tar.extractfile(member).read())
            entries.append((parts[1], CIFAR10_CLASSES.index(parts[2]), parts[3], data))
    entries.sort(key=lambda entry: entry[:3])
    tensors = {}
    for split in ("train", "test"):
        chosen = [entry for entry in entries if entry[0] == split]
        blobs = [torch.frombuffer(entry[3], dtype=torch.uint8) for entry in chosen]
        tensors[f"{split}_images"] = torch.stack(decode_jpeg(blobs, mode=ImageReadMode.RGB))
        tensors[f"{split}_labels"] = torch.tensor([entry[1] for entry in chosen])
    return tensors


def _from_torchvision(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    dataset = CIFAR10(str(root), train=split == "train", download=download)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)
    return images, torch.tensor(dataset.targets)


def _check_decoded(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Raise CorruptFileError unless ``tensors`` is what :func:`_decode_archive` writes.

    Per split: uint8 images ``(N, 3, 32, 32)``, as many int64 labels in 0..9, and
    every class present.
    """
    for split in ("train", "test"):
        images, labels = tensors.get(f"{split}_images"), tensors.get(f"{split}_labels")
        problem = None
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            problem = f"no {split}_images/{split}_labels"
        elif images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
            problem = f"{split} images of {images.dtype} {tuple(images.shape)}"
        elif labels.dtype != torch.int64 or labels.shape != (len(images),):
            problem = (f"{split} labels of {labels.dtype} {tuple(labels.shape)} for "
                       f"{len(images)} images")
        elif len(labels) == 0 or labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
            problem = f"{split} labels outside 0..{len(CIFAR10_CLASSES) - 1}"
        elif len(labels.unique()) != len(CIFAR10_CLASSES):
            problem = f"{split} labels missing classes ({len(labels.unique())} of 10 present)"
        if problem is not None:
            raise CorruptFileError(
                f"{path} is a lanlib tensor file but not a decoded CIFAR-10 ({problem}; "
                "expected uint8 images (N, 3, 32, 32) and labels 0..9 per split). Delete it "
                "and run again to decode the archive anew."
            )


def _from_archive(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    decoded = root / _DECODED
    if not decoded.is_file():
        archive = find_file(_ARCHIVE, root, download=False)
        print(f"lanlib: decoding the CIFAR-10 JPEGs in {shown_path(archive)} once, into "
              f"{shown_path(decoded)}")
        save_tensor_file(decoded, _decode_archive(archive), {"source": str(archive)})
    tensors, _ = load_tensor_file(decoded)
    _check_decoded(tensors, decoded)
    notice_once(_ARCHIVE_NOTE)
    return tensors[f"{split}_images"], tensors[f"{split}_labels"]


def load_cifar10(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a CIFAR-10 split as tensors.

    See the module docstring for the sources tried and their order. Labels index
    :data:`CIFAR10_CLASSES` (the standard order) whichever source is used.

    Args:
        split (str): ``"train"`` (50,000 images) or ``"test"`` (10,000). Default ``"train"``.
        root (str | PathLike | None): data root; default :func:`~lanlib.data.data_root`.
        download (bool): allow downloading the originals with torchvision. Default True.

    Returns:
        tuple[Tensor, Tensor]: images, float32 ``(N, 3, 32, 32)`` in [0, 1], and
        labels, int64 ``(N,)`` in 0..9.

    Raises:
        ValueError: bad ``split``.
        DataNotFoundError: no source available (the message names the paths).
        CorruptFileError: the archive, the decoded cache or torchvision's folder is damaged
            (the decoded cache is also checked for its shapes and label range).

    Example (not run by the doctests: the first call decodes or downloads, and says so):
        >>> images, labels = load_cifar10("test")  # doctest: +SKIP
        >>> images.shape, labels.bincount().unique().tolist()  # doctest: +SKIP
        (torch.Size([10000, 3, 32, 32]), [1000])
    """
    check_split(split)
    root = data_root(root)
    if (root / _TORCHVISION_DIR).is_dir():
        try:
            images, labels = _from_torchvision(root, split, download=False)
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
            raise CorruptFileError(
                f"{root / _TORCHVISION_DIR} fails torchvision's md5 check ({exc}); "
                "delete the folder and run again."
            ) from exc
    else:
        try:
            images, labels = _from_archive(root, split)
        except DataNotFoundError:
            if not download:
                raise
            try:
                images, labels = _from_torchvision(root, split, download=True)
            except (OSError, RuntimeError) as exc:
                raise not_found_error(
                    _ARCHIVE, root, f"torchvision.datasets.CIFAR10 into {root} failed ({exc})"
                ) from exc
    return images.float().div_(255), labels.long()
