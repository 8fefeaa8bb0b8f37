"""Chapter 08 (``notebooks/08_attention``): is attention an explanation?

The chapter's own code: models trained over seeds (through the cache), every method's
segment-level importance, its scores against the known relevant segment, deletion,
rank agreement between methods, and the chapter's figures. The tasks are
:mod:`lanlib.data.sdc`, the models :mod:`lanlib.models.attention`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations

import numpy as np
import torch
from torch import nn

import lanlib
from lanlib.cache import cached_classifier
from lanlib.data.sdc import SDC, segment_truth
from lanlib.loop import resolve_device
from lanlib.metrics import auroc, mid_ranks, perturbation_curve
from lanlib.plot import OKABE_ITO

__all__ = ["attention_report", "deletion_auc", "explain_segments", "plot_attention_vs_truth",
           "plot_digit_rows", "plot_method_scores", "rank_agreement", "score_segments",
           "token_rows", "train_seeds"]

#: The gradient methods, by lanlib.attribute's names, with the labels the chapter uses.
GRADIENT_METHODS = {"saliency": "saliency", "input_x_gradient": "input × gradient",
                    "integrated_gradients": "integrated gradients"}


#: Axis labels of the scores :func:`score_segments` and :func:`deletion_auc` give.
LABELS = {"auroc": "AUROC against the relevant segment",
          "true_share": "share on the relevant segment", "top1": "relevant segment first",
          "deletion_auc": "deletion area (lower: better)"}


def train_seeds(name: str, build: Callable[[], nn.Module], task: SDC, *, seeds: Sequence[int],
                config: Mapping, steps: int, lr: float, batch_size: int,
                device) -> list[nn.Module]:
    """One classifier per seed on ``task``, trained once and cached.

    ``build()`` makes the untrained network; it runs under :func:`lanlib.seeded` of the
    seed, so the initial weights differ from seed to seed. ``config`` describes the
    network and the task (the cache key, with the training settings and the seed).
    """
    models = []
    for seed in seeds:
        model, _, _ = cached_classifier(name, lambda key: build(),
                                        (task.inputs, task.labels), config=dict(config),
                                        steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                        device=device, verbose=False)
        models.append(model)
    return models


@torch.no_grad()
def attention_report(model: nn.Module, task: SDC, *, accurate: float = 0.9) -> dict:
    """How a model's attention relates to the truth on ``task`` (its test inputs).

    Returns a dict: ``accuracy``; ``true_share``, the mean attention on the relevant
    segment; ``on_distractor``, the mean attention on the distractor (where there is one);
    ``outside``, the share of correctly classified inputs whose attention puts less than
    half its mass on the relevant segment; ``accurate``, accuracy >= ``accurate``;
    ``uninterpretable``: accurate, yet mean attention on the relevant segment below one half.
    """
    x = task.inputs.to(resolve_device(model, None))
    weights = model.attention(x).cpu()
    right = model(x).argmax(1).cpu() == task.labels
    on_true = weights.gather(1, task.relevant[:, None]).squeeze(1)
    has = task.distractor >= 0
    on_distractor = weights[has].gather(1, task.distractor[has, None]).mean() if has.any() else 0
    accuracy = float(right.double().mean())
    true_share = float(on_true.mean())
    return {"accuracy": accuracy, "true_share": true_share,
            "on_distractor": float(on_distractor),
            "outside": float((on_true[right] < 0.5).double().mean()) if right.any() else 0.0,
            "accurate": accuracy >= accurate,
            "uninterpretable": accuracy >= accurate and true_share < 0.5}


def _segments(maps: torch.Tensor) -> torch.Tensor:
    """``(N, k, ...)`` absolute attributions summed per segment: ``(N, k)``."""
    return maps.abs().flatten(2).sum(2)


def explain_segments(model: nn.Module, inputs: torch.Tensor, lan_data: torch.Tensor, *,
                     beta: float, sample_steps: int, lan_steps: int, lan_hidden: int,
                     lime_samples: int, ig_steps: int, seed: int, device) -> dict:
    """Every method's importance of each segment, ``{label: (N, k)}``, higher = more important.

    Attention weights; LAN sample masks and an amortised LAN (trained on ``lan_data``), both
    one mask value per segment with constant-zero noise (importance ``1 - mask``);
    saliency, input × gradient and integrated gradients (absolute attributions summed over
    a segment); LIME with the segments as features (ridge surrogate, absolute weights); and
    random scores.
    """
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import Lime

    k = inputs.shape[1]
    shape = (k,) + (1,) * (inputs.ndim - 2)
    zero = lanlib.noise.constant(0.0)
    x = inputs.to(device)
    with torch.no_grad():
        scores = {"attention": model.attention(x).cpu()}
    masks = lanlib.fit_sample_masks(model, x, zero, beta=beta, steps=sample_steps,
                                    mask_shape=shape, seed=seed, progress=False)
    scores["LAN sample masks"] = lanlib.importance(masks).flatten(1).cpu()
    with lanlib.seeded(seed):
        net = lanlib.nets.MLPMaskNet(tuple(inputs.shape[1:]), hidden=(lan_hidden,),
                                     mask_shape=shape)
    lan = lanlib.fit_lan(model, net, lan_data, zero, beta=beta, steps=lan_steps, lr=3e-3,
                         seed=seed, progress=False, device=device)
    with torch.no_grad():
        scores["amortised LAN"] = lanlib.importance(lan(x)).flatten(1).cpu()
    for method, label in GRADIENT_METHODS.items():
        options = {"n_steps": ig_steps} if method == "integrated_gradients" else {}
        out = lanlib.attribute(model, x, method, reduce="abs", **options)
        scores[label] = _segments(out.maps).cpu()
    feature_mask = torch.arange(k, device=device).reshape(1, *shape).expand_as(x[:1])
    target = model(x).argmax(1).detach()
    with lanlib.frozen(model), lanlib.seeded(seed), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are providing multiple inputs")  # meant
        lime = Lime(model, interpretable_model=SkLearnRidge(alpha=1.0)).attribute(
            x, target=target, feature_mask=feature_mask, n_samples=lime_samples,
            perturbations_per_eval=lime_samples, baselines=0.0)
    scores["LIME"] = lime.flatten(2)[:, :, 0].abs().cpu()
    scores["random"] = torch.rand(len(x), k, generator=torch.Generator().manual_seed(seed))
    return scores


def score_segments(scores: torch.Tensor, relevant: torch.Tensor) -> dict:
    """Scores of a segment importance ``(N, k)`` against the relevant segment ``(N,)``.

    ``auroc``: the mean over inputs of the AUROC of the relevant segment against the
    others (1 = always ranked first, 0.5 = chance); ``true_share``: the mean share of the
    (non-negative) importance that falls on the relevant segment (1/k for uniform scores);
    ``top1``: how often the relevant segment scores highest.
    """
    truth = segment_truth(relevant, scores.shape[1])
    positive = scores.clamp(min=0)
    total = positive.sum(1)
    share = torch.where(total > 0, positive[truth] / total.clamp(min=1e-12),
                        torch.full_like(total, 1 / scores.shape[1]))
    return {"auroc": float(np.mean([auroc(s, t) for s, t in zip(scores, truth, strict=True)])),
            "true_share": float(share.mean()),
            "top1": float((scores.argmax(1) == relevant).double().mean())}


def deletion_auc(model: nn.Module, inputs: torch.Tensor, scores: torch.Tensor, *,
                 seed: int) -> float:
    """Mean area under the deletion curve (segments zeroed, most important first; lower is
    better): F's probability of its clean-input class as the segments go."""
    k = inputs.shape[1]
    importance = scores.reshape(len(scores), k, *(1,) * (inputs.ndim - 2))
    curve = perturbation_curve(model, inputs, importance.to(inputs.device),
                               lanlib.noise.constant(0.0), steps=k,
                               generator=torch.Generator(inputs.device).manual_seed(seed))
    return float(curve["auc"].mean())


