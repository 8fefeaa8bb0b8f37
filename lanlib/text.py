"""Bags of words for the 20 Newsgroups chapter: tokens, a vocabulary, count vectors, tables.

The pipeline from raw posts to the count vectors a bag-of-words classifier reads:

1. :func:`tokenize`: lower-case, split into runs of letters and digits, keep
   tokens of two or more characters that contain a letter, drop stop words
   (:func:`stop_words` is scikit-learn's English list).
2. :class:`Vocabulary`: the most frequent training words; every other word maps
   to one shared ``<unk>`` entry (index 0), so rare words still count.
3. :class:`BagOfWords`: the documents' counts, held sparse and handed out as dense
   float rows (a map-style ``Dataset``), so that a 20,000-word vocabulary does not
   need a dense matrix of all documents in memory.

Then the measurements the chapter makes on word importances (``1 - mask``):
:func:`top_words`, :func:`tfidf`, :func:`delete_top_words` and
:func:`deletion_flip_rate` (faithfulness: delete a document's most important
words, does the prediction change?), :func:`rank_agreement` (do two explanations
rank a document's words alike?) and :func:`class_top_words`. Finally the HTML
tables of the chapter: :func:`top_words_table` and :func:`class_words_table`
highlight words in bold on a light blue background (readable in a light theme and
for colour-blind readers, since the cue is weight and lightness, not hue).

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

The chapter ``notebooks/04_newsgroups`` uses all of it.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .loop import resolve_device
from .plot import MARKERS, OKABE_ITO, new_figure, root_figure

__all__ = [
    "UNK",
    "BagOfWords",
    "Vocabulary",
    "class_top_words",
    "class_words_table",
    "delete_top_words",
    "deletion_flip_rate",
    "highlight",
    "plot_flip_rates",
    "plot_importance_by_presence",
    "predict_bags",
    "rank_agreement",
    "stop_words",
    "tfidf",
    "tokenize",
    "top_words",
    "top_words_table",
]

#: The vocabulary entry that stands for every word outside the vocabulary.
UNK = "<unk>"

_TOKEN = re.compile(r"[a-z0-9]+")
_LETTER = re.compile(r"[a-z]")

#: Inline style of a highlighted word: bold, dark blue on light blue (contrast ratio > 10).
HIGHLIGHT_STYLE = (
    "font-weight:700;background:#cfe3ff;color:#08306b;padding:0 3px;border-radius:3px"
)
_PLAIN_STYLE = "color:#222"
_FAINT_STYLE = "color:#666"
_TABLE_STYLE = (
    "border-collapse:collapse;background:#ffffff;color:#111;font-size:0.9em;"
    "margin:0.5em 0;max-width:100%"
)
_CELL_STYLE = "border:1px solid #bbb;padding:6px 8px;vertical-align:top;text-align:left"
_HEAD_STYLE = _CELL_STYLE + ";background:#f2f2f2;font-weight:600;white-space:nowrap"


# ----------------------------------------------------------------------------- tokens


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


# ----------------------------------------------------------------------------- counts


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


@torch.no_grad()
def predict_bags(model: nn.Module, bags: BagOfWords, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` for every document of ``bags``, densified ``batch_size`` at a time.

    Args:
        model (nn.Module): maps counts ``(n, V)`` to logits; run in eval mode (restored after).
        bags (BagOfWords): the documents.
        batch_size (int): documents per dense batch. Default 1024.

    Returns:
        Tensor (N, classes): the logits, on the CPU.
    """
    training = model.training
    model.eval()
    device = resolve_device(model, None)
    try:
        out = [model(bags.dense(range(i, min(i + batch_size, len(bags)))).to(device)).cpu()
               for i in range(0, len(bags), batch_size)]
    finally:
        model.train(training)
    return torch.cat(out)


