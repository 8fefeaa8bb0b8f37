"""Chapter 04, 20 Newsgroups: which words a bag-of-words classifier attends to.

The chapter ``notebooks/04_newsgroups`` explains a Deep Averaging Network
(:class:`lanlib.models.dan.DAN`) that reads the count vectors of
:class:`lanlib.data.newsgroups.BagOfWords`. This module holds what it measures on
word importances (``1 - mask``), its tables and its figures:

- scores: :func:`predict_bags` (a model over all documents of a bag of words),
  :func:`accuracy_by_group`, :func:`tfidf` (a ranking that knows nothing about the
  model), :func:`top_words`;
- faithfulness: :func:`delete_top_words` and :func:`deletion_flip_rate` (delete a
  document's most important words: does the prediction change?), :func:`ahead_at` (at
  which numbers of deleted words one ranking beats another, in words for the prose);
- agreement: :func:`rank_agreement` (do two explanations rank a document's words
  alike?) and :func:`class_top_words` (which words a class's top lists share);
- tables: :func:`pick_post` (the post a table shows), :func:`post_table`,
  :func:`top_words_table` and :func:`class_words_table`, in HTML; they highlight words
  in bold on a light blue background (readable in a light theme and for colour-blind
  readers, since the cue is weight and lightness, not hue);
- figures: :func:`plot_accuracy_by_group`, :func:`plot_importance_by_presence`,
  :func:`plot_flip_rates` and :func:`plot_rank_agreement`.

Example:
    >>> counts = torch.tensor([[3.0, 0.0, 1.0, 2.0]])
    >>> scores = torch.tensor([[0.1, 9.0, 0.5, 0.3]])
    >>> top_words(scores, 2, counts).tolist()  # word 1 is not in the document
    [[2, 3]]
    >>> delete_top_words(counts, scores, 2).tolist()
    [[3.0, 0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import contextlib
import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..data.newsgroups import UNK, BagOfWords, Vocabulary
from ..loop import resolve_device
from ..metrics import correlation
from ..plot import MARKERS, OKABE_ITO, new_figure, root_figure
from ..train import predict

__all__ = [
    "HIGHLIGHT_STYLE",
    "accuracy_by_group",
    "ahead_at",
    "class_top_words",
    "class_words_table",
    "delete_top_words",
    "deletion_flip_rate",
    "highlight",
    "pick_post",
    "plot_accuracy_by_group",
    "plot_flip_rates",
    "plot_importance_by_presence",
    "plot_rank_agreement",
    "post_table",
    "predict_bags",
    "rank_agreement",
    "tfidf",
    "top_words",
    "top_words_table",
]

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
_CAPTION_STYLE = "caption-side:top;text-align:left;font-weight:600;color:#111;padding:4px 0"


# ----------------------------------------------------------------------------- scores


def predict_bags(model: nn.Module, bags: BagOfWords, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` for every document of ``bags``, densified ``batch_size`` at a time.

    Args:
        model (nn.Module): maps counts ``(n, V)`` to logits (or masks); run in eval mode
            (restored after) by :func:`lanlib.train.predict`.
        bags (BagOfWords): the documents.
        batch_size (int): documents per dense batch. Default 1024.

    Returns:
        Tensor (N, outputs): the logits, on the CPU.
    """
    return torch.cat([
        predict(model, bags.dense(range(start, min(start + batch_size, len(bags)))), batch_size)
        for start in range(0, len(bags), batch_size)
    ])


def accuracy_by_group(predictions: torch.Tensor, labels: torch.Tensor,
                      num_classes: int) -> torch.Tensor:
    """The share of each class's documents that are classified correctly.

    Args:
        predictions, labels (Tensor (N,)): predicted and true classes.
        num_classes (int): number of classes.

    Returns:
        Tensor (num_classes,) float64: NaN for a class without documents.

    Example:
        >>> accuracy_by_group(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3).tolist()
        [1.0, 1.0, 0.5]
    """
    correct = (predictions == labels).double()
    return torch.stack([correct[labels == c].mean() for c in range(num_classes)])


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


