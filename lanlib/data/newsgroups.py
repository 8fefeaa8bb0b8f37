"""The 20 Newsgroups "bydate" split, with scikit-learn's metadata-removal heuristics.

Sources, in order (paths relative to the data root unless stated):

1. ``20news-bydate/``: the archive extracted by a previous call.
2. ``20news-bydate.tar.gz`` in the data root, then in ``$LANLIB_DATA_MIRROR``
   (members ``20news-bydate-{train,test}/<group>/<id>``); it is verified and
   extracted safely into (1) once.
3. ``sklearn.datasets.fetch_20newsgroups`` (download, cached by scikit-learn under
   ``<data root>/scikit_learn_data``).

Documents are decoded as Latin-1 (as scikit-learn does) and ordered by group name,
then file name, whichever source is used. Header, footer and quote removal is done
here for every source by :func:`strip_headers`, :func:`strip_footer` and
:func:`strip_quotes`, which behave as scikit-learn's documented heuristics.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path, PurePath

import torch

from ._files import (
    DataNotFoundError,
    check_split,
    data_root,
    extract_archive,
    find_file,
    not_found_error,
)

__all__ = ["REMOVE_OPTIONS", "load_newsgroups", "strip_footer", "strip_headers", "strip_quotes"]

REMOVE_OPTIONS = ("headers", "footers", "quotes")
_ARCHIVE = "20news-bydate.tar.gz"
_EXTRACTED = "20news-bydate"
_QUOTE_LINE = re.compile(r"^(?:>|\||In article|Quoted from)|writes:|writes in|wrote:|says:|said:")


def strip_headers(text: str) -> str:
    """Remove the message header: everything up to and including the first blank line.

    A text without a blank line is all header, so the result is ``""``.

    Example:
        >>> strip_headers("From: a@b\\nSubject: hi\\n\\nBody\\n")
        'Body\\n'
    """
    end = text.find("\n\n")
    return "" if end < 0 else text[end + 2 :]


def strip_footer(text: str) -> str:
    """Remove a trailing signature block.

    Heuristic (scikit-learn's): after stripping surrounding whitespace, find the
    last line that is blank or made only of hyphens; if it is not the first line,
    drop it and everything after it. Otherwise the text is returned unchanged.

    Example:
        >>> strip_footer("Body text\\n--\\nJane, ACME Corp.")
        'Body text'
    """
    lines = text.strip().split("\n")
    for index in range(len(lines) - 1, 0, -1):
        if not lines[index].strip().strip("-"):
            return "\n".join(lines[:index])
    return text


def strip_quotes(text: str) -> str:
    """Remove quoted lines and the lines that usually introduce a quotation.

    Dropped lines start with ``>`` or ``|``, ``In article`` or ``Quoted from``, or
    contain ``writes:``, ``writes in``, ``wrote:``, ``says:`` or ``said:``.

    Example:
        >>> strip_quotes("Bob wrote:\\n> old text\\nmy answer")
        'my answer'
    """
    return "\n".join(line for line in text.split("\n") if not _QUOTE_LINE.search(line))


_STRIPPERS = {"headers": strip_headers, "footers": strip_footer, "quotes": strip_quotes}


def _check_remove(remove: Collection[str]) -> list[str]:
    if isinstance(remove, str):
        raise TypeError(
            f"remove must be a collection of option names, e.g. ({remove!r},), not a string"
        )
    unknown = sorted(set(remove) - set(REMOVE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown remove option(s) {unknown}; choose from {REMOVE_OPTIONS}")
    return [option for option in REMOVE_OPTIONS if option in remove]


def _read_folder(folder: Path) -> tuple[list[str], list[int], list[str]]:
    groups = sorted(path.name for path in folder.iterdir() if path.is_dir())
    texts, labels = [], []
    for label, group in enumerate(groups):
        for path in sorted((folder / group).iterdir()):
            texts.append(path.read_bytes().decode("latin1"))
            labels.append(label)
    return texts, labels, groups


def _fetch_sklearn(root: Path, split: str) -> tuple[list[str], list[int], list[str]]:
    from sklearn.datasets import fetch_20newsgroups

    bunch = fetch_20newsgroups(
        data_home=str(root / "scikit_learn_data"), subset=split, shuffle=False, remove=()
    )
    order = sorted(range(len(bunch.data)), key=lambda i: PurePath(bunch.filenames[i]).parts[-2:])
    return (
        [bunch.data[i] for i in order],
        [int(bunch.target[i]) for i in order],
        list(bunch.target_names),
    )


def _raw_split(root: Path, split: str, download: bool) -> tuple[list[str], list[int], list[str]]:
    folder = root / _EXTRACTED
    if not folder.is_dir():
        try:
            archive = find_file(_ARCHIVE, root, download=False)
        except DataNotFoundError:
            if not download:
                raise
            try:
                return _fetch_sklearn(root, split)
            except OSError as exc:
                raise not_found_error(
                    _ARCHIVE, root, f"sklearn.datasets.fetch_20newsgroups failed ({exc})"
                ) from exc
        extract_archive(archive, folder)
    return _read_folder(folder / f"20news-bydate-{split}")


def load_newsgroups(
    split: str = "train",
    remove: Collection[str] = REMOVE_OPTIONS,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[list[str], torch.Tensor, list[str]]:
    """Load a split of 20 Newsgroups (bydate) as raw texts and labels.

    Args:
        split (str): ``"train"`` (11,314 posts) or ``"test"`` (7,532). Default ``"train"``.
        remove (Collection[str]): any of ``"headers"``, ``"footers"``, ``"quotes"``
            (applied in that order, see :func:`strip_headers`, :func:`strip_footer`,
            :func:`strip_quotes`). Default: all three; ``()`` keeps the raw posts.
        root (str | PathLike | None): data root; default :func:`~lanlib.data.data_root`.
        download (bool): allow downloading with scikit-learn. Default True.

    Returns:
        tuple[list[str], Tensor, list[str]]: the N texts, int64 labels ``(N,)``
        indexing the 20 sorted group names, and those names.

    Raises:
        ValueError: bad ``split`` or unknown ``remove`` option.
        TypeError: ``remove`` given as a single string.
        DataNotFoundError: no source available (the message names the paths).
        CorruptFileError: the archive fails its checksum.
        UnsafeArchiveError: the archive has a member that would escape its folder.

    Example:
        >>> texts, labels, names = load_newsgroups("test")
        >>> len(texts), names[int(labels[0])]
        (7532, 'alt.atheism')
    """
    check_split(split)
    options = _check_remove(remove)
    texts, labels, names = _raw_split(data_root(root), split, download)
    for option in options:
        texts = [_STRIPPERS[option](text) for text in texts]
    return texts, torch.tensor(labels, dtype=torch.int64), names
