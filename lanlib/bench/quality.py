"""Sections that weigh speed against quality: convergence, amortised, methods, matched time.

- :func:`convergence`: the Eq. 4 objective (mean over images, estimated with fixed noise
  draws) against steps, with the paper's optimiser (:data:`~lanlib.bench.settings.PAPER`),
  with lanlib's defaults (:data:`~lanlib.bench.settings.LIBRARY`) and with the
  :data:`CANDIDATES`; the steps each needs to come within 1% of what the paper's settings
  reach after the reference number of steps.
- :func:`amortised`: a LAN (one forward pass per mask) against batched sample-specific
  fitting: time per mask, deletion-curve area and objective.
- :func:`methods`: time per image and deletion-curve area of the sample masks (snapshots
  along one run), the LAN, Captum's methods (through :func:`lanlib.attribution.attribute`,
  occlusion and ablation replacing by the noise draw the deletion curve uses), TorchRay's
  extremal perturbation (ImageNet only, if it imports) and a random map.
- :func:`matched_time`: the sample masks' deletion area at the time per image of each rival.

Example:
    >>> checkpoints(30)
    [1, 2, 3, 5, 7, 10, 15, 20, 30]
    >>> steps_to([(1, 3.0), (10, 1.0), (100, 0.5)], 1.0)
    10
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ..attribution import attribute
from ..core import frozen, importance
from ..loop import synchronize
from .measure import deletion, expected_objective, fit, median, noise_draw, rounded, timed
from .settings import LIBRARY, PAPER
from .subjects import Subject

__all__ = ["CANDIDATES", "amortised", "batch1_seconds_per_step", "checkpoints", "convergence",
           "matched_time", "methods", "steps_to"]


def checkpoints(last: int) -> list[int]:
    """The steps at which a curve of ``last`` steps is evaluated: 1, 1.5, 2, 3, 5, 7 per decade."""
    marks = {last}
    for decade in range(0, int(math.log10(max(last, 1))) + 1):
        for k in (1, 1.5, 2, 3, 5, 7):
            if k * 10 ** decade <= last and float(k * 10 ** decade).is_integer():
                marks.add(int(k * 10 ** decade))
    return sorted(marks)


def steps_to(curve: list[tuple[int, float]], threshold: float) -> int | None:
    """The first step of ``curve`` (pairs of step and objective) at or below ``threshold``."""
    return next((s for s, v in curve if v <= threshold), None)


#: Settings tried against lanlib's defaults: constant ones give a curve (one run, evaluated
#: along the way); decaying schedules depend on the total, so each total is its own run.
CANDIDATES = (
    {"lr": 0.2, "schedule": "constant", "init": 0.5},
    {"lr": 0.1, "schedule": "constant", "init": 0.2},
    {"lr": 0.1, "schedule": "cosine", "init": 0.5},
    {"lr": 0.3, "schedule": "cosine", "init": 0.5},
    {"lr": 0.1, "schedule": "linear", "init": 0.2},
)


def convergence(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """Objective versus steps: the paper's optimiser, lanlib's defaults, candidate settings."""
    n = cfg["convergence_images"][subject.name]
    x = subject.images[:n]
    draws, eval_seed = cfg["eval_draws"], seed + 1000

    def evaluate(masks):
        return expected_objective(subject, x, masks, draws=draws, seed=eval_seed)

    def curve_of(steps, **settings):
        marks, curve = set(checkpoints(steps)), []

        def record(step, masks):
            if step in marks:
                curve.append((step, evaluate(masks)))

        start = time.perf_counter()
        fit(subject, x, steps=steps, seed=seed, callback=record, **settings)
        return curve, time.perf_counter() - start

    ref_steps = cfg["reference_steps"][subject.name]
    paper, paper_seconds = curve_of(ref_steps, lr=PAPER["lr"], init=PAPER["init"])
    library, _ = curve_of(cfg["library_steps"], lr=LIBRARY["lr"], init=LIBRARY["init"])
    reference = paper[-1][1]
    threshold = reference + 0.01 * abs(reference)
    start_value = evaluate(torch.full((n, *subject.mask_shape), 0.5, device=device))
    candidates = {}
    for cand in CANDIDATES[:cfg["candidates"]]:
        label = f"lr {cand['lr']:g}, {cand['schedule']}, init {cand['init']:g}"
        if cand["schedule"] == "constant":
            curve, _ = curve_of(cfg["candidate_curve_steps"], **cand)
        else:
            curve = [(steps, evaluate(fit(subject, x, steps=steps, seed=seed, **cand)))
                     for steps in cfg["candidate_steps"]]
        candidates[label] = {**cand, "curve": [[s, rounded(v, 5)] for s, v in curve],
                             "steps_to_within_1pct": steps_to(curve, threshold),
                             "max_steps": curve[-1][0]}
    library_at = dict(library)
    return {
        "images": n, "eval_draws": draws, "beta": rounded(subject.beta),
        "reference_steps": ref_steps, "paper_steps": PAPER["steps"],
        "reference_note": ("the reference is the paper's settings after "
                           f"{ref_steps} steps" + ("" if ref_steps >= PAPER["steps"] else
                                                   f", not the paper's {PAPER['steps']}")),
        "objective_at_init": rounded(start_value, 5),
        "reference_objective": rounded(reference, 5), "threshold": rounded(threshold, 5),
        "paper_curve": [[s, rounded(v, 5)] for s, v in paper],
        "library_curve": [[s, rounded(v, 5)] for s, v in library],
        "paper_steps_to_within_1pct": steps_to(paper, threshold),
        "library_steps_to_within_1pct": steps_to(library, threshold),
        "library_max_steps": cfg["library_steps"],
        "library_default_steps": LIBRARY["steps"],
        "library_objective_at_default_steps": (
            rounded(library_at[LIBRARY["steps"]], 5) if LIBRARY["steps"] in library_at
            else None),
        "candidates": candidates,
        "paper_seconds_for_reference": rounded(paper_seconds),
    }


def batch1_seconds_per_step(results: dict, subject: Subject, cfg: dict, device: torch.device,
                            seed: int) -> float:
    """Seconds per step of a batch-1 fit: from the throughput section, or measured now."""
    tp = results.get("throughput", {}).get(subject.name)
    if tp and "1" in tp["batches"]:
        return tp["batches"]["1"]["seconds"] / tp["steps"]
    steps = cfg["throughput_steps"]
    seconds, _ = timed(lambda: fit(subject, subject.images[:1], steps=steps, seed=seed),
                       device, cfg["repeats"])
    return median(seconds) / steps


def amortised(subject: Subject, lan: nn.Module, lan_info: dict, loop_seconds_per_step: float,
              cfg: dict, device: torch.device, seed: int) -> dict:
    """One forward pass of a LAN per mask against batched sample-specific fitting.

    ``loop_seconds_per_step`` (:func:`batch1_seconds_per_step`) estimates the paper's
    protocol: 10,000 steps, one mask at a time.
    """
    x = subject.images[:cfg["amortised_images"]]
    n = len(x)
    with torch.no_grad():
        lan(x)
        seconds, masks_lan = timed(lambda: lan(x), device, max(cfg["repeats"], 3))
    t_lan = median(seconds) / n
    seconds, masks_sample = timed(
        lambda: fit(subject, x, steps=LIBRARY["steps"], lr=LIBRARY["lr"], seed=seed), device)
    t_sample = seconds[0] / n
    t_paper = loop_seconds_per_step * PAPER["steps"]  # one mask at a time, 10,000 steps
    draws, eval_seed = cfg["eval_draws"], seed + 1000
    q_lan = deletion(subject, x, importance(masks_lan), cfg, seed + 7)
    q_sample = deletion(subject, x, importance(masks_sample), cfg, seed + 7)
    j_lan = expected_objective(subject, x, masks_lan, draws=draws, seed=eval_seed)
    j_sample = expected_objective(subject, x, masks_sample, draws=draws, seed=eval_seed)
    gap = (q_lan["deletion_auc"] - q_sample["deletion_auc"]) / q_sample["deletion_auc"]
    return {
        "images": n, "lan": lan_info,
        "lan_seconds_per_mask": rounded(t_lan),
        "sample_seconds_per_mask": rounded(t_sample),
        "sample_steps": LIBRARY["steps"],
        "paper_protocol_seconds_per_mask": rounded(t_paper),
        "paper_protocol_note": (f"{PAPER['steps']} steps at batch 1, estimated from the "
                                "batch-1 step time of the throughput section"),
        "speedup_vs_batched_sample": rounded(t_sample / t_lan, 3),
        "speedup_vs_paper_protocol": rounded(t_paper / t_lan, 3),
        "lan_deletion": q_lan, "sample_deletion": q_sample,
        "deletion_auc_gap_relative": rounded(gap, 3),
        "lan_objective": rounded(j_lan, 5), "sample_objective": rounded(j_sample, 5),
    }


def _extremal_perturbation(subject: Subject, x: torch.Tensor, cfg: dict, device):
    """TorchRay's extremal perturbation (one image at a time), or the reason it cannot run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchRay's own imports
            from torchray.attribution.extremal_perturbation import (
                contrastive_reward,
                extremal_perturbation,
            )
    except Exception as exc:  # any import failure means "not available"
        return None, f"torchray not usable: {type(exc).__name__}: {exc}"
    model = subject.model
    step = max(1, round(7 * x.shape[-1] / 224))  # TorchRay's defaults are for 224 pixels
    maps = []
    with frozen(model):
        with torch.no_grad():
            targets = model(x).argmax(1).tolist()
        synchronize(device)
        start = time.perf_counter()
        try:
            for i, target in enumerate(targets):
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="torch.meshgrid")  # TorchRay's
                    masks, _ = extremal_perturbation(
                        model, x[i:i + 1], int(target), areas=[0.1], max_iter=cfg["ep_iters"],
                        step=step, sigma=3 * step, reward_func=contrastive_reward, resize=True)
                maps.append(masks.sum(0, keepdim=True).detach())
        except Exception as exc:  # report it, do not stop the benchmark
            return None, f"torchray failed: {type(exc).__name__}: {exc}"
        synchronize(device)
        seconds = time.perf_counter() - start
    # the preserved area is what matters: importance = the mask
    return (torch.cat(maps), seconds / len(x)), None