def tfidf(counts: torch.Tensor, document_frequency: torch.Tensor, n_documents: int) -> torch.Tensor:
    """TF-IDF weights of count vectors: ``counts * (log((1 + n) / (1 + df)) + 1)``.

    The smoothed inverse document frequency of scikit-learn's ``TfidfTransformer``
    (without its row normalisation, which does not change a document's ranking).

    Args:
        counts (Tensor (N, V)): term counts.
        document_frequency (Tensor (V,)): documents containing each word, from the
            training split (:meth:`BagOfWords.document_frequency`).
        n_documents (int): number of training documents.

    Returns:
        Tensor (N, V): the weights, 0 where the count is 0.
    """
    idf = torch.log((1 + n_documents) / (1 + document_frequency.float())) + 1
    return counts * idf.to(counts)


# ----------------------------------------------------------------------------- scores


def top_words(scores: torch.Tensor, k: int, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the ``k`` highest ``scores`` per row, highest first.

    Args:
        scores (Tensor (N, V)): e.g. importance ``1 - mask``.
        k (int): how many.
        counts (Tensor (N, V), optional): when given, only words present in the
            document (count > 0) are ranked; rows with fewer than ``k`` of them are
            padded with ``-1``.

    Returns:
        Tensor (N, k) int64.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, V), got {tuple(scores.shape)}")
    if counts is None:
        return scores.topk(k, dim=1).indices
    ranked = scores.masked_fill(counts <= 0, -math.inf)
    values, indices = ranked.topk(k, dim=1)
    return indices.masked_fill(values == -math.inf, -1)


def delete_top_words(counts: torch.Tensor, scores: torch.Tensor, k: int) -> torch.Tensor:
    """Set to zero the counts of the ``k`` present words with the highest score in each row.

    Words absent from a document are never chosen (deleting them would change
    nothing); a document with fewer than ``k`` distinct words loses them all.

    Args:
        counts (Tensor (N, V)): the documents.
        scores (Tensor (N, V)): how important each word is, higher first.
        k (int): words to delete per document.

    Returns:
        Tensor (N, V): a copy of ``counts`` with those words removed.
    """
    if counts.shape != scores.shape:
        raise ValueError(f"counts {tuple(counts.shape)} and scores {tuple(scores.shape)} differ")
    chosen = top_words(scores, k, counts)
    keep = torch.ones_like(counts)
    valid = chosen >= 0
    rows = torch.arange(len(counts)).unsqueeze(1).expand_as(chosen)
    keep[rows[valid], chosen[valid]] = 0
    return counts * keep


