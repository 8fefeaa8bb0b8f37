"""Numbers that score masks: ranking quality against a known truth, and faithfulness.

- :func:`auroc`: how well an importance map ranks the truly relevant elements first.
- :func:`output_agreement`: the share of inputs whose predicted class survives corruption
  (pooled, or per input over several noise draws).
- :func:`perturbation_curve`: deletion and insertion curves (faithfulness): replace the
  most important elements first and follow the probability of the original class.
- :func:`faithfulness`: both areas under several fills at once (the method's own noise,
  a blurred copy, grey), so that no method is judged only by the noise it was fitted with.
- :func:`binary_entropy`, :func:`mask_correlation`, :func:`class_consistency`,
  :func:`swap_test`: what masks of many inputs share and how much each one is its
  own input's (the sharpness of a mask, whether masks of a class agree, whether a
  mask fits its input better than a borrowed one).
- :func:`object_shares`, :func:`area_shares`, :func:`object_auroc`, :func:`score`:
  importance maps scored against the pixels of known objects (for images we drew
  ourselves, as in ``notebooks/06_tank_story``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .core import corrupt, frozen, model_output, upsample_mask
from .loop import generator as fresh_generator
from .losses import class_logits, resolve

__all__ = [
    "area_shares",
    "auroc",
    "binary_entropy",
    "class_consistency",
    "correlation",
    "mask_correlation",
    "mid_ranks",
    "object_auroc",
    "object_shares",
    "output_agreement",
    "faithfulness",
    "perturbation_curve",
    "score",
    "swap_test",
]


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one half).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapter 06 use it.

    It is the probability that a random relevant element scores higher than a random
    irrelevant one: 1 is a perfect ranking, 0.5 is chance.

    Args:
        scores (Tensor): any shape, e.g. importance ``1 - mask`` of shape ``(N, C, H, W)``.
        labels (Tensor): same shape, truthy where the element is relevant.

    Returns:
        float: the AUROC over all elements.

    Raises:
        ValueError: the shapes differ, a score or label is NaN, or one class is missing.

    Example:
        >>> auroc(torch.tensor([0.9, 0.8, 0.1, 0.3]), torch.tensor([1, 1, 0, 0]))
        1.0
    """
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must have one shape"
        )
    for name, values in (("scores", scores), ("labels", labels)):
        if values.is_floating_point() and bool(torch.isnan(values).any()):
            raise ValueError(f"{name} contain NaN; an AUROC of them would be meaningless")
    scores, labels = scores.reshape(-1).double(), labels.reshape(-1).bool()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("labels must contain both relevant and irrelevant elements")
    # Mid-ranks give tied scores half credit (the Mann-Whitney U statistic).
    u = mid_ranks(scores)[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def mid_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks of the elements of ``values`` (1 = smallest), ties sharing their mean rank.

    Chapter 04 (``notebooks/04_newsgroups.ipynb``) explains it.

    Args:
        values (Tensor): any shape; ranked as one flat sequence.

    Returns:
        Tensor (values.numel(),), float64: the mid-ranks, in the flattened order.

    Example:
        >>> mid_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist()
        [3.5, 1.0, 3.5, 2.0]
    """
    _, inverse, counts = torch.unique(values.reshape(-1), return_inverse=True,
                                      return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def correlation(a: torch.Tensor, b: torch.Tensor, *, rank: bool = False) -> float:
    """Pearson (``rank=True``: Spearman) correlation of two maps, over the elements finite in both.

    Chapter 02 (``notebooks/02_mnist_grid.ipynb``) explains it; chapter 04 use it.

    Args:
        a, b (Tensor): one shape; NaN or infinite elements (in either) are left out.
        rank (bool): correlate the mid-ranks (:func:`mid_ranks`) instead. Default False.

    Returns:
        float: in [-1, 1].

    Raises:
        ValueError: the shapes differ, or one map is constant where both are finite.

    Example:
        >>> a, b = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 9.0])
        >>> round(correlation(a, b, rank=True), 6)
        1.0
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must have one shape")
    keep = torch.isfinite(a) & torch.isfinite(b)
    x, y = a[keep].double(), b[keep].double()
    if len(x) < 2:
        raise ValueError(f"only {len(x)} element(s) are finite in both maps; a correlation "
                         "needs at least 2")
    if rank:
        x, y = mid_ranks(x), mid_ranks(y)
    x, y = x - x.mean(), y - y.mean()
    denominator = float(x.norm() * y.norm())
    if denominator == 0:
        raise ValueError("one of the maps is constant where both are finite")
    return float((x * y).sum()) / denominator


