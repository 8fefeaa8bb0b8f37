"""Selective dependence classification (SDC): tasks whose relevant input segment is known.

Pandey, Vashisht and Ramaswamy (ACML 2022) call a classification task *selective
dependence* when each input is a row of segments and its label depends on one segment
only, chosen by a rule. The segment that matters is then known for every input, so an
explanation can be scored against the truth. Two such tasks are built here, each with
the true segment's index per input:

- :func:`mnist_sdc`: a row of ``segments`` real MNIST digits. Exactly one digit is of a
  *foreground* class (by default 0, 1 or 2); the label is its class. The others are of
  *background* classes (by default 6 to 9, and 3 to 5 for distractors).
- :func:`token_sdc`: a sequence of ``segments`` segments of ``segment_length`` tokens.
  One segment is made of *foreground* tokens of the label's group; the others of
  neutral background tokens (and distractor tokens for distractors).

Both take ``distractor``: the probability that one background segment (at a random
place) is drawn from a group paired with the label, so that it predicts the label too
although the rule never reads it. A model may learn the distractor instead of the rule.

Layouts: the MNIST task gives ``(N, segments, 28, 28)`` (one digit per channel), the
token task one-hot vectors ``(N, segments, segment_length, vocab_size)``; either way a
segment-level mask of shape ``(segments, 1, 1)`` broadcasts over a segment's elements.

Example:
    >>> import torch
    >>> digits = torch.rand(60, 1, 28, 28)
    >>> classes = torch.arange(60) % 10
    >>> task = mnist_sdc(digits, classes, 8, segments=4, seed=0)
    >>> tuple(task.inputs.shape), int(task.labels.max()) <= 2, tuple(task.relevant.shape)
    ((8, 4, 28, 28), True, (8,))

The chapter ``notebooks/08_attention`` trains attention models on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = ["SDC", "mnist_sdc", "token_sdc", "segment_truth"]


class SDC(NamedTuple):
    """A selective-dependence task: inputs, labels and the index of the relevant segment."""

    #: ``(N, segments, ...)``: images ``(N, k, 28, 28)`` or one-hot tokens ``(N, k, L, V)``.
    inputs: torch.Tensor
    #: ``(N,)`` int64: the class.
    labels: torch.Tensor
    #: ``(N,)`` int64: the index of the segment the label depends on.
    relevant: torch.Tensor
    #: ``(N,)`` int64: the index of the distractor segment, -1 where there is none.
    distractor: torch.Tensor


def segment_truth(relevant: torch.Tensor, segments: int) -> torch.Tensor:
    """One-hot ``(N, segments)`` bool map of the relevant segment, for scoring explanations.

    Example:
        >>> segment_truth(torch.tensor([2, 0]), 3).int().tolist()
        [[0, 0, 1], [1, 0, 0]]
    """
    return torch.nn.functional.one_hot(relevant.long(), segments).bool()


def _check(segments: int, distractor: float, n: int) -> None:
    if not isinstance(segments, int) or segments < 2:
        raise ValueError(f"segments must be an integer >= 2, got {segments!r}")
    if not 0 <= distractor <= 1:
        raise ValueError(f"distractor must be a probability in [0, 1], got {distractor!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")


def _layout(n: int, segments: int, distractor: float, gen: torch.Generator):
    """Per input: the relevant position, the distractor position (-1: none)."""
    relevant = torch.randint(segments, (n,), generator=gen)
    shift = torch.randint(1, segments, (n,), generator=gen)  # any other position
    has = torch.rand(n, generator=gen) < distractor
    return relevant, torch.where(has, (relevant + shift) % segments, -1)


def mnist_sdc(images: torch.Tensor, labels: torch.Tensor, n: int, *, segments: int = 4,
              foreground: Sequence[int] = (0, 1, 2), distractor: float = 0.0,
              seed: int = 0) -> SDC:
    """A row of ``segments`` MNIST digits; the label is the class of the one foreground digit.

    Args:
        images (Tensor (M, 1, 28, 28)): MNIST digits in [0, 1] (from
            :func:`lanlib.data.load_mnist`); each input draws its digits from them.
        labels (Tensor (M,)): their classes 0..9.
        n (int): inputs to make.
        segments (int): digits per input, >= 2. Default 4.
        foreground (sequence of int): the classes that can be relevant; the label is the
            position of the foreground digit's class in this list. Of the other classes,
            the first ``len(foreground)`` are distractor classes, paired with the labels
            in order (3, 4, 5 by default), the rest neutral (6 to 9 by default).
            Default (0, 1, 2).
        distractor (float): probability that one background digit is of the distractor
            class paired with the label; every other background digit is of a neutral
            class, drawn uniformly. Default 0 (no distractors).
        seed (int): seeds every draw. Default 0.

    Returns:
        SDC: inputs ``(n, segments, 28, 28)``, labels in ``0..len(foreground)-1``, the
        foreground digit's position, the distractor's position (-1 where none).
    """
    _check(segments, distractor, n)
    foreground = [int(c) for c in foreground]
    background = [c for c in range(10) if c not in foreground]
    if len(background) <= len(foreground):
        raise ValueError("each foreground class needs a background class of its own (its "
                         "distractor) and one background class must be left: give at most "
                         "four foreground classes")
    gen = torch.Generator().manual_seed(seed)
    pools = [torch.nonzero(labels == c).squeeze(1) for c in range(10)]
    if any(len(pools[c]) == 0 for c in foreground + background):
        raise ValueError("every class needs at least one digit among the images")
    label = torch.randint(len(foreground), (n,), generator=gen)
    relevant, distract = _layout(n, segments, distractor, gen)
    paired, neutral = background[:len(foreground)], background[len(foreground):]
    classes = torch.tensor(neutral)[torch.randint(len(neutral), (n, segments), generator=gen)]
    rows = torch.arange(n)
    classes[rows, relevant] = torch.tensor(foreground)[label]
    has = distract >= 0
    classes[rows[has], distract[has]] = torch.tensor(paired)[label[has]]
    picks = torch.empty(n, segments, dtype=torch.long)
    for c in classes.unique().tolist():
        where = classes == c
        pool = pools[c]
        picks[where] = pool[torch.randint(len(pool), (int(where.sum()),), generator=gen)]
    inputs = images[picks.reshape(-1), 0].reshape(n, segments, *images.shape[2:])
    return SDC(inputs.float(), label, relevant, distract)


def token_sdc(n: int, *, segments: int = 6, segment_length: int = 2, classes: int = 2,
              group_size: int = 4, background_size: int = 16, distractor: float = 0.0,
              seed: int = 0) -> SDC:
    """Token sequences; the label is the group of the one segment made of foreground tokens.

    The vocabulary holds ``F = classes * group_size`` foreground tokens (group c: tokens
    ``c * group_size`` to ``(c + 1) * group_size - 1``), then ``background_size``
    background tokens: the first ``F`` of them are distractor tokens, split into groups
    the same way, the rest neutral. The foreground segment draws its tokens from the
    label's group, a distractor segment from the label's distractor group, every other
    segment uniformly from the neutral tokens.

    Args:
        n (int): sequences to make.
        segments (int): segments per sequence, >= 2. Default 6.
        segment_length (int): tokens per segment. Default 2.
        classes (int): number of labels. Default 2.
        group_size (int): foreground tokens per class. Default 4.
        background_size (int): background tokens, > ``classes * group_size``. Default 16.
        distractor (float): probability that one background segment comes from the
            label's background group. Default 0.
        seed (int): seeds every draw. Default 0.

    Returns:
        SDC: one-hot inputs ``(n, segments, segment_length, V)`` with
        ``V = classes * group_size + background_size``, the labels, the positions.
    """
    _check(segments, distractor, n)
    if background_size <= classes * group_size:
        raise ValueError(f"background_size must exceed classes * group_size "
                         f"({classes * group_size}, the distractor tokens), got {background_size}")
    gen = torch.Generator().manual_seed(seed)
    fore = classes * group_size
    label = torch.randint(classes, (n,), generator=gen)
    relevant, distract = _layout(n, segments, distractor, gen)
    neutral = background_size - fore
    tokens = 2 * fore + torch.randint(neutral, (n, segments, segment_length), generator=gen)
    rows = torch.arange(n)
    within = torch.randint(group_size, (n, segment_length), generator=gen)
    tokens[rows, relevant] = label[:, None] * group_size + within
    has = distract >= 0
    within = torch.randint(group_size, (n, segment_length), generator=gen)
    tokens[rows[has], distract[has]] = fore + (label[:, None] * group_size + within)[has]
    inputs = torch.nn.functional.one_hot(tokens, fore + background_size).float()
    return SDC(inputs, label, relevant, distract)
