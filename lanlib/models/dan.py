"""The Deep Averaging Network (DAN) that the 20 Newsgroups chapter explains.

Appendix C of Grimm et al. classifies newsgroup posts with a DAN (Iyyer et al.,
2015) that reads a bag of words: the count vector of a document is multiplied by
a word-embedding matrix and divided by the document's length, which gives the
average embedding of its words; two hidden layers (200 and 150 units, with
dropout) and a softmax over the 20 groups follow.

The network takes *counts*, not word indices, so that a Latent Attention Network
can corrupt them softly: ``x~ = A(x) * eta + (1 - A(x)) * x`` scales a word's count
down continuously, and :class:`DAN` keeps averaging whatever counts it is given.

What this module chooses where the paper gives no value: ReLU hidden units, a
dropout probability of 0.5 after each hidden layer, embeddings drawn from
``N(0, 1)``, and the length ``max(sum of counts, 1)``, so that an empty (fully
masked) document maps to the zero vector instead of dividing by zero.

A consequence worth knowing: for any document longer than one word, multiplying
all counts by the same factor ``c >= 1 / length`` leaves the output unchanged
(the DAN is scale invariant). The chapter ``notebooks/04_newsgroups`` discusses
what that means for the masks.

Example:
    >>> import torch
    >>> dan = DAN(vocab_size=6, num_classes=3)
    >>> counts = torch.tensor([[2.0, 0.0, 1.0, 0.0, 0.0, 1.0]])
    >>> dan.eval()(counts).shape
    torch.Size([1, 3])
    >>> torch.allclose(dan(counts), dan(3 * counts), atol=1e-6)  # scale invariant
    True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DAN"]


class DAN(nn.Module):
    """Deep Averaging Network over bag-of-words count vectors (Appendix C).

    Args:
        vocab_size (int): V, the length of the count vectors (including the UNK column).
        num_classes (int): number of output classes. Default 20.
        embedding_dim (int): size of the word embeddings. Default 50 (the paper's).
        hidden (tuple of int): widths of the hidden layers. Default ``(200, 150)``.
        dropout (float): dropout probability after each hidden layer. Default 0.5.

    Shape:
        input ``(N, V)`` non-negative counts (floating point; soft, masked counts are
        fine), output ``(N, num_classes)`` logits (the softmax is left to the loss).

    Attributes:
        embedding (nn.Parameter (V, embedding_dim)): the word embeddings.
        mlp (nn.Sequential): the hidden layers and the output layer.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 20,
        embedding_dim: int = 50,
        hidden: tuple[int, ...] = (200, 150),
        dropout: float = 0.5,
    ):
        super().__init__()
        if vocab_size < 1 or num_classes < 2 or embedding_dim < 1:
            raise ValueError(
                f"need vocab_size >= 1, num_classes >= 2 and embedding_dim >= 1, got "
                f"{vocab_size}, {num_classes} and {embedding_dim}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.vocab_size = int(vocab_size)
        self.embedding = nn.Parameter(torch.randn(self.vocab_size, embedding_dim))
        layers: list[nn.Module] = []
        widths = [embedding_dim, *hidden]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.mlp = nn.Sequential(*layers)

    def average(self, counts: torch.Tensor) -> torch.Tensor:
        """The averaged embedding ``counts @ E / max(sum(counts), 1)``, ``(N, embedding_dim)``."""
        if counts.ndim != 2 or counts.shape[1] != self.vocab_size:
            raise ValueError(
                f"the DAN reads count vectors (N, {self.vocab_size}), got {tuple(counts.shape)}"
            )
        length = counts.sum(dim=1, keepdim=True).clamp_min(1.0)
        return counts @ self.embedding / length

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.average(counts))
