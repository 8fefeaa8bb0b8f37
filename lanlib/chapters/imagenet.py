"""Chapter 05 (``notebooks/05_imagenet``): what the pretrained network predicts for the photos.

The chapter explains a pretrained ImageNet classifier
(:func:`lanlib.models.imagenet.load_classifier`) on photos from :mod:`lanlib.data`
with sample-specific masks; the masks' figures and measures come from
:mod:`lanlib.plot` and :mod:`lanlib.metrics`.

- :func:`top_k`: the most probable classes of each photo, with their names.
"""

from __future__ import annotations

import torch

__all__ = ["top_k"]


@torch.no_grad()
def top_k(logits: torch.Tensor, class_names, k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each row of ``logits``, with their probabilities.

    Args:
        logits (Tensor (N, C)): the classifier's outputs.
        class_names (sequence of str (C,)): the name of each class.
        k (int): how many. Default 5.

    Returns:
        list of N lists of ``(name, probability)``, most probable first.

    Example:
        >>> top_k(torch.tensor([[0.0, 2.0, 1.0]]), ["a", "b", "c"], k=2)[0][0][0]
        'b'
    """
    probs, index = logits.softmax(dim=1).topk(k, dim=1)
    return [[(class_names[int(i)], float(p)) for p, i in zip(row_p, row_i, strict=True)]
            for row_p, row_i in zip(probs, index, strict=True)]
