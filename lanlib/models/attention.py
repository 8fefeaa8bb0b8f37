"""Attention models whose attention weights can be checked against a known relevant segment.

- :class:`FocusAttention`: the focus/classification architecture studied by Pandey,
  Vashisht and Ramaswamy (ACML 2022). A *focus network* gives each segment of the input
  a score; the scores become attention weights (softmax, or :func:`sparsemax`, which
  can put exactly zero weight on a segment); the *classification network* reads the
  attention-weighted average of the segments, the attended summary.
- :class:`AttentionClassifier`: a single-layer multi-head attention classifier on
  tokens, the simple architecture Lopardo, Precioso and Garreau (ICML 2024) analyse:
  token embeddings, one learned query per head attending over the tokens, the heads'
  outputs concatenated and mapped linearly to the logits.

Both map ``(N, segments, ...)`` to logits and offer ``attention(inputs)``, the weights
that a reader of the model would take as its explanation, one per segment (averaged
over the heads and summed over a segment's tokens for the classifier).

Example:
    >>> import torch
    >>> net = FocusAttention((28, 28), classes=3, attention="sparsemax")
    >>> x = torch.rand(5, 4, 28, 28)
    >>> net(x).shape, net.attention(x).shape
    (torch.Size([5, 3]), torch.Size([5, 4]))
    >>> bool(torch.allclose(net.attention(x).sum(1), torch.ones(5)))
    True

The chapter ``notebooks/08_attention`` trains and explains them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ATTENTIONS", "SUMMARIES", "AttentionClassifier", "FocusAttention", "sparsemax"]

#: The attention normalisations :class:`FocusAttention` offers.
ATTENTIONS = ("softmax", "sparsemax")
#: What :class:`FocusAttention`'s attention can average: the segments or their features.
SUMMARIES = ("input", "features")


def sparsemax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Sparsemax: ``scores`` projected onto the probability simplex (Martins & Astudillo 2016).

    Like softmax it returns non-negative weights that sum to 1 along ``dim``, but
    scores far enough below the largest get weight exactly 0.

    Example:
        >>> sparsemax(torch.tensor([2.0, 1.0, -1.0])).tolist()
        [1.0, 0.0, 0.0]
        >>> [round(w, 4) for w in sparsemax(torch.tensor([1.0, 0.8, 0.0])).tolist()]
        [0.6, 0.4, 0.0]
    """
    z = scores.transpose(dim, -1)
    ordered, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    cumulative = ordered.cumsum(-1)
    support = (1 + k * ordered) > cumulative  # the largest k with this property
    size = support.sum(-1, keepdim=True)
    tau = (cumulative.gather(-1, size - 1) - 1) / size.to(z.dtype)
    return torch.clamp(z - tau, min=0).transpose(dim, -1)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FocusAttention(nn.Module):
    """Focus network, attention over segments, classification network on the attended summary.

    Args:
        segment_shape (tuple of int): the shape of one segment, e.g. ``(28, 28)``.
        classes (int): number of classes.
        focus_hidden (int): hidden units of the focus network (one score per segment,
            the same network for every segment). Default 32.
        classifier_hidden (int): hidden units of the classification network. Default 64.
        attention (str): ``"softmax"`` or ``"sparsemax"``. Default ``"softmax"``.
        summary (str): what the attention averages: ``"input"`` (default), the segments
            themselves, so that the classification network sees a blend of the raw
            segments; or ``"features"``, each segment's ``classifier_hidden`` features
            from one encoder shared by the segments, read by a linear layer.

    Input ``(N, segments, *segment_shape)``; output logits ``(N, classes)``.
    """

    def __init__(self, segment_shape: Sequence[int], classes: int, *, focus_hidden: int = 32,
                 classifier_hidden: int = 64, attention: str = "softmax",
                 summary: str = "input"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if summary not in SUMMARIES:
            raise ValueError(f"summary must be one of {SUMMARIES}, got {summary!r}")
        size = math.prod(segment_shape)
        self.attention_kind, self.summary = attention, summary
        self.focus = _mlp([size, focus_hidden, 1])
        if summary == "input":
            self.encoder = nn.Identity()
            self.classifier = _mlp([size, classifier_hidden, classes])
        else:
            self.encoder = nn.Sequential(nn.Linear(size, classifier_hidden), nn.ReLU())
            self.classifier = nn.Linear(classifier_hidden, classes)

    def attention(self, inputs: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(N, segments)``, non-negative, summing to 1 per input."""
        scores = self.focus(inputs.flatten(2)).squeeze(-1)
        return scores.softmax(-1) if self.attention_kind == "softmax" else sparsemax(scores)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        weights = self.attention(inputs)
        summary = (weights.unsqueeze(-1) * self.encoder(inputs.flatten(2))).sum(1)
        return self.classifier(summary)


class AttentionClassifier(nn.Module):
    """Single-layer multi-head attention over token embeddings, then a linear layer.

    Each head ``h`` has a learned query ``q_h``; token ``t`` with embedding ``e_t`` gets
    weight ``softmax_t(q_h . K_h e_t / sqrt(d_h))`` and the head returns the weighted sum
    of ``V_h e_t``. The heads' outputs, concatenated, go through one linear layer.
    There is no position encoding: the model sees the tokens as a multiset.

    Args:
        vocab_size (int): V, the length of the one-hot token vectors.
        classes (int): number of classes.
        dim (int): embedding size. Default 16.
        heads (int): attention heads; ``dim`` must be a multiple. Default 2.
        attention (str): ``"softmax"`` (the paper's) or ``"sparsemax"``. Default ``"softmax"``.

    Input: one-hot (or any real) token vectors ``(N, segments, tokens, V)`` or ``(N, T, V)``;
    output logits ``(N, classes)``.
    """

    def __init__(self, vocab_size: int, classes: int, *, dim: int = 16, heads: int = 2,
                 attention: str = "softmax"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.attention_kind = attention
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim = heads, dim // heads
        self.embed = nn.Linear(vocab_size, dim, bias=False)
        self.keys = nn.Linear(dim, dim, bias=False)
        self.values = nn.Linear(dim, dim, bias=False)
        self.query = nn.Parameter(torch.randn(heads, self.head_dim) / math.sqrt(self.head_dim))
        self.out = nn.Linear(dim, classes)

    def head_attention(self, inputs: torch.Tensor) -> torch.Tensor:
        """Per-head weights ``(N, heads, T)`` over the ``T`` tokens (flattened segments)."""
        e = self.embed(inputs.flatten(1, -2))
        k = self.keys(e).unflatten(-1, (self.heads, self.head_dim))  # (N, T, H, d)
        scores = torch.einsum("nthd,hd->nht", k, self.query) / math.sqrt(self.head_dim)
        return scores.softmax(-1) if self.attention_kind == "softmax" else sparsemax(scores)

    def attention(self, inputs: torch.Tensor) -> torch.Tensor:
        """Head-averaged weights summed per segment, ``(N, segments)``; ``(N, T)`` for 3-D input."""
        weights = self.head_attention(inputs).mean(1)
        if inputs.ndim == 4:
            weights = weights.reshape(inputs.shape[:3]).sum(-1)
        return weights

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        e = self.embed(inputs.flatten(1, -2))
        v = self.values(e).unflatten(-1, (self.heads, self.head_dim))  # (N, T, H, d)
        weights = self.head_attention(inputs)
        heads = torch.einsum("nht,nthd->nhd", weights, v)
        return self.out(heads.flatten(1))
