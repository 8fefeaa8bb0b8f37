"""Chapter 07 (``notebooks/07_diffmask``): DiffMask on a task whose answer is known.

The chapter's own code: the digit-query task (after DiffMask's toy task), the
classifier and the probes trained once and cached, the interventions that test the
truth, the scores against it, the hindsight-bias count and the chapter's figures; and
chapter 04's DAN read word by word (:class:`DANWords`), with its probes and the
measures that compare them with chapter 04's LAN. The method is
:mod:`lanlib.diffmask`, the model :mod:`lanlib.models.transformer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import nn

from lanlib.cache import cached_classifier, load_or_train
from lanlib.core import corrupt
from lanlib.diffmask import DiffMask, fit_diffmask, hidden_states, replaced
from lanlib.losses import resolve as resolve_loss
from lanlib.metrics import auroc
from lanlib.models.transformer import TransformerClassifier
from lanlib.nets import MLPMaskNet
from lanlib.plot import MARKERS, OKABE_ITO, new_figure

if TYPE_CHECKING:  # matplotlib is imported lazily, when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["DANWords", "DigitQueries", "FIRST_DIGIT", "at_words", "delete_words",
           "deletion_effect", "digit_queries", "embedding_noise", "hindsight", "masked_effect",
           "mean_keep", "plot_example", "plot_layers", "position_lan", "sequence_auroc",
           "swap_digits", "top_overlap", "train_dan_probes", "train_model", "train_probes",
           "word_positions"]

#: Position of the first digit of the sequence: position 0 holds the classification
#: token, positions 1 and 2 the query (m, n).
FIRST_DIGIT = 3


class DigitQueries(NamedTuple):
    """A batch of the digit-query task.

    Attributes:
        tokens (LongTensor (N, 3 + T)): ``[CLS, m, n, x_1, ..., x_T]``; digits are ids
            ``0 .. digits - 1``, CLS is id ``digits``.
        labels (LongTensor (N,)): 1 if m occurs more often than n in x, else 0.
        relevant (BoolTensor (N, 3 + T)): True at the sequence positions holding m or n,
            the only digits the answer depends on (False at CLS and the query).
    """

    tokens: torch.Tensor
    labels: torch.Tensor
    relevant: torch.Tensor


def digit_queries(n: int, length: int, digits: int = 10, *, query_share: float = 0.25,
                  seed: int = 0) -> DigitQueries:
    """``n`` examples of the task: a query pair (m, n) of distinct digits and T = ``length``
    digits, each of m and n drawn with probability ``query_share``, the other digits
    sharing the rest evenly (so that the counts of m and n are close and matter).

    Example:
        >>> data = digit_queries(4, length=8, seed=0)
        >>> data.tokens.shape, bool((data.tokens[:, 0] == 10).all())
        (torch.Size([4, 11]), True)
    """
    if digits < 3 or length < 1 or not 0 < 2 * query_share < 1:
        raise ValueError(f"need digits >= 3, length >= 1 and 0 < query_share < 0.5, got "
                         f"{digits}, {length}, {query_share}")
    gen = torch.Generator().manual_seed(seed)
    query = torch.stack([torch.randperm(digits, generator=gen)[:2] for _ in range(n)])
    weights = torch.full((n, digits), (1 - 2 * query_share) / (digits - 2))
    weights.scatter_(1, query, query_share)
    x = torch.multinomial(weights, length, replacement=True, generator=gen)
    is_m, is_n = x == query[:, :1], x == query[:, 1:]
    labels = (is_m.sum(1) > is_n.sum(1)).long()
    tokens = torch.cat([torch.full((n, 1), digits), query, x], dim=1)
    relevant = torch.cat([torch.zeros(n, FIRST_DIGIT, dtype=torch.bool), is_m | is_n], dim=1)
    return DigitQueries(tokens, labels, relevant)


def train_model(data: DigitQueries, *, config: Mapping, steps: int, lr: float,
                batch_size: int, seed: int, device) -> tuple[TransformerClassifier, dict, bool]:
    """The transformer F trained on ``data`` once and cached (``config``: its width, heads,
    layers and the task's settings, the cache key). Returns F, its key and whether loaded."""
    length = data.tokens.shape[1]

    def build(key):
        return TransformerClassifier(key["digits"] + 1, length, dim=key["dim"],
                                     heads=key["heads"], layers=key["layers"])

    return cached_classifier("diffmask-transformer", build, (data.tokens.float(), data.labels),
                             config=dict(config), steps=steps, lr=lr, batch_size=batch_size,
                             seed=seed, device=device, verbose=False)


def _cached_probe(name: str, key: Mapping, build, model: nn.Module, inputs: torch.Tensor,
                  **fit_options) -> tuple[DiffMask, bool]:
    """A probe ``build(key)`` fitted with :func:`lanlib.diffmask.fit_diffmask` on ``model``'s
    stages, once: later calls load it. Returns it and whether it was loaded."""

    def fit(probe, _key):
        fit_diffmask(model, model.stages, probe, inputs, progress=False, **fit_options)

    return load_or_train(name, key, build, fit, verbose=False)


def train_probes(model: TransformerClassifier, explains: Mapping, tokens: torch.Tensor, *,
                 target: str, max_distortion: float, steps: int, lr: float,
                 multiplier_lr: float, batch_size: int, seed: int
                 ) -> tuple[list[DiffMask], int]:
    """One DiffMask probe per layer 0..K of ``model`` for ``target`` ("input" or "hidden"),
    each trained once and cached (keyed by F's key ``explains`` and the settings); the
    token ids are given to F as floats, as lanlib's loops take them. At layer 0 both
    targets are the same probe (gates on the embeddings, read from them): it is trained
    once, as an input probe. Returns the probes and how many were loaded from the cache."""
    dim = model.stages[0].tokens.embedding_dim
    probes, loaded = [], 0
    for layer in range(len(model.stages)):
        which = target if layer else "input"
        key = {"version": 2, "explains": dict(explains), "layer": layer, "target": which,
               "dim": dim,
               "max_distortion": max_distortion, "steps": steps, "lr": lr,
               "multiplier_lr": multiplier_lr, "batch_size": batch_size, "seed": seed}

        probe, was_loaded = _cached_probe(
            f"diffmask-probe-{which}-{layer}", key,
            lambda k: DiffMask(k["dim"], k["layer"], k["target"]), model, tokens.float(),
            max_distortion=max_distortion, steps=steps, lr=lr, multiplier_lr=multiplier_lr,
            batch_size=batch_size, seed=seed)
        probes.append(probe)
        loaded += was_loaded
    return probes, loaded


def sequence_auroc(scores: torch.Tensor, data: DigitQueries) -> float:
    """AUROC of per-position ``scores`` (N, 3 + T) for the truth, over the sequence digits
    only (CLS and the query are not scored: the truth says nothing of them)."""
    return auroc(scores[:, FIRST_DIGIT:].cpu(), data.relevant[:, FIRST_DIGIT:])


def hindsight(probe_masks: torch.Tensor, search_masks: torch.Tensor,
              relevant: torch.Tensor) -> dict[str, float]:
    """How per-input search (``search_masks``) treats the relevant digits the probe keeps.

    Args:
        probe_masks, search_masks (Tensor (N, L)): masks in [0, 1], 1 = replaced;
            a position counts as dropped when its mask exceeds 0.5.
        relevant (BoolTensor (N, L)): the truth.

    Returns:
        dict: ``"rate"``, the share of relevant digits kept by the probe that the search
        drops; ``"probe_kept"`` and ``"search_kept"``, the shares of relevant digits each
        keeps; ``"inputs_affected"``, the share of inputs with at least one such digit.
    """
    kept_probe = (probe_masks <= 0.5) & relevant
    dropped = kept_probe & (search_masks > 0.5)
    total = int(relevant.sum())
    return {"rate": float(dropped.sum() / kept_probe.sum().clamp_min(1)),
            "probe_kept": float(kept_probe.sum() / total),
            "search_kept": float(((search_masks <= 0.5) & relevant).sum() / total),
            "inputs_affected": float(dropped.any(1).double().mean())}


def plot_layers(scores: Mapping[str, Sequence[float]], references: Mapping[str, float],
                kept: Mapping[str, Mapping[str, Sequence[float]]], *, ax=None) -> Figure:
    """The chapter's per-layer figure: left, AUROC against the truth of the input and
    hidden gates per layer (lines) and of the methods without layers (dashed levels);
    right, the share of relevant and of other digits kept at each layer. The legends sit
    below the panels, so that they never hide a line."""
    if ax is None:
        fig = new_figure((10, 5.2))
        axes = fig.subplots(1, 2)
    else:
        axes, fig = ax, ax[0].figure
    layers = np.arange(len(next(iter(scores.values()))))
    for i, (name, values) in enumerate(scores.items()):
        axes[0].plot(layers, values, marker=MARKERS[i], color=OKABE_ITO[i], label=name)
    for j, (name, value) in enumerate(references.items(), start=len(scores)):
        axes[0].axhline(value, ls="--", color=OKABE_ITO[j], label=name)
    axes[0].axhline(0.5, ls=":", color="grey", label="chance")
    axes[0].set(xlabel="layer l the probe reads up to", ylabel="AUROC against the truth",
                xticks=layers, ylim=(0.3, 1.02))
    axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    for i, (name, shares) in enumerate(kept.items()):
        for style, (which, values) in zip(("-", ":"), shares.items(), strict=True):
            axes[1].plot(layers, values, ls=style, marker=MARKERS[i], color=OKABE_ITO[i],
                         label=f"{name}, {which}")
    axes[1].set(xlabel="layer l the probe reads up to", ylabel="share of digits kept",
                xticks=layers, ylim=(-0.02, 1.02))
    axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig


def plot_example(tokens: torch.Tensor, relevant: torch.Tensor,
                 rows: Mapping[str, torch.Tensor], *, ax=None) -> Figure:
    """One input's keep-probabilities (rows: methods or layers; columns: positions).

    Colour: white = dropped, dark blue = kept; the relevant digits' labels are orange.
    """
    if ax is None:
        fig = new_figure((0.45 * tokens.shape[0] + 2.5, 0.35 * len(rows) + 1.2))
        ax = fig.subplots()
    fig = ax.figure
    values = np.stack([r.detach().cpu().numpy() for r in rows.values()])
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    digits = int(tokens[0])
    labels = ["CLS" if int(t) == digits else str(int(t)) for t in tokens]
    labels[1], labels[2] = f"m={labels[1]}", f"n={labels[2]}"
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    for tick, hit in zip(ax.get_xticklabels(), relevant.tolist(), strict=True):
        if hit:
            tick.set_color(OKABE_ITO[1])
            tick.set_fontweight("bold")
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.axvline(FIRST_DIGIT - 0.5, color="grey", lw=1)
    fig.colorbar(image, ax=ax, label="keep probability (importance)", fraction=0.03)
    return fig


def mean_keep(keep: torch.Tensor, relevant: torch.Tensor) -> dict[str, float]:
    """Share of relevant and of other sequence digits with keep probability above 0.5."""
    kept = keep[:, FIRST_DIGIT:].cpu() > 0.5
    truth = relevant[:, FIRST_DIGIT:]
    return {"m and n": float(kept[truth].double().mean()),
            "other digits": float(kept[~truth].double().mean())}


def embedding_noise(baseline: torch.Tensor):
    """Noise that replaces a position's embedding by ``baseline`` (D,) (no gradient)."""
    fixed = baseline.detach()

    def draw(inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return fixed.to(inputs.dtype).expand_as(inputs)

    return draw


def position_lan(length: int, dim: int, hidden: int) -> nn.Module:
    """An amortised LAN on the embeddings ``(N, L, D)``: an MLP of the whole sequence to one
    mask value per position ``(N, L, 1)``."""
    return MLPMaskNet((length, dim), hidden=(hidden,), mask_shape=(length, 1))


@torch.no_grad()
def masked_effect(model: TransformerClassifier, tokens: torch.Tensor, masks: torch.Tensor,
                  baseline: torch.Tensor, stage: int = 0) -> dict[str, float]:
    """What masking does to F: positions of hidden state ``stage`` where ``masks`` (N, L) is 1
    are replaced by ``baseline`` (D,). Returns the mean KL divergence from F's output
    (``"divergence"``), the share of inputs whose prediction stays (``"agreement"``) and
    the share of positions kept, mask below 0.5 (``"kept"``)."""
    x = tokens.float()
    reference, states = hidden_states(model, model.stages, x)
    hidden = corrupt(states[stage], masks.unsqueeze(-1).to(x), baseline)
    out = replaced(model, model.stages, x, stage, hidden)
    return {"divergence": float(resolve_loss("kl")(reference, out).mean()),
            "agreement": float((out.argmax(1) == reference.argmax(1)).double().mean()),
            "kept": float((masks <= 0.5).double().mean())}


# --- The second model: chapter 04's DAN, read word by word -------------------------------


class DANWords(nn.Module):
    """Chapter 04's DAN (:class:`lanlib.models.dan.DAN`) on a document's words as positions.

    The input ``(N, L, 2)`` holds, per position, a word id and its count in the document
    (count 0 pads). Hidden state 0 (``stages[0]``) is each word's embedding and count
    ``(N, L, E + 1)``; hidden state 1 (``stages[1]``) appends to it the document's first
    hidden layer (after its ReLU), ``(N, L, E + 1 + H)``, so a probe reading it sees each
    word beside what the DAN made of the whole document. A position of state 0 replaced by
    zeros has count 0: the word is deleted, as chapter 04's noise ``constant(0)`` does.
    On a document with at most L distinct words the output is the DAN's on its counts.
    """

    def __init__(self, dan: nn.Module):
        super().__init__()
        self.dan = dan
        self.stages = nn.ModuleList([_WordStates(dan), _DocumentLayer(dan)])

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        state = self.stages[1](self.stages[0](words))
        return self.dan.mlp[3:](state[:, 0, self.dan.embedding.shape[1] + 1:])


class _WordStates(nn.Module):
    """``(N, L, 2)`` word ids and counts to ``(N, L, E + 1)``: embedding and count."""

    def __init__(self, dan: nn.Module):
        super().__init__()
        self.dan = dan

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        ids = words[..., 0].round().long()
        return torch.cat([self.dan.embedding[ids], words[..., 1:]], dim=-1)


class _DocumentLayer(nn.Module):
    """State 0 to state 1: the DAN's average and first hidden layer, appended per word."""

    def __init__(self, dan: nn.Module):
        super().__init__()
        self.dan = dan

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        embedding, counts = state[..., :-1], state[..., -1:]
        average = (counts * embedding).sum(1) / counts.sum(1).clamp_min(1.0)
        hidden = self.dan.mlp[:3](average)  # Linear, ReLU, Dropout (off in eval mode)
        return torch.cat([state, hidden.unsqueeze(1).expand(-1, state.shape[1], -1)], dim=-1)


def word_positions(bags, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The documents of ``bags`` (:class:`lanlib.data.newsgroups.BagOfWords`) with at most
    ``length`` distinct words, as :class:`DANWords` inputs ``(n, length, 2)`` (word id,
    count; padding has count 0), and their indices in ``bags`` ``(n,)``."""
    fits = torch.nonzero((bags.distinct() >= 1) & (bags.distinct() <= length)).squeeze(1)
    words = torch.zeros(len(fits), length, 2)
    for row, doc in enumerate(fits.tolist()):
        a, b = int(bags.indptr[doc]), int(bags.indptr[doc + 1])
        words[row, :b - a, 0] = bags.columns[a:b].float()
        words[row, :b - a, 1] = bags.values[a:b]
    return words, fits


def train_dan_probes(model: DANWords, explains: Mapping, words: torch.Tensor, *,
                     max_distortion: float, steps: int, lr: float, multiplier_lr: float,
                     batch_size: int, seed: int) -> tuple[list[DiffMask], int]:
    """Input-gate probes for :class:`DANWords` at layers 0 and 1, their baseline fixed at
    zero (a gated-out word is deleted), each trained once and cached (keyed by the DAN's
    key ``explains`` and the settings). Returns the probes and how many were loaded."""
    dims = [s.shape[-1] for s in hidden_states(model, model.stages, words[:1])[1]]
    probes, loaded = [], 0
    for layer in range(len(dims)):
        key = {"version": 2, "explains": dict(explains), "model": "dan-words", "layer": layer,
               "dims": dims[:layer + 1], "positions": words.shape[1], "n": len(words),
               "max_distortion": max_distortion, "steps": steps, "lr": lr,
               "multiplier_lr": multiplier_lr, "batch_size": batch_size, "seed": seed}

        def build(k):
            probe = DiffMask(k["dims"], k["layer"], "input")
            probe.baseline.requires_grad_(False)  # zeros: count 0, the word deleted
            return probe

        probe, was_loaded = _cached_probe(
            f"diffmask-dan-probe-{layer}", key, build, model, words,
            max_distortion=max_distortion, steps=steps, lr=lr, multiplier_lr=multiplier_lr,
            batch_size=batch_size, seed=seed)
        probes.append(probe)
        loaded += was_loaded
    return probes, loaded


def at_words(scores: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Vocabulary-wide scores ``(N, V)`` (e.g. a LAN's importance) at each position's word,
    ``(N, L)``."""
    return scores.gather(1, words[..., 0].round().long())


def top_overlap(a: torch.Tensor, b: torch.Tensor, words: torch.Tensor, k: int) -> float:
    """Mean share of the ``k`` words ranked highest by ``a`` that are also in ``b``'s top
    ``k``, over documents, both rankings over the document's words only (count > 0);
    a document with fewer than ``k`` words is compared on all its words."""
    present = words[..., 1] > 0
    shares = []
    for sa, sb, p in zip(a, b, present, strict=True):
        n = min(k, int(p.sum()))
        top_a = set(sa.masked_fill(~p, -torch.inf).topk(n).indices.tolist())
        top_b = set(sb.masked_fill(~p, -torch.inf).topk(n).indices.tolist())
        shares.append(len(top_a & top_b) / n)
    return float(np.mean(shares))


def delete_words(words: torch.Tensor, scores: torch.Tensor, counts: torch.Tensor
                 ) -> torch.Tensor:
    """``words`` with, in each document, its ``counts[i]`` words of the lowest ``scores``
    deleted (count set to 0; padding is never chosen)."""
    present = words[..., 1] > 0
    order = scores.masked_fill(~present, torch.inf).argsort(1)
    chosen = torch.arange(words.shape[1]).expand_as(order) < counts.unsqueeze(1)
    drop = torch.zeros_like(present).scatter(1, order, chosen)
    return torch.stack([words[..., 0], words[..., 1] * ~drop], dim=-1)


@torch.no_grad()
def deletion_effect(model: nn.Module, words: torch.Tensor, deleted: torch.Tensor
                    ) -> dict[str, float]:
    """F on ``deleted`` against F on ``words``: mean KL divergence (``"divergence"``) and the
    share of documents whose prediction stays (``"agreement"``)."""
    reference, out = model(words), model(deleted)
    return {"divergence": float(resolve_loss("kl")(reference, out).mean()),
            "agreement": float((out.argmax(1) == reference.argmax(1)).double().mean())}


def swap_digits(data: DigitQueries, digits: int, *, relevant: bool, every: bool,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An intervention on the sequence digits: replace occurrences of m and n
    (``relevant=True``) or the other digits (``relevant=False``) by a digit that is neither
    m nor n nor the one replaced, drawn at random; all of them (``every=True``) or one per
    example. Returns the new tokens, their labels and which examples had a digit to replace.

    Example:
        >>> data = digit_queries(50, length=8, seed=0)
        >>> tokens, labels, changed = swap_digits(data, 10, relevant=False, every=True)
        >>> bool((labels == data.labels).all())  # the other digits never change the answer
        True
    """
    gen = torch.Generator().manual_seed(seed)
    tokens = data.tokens.clone()
    candidates = data.relevant.clone() if relevant else ~data.relevant
    candidates[:, :FIRST_DIGIT] = False
    changed = candidates.any(1)
    for row in torch.nonzero(changed).squeeze(1).tolist():
        where = torch.nonzero(candidates[row]).squeeze(1)
        if not every:
            where = where[torch.randint(len(where), (1,), generator=gen)]
        for pos in where.tolist():
            banned = {int(tokens[row, 1]), int(tokens[row, 2]), int(tokens[row, pos])}
            allowed = torch.tensor([d for d in range(digits) if d not in banned])
            tokens[row, pos] = allowed[torch.randint(len(allowed), (1,), generator=gen)]
    x, query = tokens[:, FIRST_DIGIT:], tokens[:, 1:3]
    labels = ((x == query[:, :1]).sum(1) > (x == query[:, 1:]).sum(1)).long()
    return tokens, labels, changed