def ahead_at(first: Mapping[int, float], second: Mapping[int, float]) -> str:
    """Where one ranking's flip rates beat another's, in words for a sentence.

    Args:
        first, second (mapping k -> float): flip rates by number of deleted words, e.g.
            the ``"flip_rate"`` entries of :func:`deletion_flip_rate`; ``second`` has
            every ``k`` of ``first``.

    Returns:
        str: ``"at every k"``, ``"at no k"``, or ``"only at k = 3, 5"`` (the values of
        ``k`` where ``first`` is strictly higher).

    Raises:
        ValueError: ``first`` is empty.

    Example:
        >>> ahead_at({1: 0.2, 3: 0.4, 5: 0.6}, {1: 0.1, 3: 0.5, 5: 0.5})
        'only at k = 1, 5'
    """
    if not first:
        raise ValueError("first holds no flip rates")
    ahead = [k for k, rate in first.items() if rate > second[k]]
    if len(ahead) == len(first):
        return "at every k"
    return "only at k = " + ", ".join(map(str, ahead)) if ahead else "at no k"


def rank_agreement(
    a: torch.Tensor, b: torch.Tensor, counts: torch.Tensor, k: int = 5
) -> dict[str, torch.Tensor]:
    """How alike two word scorings rank each document's own words.

    Only words present in the document (count > 0) are compared.

    Args:
        a, b (Tensor (N, V)): two scorings, higher = more important (finite values).
        counts (Tensor (N, V)): the documents.
        k (int): size of the top sets compared. Default 5.

    Returns:
        dict of ``(N,)`` float64 tensors: ``"spearman"``, the rank correlation
        (:func:`lanlib.metrics.correlation` with ``rank=True``) of ``a`` and ``b`` over
        the document's words (NaN with fewer than 3 words or a constant scoring), and
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
        rho = math.nan
        # a constant scoring has no rank correlation: correlation() raises, rho stays NaN
        with contextlib.suppress(ValueError):
            rho = correlation(ai[present], bi[present], rank=True) if n >= 3 else math.nan
        spearman.append(rho)
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


def pick_post(
    candidates: Sequence[int],
    group: int,
    labels: torch.Tensor,
    predictions: torch.Tensor,
    tokens: Sequence[Sequence[str]],
    *,
    words: tuple[int, int] = (20, 80),
) -> int:
    """The post a table shows: the first candidate of ``group`` that F classifies
    correctly and whose length lies in ``words``.

    Correctness comes first: without such a post, the first correct one of any length;
    without a correct one, the first of the right length, else the first of the group.

    Args:
        candidates (sequence of int): document indices, in the order to search.
        group (int): the class wanted.
        labels, predictions (Tensor (N,)): true and predicted classes of all documents.
        tokens (sequence of token lists): the documents' tokens (their lengths count).
        words (tuple of int): the shortest and longest length wanted. Default (20, 80).

    Returns:
        int: the document index.

    Raises:
        ValueError: no candidate belongs to ``group``.

    Example:
        >>> labels, predictions = torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1])
        >>> pick_post([0, 1, 2, 3], 1, labels, predictions, [["a"]] * 3 + [["b"] * 30])
        3
    """
    posts = [int(d) for d in candidates if int(labels[d]) == group]
    if not posts:
        raise ValueError(f"no candidate post belongs to group {group}")
    lo, hi = words
    return max(posts, key=lambda d: (bool(predictions[d] == labels[d]),
                                     lo <= len(tokens[d]) <= hi))


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


def _caption(caption: str) -> str:
    return f'<caption style="{_CAPTION_STYLE}">{html.escape(caption)}</caption>' if caption else ""


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
        + _caption(caption)
        + f'<tr><th style="{_HEAD_STYLE}">document</th>'
        f'<td style="{_CELL_STYLE};{_PLAIN_STYLE}">{" ".join(shown) or "(empty)"}</td></tr>'
        f'<tr><th style="{_HEAD_STYLE}">top {len(top)} words<br>'
        f'<span style="font-weight:400">{hits} of {len(top)} in the document</span></th>'
        f'<td style="{_CELL_STYLE};{_PLAIN_STYLE}">'
        f"{_word_list(list(top), present, scores)}</td></tr>"
        f'<tr><td colspan="2" style="{_CELL_STYLE};{_FAINT_STYLE};font-size:0.85em">'
        f"{legend}</td></tr></table>"
    )


def post_table(
    tokens: Sequence[str], scores: torch.Tensor, vocab: Vocabulary, *, k: int, caption: str = ""
) -> str:
    """:func:`top_words_table` of one post and its ``k`` highest-scoring vocabulary words.

    The top list ranks the *whole* vocabulary, as the paper's Tables 1-4 do, so it may
    name words the post does not contain.

    Args:
        tokens (sequence of str): the post's tokens in order.
        scores (Tensor (V,)): the post's word scores, e.g. its importance ``1 - mask``.
        vocab (Vocabulary): the vocabulary of ``scores``.
        k (int): how many words the list holds.
        caption (str): the table's caption.

    Returns:
        str: HTML.
    """
    top = top_words(scores[None], k)[0]
    return top_words_table(tokens, vocab.lookup(top), scores=scores[top].tolist(),
                           caption=caption, vocab=vocab)


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
    return f'<table style="{_TABLE_STYLE}">{_caption(caption)}{"".join(body)}</table>'


# ----------------------------------------------------------------------------- figures


def plot_accuracy_by_group(
    predictions: torch.Tensor, labels: torch.Tensor, names: Sequence[str], *, ax=None
):
    """Horizontal bars: the share of each group's documents classified correctly.

    A dashed line marks the accuracy over all documents.

    Args:
        predictions, labels (Tensor (N,)): predicted and true classes.
        names (sequence of str): the class names, one per class, top to bottom.
        ax (matplotlib Axes, optional): where to draw; default a new figure.

    Returns:
        matplotlib Figure.
    """
    if ax is None:
        ax = new_figure((6, 4.6)).subplots()
    fig = root_figure(ax)
    per_group = accuracy_by_group(predictions, labels, len(names)).tolist()
    ax.barh(list(names), per_group, color=OKABE_ITO[0])
    ax.axvline(float((predictions == labels).double().mean()), color=OKABE_ITO[1],
               linestyle="--", label="all test posts")
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of the group's test posts classified correctly")
    ax.legend(frameon=False, loc="lower right")
    return fig


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


def plot_rank_agreement(agreement: Mapping[str, Mapping[str, torch.Tensor]], *, ax=None,
                        bins: int = 30):
    """Histograms of per-document rank correlations, one outline per pair of rankings.

    Args:
        agreement (mapping pair name -> result of :func:`rank_agreement`): its
            ``"spearman"`` entries are drawn (NaN entries are left out).
        ax (matplotlib Axes, optional): where to draw; default a new figure, with the
            legend below the axes.
        bins (int): number of bins over [-1, 1]. Default 30.

    Returns:
        matplotlib Figure.
    """
    own = ax is None
    if own:
        ax = new_figure((6, 4.4)).subplots()
    fig = root_figure(ax)
    for i, (pair, r) in enumerate(agreement.items()):
        rho = r["spearman"]
        ax.hist(rho[~rho.isnan()].numpy(), bins=bins, range=(-1, 1), histtype="step",
                linewidth=1.6, color=OKABE_ITO[i % len(OKABE_ITO)], label=pair)
    ax.set(xlabel="Spearman correlation over a post's words", ylabel="posts")
    if own:
        fig.legend(frameon=False, fontsize="small", loc="outside lower center", ncols=2)
    else:
        ax.legend(frameon=False, fontsize="small")
    return fig
