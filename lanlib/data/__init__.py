"""Datasets for the book: MNIST, translated MNIST, CIFAR-10, 20 Newsgroups, ImageNet photos,
and selective-dependence tasks built on MNIST or tokens (:mod:`lanlib.data.sdc`).

Every loader returns tensors and finds its files the same way: first in the data
root (:func:`data_root`: the ``root`` argument, ``$LANLIB_DATA_DIR``, the
checkout's ``data/`` folder or ``~/.cache/lanlib``), then in the offline mirror
named by ``$LANLIB_DATA_MIRROR``, and only then by downloading the original.
Files are checked against known SHA-256 digests before they are read, archives
are extracted safely, and every file lanlib writes is written atomically.
``data/README.md`` in the repository lists the files each loader looks for.

Example:
    >>> from lanlib.data import load_mnist
    >>> images, labels = load_mnist("test")
"""

from ._files import CorruptFileError, DataNotFoundError, UnsafeArchiveError, data_root
from .cifar import CIFAR10_CLASSES, load_cifar10
from .imagenet import (
    PACKAGE_PHOTO_LABELS,
    imagenet_class_names,
    load_imagenet_samples,
    package_photos,
)
from .mnist import MNIST_URLS, load_mnist
from .newsgroups import (
    REMOVE_OPTIONS,
    UNK,
    BagOfWords,
    Vocabulary,
    load_newsgroups,
    stop_words,
    strip_footer,
    strip_headers,
    strip_quotes,
    tokenize,
)
from .sdc import SDC, mnist_sdc, segment_truth, token_sdc
from .translated import (
    TranslatedStream,
    allowed_positions,
    load_translated_mnist,
    place_everywhere,
    shrink_digits,
    translate_digits,
    translated_loader,
)

__all__ = [
    "REMOVE_OPTIONS",
    "UNK",
    "BagOfWords",
    "CIFAR10_CLASSES",
    "CorruptFileError",
    "DataNotFoundError",
    "MNIST_URLS",
    "PACKAGE_PHOTO_LABELS",
    "SDC",
    "TranslatedStream",
    "UnsafeArchiveError",
    "Vocabulary",
    "allowed_positions",
    "data_root",
    "imagenet_class_names",
    "load_cifar10",
    "load_imagenet_samples",
    "load_mnist",
    "load_newsgroups",
    "load_translated_mnist",
    "mnist_sdc",
    "package_photos",
    "place_everywhere",
    "segment_truth",
    "shrink_digits",
    "stop_words",
    "strip_footer",
    "strip_headers",
    "strip_quotes",
    "token_sdc",
    "tokenize",
    "translate_digits",
    "translated_loader",
]
