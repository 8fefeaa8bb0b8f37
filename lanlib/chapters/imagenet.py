"""Chapter 05 (``notebooks/05_imagenet``): the photos, and what the network predicts for them.

The chapter explains a pretrained ImageNet classifier
(:func:`lanlib.models.imagenet.load_classifier`) on photos from :mod:`lanlib.data`
with sample-specific masks; the masks' figures and measures come from
:mod:`lanlib.plot` and :mod:`lanlib.metrics`.

- :func:`load_photos`: the ImageNet sample photos when they are found, and the photos
  that ship inside packages, each once, with their ImageNet labels.
- :func:`top_k`: the most probable classes of each photo, with their names.
- :func:`captum_options`: Occlusion, Feature Ablation and Integrated Gradients set to
  about the cost of a number of mask-fitting steps, for the comparison at matched time.
- :func:`method_scores`: deletion and insertion areas of several maps under several
  fills, with each method's own fill and its time, as the results file records them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

from .. import metrics
from ..data.imagenet import (
    PACKAGE_PHOTO_LABELS,
    imagenet_class_names,
    load_imagenet_samples,
    package_photos,
)

__all__ = ["Photos", "captum_options", "load_photos", "method_scores", "top_k"]


class Photos(NamedTuple):
    """The chapter's photos, as :func:`load_photos` returns them."""

    #: float32 ``(N, 3, size, size)`` in [0, 1].
    images: torch.Tensor
    #: int64 ``(N,)``: the ImageNet-1k class each photo shows, -1 where none fits.
    labels: torch.Tensor
    #: The class name of each ImageNet sample photo, the name of each package photo.
    names: list[str]
    #: bool ``(N,)``: True for the ImageNet sample photos, False for the package photos.
    imagenet: torch.Tensor


def load_photos(size: int = 224) -> Photos:
    """The ImageNet sample photos when they are found, then the photos that ship in packages.

    The sample photos come from :func:`~lanlib.data.load_imagenet_samples` (data root or
    offline mirror), the others from :func:`~lanlib.data.package_photos`, labelled as
    :data:`lanlib.data.imagenet.PACKAGE_PHOTO_LABELS` says. Without the sample photos, the
    loader returns the package photos itself: each photo is in the result once, and
    nothing is downloaded either way.

    Args:
        size (int): the side of the square photos in pixels. Default 224.

    Returns:
        Photos: ``(images, labels, names, imagenet)``, a named tuple.

    Example:
        >>> photos = load_photos(64)
        >>> photos.images.shape[1:], len(photos.names) == len(photos.labels)
        (torch.Size([3, 64, 64]), True)
        >>> "chelsea" in photos.names and photos.names.count("chelsea") == 1
        True
    """
    images, labels, stems = load_imagenet_samples(size=size)
    extra, extra_names = package_photos(size)
    sample = [stem not in extra_names for stem in stems]  # False: the loader's fallback
    add = [i for i, name in enumerate(extra_names) if name not in stems]
    class_names = imagenet_class_names()
    names = [class_names[int(y)] if from_sample else stem
             for stem, y, from_sample in zip(stems, labels, sample, strict=True)]
    return Photos(
        images=torch.cat([images, extra[add]]),
        labels=torch.cat([labels, torch.tensor([PACKAGE_PHOTO_LABELS.get(extra_names[i], -1)
                                                for i in add], dtype=torch.int64)]),
        names=names + [extra_names[i] for i in add],
        imagenet=torch.tensor(sample + [False] * len(add)),
    )


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


def captum_options(size: int, grid: int, steps: int, batch: int) -> dict[str, dict]:
    """Options of :func:`lanlib.attribute` for Captum's methods on ``size`` px images.

    Occlusion slides a window of two cells with a stride of one cell, Feature Ablation
    removes one cell at a time, the cell being ``size / grid`` px: about ``grid**2``
    forward passes each. Integrated Gradients takes ``steps`` points on its path, the
    forward and backward passes of ``steps`` mask-fitting steps.

    Args:
        size (int): the images' side in pixels.
        grid (int): cells per side.
        steps (int): the integration points of Integrated Gradients.
        batch (int): images per call, so that Integrated Gradients evaluates ``batch``
            images at a time (not ``steps`` times as many).

    Returns:
        dict: method name -> options.

    Example:
        >>> captum_options(160, 16, 50, 6)["occlusion"]
        {'window': 20, 'stride': 10}
    """
    cell = max(1, round(size / grid))
    return {"occlusion": {"window": 2 * cell, "stride": cell},
            "feature_ablation": {"patch": cell},
            "integrated_gradients": {"n_steps": steps, "internal_batch_size": batch}}


def method_scores(model, inputs: torch.Tensor, attributions: Mapping, fills: Mapping,
                  own: Mapping[str, str], *, steps: int, seed: int) -> dict[str, dict]:
    """Deletion and insertion areas of each method's maps, under each fill and its own.

    Args:
        model (nn.Module): F.
        inputs (Tensor (N, ...)): the images.
        attributions (mapping name -> Attribution): what :func:`lanlib.attribute` returned.
        fills (mapping fill name -> noise): the fills every method is scored with
            (:func:`lanlib.metrics.faithfulness`, one seed for all).
        own (mapping name -> fill name): the fill each method replaces with itself.
        steps (int): points per curve.
        seed (int): seed of the fills' draws.

    Returns:
        dict: name -> ``{"deletion/<fill>", "insertion/<fill>"`` for every fill,
        ``"deletion/own"``, ``"insertion/own"``, ``"seconds_per_image"}``.
    """
    scores = {}
    for name, attribution in attributions.items():
        areas = metrics.faithfulness(model, inputs, attribution.maps, fills, steps=steps,
                                     seed=seed)
        scores[name] = {**areas,
                        **{f"{mode}/own": areas[f"{mode}/{own[name]}"]
                           for mode in ("deletion", "insertion")},
                        "seconds_per_image": attribution.seconds_per_image}
    return scores