#: Captum's methods by lanlib.attribution's name: how the chart names them, how a point
#: is labelled from its options.
_CAPTUM = {
    "saliency": ("Captum Saliency", lambda o: ""),
    "integrated_gradients": ("Captum Integrated Gradients", lambda o: f"{o['n_steps']} steps"),
    "occlusion": ("Captum Occlusion", lambda o: f"window {o['window']}, stride {o['stride']}"),
    "feature_ablation": ("Captum Feature Ablation", lambda o: f"patch {o['patch']}"),
}


def methods(subject: Subject, cfg: dict, device: torch.device, seed: int,
            lan: nn.Module | None = None) -> dict:
    """Time per image and deletion-curve area of each method on the same images."""
    x = subject.images[:cfg["methods_images"][subject.name]]
    n = len(x)
    del_seed = seed + 7
    base = noise_draw(subject, x, del_seed)
    points: list[dict] = []

    def add(method: str, label: str, seconds: float, imp: torch.Tensor, **extra):
        points.append({"method": method, "label": label, "seconds_per_image": rounded(seconds),
                       **deletion(subject, x, imp, cfg, del_seed), **extra})

    # sample-specific masks (lanlib defaults), snapshots along one run
    marks, snaps, spent = set(cfg["sample_checkpoints"]), {}, [0.0]
    last = max(marks)

    def snapshot(step, masks):
        if step in marks:
            synchronize(device)
            now = time.perf_counter()
            snaps[step] = (now - start - spent[0], masks.clone())
            spent[0] += time.perf_counter() - now

    fit(subject, x[:1], steps=1, seed=seed)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    fit(subject, x, steps=last, seed=seed, lr=LIBRARY["lr"], callback=snapshot)
    for step in sorted(snaps):
        seconds, masks = snaps[step]
        add("lanlib sample masks", f"{step} steps", seconds / n, importance(masks), steps=step)
    if lan is not None:
        with torch.no_grad():
            lan(x)
            seconds, masks = timed(lambda: lan(x), device, 3)
        add("lanlib amortised LAN", "one forward pass", median(seconds) / n, importance(masks))
    options = {"integrated_gradients": [{"n_steps": cfg["ig_steps"],
                                         "internal_batch_size": max(n, 8)}],
               "saliency": [{}],
               "occlusion": [{"window": w, "stride": s, "perturbations_per_eval": 8}
                             for w, s in cfg["occlusion"][subject.name]],
               "feature_ablation": [{"patch": p, "perturbations_per_eval": 8}
                                    for p in cfg["ablation"][subject.name]]}
    for method, configs in options.items():
        name, label = _CAPTUM[method]
        for o in configs:
            res = attribute(subject.model, x, method, baselines=base, **o)
            add(name, label(o), res.seconds_per_image, res.maps,
                options={k: v for k, v in o.items() if k != "internal_batch_size"})
    gen = torch.Generator(device=device).manual_seed(seed)
    add("random map", "", 0.0, torch.rand((n, 1, *x.shape[2:]), generator=gen, device=device))
    ep_note = None
    if subject.name == "imagenet":
        result, ep_note = _extremal_perturbation(subject, x, cfg, device)
        if result is not None:
            maps, seconds = result
            add("TorchRay extremal perturbation", f"{cfg['ep_iters']} iterations", seconds,
                maps, iterations=cfg["ep_iters"])
    return {"images": n, "deletion_noise": subject.info["noise"],
            "deletion_grid": subject.deletion_grid,
            "deletion_steps": cfg["deletion_steps"], "points": points,
            "extremal_perturbation_note": ep_note or (
                None if subject.name == "imagenet" else "run on the ImageNet network only "
                "(its smoothing and steps are made for photos)")}


