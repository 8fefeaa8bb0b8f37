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

From raw posts to the count vectors a bag-of-words classifier reads:

1. :func:`tokenize`: lower-case, split into runs of letters and digits, keep
   tokens of two or more characters that contain a letter, drop stop words
   (:func:`stop_words` is scikit-learn's English list).
2. :class:`Vocabulary`: the most frequent training words; every other word maps
   to one shared ``<unk>`` entry (index 0), so rare words still count.
3. :class:`BagOfWords`: the documents' counts, held sparse and handed out as dense
   float rows (a map-style ``Dataset``), so that a 20,000-word vocabulary does not
   need a dense matrix of all documents in memory.

Example:
    >>> docs = ["The rocket launch was delayed.", "Rocket engines and launch pads."]
    >>> tokens = [tokenize(d, stop_words()) for d in docs]
    >>> tokens[0]
    ['rocket', 'launch', 'delayed']
    >>> vocab = Vocabulary.build(tokens, max_size=2)
    >>> vocab.words
    ['<unk>', 'launch', 'rocket']
    >>> bow = BagOfWords.from_tokens(tokens, vocab)
    >>> bow.dense()
    tensor([[1., 1., 1.],
            [2., 1., 1.]])
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path, PurePath

import torch
from torch.utils.data import Dataset

from ._files import (
    DataNotFoundError,
    check_split,
    data_root,
    extract_archive,
    find_file,
    not_found_error,
)

__all__ = [
    "REMOVE_OPTIONS",
    "UNK",
    "BagOfWords",
    "Vocabulary",
    "load_newsgroups",
    "stop_words",
    "strip_footer",
    "strip_headers",
    "strip_quotes",
    "tokenize",
]

#: The parts of a post that ``remove=`` may strip.
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


# ----------------------------------------------------------------------------- bags of words

#: The vocabulary entry that stands for every word outside the vocabulary.
UNK = "<unk>"

_TOKEN = re.compile(r"[a-z0-9]+")
_LETTER = re.compile(r"[a-z]")


def stop_words(extra: Iterable[str] = ()) -> frozenset[str]:
    """scikit-learn's English stop-word list (318 words), plus ``extra``.

    The paper removes stop words before building the bag of words; this is the
    list scikit-learn uses for ``CountVectorizer(stop_words="english")``.

    Args:
        extra (iterable of str): further words to drop. Default none.

    Returns:
        frozenset of str: lower-case stop words.

    Raises:
        ImportError: scikit-learn is not installed (``pip install scikit-learn``).
    """
    try:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    except ImportError as exc:  # pragma: no cover - scikit-learn ships with the book extra
        raise ImportError(
            "stop_words() uses scikit-learn's English list: pip install scikit-learn"
        ) from exc
    return frozenset(ENGLISH_STOP_WORDS) | frozenset(w.lower() for w in extra)


def tokenize(text: str, stop: Iterable[str] = frozenset()) -> list[str]:
    """Split ``text`` into lower-case word tokens, in order, without stop words.

    A token is a run of letters and digits (``[a-z0-9]+`` after lower-casing) of at
    least two characters containing at least one letter: ``"x11"`` and ``"486dx"``
    stay, bare numbers such as ``"1993"`` and single letters go.

    Args:
        text (str): the document.
        stop (iterable of str): words to drop, e.g. :func:`stop_words`. Default none.

    Returns:
        list of str: the tokens.

    Example:
        >>> tokenize("In 1993, X11R5 ran on my 486!", {"in", "on", "my"})
        ['x11r5', 'ran']
    """
    stop = stop if isinstance(stop, (set, frozenset)) else frozenset(stop)
    return [
        t for t in _TOKEN.findall(text.lower())
        if len(t) > 1 and t not in stop and _LETTER.search(t)
    ]


class Vocabulary:
    """Words and their indices; index 0 is :data:`UNK`, shared by all other words.

    Args:
        words (sequence of str): the known words, without :data:`UNK`, in index order
            (they get indices 1, 2, ...).

    Example:
        >>> vocab = Vocabulary(["space", "orbit"])
        >>> vocab.index("orbit"), vocab.index("banana"), len(vocab)
        (2, 0, 3)
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if UNK in words:
            raise ValueError(f"{UNK!r} is reserved for unknown words; leave it out of words")
        if len(set(words)) != len(words):
            raise ValueError("words must be unique")
        self.words: list[str] = [UNK, *words]
        self._index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(
        cls,
        documents: Iterable[Sequence[str]],
        *,
        max_size: int | None = None,
        min_count: int = 1,
    ) -> Vocabulary:
        """The most frequent words of tokenised ``documents``.

        Words are ranked by total count (ties: alphabetically) and kept while they
        occur at least ``min_count`` times and fewer than ``max_size`` are kept.

        Args:
            documents (iterable of token lists): usually the training split only.
            max_size (int, optional): the most words to keep (:data:`UNK` not counted).
            min_count (int): the fewest occurrences a kept word has. Default 1.

        Returns:
            Vocabulary: with ``min(max_size, #words with >= min_count uses) + 1`` entries.
        """
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be >= 1 or None, got {max_size!r}")
        counts = Counter()
        for doc in documents:
            counts.update(doc)
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count and w != UNK),
            key=lambda w: (-counts[w], w),
        )
        return cls(ranked[:max_size])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        """The index of ``word``, 0 (:data:`UNK`) if it is not in the vocabulary."""
        return self._index.get(word, 0)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``; unknown ones become 0."""
        return [self._index.get(t, 0) for t in tokens]

    def lookup(self, indices) -> list[str]:
        """Words of ``indices`` (ints or a 1-D tensor)."""
        return [self.words[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries incl. {UNK})"


class BagOfWords(Dataset):
    """Word counts of N documents over a vocabulary, stored sparse, served as dense rows.

    Rows are count vectors of length ``V = len(vocab)``; column 0 counts the words
    outside the vocabulary. ``bow[i]`` is row ``i`` as a float tensor ``(V,)``, or
    ``(row, label)`` when labels were given, so the object can be passed as training
    data or as a bootstrap-noise pool to lanlib's fitting functions.

    Args:
        indptr (Tensor (N + 1,)), columns (Tensor (nnz,)), values (Tensor (nnz,)): the
            compressed-sparse-row layout: row ``i``'s columns are
            ``columns[indptr[i]:indptr[i + 1]]`` (sorted, unique), its counts ``values[...]``.
        vocab_size (int): V.
        labels (Tensor (N,), optional): class labels.
    """

    def __init__(self, indptr, columns, values, vocab_size: int, labels=None):
        self.indptr = torch.as_tensor(indptr, dtype=torch.int64)
        self.columns = torch.as_tensor(columns, dtype=torch.int64)
        self.values = torch.as_tensor(values, dtype=torch.float32)
        self.vocab_size = int(vocab_size)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
        if self.labels is not None and len(self.labels) != len(self):
            raise ValueError(f"{len(self)} documents but {len(self.labels)} labels")

    @classmethod
    def from_tokens(
        cls, documents: Iterable[Sequence[str]], vocab: Vocabulary, labels=None
    ) -> BagOfWords:
        """Count the tokens of each document over ``vocab`` (unknown words go to column 0)."""
        indptr, columns, values = [0], [], []
        for doc in documents:
            counts = Counter(vocab.encode(doc))
            for column in sorted(counts):
                columns.append(column)
                values.append(float(counts[column]))
            indptr.append(len(columns))
        return cls(indptr, columns, values, len(vocab), labels)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> torch.Tensor:
        """Dense counts of document ``i``, shape ``(V,)``."""
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        out = torch.zeros(self.vocab_size)
        out[self.columns[a:b]] = self.values[a:b]
        return out

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"document {i} out of range for {len(self)} documents")
        i = int(i) % len(self)
        return self.row(i) if self.labels is None else (self.row(i), self.labels[i])

    def dense(self, index=None) -> torch.Tensor:
        """Dense counts ``(n, V)`` of the documents ``index`` (default: all of them)."""
        rows = range(len(self)) if index is None else [int(i) for i in index]
        out = torch.zeros(len(rows), self.vocab_size)
        for r, i in enumerate(rows):
            a, b = int(self.indptr[i]), int(self.indptr[i + 1])
            out[r, self.columns[a:b]] = self.values[a:b]
        return out

    def lengths(self) -> torch.Tensor:
        """Number of tokens (vocabulary words and unknown ones) of each document ``(N,)``."""
        sums = torch.zeros(len(self)).index_add_(
            0, torch.repeat_interleave(torch.arange(len(self)), self.indptr.diff()), self.values
        )
        return sums

    def distinct(self) -> torch.Tensor:
        """Number of distinct vocabulary columns (UNK included) of each document ``(N,)``."""
        return self.indptr.diff()

    def document_frequency(self) -> torch.Tensor:
        """In how many documents each column occurs, ``(V,)``."""
        return torch.bincount(self.columns, minlength=self.vocab_size).float()

    def __repr__(self) -> str:
        return (f"BagOfWords({len(self)} documents x {self.vocab_size} columns, "
                f"{len(self.values)} non-zero)")