@torch.no_grad()
def deletion_flip_rate(
    model: nn.Module,
    counts: torch.Tensor,
    scores: torch.Tensor,
    ks: Sequence[int] = (1, 3, 5, 10),
    *,
    batch_size: int = 512,
) -> dict[str, dict[int, float]]:
    """Faithfulness: delete each document's top-``k`` words by ``scores``; how often does F change?

    For every ``k``, the top-``k`` present words of each document (by ``scores``) are
    deleted (:func:`delete_top_words`) and the model predicts again. A faithful
    ranking changes the prediction more often than a random one, with fewer words.

    Args:
        model (nn.Module): F, count vectors ``(N, V)`` to logits; evaluated in eval mode
            (its mode is restored).
        counts (Tensor (N, V)): the documents.
        scores (Tensor (N, V)): word scores, higher = more important.
        ks (sequence of int): numbers of words to delete. Default ``(1, 3, 5, 10)``.
        batch_size (int): documents per forward pass. Default 512.

    Returns:
        dict: ``"flip_rate"`` ``{k: share of documents whose predicted class changed}`` and
        ``"prob_drop"`` ``{k: mean drop of the probability of the originally predicted
        class}``.
    """
    training = model.training
    model.eval()
    device = resolve_device(model, None)
    try:
        flips = dict.fromkeys(ks, 0.0)
        drops = dict.fromkeys(ks, 0.0)
        for start in range(0, len(counts), batch_size):
            x = counts[start:start + batch_size].to(device)
            s = scores[start:start + batch_size].to(device)
            probs = model(x).softmax(dim=1)
            pred = probs.argmax(dim=1, keepdim=True)
            for k in ks:
                after = model(delete_top_words(x, s, k)).softmax(dim=1)
                flips[k] += float((after.argmax(dim=1, keepdim=True) != pred).sum())
                drops[k] += float((probs.gather(1, pred) - after.gather(1, pred)).sum())
    finally:
        model.train(training)
    n = len(counts)
    return {"flip_rate": {k: v / n for k, v in flips.items()},
            "prob_drop": {k: v / n for k, v in drops.items()}}


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Mid-ranks (1 = smallest) of a 1-D tensor, ties sharing their mean rank."""
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def rank_agreement(
    a: torch.Tensor, b: torch.Tensor, counts: torch.Tensor, k: int = 5
) -> dict[str, torch.Tensor]:
    """How alike two word scorings rank each document's own words.

    Only words present in the document (count > 0) are compared.

    Args:
        a, b (Tensor (N, V)): two scorings, higher = more important.
        counts (Tensor (N, V)): the documents.
        k (int): size of the top sets compared. Default 5.

    Returns:
        dict of ``(N,)`` tensors: ``"spearman"``, the rank correlation of ``a`` and ``b``
        over the document's words (NaN with fewer than 3 words or a constant scoring), and
        ``"overlap"``, the share of ``a``'s top-``k`` words that are in ``b``'s top-``k``
        (over ``min(k, #words)``).

    Example:
        >>> c = torch.tensor([[1.0, 2.0, 1.0, 0.0]])
        >>> out = rank_agreement(torch.tensor([[3.0, 2.0, 1.0, 9.0]]),
        ...                      torch.tensor([[30.0, 20.0, 10.0, -5.0]]), c, k=2)
        >>> round(out["spearman"].item(), 6), out["overlap"].item()
        (1.0, 1.0)
    """
    if not a.shape == b.shape == counts.shape:
        raise ValueError("a, b and counts must have one shape (N, V)")
    spearman, overlap = [], []
    for ai, bi, ci in zip(a, b, counts, strict=True):
        present = ci > 0
        n = int(present.sum())
        if n >= 3:
            ra, rb = _ranks(ai[present]), _ranks(bi[present])
            ra, rb = ra - ra.mean(), rb - rb.mean()
            denom = ra.norm() * rb.norm()
            spearman.append(float((ra @ rb) / denom) if denom > 0 else math.nan)
        else:
            spearman.append(math.nan)
        m = min(k, n)
        if m == 0:
            overlap.append(math.nan)
            continue
        top_a = set(top_words(ai[None], m, ci[None])[0].tolist())
        top_b = set(top_words(bi[None], m, ci[None])[0].tolist())
        overlap.append(len(top_a & top_b) / m)
    return {"spearman": torch.tensor(spearman, dtype=torch.float64),
            "overlap": torch.tensor(overlap, dtype=torch.float64)}


def class_top_words(
    top: torch.Tensor, labels: torch.Tensor, num_classes: int, n: int = 8
) -> list[list[tuple[int, int]]]:
    """Per class, the words that most often appear in the documents' top lists.

    Args:
        top (Tensor (N, k)): each document's top word indices (``-1`` = padding).
        labels (Tensor (N,)): the class of each document (true or predicted).
        num_classes (int): number of classes.
        n (int): words kept per class. Default 8.

    Returns:
        list (one per class) of ``(word index, number of documents)`` pairs, most frequent
        first (ties: lower index first).
    """
    out = []
    for c in range(num_classes):
        rows = top[labels == c]
        counter = Counter(int(i) for i in rows.flatten() if i >= 0)
        out.append(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n])
    return out


# ----------------------------------------------------------------------------- HTML


def highlight(word: str, on: bool = True) -> str:
    """``word`` as HTML, escaped; in bold on light blue when ``on``."""
    text = html.escape(word)
    return f'<span style="{HIGHLIGHT_STYLE}">{text}</span>' if on else text


def _word_list(words: Sequence[str], marked: set[str], values=None) -> str:
    items = []
    for i, w in enumerate(words):
        value = "" if values is None else f' <span style="{_FAINT_STYLE}">{values[i]:.2f}</span>'
        items.append(f"{highlight(w, w in marked)}{value}")
    return ", ".join(items)


def top_words_table(
    tokens: Sequence[str],
    top: Sequence[str],
    *,
    scores: Sequence[float] | None = None,
    caption: str = "",
    max_tokens: int = 120,
    vocab: Vocabulary | None = None,
    score_name: str = "importance = 1 − mask",
) -> str:
    """An HTML table of one document and its most important words (the paper's Tables 1-4).

    Highlighted words (bold, dark blue on light blue) are those in *both* the
    document and the top list: in the top list they mark the words the document
    contains, in the document the words the explanation picked.

    Args:
        tokens (sequence of str): the document's tokens in order (stop words removed).
        top (sequence of str): the top words, most important first.
        scores (sequence of float, optional): their scores, printed after each word.
        caption (str): the table's caption (plain text, escaped).
        max_tokens (int): the most document tokens shown; the rest is counted. Default 120.
        vocab (Vocabulary, optional): when given, tokens outside it are shown in grey
            (the model sees them only as ``<unk>``).
        score_name (str): what ``scores`` are, for the legend.

    Returns:
        str: HTML (display it with ``IPython.display.HTML``).
    """
    present = set(tokens)
    if vocab is not None and any(t not in vocab for t in tokens):
        present.add(UNK)
    marked_doc = set(top)
    shown = []
    for t in tokens[:max_tokens]:
        if vocab is not None and t not in vocab:
            shown.append(f'<span style="{_FAINT_STYLE}">{html.escape(t)}</span>')
        else:
            shown.append(highlight(t, t in marked_doc))
    more = len(tokens) - max_tokens
    if more > 0:
        shown.append(f'<span style="{_FAINT_STYLE}">… ({more} more words)</span>')
    legend = (
        f"{highlight('bold on blue')} = word both in the document and in the top "
        f"{len(top)}"
        + (f"; number = {html.escape(score_name)}" if scores is not None else "")
        + ("; grey = outside the vocabulary (read as &lt;unk&gt;)" if vocab is not None else "")
    )
    hits = sum(w in present for w in top)
    return (
        f'<table style="{_TABLE_STYLE}">'
        + (f'<caption style="caption-side:top;text-align:left;font-weight:600;color:#111;'
           f'padding:4px 0">{html.escape(caption)}</caption>' if caption else "")
        + f'<tr><th style="{_HEAD_STYLE}">document</th>'
        f'<td style="{_CELL_STYLE};{_PLAIN_STYLE}">{" ".join(shown) or "(empty)"}</td></tr>'
        f'<tr><th style="{_HEAD_STYLE}">top {len(top)} words<br>'
        f'<span style="font-weight:400">{hits} of {len(top)} in the document</span></th>'
        f'<td style="{_CELL_STYLE};{_PLAIN_STYLE}">'
        f"{_word_list(list(top), present, scores)}</td></tr>"
        f'<tr><td colspan="2" style="{_CELL_STYLE};{_FAINT_STYLE};font-size:0.85em">'
        f"{legend}</td></tr></table>"
    )


def _number(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else html.escape(str(value))


def class_words_table(
    rows: Mapping[str, Sequence[tuple[str, int]]], *, caption: str = "", total=None
) -> str:
    """An HTML table: one row per class (or method), its words, each with a number after it.

    Args:
        rows (mapping row name -> list of (word, number)): e.g. words and counts from
            :func:`class_top_words`; floats are printed with two decimals.
        caption (str): the caption (escaped).
        total (mapping row name -> int, optional): documents per row, shown after the name.

    Returns:
        str: HTML.
    """
    body = []
    for name, words in rows.items():
        label = html.escape(name) + (
            f' <span style="font-weight:400;{_FAINT_STYLE}">({total[name]} docs)</span>'
            if total is not None else ""
        )
        cells = ", ".join(
            f'{html.escape(w)} <span style="{_FAINT_STYLE}">{_number(c)}</span>'
            for w, c in words
        )
        body.append(f'<tr><th style="{_HEAD_STYLE}">{label}</th>'
                    f'<td style="{_CELL_STYLE};{_PLAIN_STYLE}">{cells}</td></tr>')
    cap = (f'<caption style="caption-side:top;text-align:left;font-weight:600;color:#111;'
           f'padding:4px 0">{html.escape(caption)}</caption>') if caption else ""
    return f'<table style="{_TABLE_STYLE}">{cap}{"".join(body)}</table>'


# ----------------------------------------------------------------------------- figure

def plot_flip_rates(rates: Mapping[str, Mapping[int, float]], *, ax=None, title: str = ""):
    """Line plot of deletion flip rates: words deleted (x) against share of changed predictions.

    Args:
        rates (mapping method name -> {k: flip rate}): e.g. the ``"flip_rate"`` entries of
            :func:`deletion_flip_rate`, one per method.
        ax (matplotlib Axes, optional): where to draw; default a new figure.
        title (str): the axes title.

    Returns:
        matplotlib Figure.
    """
    if ax is None:
        ax = new_figure((5.5, 3.6)).subplots()
    fig = root_figure(ax)
    for i, (name, by_k) in enumerate(rates.items()):
        ks = sorted(int(k) for k in by_k)
        values = [by_k[k] if k in by_k else by_k[str(k)] for k in ks]
        ax.plot(ks, values, marker=MARKERS[i % len(MARKERS)],
                color=OKABE_ITO[i % len(OKABE_ITO)], label=name)
    ax.set_xlabel("words deleted from each document (k)")
    ax.set_ylabel("share of predictions changed")
    ax.set_ylim(0, 1)
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_importance_by_presence(
    importance: torch.Tensor, counts: torch.Tensor, *, ax=None, title: str = "", bins: int = 50
):
    """Histograms of word importance, split into words present in the document and absent ones.

    The x axis is ``log10(importance)`` (importances are clipped at ``1e-8``, so exact
    zeros, masks that round to 1, gather at -8), so that masks very close to 1 remain
    visible; each histogram is normalised to unit area.

    Args:
        importance (Tensor (N, V)): ``1 - mask`` per document and word.
        counts (Tensor (N, V)): the documents (present = count > 0).
        ax (matplotlib Axes, optional): where to draw; default a new figure.
        title (str): the axes title.
        bins (int): number of bins. Default 50.

    Returns:
        matplotlib Figure.
    """
    if ax is None:
        ax = new_figure((5.5, 3.4)).subplots()
    fig = root_figure(ax)
    values = torch.log10(importance.detach().double().clamp_min(1e-8)).cpu()
    present = counts.cpu() > 0
    lo, hi = float(values.min()), float(values.max())
    edges = torch.linspace(lo, hi if hi > lo else lo + 1, bins + 1).numpy()
    for (name, sel), colour, hatch in zip(
        (("words in the document", present), ("words absent from it", ~present)),
        OKABE_ITO[:2], ("", "//"), strict=True,
    ):
        ax.hist(values[sel].numpy(), bins=edges, density=True, histtype="stepfilled",
                alpha=0.45, color=colour, edgecolor=colour, hatch=hatch, label=name)
    ax.set_xlabel("log10(importance), importance = 1 − mask (exact zeros drawn at −8)")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title)
    return fig
