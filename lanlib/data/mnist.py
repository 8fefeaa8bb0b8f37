"""MNIST handwritten digits from the original IDX files.

Files (relative to the data root and to ``$LANLIB_DATA_MIRROR``)::

    mnist/train-images-idx3-ubyte.gz   mnist/train-labels-idx1-ubyte.gz
    mnist/t10k-images-idx3-ubyte.gz    mnist/t10k-labels-idx1-ubyte.gz

Online they are downloaded from the mirrors torchvision and TensorFlow use.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import torch

from ._files import check_split, data_root, find_file

__all__ = ["MNIST_URLS", "load_mnist"]

#: Where the MNIST files are downloaded from, tried in order.
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FILES = {
    "train": ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"),
    "test": ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(relpath: str, root: Path, download: bool) -> torch.Tensor:
    """Find, verify and read a gzipped IDX file of unsigned bytes into a uint8 tensor."""
    urls = [base + Path(relpath).name for base in MNIST_URLS]
    raw = gzip.decompress(find_file(relpath, root, urls=urls, download=download).read_bytes())
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(shape)


def load_mnist(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an MNIST split as tensors.

    Each file is looked for in the data root, then in ``$LANLIB_DATA_MIRROR``, then
    downloaded into the data root (see :func:`lanlib.data.data_root`), and checked
    against its known SHA-256 before it is read.

    Offline, from the mirror, the train split has only **10,000** digits (the first
    10,000 of the original 60,000, pixels exact); a one-line note says so the first
    time that copy is used in a process. The test split is complete either way.

    Args:
        split (str): ``"train"`` or ``"test"``. Default ``"train"``.
        root (str | PathLike | None): data root; default :func:`~lanlib.data.data_root`.
        download (bool): allow downloading the original files. Default True.

    Returns:
        tuple[Tensor, Tensor]: images, float32 ``(N, 1, 28, 28)`` in [0, 1], and
        labels, int64 ``(N,)`` in 0..9. N is 60,000 (train; 10,000 from the
        mirror) or 10,000 (test).

    Raises:
        ValueError: bad ``split``.
        DataNotFoundError: a file is nowhere to be found (the message names the paths).
        CorruptFileError: a file fails its checksum.

    Example:
        >>> images, labels = load_mnist("test")
        >>> images.shape, labels.dtype
        (torch.Size([10000, 1, 28, 28]), torch.int64)
    """
    check_split(split)
    root = data_root(root)
    images, labels = (_read_idx(rel, root, download) for rel in _FILES[split])
    return images.unsqueeze(1).float().div_(255), labels.long()