@torch.no_grad()
def output_agreement(
    model: nn.Module,
    inputs: torch.Tensor,
    mask: torch.Tensor,
    noise,
    *,
    draws: int = 1,
    per_input: bool = False,
    generator: torch.Generator | None = None,
) -> float | torch.Tensor:
    """Share of ``inputs`` whose predicted class is unchanged after corruption by ``mask``.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 03 and 04 use it.

    With ``draws > 1`` every input is corrupted by ``draws`` independent noise draws (in
    one batch: each input repeated ``draws`` times, one noise call), and the share is
    over all of them; ``per_input=True`` gives each input its own rate, so that one
    image gets a share of draws rather than a 0 or 1.

    Args:
        model (nn.Module): F, returning logits ``(N, classes)``.
        inputs (Tensor (N, ...)): the inputs.
        mask (Tensor): masks in [0, 1] broadcastable to ``inputs`` (one per input,
            ``(N, ...)``, or one shared by all).
        noise (callable): ``noise(inputs, generator) -> eta``.
        draws (int): noise draws per input. Default 1.
        per_input (bool): return one rate per input instead of the pooled share.
            Default False.
        generator (torch.Generator, optional): source of the noise draws.

    Returns:
        float in [0, 1]; with ``per_input``, Tensor (N,) of float64 rates in [0, 1], on the CPU.

    Example:
        >>> from lanlib import noise
        >>> reader = nn.Linear(2, 2)  # class 0 when x_0 > 0, else class 1
        >>> _ = reader.weight.data.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        >>> _ = reader.bias.data.zero_()
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> masks = torch.tensor([[0.0, 1.0], [1.0, 1.0]])  # the second replaces x_0
        >>> output_agreement(reader, x, masks, noise.constant(-1.0), draws=4, per_input=True)
        tensor([1., 0.], dtype=torch.float64)
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    n = len(inputs)
    repeated, masks = inputs, mask
    if draws > 1:
        repeated = inputs.repeat_interleave(draws, dim=0)
        if mask.ndim == inputs.ndim and mask.shape[0] == n:
            masks = mask.repeat_interleave(draws, dim=0)
    with frozen(model):
        before = class_logits(model_output(model, inputs)).argmax(dim=1).repeat_interleave(draws)
        eta = noise(repeated, generator)
        after = class_logits(model_output(model, corrupt(repeated, masks, eta))).argmax(dim=1)
    same = (before == after).double()
    if per_input:
        return same.reshape(n, draws).mean(dim=1).cpu()
    return float(same.mean())


@torch.no_grad()
def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    importance: torch.Tensor,
    noise,
    *,
    mode: str = "deletion",
    steps: int = 20,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    r"""Deletion or insertion curve of an importance map, and the area under it.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it; chapter 05 use it.

    Deletion replaces the most important elements of each input by noise first and
    follows F's probability for the class it predicted on the clean input: a faithful
    importance map makes it fall fast (small area). Insertion starts from pure noise
    and restores the most important elements first: it should rise fast (large area).
    Each input keeps one noise draw across the whole curve; ties in importance are
    broken at random.

    Args:
        model (nn.Module): F, returning logits ``(N, classes)``.
        inputs (Tensor (N, ...)): the inputs.
        importance (Tensor (N, \*S)): importance per element, ``1 - mask``; ``S`` may be
            coarser or channel-shared (e.g. ``(N, 1, H, W)``): elements are ranked at
            that resolution and each coarse element replaces its whole block.
        noise (callable): ``noise(inputs, generator) -> eta``, the replacement.
        mode (str): ``"deletion"`` (default) or ``"insertion"``.
        steps (int): number of equal fractions between 0 and 1. Default 20.
        target (Tensor (N,), optional): the class to follow, one per input; default F's
            prediction. For a model with one output per row, class 1 is the positive one
            (its probability is the sigmoid of the output, see :func:`lanlib.losses.class_logits`).
        generator (torch.Generator, optional): source of the noise and the tie-breaks.

    Returns:
        dict: ``"fractions"`` ``(steps + 1,)``, ``"probs"`` ``(N, steps + 1)`` and ``"auc"``
        ``(N,)``, the trapezoidal area under each input's curve.

    Raises:
        ValueError: a bad ``mode`` or ``steps``, an importance map per input missing or
            holding NaN, or a ``target`` that is not one class per input.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if importance.shape[0] != inputs.shape[0] or importance.ndim != inputs.ndim:
        raise ValueError(
            f"importance {tuple(importance.shape)} needs one map per input "
            f"{tuple(inputs.shape)}, with as many dimensions"
        )
    if importance.is_floating_point() and bool(torch.isnan(importance).any()):
        raise ValueError("importance contains NaN; the elements cannot be ranked")
    if target is not None:
        target = torch.as_tensor(target)
        if target.shape != (len(inputs),):
            raise ValueError(f"target must hold one class per input, shape ({len(inputs)},), "
                             f"got {tuple(target.shape)}")
        target = target.to(inputs.device, torch.int64)
    device = inputs.device
    if generator is None:
        generator = fresh_generator(None, device)
    with frozen(model):
        if target is None:
            target = class_logits(model_output(model, inputs)).argmax(dim=1)
        eta = noise(inputs, generator=generator)
        flat = importance.reshape(len(inputs), -1).to(device).double()
        jitter = torch.rand(flat.shape, generator=generator, device=device, dtype=flat.dtype)
        order = torch.argsort(flat + 1e-9 * jitter, dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(flat.shape[1], device=device).expand_as(order))
        fractions = torch.linspace(0, 1, steps + 1, device=device)
        probs = []
        for fraction in fractions:
            chosen = (rank < torch.round(fraction * flat.shape[1])).to(inputs.dtype)
            chosen = upsample_mask(chosen.reshape(importance.shape), inputs, smooth=False)
            mask = chosen if mode == "deletion" else 1 - chosen
            logits = class_logits(model_output(model, corrupt(inputs, mask, eta)))
            probs.append(logits.softmax(dim=1).gather(1, target.view(-1, 1)).squeeze(1))
    probs = torch.stack(probs, dim=1)
    auc = torch.trapezoid(probs, fractions, dim=1)
    return {"fractions": fractions.cpu(), "probs": probs.cpu(), "auc": auc.cpu()}