def rank_agreement(scores: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Mean per-input Spearman correlation of the segment rankings of each pair of methods.

    Inputs where either ranking is constant (no order) are left out of a pair's mean.
    """
    ranks = {name: torch.stack([mid_ranks(row) for row in s]) for name, s in scores.items()}
    out = {}
    for a, b in combinations(scores, 2):
        ra = ranks[a] - ranks[a].mean(1, keepdim=True)
        rb = ranks[b] - ranks[b].mean(1, keepdim=True)
        norm = ra.norm(dim=1) * rb.norm(dim=1)
        valid = norm > 0
        out[f"{a} vs {b}"] = (float(((ra * rb).sum(1)[valid] / norm[valid]).mean())
                              if valid.any() else float("nan"))
    return out


def token_rows(task: SDC, rows: int, *, classes: int, group_size: int) -> list[list[str]]:
    """The first ``rows`` token sequences as words: ``f<c>`` foreground tokens of class c,
    ``d<c>`` distractor tokens paired with class c, ``b`` neutral background tokens; the
    relevant segment in brackets."""
    fore = classes * group_size
    out = []
    for i in range(rows):
        segments = []
        for j, segment in enumerate(task.inputs[i].argmax(-1).tolist()):
            words = [f"f{t // group_size}" if t < fore else
                     f"d{(t - fore) // group_size}" if t - fore < fore else "b"
                     for t in segment]
            text = " ".join(words)
            segments.append(f"[{text}]" if j == int(task.relevant[i]) else text)
        out.append([str(int(task.labels[i])), " | ".join(segments)])
    return out


def plot_digit_rows(task: SDC, rows: int = 4, ax=None):
    """The first ``rows`` MNIST inputs, the relevant digit framed vermilion, the distractor blue."""
    import matplotlib.pyplot as plt

    k = task.inputs.shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * k, 1.1 * rows))
    canvas = task.inputs[:rows].permute(0, 2, 1, 3).reshape(rows * 28, k * 28)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    for i in range(rows):
        for j, colour in ((int(task.relevant[i]), OKABE_ITO[1]),
                          (int(task.distractor[i]), OKABE_ITO[0])):
            if j >= 0:
                ax.add_patch(plt.Rectangle((j * 28 - 0.5, i * 28 - 0.5), 28, 28, fill=False,
                                           edgecolor=colour, linewidth=2.5))
        ax.text(k * 28 + 4, i * 28 + 14, f"label {int(task.labels[i])}", va="center")
    ax.set_axis_off()
    return ax.figure


def plot_attention_vs_truth(reports: Mapping[str, Sequence[dict]], ax=None):
    """Each model's accuracy (x) against its mean attention on the relevant segment (y).

    ``reports`` maps a group name such as ``"digits clean softmax"`` to its models'
    :func:`attention_report`; the colour tells the task (the name without its last word),
    the marker the attention (circles softmax, triangles sparsemax). The dashed line
    marks one half.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    tasks = list(dict.fromkeys(name.rsplit(" ", 1)[0] for name in reports))
    for name, group in reports.items():
        task, kind = name.rsplit(" ", 1)
        ax.scatter([r["accuracy"] for r in group], [r["true_share"] for r in group],
                   color=OKABE_ITO[tasks.index(task) % len(OKABE_ITO)],
                   marker="^" if kind == "sparsemax" else "o", label=name, alpha=0.85)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("mean attention on the relevant segment")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return ax.figure


def plot_method_scores(table: Mapping[str, Mapping[str, dict]], metric: str = "auroc", ax=None):
    """Grouped bars: per model (colour), each method's ``metric`` against the truth."""
    import matplotlib.pyplot as plt

    models = list(table)
    methods = list(next(iter(table.values())))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(models)
    for i, (name, colour) in enumerate(zip(models, OKABE_ITO, strict=False)):
        ax.bar(np.arange(len(methods)) + (i - (len(models) - 1) / 2) * width,
               [table[name][m][metric] for m in methods], width, color=colour, label=name)
    ax.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return ax.figure