def matched_time(points: list[dict], rivals: Sequence[str]) -> list[dict]:
    """For each rival point, the sample-mask deletion area at the same time per image.

    Interpolated linearly in log-time between the sample-mask snapshots; a rival slower than
    the last snapshot is compared with the last (more steps would not be worse in
    expectation); one faster than the first cannot be matched (``None``).

    Args:
        points (list of dict): the ``points`` of :func:`methods`.
        rivals (sequence of str): the methods compared, e.g. ``("Captum Occlusion",)``.

    Returns:
        list of dict: one row per rival point.
    """
    curve = sorted((p["seconds_per_image"], p["deletion_auc"]) for p in points
                   if p["method"] == "lanlib sample masks")
    out = []
    for p in points:
        if p["method"] not in rivals:
            continue
        t = p["seconds_per_image"]
        if not curve or t < curve[0][0]:
            ours = None
        elif t >= curve[-1][0]:
            ours = curve[-1][1]
        else:
            k = next(i for i in range(1, len(curve)) if curve[i][0] >= t)
            (t0, a0), (t1, a1) = curve[k - 1], curve[k]
            w = (math.log(t) - math.log(t0)) / (math.log(t1) - math.log(t0)) if t1 > t0 else 1.0
            ours = a0 + w * (a1 - a0)
        out.append({"rival": f"{p['method']} ({p['label']})", "seconds_per_image":
                    p["seconds_per_image"], "rival_auc": p["deletion_auc"],
                    "sample_masks_auc_at_same_time": None if ours is None else rounded(ours),
                    "sample_masks_lower": None if ours is None else ours < p["deletion_auc"]})
    return out