def faithfulness(
    model: nn.Module,
    inputs: torch.Tensor,
    importance: torch.Tensor,
    fills: Mapping[str, object],
    *,
    steps: int = 20,
    target: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, float]:
    r"""Mean deletion and insertion areas of an importance map under several fills.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it.

    A mask fitted against one noise can look faithful only under that noise: the
    deleted pixels are replaced by exactly what the mask learnt to tolerate. Scoring
    the same ranking with fills no method optimised for (a blurred copy of the input,
    a uniform grey) separates a ranking that finds what F uses from one that games
    the replacement. Each fill is scored by :func:`perturbation_curve` with its own
    generator seeded from ``seed``, so two importance maps scored with the same seed
    meet the same noise draws and tie-breaks.

    Args:
        model (nn.Module): F, returning logits.
        inputs (Tensor (N, ...)): the inputs.
        importance (Tensor (N, \*S)): importance per element (``1 - mask`` for masks),
            at the inputs' resolution or coarser, as :func:`perturbation_curve` takes it.
        fills (Mapping[str, callable]): name -> noise, e.g.
            ``{"own": noise, "blur": lanlib.noise.blur(4), "grey": lanlib.noise.constant(0.5)}``.
        steps (int): fractions per curve. Default 20.
        target (Tensor (N,), optional): the class followed; default F's prediction.
        seed (int): seed of every fill's generator. Default 0.

    Returns:
        dict: ``"deletion/<fill>"`` (lower is better) and ``"insertion/<fill>"`` (higher is
        better), each the mean area over the inputs, for every fill in order.

    Raises:
        ValueError: no fills, or what :func:`perturbation_curve` refuses.
    """
    if not fills:
        raise ValueError("fills is empty; pass at least one name -> noise, e.g. "
                         "{'own': noise}")
    areas = {}
    for mode in ("deletion", "insertion"):
        for name, fill in fills.items():
            generator = fresh_generator(seed, inputs.device)
            curve = perturbation_curve(model, inputs, importance, fill, mode=mode, steps=steps,
                                       target=target, generator=generator)
            areas[f"{mode}/{name}"] = float(curve["auc"].mean())
    return areas


