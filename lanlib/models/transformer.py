"""A small transformer encoder classifier whose hidden states can be read and replaced.

The DiffMask chapter (``notebooks/07_diffmask``) explains this model layer by layer.
Tokens ``(N, L)`` become embeddings plus learned position vectors (hidden state 0);
each of the encoder blocks maps the states ``(N, L, D)`` to new ones (hidden states
1 to ``layers``); a linear head reads the last state of position 0, which the chapter
fills with a classification token.

Every hidden state is the output of one module of :attr:`TransformerClassifier.stages`,
so a forward hook reads it and a hook that returns a tensor replaces it; this is how
:mod:`lanlib.diffmask` probes and masks the model. :class:`FromStage` runs the model
from a given hidden state on, as a module of floating-point inputs, which is what
the fits of :mod:`lanlib.fit` and the attribution methods need.

Example:
    >>> import torch
    >>> model = TransformerClassifier(vocab_size=11, length=6, dim=16, heads=2, layers=2).eval()
    >>> tokens = torch.randint(11, (3, 6), generator=torch.Generator().manual_seed(0))
    >>> model(tokens).shape
    torch.Size([3, 2])
    >>> len(model.stages)  # the embedding, then one per block
    3
    >>> h0 = model.stages[0](tokens)
    >>> torch.allclose(FromStage(model, 0)(h0), model(tokens), atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Embedding", "FromStage", "TransformerClassifier"]


class Embedding(nn.Module):
    """Token embeddings plus learned position vectors: ``(N, L)`` ids to ``(N, L, D)``.

    The ids may come as floats holding whole numbers (lanlib's training loops take
    floating-point inputs); they are rounded to integers.
    """

    def __init__(self, vocab_size: int, length: int, dim: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Parameter(torch.randn(length, dim) * 0.1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != len(self.positions):
            raise ValueError(f"the model reads token ids (N, {len(self.positions)}), got "
                             f"{tuple(tokens.shape)}")
        return self.tokens(tokens.round().long()) + self.positions


class TransformerClassifier(nn.Module):
    """A pre-norm transformer encoder that classifies a sequence from its first position.

    Args:
        vocab_size (int): number of token ids.
        length (int): the sequences' length L (fixed; position vectors are learned).
        num_classes (int): number of output classes. Default 2.
        dim (int): width D of the hidden states. Default 32.
        heads (int): attention heads per block (``dim`` must be divisible by it). Default 2.
        layers (int): encoder blocks. Default 2.
        feedforward (int): width of each block's feed-forward layer. Default ``2 * dim``.

    Shape:
        input ``(N, L)`` token ids (integers, or floats holding them), output
        ``(N, num_classes)`` logits.

    Attributes:
        stages (nn.ModuleList): the embedding, then the blocks; the output of
            ``stages[k]`` is hidden state k, ``(N, L, D)``.
        head (nn.Sequential): layer norm and the linear classifier, on position 0.
    """

    def __init__(self, vocab_size: int, length: int, num_classes: int = 2, dim: int = 32,
                 heads: int = 2, layers: int = 2, feedforward: int | None = None):
        super().__init__()
        if vocab_size < 1 or length < 1 or num_classes < 2 or layers < 1 or dim % heads:
            raise ValueError(f"need vocab_size, length, layers >= 1, num_classes >= 2 and dim "
                             f"divisible by heads, got {vocab_size}, {length}, {layers}, "
                             f"{num_classes}, {dim}, {heads}")
        blocks = [nn.TransformerEncoderLayer(dim, heads, feedforward or 2 * dim, dropout=0.0,
                                             batch_first=True, norm_first=True)
                  for _ in range(layers)]
        self.stages = nn.ModuleList([Embedding(vocab_size, length, dim), *blocks])
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def run_from(self, hidden: torch.Tensor, stage: int) -> torch.Tensor:
        """Logits from hidden state ``stage`` ``(N, L, D)``: the blocks after it and the head."""
        for block in self.stages[stage + 1:]:
            hidden = block(hidden)
        return self.head(hidden[:, 0])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.run_from(self.stages[0](tokens), 0)


class FromStage(nn.Module):
    """``model`` run from its hidden state ``stage`` on: ``(N, L, D)`` floats to logits.

    Stage 0 makes the embeddings the inputs, so that masks, noise and gradients apply
    to them (a token id cannot be scaled, its embedding can).
    """

    def __init__(self, model: TransformerClassifier, stage: int):
        super().__init__()
        if not 0 <= stage < len(model.stages):
            raise ValueError(f"stage must lie in [0, {len(model.stages) - 1}], got {stage}")
        self.model, self.stage = model, stage

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.run_from(hidden, self.stage)