def binary_entropy(masks: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy of each mask, in bits: 0 for a mask of hard 0s and 1s, 1 for all 0.5.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it.

    A lower value is a "sharper" mask, one that decides for each element.

    Args:
        masks (Tensor (N, ...)): masks in [0, 1].

    Returns:
        Tensor (N,): the mean over each mask's elements.

    Example:
        >>> binary_entropy(torch.tensor([[0.0, 1.0], [0.5, 0.5]])).round(decimals=3).tolist()
        [0.0, 1.0]
    """
    m = masks.reshape(len(masks), -1).double().clamp(1e-12, 1 - 1e-12)
    bits = -(m * torch.log2(m) + (1 - m) * torch.log2(1 - m))
    return bits.mean(dim=1)


def mask_correlation(masks: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between every pair of masks, ``(N, N)``.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it.

    Args:
        masks (Tensor (N, ...)): one mask (or importance map) per sample.

    Returns:
        Tensor (N, N): entry ``(i, j)`` is the correlation of masks i and j over their
        elements; a constant mask correlates 0 with everything (and 1 with itself).

    Example:
        >>> m = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 1.0]])
        >>> mask_correlation(m).round(decimals=2).tolist()
        [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    """
    flat = masks.reshape(len(masks), -1).double()
    flat = flat - flat.mean(dim=1, keepdim=True)
    norm = flat.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 1e-12, flat / norm.clamp_min(1e-12), torch.zeros_like(flat))
    corr = unit @ unit.T
    corr.fill_diagonal_(1.0)
    return corr


def class_consistency(
    masks: torch.Tensor,
    labels: torch.Tensor,
    *,
    permutations: int = 0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean correlation of masks within a class and between classes.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it.

    If a network's attention is consistent within a class (the paper's reading of
    its CIFAR-10 Figure 4), masks of two images of the same class correlate more
    than masks of images of different classes. With ``permutations > 0`` the gap is
    compared with the gaps of randomly relabelled masks (the same masks, the labels
    shuffled), which says whether it could be chance.

    Args:
        masks (Tensor (N, ...)): one mask per sample.
        labels (Tensor (N,)): the class of each sample; at least one class must have
            two samples and there must be two classes.
        permutations (int): label shuffles for the permutation test. Default 0 (none).
        generator (torch.Generator, optional): source of the shuffles.

    Returns:
        dict: ``"within"`` (mean over pairs i < j of the same class), ``"between"``
        (mean over pairs of different classes), ``"gap"`` (within - between) and, with
        ``permutations``, ``"p_value"``: the share of shuffles whose gap is at least the
        observed one, counting the observed labelling as one of them.

    Example:
        >>> m = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9]])
        >>> stats = class_consistency(m, torch.tensor([0, 0, 1, 1]))
        >>> stats["within"] > 0.9 > stats["between"]
        True
    """
    labels = torch.as_tensor(labels).reshape(-1).to(masks.device)
    if len(labels) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    corr = mask_correlation(masks)
    upper = torch.ones(len(labels), len(labels), dtype=torch.bool,
                       device=corr.device).triu(diagonal=1)

    def means(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        same = lab[:, None] == lab[None, :]
        within, between = corr[same & upper], corr[~same & upper]
        if len(within) == 0 or len(between) == 0:
            raise ValueError("need two samples of one class and samples of two classes")
        return within.mean(), between.mean()

    w, b = means(labels)
    stats = {"within": float(w), "between": float(b), "gap": float(w - b)}
    if permutations:
        device = generator.device if generator is not None else labels.device
        at_least = 1
        for _ in range(permutations):
            order = torch.randperm(len(labels), generator=generator, device=device)
            pw, pb = means(labels[order.to(labels.device)])
            at_least += int(pw - pb >= w - b)
        stats["p_value"] = at_least / (permutations + 1)
    return stats


@torch.no_grad()
def swap_test(
    model: nn.Module,
    inputs: torch.Tensor,
    masks: torch.Tensor,
    partner: torch.Tensor,
    noise,
    *,
    draws: int = 8,
    loss="kl",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """How much a mask fits its own input better than another input's mask does.

    Chapter 03 (``notebooks/03_cifar10.ipynb``) explains it.

    For every input i, the model's output on ``x_i`` corrupted through its own mask
    is compared (``loss``, e.g. the KL divergence) with the output on ``x_i`` corrupted
    through the mask of ``partner[i]``, with the same noise draws. A mask that tracks
    its individual image distorts the output much less than a borrowed one; a mask
    that is the same for every image of a class gains nothing from being its own.
    Both are averaged over ``draws`` noise draws.

    Args:
        model (nn.Module): F, returning logits.
        inputs (Tensor (N, C, H, W)): the inputs.
        masks (Tensor (N, ...)): their masks, broadcastable to ``inputs`` per sample
            (e.g. ``(N, 1, H, W)``).
        partner (LongTensor (N,)): for each input, whose mask it borrows (``partner[i]``
            != i, e.g. another image of the same class).
        noise (callable): ``noise(inputs, generator) -> eta``.
        draws (int): noise draws averaged. Default 8.
        loss (str or callable): distortion between the clean and corrupted outputs.
            Default ``"kl"``.
        generator (torch.Generator, optional): source of the noise.

    Returns:
        dict: ``"own"`` and ``"swapped"`` mean distortions, ``"ratio"`` (swapped / own)
        and ``"own_better"``, the share of inputs whose own mask distorts less.
    """
    partner = torch.as_tensor(partner).reshape(-1)
    if len(partner) != len(inputs) or len(masks) != len(inputs):
        raise ValueError("inputs, masks and partner need one row per input")
    if bool((partner == torch.arange(len(inputs), device=partner.device)).any()):
        raise ValueError("partner[i] must differ from i")
    distortion = resolve(loss)
    own, swapped = torch.zeros(len(inputs)), torch.zeros(len(inputs))
    with frozen(model):
        reference = model_output(model, inputs)
        for _ in range(draws):
            eta = noise(inputs, generator=generator)
            own += distortion(reference, model_output(model, corrupt(inputs, masks, eta))).cpu()
            borrowed = corrupt(inputs, masks[partner], eta)
            swapped += distortion(reference, model_output(model, borrowed)).cpu()
    own, swapped = own / draws, swapped / draws
    return {
        "own": float(own.mean()),
        "swapped": float(swapped.mean()),
        "ratio": float(swapped.mean() / own.mean().clamp_min(1e-12)),
        "own_better": float((own < swapped).double().mean()),
    }


# ----------------------------------------------------------------------------- known objects
#
# When we drew the images ourselves we know where every object is. Importance maps are
# non-negative, (N, C, H, W) or (N, H, W) (channels are summed): 1 - mask for a LAN
# (upsampled with lanlib.upsample_mask if the mask was coarser), or the magnitude of
# another method's attributions (lanlib.attribution). Object masks are boolean,
# (N, 1, H, W) or (N, H, W).


def _planes(importance: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` float64 importance, channels summed; checked non-negative."""
    importance = torch.as_tensor(importance).detach()
    if importance.ndim == 4:
        importance = importance.sum(dim=1)
    if importance.ndim != 3:
        raise ValueError(
            f"importance must be (N, C, H, W) or (N, H, W), got shape {tuple(importance.shape)}"
        )
    importance = importance.double().cpu()
    if torch.isnan(importance).any():
        raise ValueError("importance contains NaN")
    if (importance < 0).any():
        raise ValueError(
            "importance must be non-negative; pass magnitudes (attributions.abs()) or "
            "1 - mask"
        )
    return importance


def _object_planes(mask: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    """``(N, H, W)`` bool object mask, checked against the importance planes ``like``."""
    mask = torch.as_tensor(mask).detach().cpu()
    if mask.ndim == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"object mask {name!r} must have one channel, got {tuple(mask.shape)}")
        mask = mask[:, 0]
    if mask.shape != like.shape:
        raise ValueError(
            f"object mask {name!r} has shape {tuple(mask.shape)} but the importance maps "
            f"{tuple(like.shape)} (after summing channels); they must match"
        )
    return mask.bool()


def object_shares(importance: torch.Tensor, objects: Mapping[str, torch.Tensor], *,
                  per_image: bool = False) -> dict[str, float] | dict[str, torch.Tensor]:
    """Share of each image's importance on each object's pixels, and on the rest.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Per image, ``sum(importance on the object) / sum(importance)``, averaged over the
    images. A map that knows nothing (uniform importance) gets the object's share of
    the area (:func:`area_shares`).

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance, e.g.
            ``1 - mask``; channels are summed.
        objects (mapping name -> BoolTensor (N, 1, H, W) or (N, H, W)): object pixels.
            Objects may overlap (a pixel then counts for each); ``"rest"`` is the pixels
            of no object.
        per_image (bool): return ``(N,)`` float64 tensors instead of their means.
            Default False.

    Returns:
        dict: one share per object and ``"rest"``. An image with no importance at all
        gives each region its share of the area.

    Raises:
        ValueError: negative or NaN importance, mismatched shapes, or an object named
            ``"rest"``.

    Example:
        >>> importance = torch.zeros(1, 1, 4, 4); importance[0, 0, 0, :2] = 1.0
        >>> cloud = torch.zeros(1, 1, 4, 4, dtype=torch.bool); cloud[0, 0, 0, :] = True
        >>> object_shares(importance, {"cloud": cloud})
        {'cloud': 1.0, 'rest': 0.0}
    """
    planes = _planes(importance)
    masks = {k: _object_planes(v, planes, k) for k, v in objects.items()}
    if "rest" in masks:
        raise ValueError("'rest' is reserved for the pixels of no object; rename that object")
    anywhere = torch.zeros_like(planes, dtype=torch.bool)
    for m in masks.values():
        anywhere |= m
    masks["rest"] = ~anywhere
    total = planes.flatten(1).sum(dim=1)
    empty = total <= 0
    area = planes[0].numel()
    shares = {}
    for k, m in masks.items():
        share = (planes * m).flatten(1).sum(dim=1) / total.clamp_min(1e-300)
        share = torch.where(empty, m.flatten(1).sum(dim=1).double() / area, share)
        shares[k] = share if per_image else float(share.mean())
    return shares


def area_shares(objects: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """The shares of a uniform importance map: each object's (and the rest's) mean area.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Args:
        objects (mapping name -> BoolTensor (N, 1, H, W) or (N, H, W)): object pixels.

    Returns:
        dict: what :func:`object_shares` gives a map that knows nothing.

    Example:
        >>> cloud = torch.zeros(1, 1, 4, 4, dtype=torch.bool); cloud[0, 0, 0, :] = True
        >>> area_shares({"cloud": cloud})
        {'cloud': 0.25, 'rest': 0.75}
    """
    first = next(iter(objects.values()))
    like = torch.ones(first.shape[0], *first.shape[-2:])
    return object_shares(like, objects)


def object_auroc(importance: torch.Tensor, mask: torch.Tensor, *,
                 per_image: bool = False) -> float | torch.Tensor:
    """AUROC of the importance for an object's pixels against all other pixels.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Per image, the probability that a random pixel of the object is more important
    than a random pixel elsewhere (:func:`auroc`): 0.5 is chance, 1 a perfect ranking;
    it ignores the scale of the map, so methods with different units compare. The
    ranking inside each map is what matters, not how maps of different images compare:
    the values are averaged over the images where the object is visible and does not
    fill the whole image.

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance.
        mask (BoolTensor (N, 1, H, W) or (N, H, W)): the object's pixels.
        per_image (bool): return ``(N,)`` float64 values, NaN where the object is absent.

    Returns:
        float (or Tensor (N,)): the mean AUROC.

    Raises:
        ValueError: no image holds the object.

    Example:
        >>> importance = torch.zeros(1, 1, 4, 4); importance[0, 0, 0, :2] = 1.0
        >>> cloud = torch.zeros(1, 1, 4, 4, dtype=torch.bool); cloud[0, 0, 0, :] = True
        >>> object_auroc(importance, cloud)
        0.75
    """
    planes = _planes(importance)
    mask = _object_planes(mask, planes, "mask")
    values = torch.full((len(planes),), float("nan"), dtype=torch.float64)
    for i in range(len(planes)):
        positives = int(mask[i].sum())
        if 0 < positives < mask[i].numel():
            values[i] = auroc(planes[i], mask[i])
    if per_image:
        return values
    valid = ~torch.isnan(values)
    if not valid.any():
        raise ValueError("no image holds the object (or it fills every image); cannot score")
    return float(values[valid].mean())


def score(importance: torch.Tensor, objects: Mapping[str, torch.Tensor], *,
          auroc_for: Sequence[str] | None = None) -> dict[str, float]:
    """Shares of importance per object (and ``"rest"``), and AUROCs as ``"auroc_<name>"``.

    Chapter 06 (``notebooks/06_tank_story.ipynb``) explains it.

    Args:
        importance (Tensor (N, C, H, W) or (N, H, W)): non-negative importance.
        objects (mapping name -> BoolTensor): object pixels, as in :func:`object_shares`.
        auroc_for (sequence of str, optional): objects to compute the AUROC for
            (:func:`object_auroc`); default all.

    Returns:
        dict str -> float: the shares of :func:`object_shares`, then the AUROCs.

    Example:
        >>> importance = torch.zeros(1, 1, 4, 4); importance[0, 0, 0, :2] = 1.0
        >>> cloud = torch.zeros(1, 1, 4, 4, dtype=torch.bool); cloud[0, 0, 0, :] = True
        >>> score(importance, {"cloud": cloud})
        {'cloud': 1.0, 'rest': 0.0, 'auroc_cloud': 0.75}
    """
    names = list(objects) if auroc_for is None else list(auroc_for)
    missing = set(names) - set(objects)
    if missing:
        raise ValueError(f"auroc_for names {sorted(missing)}, which are not among the objects")
    out = object_shares(importance, objects)
    for name in names:
        out[f"auroc_{name}"] = object_auroc(importance, objects[name])
    return out
