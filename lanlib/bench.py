"""How fast are lanlib's masks, and what does speed cost in quality? One command measures it.

    LANLIB_DATA_MIRROR=/work/shared/datasets python -m lanlib.bench --out benchmarks/quick.json

prints a table and writes every number to the JSON file (atomically) and a speed–quality
chart next to it (same name, ``.png``). Settings (``--setting``): ``smoke`` (seconds,
random data, used by the tests so this module cannot rot), ``quick`` (the default, minutes
on a laptop CPU) and ``full`` (the paper's step counts, for a GPU). Every comparison is
measured in the same run and reported as a ratio, so a busy machine inflates the times
but not the ratios much; the table's header gives the load average.

What is measured (each a section of the table and of the JSON):

- ``throughput``: masks per second of one batched :func:`lanlib.fit_sample_masks` call at
  batch 1, 16, 64 and 256 with the same number of steps, on the translated-MNIST and the
  CIFAR-10 networks of the book, and the ratio to batch 1 (what a Python loop over
  samples costs per mask).
- ``accelerations``: the optional ``channels_last``, ``amp`` (bfloat16) and ``compile``
  arguments of :func:`lanlib.fit_sample_masks`, each against the plain call; and two
  straightforward loops without one of its savings each (F(x) recomputed every step; F's
  weights left to collect gradients), which must reach the same objective.
- ``convergence``: the Eq. 4 objective (mean over images, estimated with fixed noise
  draws) against steps, with the paper's optimiser (Adam, learning rate 0.05, constant,
  mask ``sigmoid(logits)`` started at 0.5) and with lanlib's defaults (learning rate 0.1),
  and with candidate settings (learning rate, start, schedule); the steps each needs to come within
  1% of what the paper's settings reach after 10,000 steps (fewer in the quick setting,
  which says so).
- ``amortised``: a LAN (one forward pass per mask) against batched sample-specific
  fitting: time per mask, deletion-curve area and objective.
- ``methods``: the same networks and images explained by Captum's Saliency, Integrated
  Gradients, Occlusion and Feature Ablation, TorchRay's extremal perturbation (if it
  installs) and a random map: time per image and deletion-curve area
  (:func:`lanlib.metrics.perturbation_curve`, with the noise the masks are fitted with;
  occlusion and ablation replace by the same noise draw), plus the ImageNet network
  (EfficientNet-Lite0) on a few photos.
- ``flops``: the share of the device's matrix-multiply rate that fitting masks reaches on
  the CIFAR-10 network (FLOPs of F's forward and backward per step, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode`).

CPU runs use one intra-op thread by default (``--threads``): the steps are small, and on a
shared machine PyTorch's threads wait on each other (the ``threads`` row measures it).
Trained networks go through :func:`lanlib.cache.load_or_train` (names ``bench-*``), so a
second run skips training.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import noise as noises
from .core import frozen, importance, objective, upsample_mask
from .fit import fit_lan, fit_sample_masks
from .loop import generator, seeded
from .metrics import perturbation_curve

__all__ = ["SETTINGS", "main", "run"]

#: The paper's sample-specific optimiser (Appendix D): Adam, learning rate 0.05, 10,000 steps.
PAPER = {"lr": 0.05, "steps": 10_000, "schedule": "constant", "init": 0.5}
#: lanlib's defaults for :func:`lanlib.fit_sample_masks`.
LIBRARY = {"lr": 0.1, "steps": 300, "schedule": "constant", "init": 0.5}

SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {
        "synthetic": True, "cache": False, "subjects": ("mnist", "cifar", "imagenet"),
        "f_steps": {"mnist": 3, "cifar": 2}, "d_full_images": 8,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 1, "repeats": 1,
        "accel_batch": 8, "accel_steps": 1, "compile": False,
        "convergence_images": {"mnist": 4, "cifar": 2},
        "reference_steps": {"mnist": 8, "cifar": 8}, "library_steps": 6,
        "candidates": 5, "candidate_curve_steps": 4, "candidate_steps": (2, 4),
        "eval_draws": 2, "lan": {"mnist": 4}, "amortised_images": 8,
        "methods_images": {"mnist": 4, "cifar": 2, "imagenet": 1}, "imagenet_size": 32,
        "sample_checkpoints": (1, 2, 3), "ig_steps": 4, "ep_iters": 2, "deletion_steps": 4,
        "occlusion": {"mnist": ((14, 14),), "cifar": ((16, 16),), "imagenet": ((16, 16),)},
        "ablation": {"mnist": (14,), "cifar": (16,), "imagenet": (16,)},
        "flops_batch": 8, "flops_steps": 1, "matmul_size": 256,
    },
    "quick": {
        "synthetic": False, "cache": True, "subjects": ("mnist", "cifar", "imagenet"),
        "f_steps": {"mnist": 2000, "cifar": 600}, "d_full_images": 256,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 10, "repeats": 5,
        "accel_batch": 64, "accel_steps": 20, "compile": False,
        "convergence_images": {"mnist": 32, "cifar": 8},
        "reference_steps": {"mnist": 10_000, "cifar": 2000}, "library_steps": 2000,
        "candidates": 3, "candidate_curve_steps": 1000, "candidate_steps": (300, 1000),
        "eval_draws": 8, "lan": {"mnist": 3000}, "amortised_images": 256,
        "methods_images": {"mnist": 64, "cifar": 32, "imagenet": 4}, "imagenet_size": 160,
        "sample_checkpoints": (10, 25, 50, 100, 200, 300), "ig_steps": 32, "ep_iters": 100,
        "deletion_steps": 20,
        "occlusion": {"mnist": ((8, 4), (4, 2)), "cifar": ((8, 4), (4, 2)),
                      "imagenet": ((40, 20), (20, 10))},
        "ablation": {"mnist": (7, 4), "cifar": (8, 4), "imagenet": (40, 20)},
        "flops_batch": 64, "flops_steps": 10, "matmul_size": 2048,
    },
    "full": {
        "synthetic": False, "cache": True, "subjects": ("mnist", "cifar", "imagenet"),
        "f_steps": {"mnist": 20_000, "cifar": 20_000}, "d_full_images": 1000,
        "throughput_batches": (1, 16, 64, 256), "throughput_steps": 50, "repeats": 5,
        "accel_batch": 256, "accel_steps": 50, "compile": True,
        "convergence_images": {"mnist": 256, "cifar": 64},
        "reference_steps": {"mnist": 10_000, "cifar": 10_000}, "library_steps": 10_000,
        "candidates": 5, "candidate_curve_steps": 2000, "candidate_steps": (100, 300, 1000),
        "eval_draws": 16,
        "lan": {"mnist": 100_000, "cifar": 50_000}, "amortised_images": 1000,
        "methods_images": {"mnist": 256, "cifar": 256, "imagenet": 20}, "imagenet_size": 224,
        "sample_checkpoints": (10, 25, 50, 100, 200, 300, 500, 1000), "ig_steps": 64,
        "ep_iters": 800, "deletion_steps": 32,
        "occlusion": {"mnist": ((8, 4), (4, 2), (2, 1)), "cifar": ((8, 4), (4, 2), (2, 1)),
                      "imagenet": ((56, 28), (28, 14), (14, 7))},
        "ablation": {"mnist": (7, 4, 2), "cifar": (8, 4, 2), "imagenet": (56, 28, 14)},
        "flops_batch": 1024, "flops_steps": 50, "matmul_size": 8192,
    },
}

_BETA_REL = 1.0  # beta = _BETA_REL * D_full, the distortion when every element is replaced
_TITLES = {"mnist": "translated MNIST", "cifar": "CIFAR-10", "imagenet": "ImageNet"}


# ----------------------------------------------------------------------------- helpers


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device,
           repeats: int = 1) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeats`` times; return the seconds of each run and the last result."""
    seconds, out = [], None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds, out


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _round(value: float, digits: int = 4) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0))


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


@dataclass
class Subject:
    """A network to explain, with the images, the noise and the beta used for it."""

    name: str
    model: nn.Module
    images: torch.Tensor  # (N, C, H, W) on the device: throughput and evaluation images
    noise: Callable
    beta: float
    mask_shape: tuple[int, ...]
    pool: torch.Tensor | None = None  # training inputs, for the amortised LAN
    # Deletion ranks cells of this grid for every method (None: each map's own resolution).
    # Uniform noise scattered pixel by pixel hurts a CNN far more than the same share in
    # blocks, which would favour pixel-level maps (even a random one) over block-level ones.
    deletion_grid: tuple[int, int] | None = None
    config: dict = field(default_factory=dict)  # what the network was trained with
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- subjects


def _train_or_load(name: str, config: dict, build, train, cache: bool) -> tuple[nn.Module, bool]:
    if cache:
        from .cache import load_or_train

        return load_or_train(name, config, build, train)
    module = build(config)
    train(module, config)
    return module.eval(), False


def _d_full(model: nn.Module, x: torch.Tensor, noise, seed: int) -> float:
    """The distortion when the whole input is replaced by noise, mean of 4 draws."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    ones = torch.ones(1, *([1] * (x.ndim - 1)), device=x.device)
    with frozen(model), torch.no_grad():
        draws = [objective(model, x, ones, noise, beta=1.0, generator=gen)["distortion"]
                 for _ in range(4)]
    return float(torch.stack(draws).mean())


def _classifier(name: str, cfg: dict, device: torch.device, seed: int) -> Subject:
    from .train import accuracy, train_classifier

    synthetic = cfg["synthetic"]
    n_eval = max(max(cfg["throughput_batches"]), cfg["amortised_images"],
                 cfg["methods_images"][name], cfg["convergence_images"][name])
    if name == "mnist":
        from .models.mnist import build_translated_mnist_net

        shape = (1, 28, 28)
        if synthetic:
            gen = torch.Generator().manual_seed(seed)
            train_x = (torch.rand(512, *shape, generator=gen) > 0.8).float()
            train_y = torch.randint(10, (512,), generator=gen)
            pool, test_x, test_y = train_x, train_x[:n_eval], train_y[:n_eval]
            data = "synthetic"
        else:
            from .data import load_translated_mnist

            train_x, train_y, _ = load_translated_mnist("train", seed=seed)
            pool = load_translated_mnist("train", seed=seed + 1)[0]  # fresh placements
            test_x, test_y, _ = load_translated_mnist("test", n=n_eval, seed=seed + 2)
            data = "translated-mnist-train"
        f_config = {"version": 1, "data": data, "steps": cfg["f_steps"]["mnist"], "lr": 1e-3,
                    "batch_size": 64, "seed": seed, "padding": 0}

        def build(c):
            return build_translated_mnist_net({"init_seed": c["seed"], "padding": c["padding"]})

        mask_shape = shape
    else:
        from .models.cifar import CifarNet

        shape = (3, 32, 32)
        if synthetic:
            gen = torch.Generator().manual_seed(seed)
            train_x = torch.rand(512, *shape, generator=gen)
            train_y = torch.randint(10, (512,), generator=gen)
            pool, test_x, test_y = train_x, train_x[:n_eval], train_y[:n_eval]
            data = "synthetic"
        else:
            from .data import load_cifar10

            train_x, train_y = load_cifar10("train")
            test_x, test_y = load_cifar10("test")
            order = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(seed))
            test_x, test_y = test_x[order[:n_eval]], test_y[order[:n_eval]]
            pool = train_x
            data = "cifar10-train"
        f_config = {"version": 1, "data": data, "steps": cfg["f_steps"]["cifar"], "lr": 1e-3,
                    "batch_size": 64, "seed": seed, "dropout": 0.3}

        def build(c):
            with seeded(c["seed"]):
                return CifarNet(dropout=c["dropout"])

        mask_shape = (1, 32, 32)  # one mask shared by the colour channels, as in the book

    def train(model, c):
        train_classifier(model, (train_x, train_y), steps=c["steps"], lr=c["lr"],
                         batch_size=c["batch_size"], seed=c["seed"], progress=False,
                         device=device)

    model, loaded = _train_or_load(f"bench-{name}-F", f_config, build, train, cfg["cache"])
    model = model.to(device).eval()
    acc = accuracy(model, test_x.to(device), test_y.to(device))
    pool = pool.to(device)
    noise = noises.bootstrap(pool)
    images = test_x.to(device)
    d_full = _d_full(model, images[:cfg["d_full_images"]], noise, seed)
    return Subject(name, model, images, noise, _BETA_REL * d_full, mask_shape, pool=pool,
                   config=f_config,
                   info={"loaded": loaded, "test_accuracy": round(acc, 4),
                         "d_full": round(d_full, 4), "beta": round(_BETA_REL * d_full, 4),
                         "noise": "bootstrap (a random training input)",
                         "mask_shape": list(mask_shape), "data": data})


def _imagenet(cfg: dict, device: torch.device, seed: int) -> Subject:
    from .data import load_imagenet_samples
    from .models.imagenet import load_classifier

    size = cfg["imagenet_size"]
    model = load_classifier("efficientnet_lite0").to(device).eval()
    images, labels, names = load_imagenet_samples(size=size)
    n = cfg["methods_images"]["imagenet"]
    images = images[:n].to(device)
    noise = noises.uniform(0.0, 1.0)
    with torch.no_grad():
        predicted = model(images).argmax(1).cpu()
    known = labels[:n] >= 0
    top1 = float((predicted[known] == labels[:n][known]).double().mean()) if known.any() else None
    d_full = _d_full(model, images, noise, seed)
    side = max(size // 8, 1)
    return Subject("imagenet", model, images, noise, _BETA_REL * d_full, (1, side, side),
                   deletion_grid=(side, side),
                   info={"deletion_grid": [side, side], "loaded": True,
                         "model": "efficientnet_lite0", "size": size,
                         "images": names[:n], "top1_on_these": top1,
                         "d_full": round(d_full, 4), "beta": round(_BETA_REL * d_full, 4),
                         "noise": "uniform in [0, 1]", "mask_shape": [1, side, side]})


# ----------------------------------------------------------------------------- sections


def _fit(subject: Subject, x: torch.Tensor, *, steps: int, seed: int, **kwargs) -> torch.Tensor:
    return fit_sample_masks(subject.model, x, subject.noise, beta=subject.beta, steps=steps,
                            mask_shape=subject.mask_shape, seed=seed, progress=False, **kwargs)


def _interleaved(calls: dict[str, Callable[[], Any]], device: torch.device,
                 repeats: int) -> tuple[dict[str, list[float]], dict[str, float], dict[str, Any]]:
    """Time several calls round-robin, so that a change of load hits them all alike.

    Returns the seconds of each repeat per call, the seconds of each call's first (warm-up)
    run, and each call's last result.
    """
    first, results = {}, {}
    for name, fn in calls.items():
        seconds, _ = _timed(fn, device)
        first[name] = seconds[0]
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            seconds, results[name] = _timed(fn, device)
            times[name].append(seconds[0])
    return times, first, results


def throughput(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """Masks per second of one batched call at each batch size, same steps; ratio to batch 1.

    Also the largest batch with ``amp=True``, and an actual Python loop of single-sample
    calls over 16 inputs (what batch 1 stands for).
    """
    steps = cfg["throughput_steps"]

    def fit_batch(b, **kwargs):
        x = subject.images[torch.arange(b, device=device) % len(subject.images)]
        return lambda: _fit(subject, x, steps=steps, seed=seed, **kwargs)

    calls = {str(b): fit_batch(b) for b in cfg["throughput_batches"]}
    big = max(cfg["throughput_batches"])
    calls["amp"] = fit_batch(big, amp=True)
    x16 = subject.images[:16]
    calls["loop"] = lambda: [_fit(subject, x16[i:i + 1], steps=steps, seed=seed)
                             for i in range(len(x16))]
    times, _, _ = _interleaved(calls, device, cfg["repeats"])
    out = {"steps": steps, "repeats": cfg["repeats"], "batches": {}}
    for b in cfg["throughput_batches"]:
        t = _median(times[str(b)])
        out["batches"][str(b)] = {"seconds": _round(t), "seconds_min": _round(min(times[str(b)])),
                                  "masks_per_second": _round(b / t),
                                  "seconds_per_mask_step": _round(t / (b * steps))}
    base = out["batches"][str(cfg["throughput_batches"][0])]["masks_per_second"]
    for row in out["batches"].values():
        row["ratio_to_batch_1"] = _round(row["masks_per_second"] / base, 3)
    rate = big / _median(times["amp"])
    out["amp_largest_batch"] = {"batch": big, "masks_per_second": _round(rate),
                                "ratio_to_batch_1": _round(rate / base, 3)}
    rate = len(x16) / _median(times["loop"])
    out["loop_of_16"] = {"masks_per_second": _round(rate),
                         "ratio_to_batch_1": _round(rate / base, 3)}
    return out


def thread_contention(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict | None:
    """Batch-16 steps with PyTorch's default thread count against the one used here."""
    if device.type != "cpu":
        return None
    cores = os.cpu_count() or 1
    used = torch.get_num_threads()
    if cores == used:
        return None
    x = subject.images[:16]
    steps = cfg["throughput_steps"]
    res = {}
    for threads in (used, cores):
        torch.set_num_threads(threads)
        try:
            _fit(subject, x, steps=1, seed=seed)
            seconds, _ = _timed(lambda: _fit(subject, x, steps=steps, seed=seed), device,
                                cfg["repeats"])
        finally:
            torch.set_num_threads(used)
        res[str(threads)] = _round(_median(seconds) / steps)
    return {"batch": 16, "seconds_per_step": res,
            "slowdown_with_all_threads": _round(res[str(cores)] / res[str(used)], 3)}


def _naive_fit(subject: Subject, x: torch.Tensor, *, steps: int, seed: int,
               reference_once: bool = True, weights_need_grad: bool = False) -> torch.Tensor:
    """fit_sample_masks's loop (same start, noise draws and optimiser) without one saving.

    ``reference_once=False`` computes F(x) again at every step; ``weights_need_grad=True``
    leaves F's parameters requiring gradients, so every backward pass also fills them.
    """
    model = subject.model
    flags = [q.requires_grad for q in model.parameters()]
    gen = generator(seed, x.device)
    logits = torch.zeros((len(x), *subject.mask_shape), device=x.device, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=LIBRARY["lr"])
    model.eval()
    try:
        for q in model.parameters():
            q.requires_grad_(weights_need_grad)
        with torch.no_grad():
            reference = model(x) if reference_once else None
        for _ in range(steps):
            mask = upsample_mask(torch.sigmoid(logits), x)
            terms = objective(model, x, mask, subject.noise, beta=subject.beta,
                              reference=reference, generator=gen)
            optimiser.zero_grad(set_to_none=True)
            model.zero_grad(set_to_none=True)
            terms["objective"].sum().backward()
            optimiser.step()
    finally:
        for q, flag in zip(model.parameters(), flags, strict=True):
            q.requires_grad_(flag)
    return torch.sigmoid(logits).detach()


#: Loops that give up one of fit_sample_masks's savings, timed against it.
NAIVE = {"naive: F(x) every step": {"reference_once": False},
         "naive: F's weights get gradients": {"weights_need_grad": True}}


def accelerations(subject: Subject, cfg: dict, device: torch.device, seed: int,
                  compile_too: bool) -> dict:
    """The optional arguments of fit_sample_masks, and loops without its savings, each
    against the plain call (same run)."""
    b, steps = cfg["accel_batch"], cfg["accel_steps"]
    x = subject.images[torch.arange(b, device=device) % len(subject.images)]
    variants = {"plain": {}, "channels_last": {"channels_last": True}, "amp_bf16": {"amp": True},
                "channels_last+amp_bf16": {"channels_last": True, "amp": True}}
    if compile_too:
        variants["compile"] = {"compile": True}
    out = {"batch": b, "steps": steps, "variants": {},
           "objective_note": "Eq. 4 objective of the masks after these steps, evaluated in "
                             "float32 with fixed noise draws (lower is better)"}
    calls = {name: (lambda kw=kwargs: _fit(subject, x, steps=steps, seed=seed, **kw))
             for name, kwargs in variants.items()}
    calls.update({name: (lambda kw=kwargs: _naive_fit(subject, x, steps=steps, seed=seed, **kw))
                  for name, kwargs in NAIVE.items()})
    times, first, masks = _interleaved(calls, device, cfg["repeats"])
    for name in calls:
        t = _median(times[name])
        row = {"seconds": _round(t), "masks_per_second": _round(b / t),
               "objective": _round(expected_objective(subject, x, masks[name],
                                                      draws=cfg["eval_draws"], seed=seed + 1000),
                                   5)}
        if name == "compile":
            row["first_call_seconds"] = _round(first[name])
        out["variants"][name] = row
    plain = out["variants"]["plain"]["masks_per_second"]
    for row in out["variants"].values():
        row["ratio_to_plain"] = _round(row["masks_per_second"] / plain, 3)
    return out


def expected_objective(subject: Subject, x: torch.Tensor, masks: torch.Tensor, *, draws: int,
                       seed: int) -> float:
    """Eq. 4's objective, mean over inputs and ``draws`` fixed noise draws (common to all calls)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    full = upsample_mask(masks.to(x.device, x.dtype), x)
    rep = x.repeat(draws, *([1] * (x.ndim - 1)))
    with frozen(subject.model), torch.no_grad():
        terms = objective(subject.model, rep, full.repeat(draws, *([1] * (x.ndim - 1))),
                          subject.noise, beta=subject.beta, generator=gen)
    return float(terms["objective"].double().mean())


def _checkpoints(last: int) -> list[int]:
    marks = {last}
    for decade in range(0, int(math.log10(max(last, 1))) + 1):
        for k in (1, 1.5, 2, 3, 5, 7):
            if k * 10 ** decade <= last and float(k * 10 ** decade).is_integer():
                marks.add(int(k * 10 ** decade))
    return sorted(marks)


def _steps_to(curve: list[tuple[int, float]], threshold: float) -> int | None:
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
        marks, curve = set(_checkpoints(steps)), []

        def record(step, masks):
            if step in marks:
                curve.append((step, evaluate(masks)))

        start = time.perf_counter()
        _fit(subject, x, steps=steps, seed=seed, callback=record, **settings)
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
            curve = [(steps, evaluate(_fit(subject, x, steps=steps, seed=seed, **cand)))
                     for steps in cfg["candidate_steps"]]
        candidates[label] = {**cand, "curve": [[s, _round(v, 5)] for s, v in curve],
                             "steps_to_within_1pct": _steps_to(curve, threshold),
                             "max_steps": curve[-1][0]}
    library_at = dict(library)
    return {
        "images": n, "eval_draws": draws, "beta": _round(subject.beta),
        "reference_steps": ref_steps, "paper_steps": PAPER["steps"],
        "reference_note": ("the reference is the paper's settings after "
                           f"{ref_steps} steps" + ("" if ref_steps >= PAPER["steps"] else
                                                   f", not the paper's {PAPER['steps']}")),
        "objective_at_init": _round(start_value, 5),
        "reference_objective": _round(reference, 5), "threshold": _round(threshold, 5),
        "paper_curve": [[s, _round(v, 5)] for s, v in paper],
        "library_curve": [[s, _round(v, 5)] for s, v in library],
        "paper_steps_to_within_1pct": _steps_to(paper, threshold),
        "library_steps_to_within_1pct": _steps_to(library, threshold),
        "library_max_steps": cfg["library_steps"],
        "library_default_steps": LIBRARY["steps"],
        "library_objective_at_default_steps": (
            _round(library_at[LIBRARY["steps"]], 5) if LIBRARY["steps"] in library_at
            else None),
        "candidates": candidates,
        "paper_seconds_for_reference": _round(paper_seconds),
    }


def _on_grid(imp: torch.Tensor, grid: tuple[int, ...] | None) -> torch.Tensor:
    """Importance averaged over the channels and over the cells of a coarse grid."""
    if grid is None or imp.ndim != 4:
        return imp
    return torch.nn.functional.adaptive_avg_pool2d(imp.float().mean(1, keepdim=True), grid)


def _deletion(subject: Subject, x: torch.Tensor, imp: torch.Tensor, cfg: dict, seed: int) -> dict:
    """Deletion-curve area, ranking at the subject's deletion grid (see ``Subject``)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    imp = _on_grid(imp.to(x.device), subject.deletion_grid)
    res = perturbation_curve(subject.model, x, imp, subject.noise, mode="deletion",
                             steps=cfg["deletion_steps"], generator=gen)
    auc = res["auc"].double()
    sem = float(auc.std() / math.sqrt(len(auc))) if len(auc) > 1 else 0.0
    return {"deletion_auc": _round(float(auc.mean())), "deletion_auc_sem": _round(sem)}


def _baselines(subject: Subject, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The noise draw the deletion curve with this seed replaces pixels by (same generator)."""
    return subject.noise(x, generator=torch.Generator(device=x.device).manual_seed(seed))


def train_lan(subject: Subject, cfg: dict, device: torch.device, seed: int):
    """The paper's fully connected LAN for this network, loaded from the cache or trained."""
    from .nets import MLPMaskNet

    steps = cfg["lan"].get(subject.name)
    if steps is None or subject.pool is None:
        return None, None
    hidden = {"mnist": [100], "cifar": [500, 500, 500]}[subject.name]
    lan_config = {"version": 1, "f": subject.config, "beta": _round(subject.beta, 5),
                  "steps": steps, "hidden": hidden, "lr": 1e-3, "batch_size": 64,
                  "mask_shape": list(subject.mask_shape), "seed": seed}

    def build(c):
        with seeded(c["seed"]):
            return MLPMaskNet(tuple(subject.images.shape[1:]), hidden=tuple(c["hidden"]),
                              mask_shape=tuple(c["mask_shape"]))

    def train(lan, c):
        fit_lan(subject.model, lan, subject.pool, subject.noise, beta=c["beta"],
                steps=c["steps"], lr=c["lr"], batch_size=c["batch_size"], seed=c["seed"],
                progress=False, device=device)

    start = time.perf_counter()
    lan, loaded = _train_or_load(f"bench-{subject.name}-LAN", lan_config, build, train,
                                 cfg["cache"])
    info = {"steps": steps, "hidden": hidden, "lr": 1e-3, "loaded": loaded,
            "seconds_to_load_or_train": _round(time.perf_counter() - start)}
    return lan.to(device).eval(), info


def amortised(subject: Subject, lan: nn.Module, lan_info: dict, loop_seconds_per_step: float,
              cfg: dict, device: torch.device, seed: int) -> dict:
    """One forward pass of a LAN per mask against batched sample-specific fitting."""
    x = subject.images[:cfg["amortised_images"]]
    n = len(x)
    with torch.no_grad():
        lan(x)
        seconds, masks_lan = _timed(lambda: lan(x), device, max(cfg["repeats"], 3))
    t_lan = _median(seconds) / n
    seconds, masks_sample = _timed(
        lambda: _fit(subject, x, steps=LIBRARY["steps"], lr=LIBRARY["lr"], seed=seed), device)
    t_sample = seconds[0] / n
    t_paper = loop_seconds_per_step * PAPER["steps"]  # one mask at a time, 10,000 steps
    draws, eval_seed = cfg["eval_draws"], seed + 1000
    q_lan = _deletion(subject, x, importance(masks_lan), cfg, seed + 7)
    q_sample = _deletion(subject, x, importance(masks_sample), cfg, seed + 7)
    j_lan = expected_objective(subject, x, masks_lan, draws=draws, seed=eval_seed)
    j_sample = expected_objective(subject, x, masks_sample, draws=draws, seed=eval_seed)
    gap = (q_lan["deletion_auc"] - q_sample["deletion_auc"]) / q_sample["deletion_auc"]
    return {
        "images": n, "lan": lan_info,
        "lan_seconds_per_mask": _round(t_lan),
        "sample_seconds_per_mask": _round(t_sample),
        "sample_steps": LIBRARY["steps"],
        "paper_protocol_seconds_per_mask": _round(t_paper),
        "paper_protocol_note": (f"{PAPER['steps']} steps at batch 1, estimated from the "
                                "batch-1 step time of the throughput section"),
        "speedup_vs_batched_sample": _round(t_sample / t_lan, 3),
        "speedup_vs_paper_protocol": _round(t_paper / t_lan, 3),
        "lan_deletion": q_lan, "sample_deletion": q_sample,
        "deletion_auc_gap_relative": _round(gap, 3),
        "lan_objective": _round(j_lan, 5), "sample_objective": _round(j_sample, 5),
    }


def _captum_maps(model, x, method: str, baselines, options: dict):
    """Importance maps ``(N, 1, H, W)`` and seconds per image, via lanlib.attribution if present."""
    try:
        from .attribution import attribute
    except ImportError:  # pragma: no cover - lanlib.attribution ships with the book
        attribute = None
    if attribute is not None:
        res = attribute(model, x, method, baselines=baselines, **options)
        return res.maps, res.seconds_per_image
    from captum import attr  # pragma: no cover

    with frozen(model), torch.no_grad():  # pragma: no cover
        target = model(x).argmax(1)
    start = time.perf_counter()  # pragma: no cover
    inp = x.detach().requires_grad_(True)  # pragma: no cover
    with frozen(model):  # pragma: no cover
        if method == "saliency":
            a = attr.Saliency(model).attribute(inp, target=target, abs=True)
        elif method == "integrated_gradients":
            a = attr.IntegratedGradients(model).attribute(inp, baselines=baselines,
                                                          target=target, **options)
        elif method == "occlusion":
            c, w, s = x.shape[1], options["window"], options["stride"]
            a = attr.Occlusion(model).attribute(inp, sliding_window_shapes=(c, w, w),
                                                strides=(c, s, s), baselines=baselines,
                                                target=target)
        else:
            p = options["patch"]
            h, wd = x.shape[-2:]
            fm = ((torch.arange(h)[:, None] // p) * (-(-wd // p))
                  + torch.arange(wd)[None] // p).view(1, 1, h, wd).to(x.device)
            a = attr.FeatureAblation(model).attribute(inp, baselines=baselines, target=target,
                                                      feature_mask=fm)
    seconds = time.perf_counter() - start  # pragma: no cover
    return a.detach().abs().sum(1, keepdim=True), seconds / len(x)  # pragma: no cover


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
        _sync(device)
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
        _sync(device)
        seconds = time.perf_counter() - start
    # the preserved area is what matters: importance = the mask
    return (torch.cat(maps), seconds / len(x)), None


def methods(subject: Subject, cfg: dict, device: torch.device, seed: int,
            lan: nn.Module | None = None) -> dict:
    """Time per image and deletion-curve area of each method on the same images."""
    x = subject.images[:cfg["methods_images"][subject.name]]
    n = len(x)
    del_seed = seed + 7
    base = _baselines(subject, x, del_seed)
    points: list[dict] = []

    def add(method: str, label: str, seconds: float, imp: torch.Tensor, **extra):
        points.append({"method": method, "label": label, "seconds_per_image": _round(seconds),
                       **_deletion(subject, x, imp, cfg, del_seed), **extra})

    # sample-specific masks (lanlib defaults), snapshots along one run
    marks, snaps, spent = set(cfg["sample_checkpoints"]), {}, [0.0]
    last = max(marks)

    def snapshot(step, masks):
        if step in marks:
            _sync(device)
            now = time.perf_counter()
            snaps[step] = (now - start - spent[0], masks.clone())
            spent[0] += time.perf_counter() - now

    _fit(subject, x[:1], steps=1, seed=seed)  # warm-up
    _sync(device)
    start = time.perf_counter()
    _fit(subject, x, steps=last, seed=seed, lr=LIBRARY["lr"], callback=snapshot)
    for step in sorted(snaps):
        seconds, masks = snaps[step]
        add("lanlib sample masks", f"{step} steps", seconds / n, importance(masks), steps=step)
    if lan is not None:
        with torch.no_grad():
            lan(x)
            seconds, masks = _timed(lambda: lan(x), device, 3)
        add("lanlib amortised LAN", "one forward pass", _median(seconds) / n, importance(masks))
    # Captum
    opts = {"integrated_gradients": [{"n_steps": cfg["ig_steps"],
                                      "internal_batch_size": max(n, 8)}],
            "saliency": [{}],
            "occlusion": [{"window": w, "stride": s, "perturbations_per_eval": 8}
                          for w, s in cfg["occlusion"][subject.name]],
            "feature_ablation": [{"patch": p, "perturbations_per_eval": 8}
                                 for p in cfg["ablation"][subject.name]]}
    names = {"saliency": "Captum Saliency", "integrated_gradients": "Captum Integrated Gradients",
             "occlusion": "Captum Occlusion", "feature_ablation": "Captum Feature Ablation"}
    for method, configs in opts.items():
        for o in configs:
            maps, seconds = _captum_maps(subject.model, x, method, base, dict(o))
            label = {"occlusion": lambda o: f"window {o['window']}, stride {o['stride']}",
                     "feature_ablation": lambda o: f"patch {o['patch']}",
                     "integrated_gradients": lambda o: f"{o['n_steps']} steps",
                     "saliency": lambda o: ""}[method](o)
            add(names[method], label, seconds, maps,
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
                    "sample_masks_auc_at_same_time": None if ours is None else _round(ours),
                    "sample_masks_lower": None if ours is None else ours < p["deletion_auc"]})
    return out


def flop_rate(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """Achieved FLOP rate of fitting masks on F against a matrix multiply on the same device."""
    from torch.utils.flop_counter import FlopCounterMode

    b, steps = cfg["flops_batch"], cfg["flops_steps"]
    x = subject.images[torch.arange(b, device=device) % len(subject.images)]
    logits = torch.zeros((b, *subject.mask_shape), device=device, requires_grad=True)
    with frozen(subject.model):
        with torch.no_grad():
            reference = subject.model(x)
        counter = FlopCounterMode(display=False)
        with counter:
            mask = upsample_mask(torch.sigmoid(logits), x)
            terms = objective(subject.model, x, mask, subject.noise, beta=subject.beta,
                              reference=reference)
            terms["objective"].sum().backward()
    per_step = counter.get_total_flops()
    _fit(subject, x, steps=1, seed=seed)
    seconds, _ = _timed(lambda: _fit(subject, x, steps=steps, seed=seed), device, cfg["repeats"])
    t = min(seconds)  # both rates from the fastest run: the least disturbed by other work
    achieved = per_step * steps / t
    size = cfg["matmul_size"]
    a = torch.randn(size, size, device=device)
    bm = torch.randn(size, size, device=device)
    torch.mm(a, bm)
    mm_seconds, _ = _timed(lambda: torch.mm(a, bm), device, max(cfg["repeats"], 3))
    matmul = 2 * size ** 3 / min(mm_seconds)
    return {"batch": b, "steps": steps, "flops_per_step": per_step,
            "seconds": _round(t), "achieved_flops_per_second": _round(achieved),
            "matmul_size": size, "matmul_flops_per_second": _round(matmul),
            "fraction_of_matmul_rate": _round(achieved / matmul, 3),
            "note": "FLOPs of F's forward and backward (to the inputs) per step; the "
                    "reference forward pass and the optimiser are not counted; both rates "
                    "from the fastest of the repeats"}


# ----------------------------------------------------------------------------- report


def goals(results: dict) -> dict:
    """The targets of the performance issue, each with the measured number."""
    out = {}
    for name, tp in results.get("throughput", {}).items():
        if "256" in tp["batches"]:
            r = tp["batches"]["256"]["ratio_to_batch_1"]
            out[f"batch_256_vs_loop_at_least_50x ({name})"] = {
                "value": r, "met": r >= 50,
                "with_amp": tp.get("amp_largest_batch", {}).get("ratio_to_batch_1")}
    for name, conv in results.get("convergence", {}).items():
        best = [c["steps_to_within_1pct"] for c in conv["candidates"].values()
                if c["steps_to_within_1pct"] is not None]
        lib = conv["library_steps_to_within_1pct"]
        out[f"library_defaults_within_1pct_in_at_most_1000_steps ({name})"] = {
            "value": lib, "met": lib is not None and lib <= 1000,
            "best_candidate_steps": min(best) if best else None}
    for name, am in results.get("amortised", {}).items():
        out[f"amortised_at_least_1000x_faster_and_auc_within_10pct ({name})"] = {
            "value": {"speedup_vs_batched_sample": am["speedup_vs_batched_sample"],
                      "speedup_vs_paper_protocol": am["speedup_vs_paper_protocol"],
                      "auc_gap": am["deletion_auc_gap_relative"]},
            "met": am["speedup_vs_batched_sample"] >= 1000
            and am["deletion_auc_gap_relative"] <= 0.10}
    im = results.get("matched_time", {}).get("imagenet")
    if im:
        matched = [m for m in im if m["sample_masks_lower"] is not None]
        out["imagenet_lower_auc_than_occlusion_and_ablation_at_same_time"] = {
            "value": f"{sum(m['sample_masks_lower'] for m in matched)} of {len(matched)} "
                     "matched rivals",
            "met": bool(matched) and all(m["sample_masks_lower"] for m in matched)}
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(results: dict) -> str:
    """The human-readable report: one line per measured quantity, ratios in the last column."""
    lines = []
    meta = results["meta"]

    def head(title):
        lines.append("")
        lines.append(title)
        lines.append("-" * len(title))

    def row(name, value, ratio=None, note=""):
        lines.append(f"  {name:<62} {_fmt(value):>11} {_fmt(ratio):>9}  {note}")

    lines.append(f"lanlib.bench, setting {meta['setting']!r} on {meta['device']} "
                 f"({meta['threads']} thread(s)), torch {meta['torch']}, "
                 f"load average {meta['load_average_start']} -> {meta['load_average_end']}, "
                 f"{meta['seconds']:.0f} s")
    for name, info in results.get("subjects", {}).items():
        acc = info.get("test_accuracy", info.get("top1_on_these"))
        lines.append(f"  {name}: beta {info['beta']}, D_full {info['d_full']}, mask "
                     f"{tuple(info['mask_shape'])}, accuracy {_fmt(acc)}, "
                     f"{'loaded' if info['loaded'] else 'trained'}")
    if "throughput" in results:
        head("throughput of fit_sample_masks (masks/s; ratio = per-mask speed-up over batch 1,"
             " i.e. a loop)")
        for name, tp in results["throughput"].items():
            for b, r in tp["batches"].items():
                row(f"{name} batch {b} ({tp['steps']} steps)", r["masks_per_second"],
                    r["ratio_to_batch_1"])
            amp = tp["amp_largest_batch"]
            row(f"{name} batch {amp['batch']} with amp=True (bfloat16)", amp["masks_per_second"],
                amp["ratio_to_batch_1"])
            row(f"{name} Python loop over 16 single-sample calls", tp["loop_of_16"][
                "masks_per_second"], tp["loop_of_16"]["ratio_to_batch_1"])
        for name, tc in results.get("threads", {}).items():
            if tc:
                row(f"{name} s/step at batch 16, {list(tc['seconds_per_step'])} threads",
                    str(list(tc["seconds_per_step"].values())), tc["slowdown_with_all_threads"],
                    "ratio: slow-down with all cores")
    if "accelerations" in results:
        head("optional arguments of fit_sample_masks (masks/s; ratio to the plain call)")
        for name, ac in results["accelerations"].items():
            for v, r in ac["variants"].items():
                note = f"compiling took {r['first_call_seconds']} s" if "first_call_seconds" in r \
                    else ""
                row(f"{name} batch {ac['batch']}: {v}", r["masks_per_second"],
                    r["ratio_to_plain"], f"objective after {ac['steps']} steps {r['objective']}"
                    + (f"; {note}" if note else ""))
    if "convergence" in results:
        head("convergence of Eq. 4 (objective, lower is better; steps to within 1% of the "
             "paper's settings' value)")
        for name, c in results["convergence"].items():
            lines.append(f"  {name}: {c['reference_note']}; {c['images']} images, "
                         f"{c['eval_draws']} noise draws per evaluation")
            row(f"{name} objective at init (mask 0.5)", c["objective_at_init"])
            row(f"{name} paper settings after {c['reference_steps']} steps",
                c["reference_objective"], None, f"threshold {c['threshold']}")
            row(f"{name} steps: paper settings (lr 0.05)", c["paper_steps_to_within_1pct"])
            row(f"{name} steps: lanlib defaults (lr 0.1, constant)",
                c["library_steps_to_within_1pct"],
                None if not c["library_steps_to_within_1pct"] or not
                c["paper_steps_to_within_1pct"] else
                _round(c["paper_steps_to_within_1pct"] / c["library_steps_to_within_1pct"], 3),
                f"ratio: fewer steps than the paper's; tried up to {c['library_max_steps']}")
            row(f"{name} lanlib defaults objective at {c['library_default_steps']} steps",
                c["library_objective_at_default_steps"])
            lib = dict(c["library_curve"])
            pap = dict(c["paper_curve"])
            for s_ in (100, 1000):
                if s_ in lib and s_ in pap:
                    row(f"{name} objective at {s_} steps: paper | lanlib defaults",
                        f"{pap[s_]} | {lib[s_]}")
            for label, cand in c["candidates"].items():
                shown = [(s, v) for s, v in cand["curve"] if s in (100, 300, 1000, 2000)
                         or cand["schedule"] != "constant"]
                finals = ", ".join(f"{s}: {v}" for s, v in shown)
                row(f"{name} steps: {label}", cand["steps_to_within_1pct"], None,
                    f"tried up to {cand['max_steps']}; objective at {finals}")
    if "amortised" in results:
        head("amortised LAN vs sample-specific masks (time per mask; ratio = speed-up of "
             "the LAN)")
        for name, a in results["amortised"].items():
            row(f"{name} LAN, one forward pass (s/mask)", a["lan_seconds_per_mask"])
            row(f"{name} sample masks, batched, {a['sample_steps']} steps (s/mask)",
                a["sample_seconds_per_mask"], a["speedup_vs_batched_sample"])
            row(f"{name} paper protocol, batch 1, 10,000 steps (s/mask, est.)",
                a["paper_protocol_seconds_per_mask"], a["speedup_vs_paper_protocol"])
            row(f"{name} deletion area: LAN", a["lan_deletion"]["deletion_auc"])
            row(f"{name} deletion area: sample masks", a["sample_deletion"]["deletion_auc"],
                None, f"relative gap of the LAN {a['deletion_auc_gap_relative']:+.1%}")
            row(f"{name} objective: LAN | sample masks",
                f"{a['lan_objective']} | {a['sample_objective']}")
    if "methods" in results:
        head("methods on the same images (s/image; deletion area, lower is better; ratio = "
             "time relative to 100-step sample masks)")
        for name, m in results["methods"].items():
            ref = next((p["seconds_per_image"] for p in m["points"]
                        if p["method"] == "lanlib sample masks"), None)
            ref = next((p["seconds_per_image"] for p in m["points"]
                        if p.get("steps") == 100), ref)
            grid = m.get("deletion_grid")
            lines.append(f"  {name}: {m['images']} images, deletion by {m['deletion_noise']}"
                         + (f", every map ranked on a {grid[0]}x{grid[1]} grid" if grid else
                            ", every map ranked at its own resolution"))
            for p in m["points"]:
                ratio = _round(p["seconds_per_image"] / ref, 3) if ref else None
                row(f"{name} {p['method']} {p['label']}".rstrip(), p["seconds_per_image"],
                    ratio, f"area {p['deletion_auc']} ± {p['deletion_auc_sem']}")
            if m.get("extremal_perturbation_note"):
                lines.append(f"  {name}: extremal perturbation: {m['extremal_perturbation_note']}")
        for name, mt in results.get("matched_time", {}).items():
            for r in mt:
                row(f"{name} same time as {r['rival']}", r["sample_masks_auc_at_same_time"],
                    None, f"rival's area {r['rival_auc']}; sample masks lower: "
                    f"{_fmt(r['sample_masks_lower'])}")
    if "flops" in results:
        head("FLOP rate of fit_sample_masks (ratio = fraction of the matmul rate)")
        for name, f in results["flops"].items():
            row(f"{name} batch {f['batch']}: achieved FLOP/s", f["achieved_flops_per_second"],
                f["fraction_of_matmul_rate"], f"{f['flops_per_step']:.3g} FLOP per step")
            row(f"{name} matmul {f['matmul_size']}^2 FLOP/s", f["matmul_flops_per_second"])
    if "goals" in results:
        head("goals of the performance issue")
        for name, g in results["goals"].items():
            row(name, "met" if g["met"] else "NOT met", None, json.dumps(g["value"]))
    return "\n".join(lines)


def chart(results: dict, path: Path) -> Path | None:
    """Speed–quality chart: deletion area against seconds per image, one panel per network."""
    methods_ = results.get("methods")
    if not methods_:
        return None
    from matplotlib.figure import Figure

    from .plot import OKABE_ITO

    fig = Figure(figsize=(4.6 * len(methods_), 4.6), layout="constrained")
    axes = fig.subplots(1, len(methods_), squeeze=False)[0]
    styles = {"lanlib sample masks": ("o", "-"), "lanlib amortised LAN": ("*", ""),
              "Captum Occlusion": ("s", "--"), "Captum Feature Ablation": ("D", ":"),
              "Captum Saliency": ("^", ""), "Captum Integrated Gradients": ("v", ""),
              "TorchRay extremal perturbation": ("P", ""), "random map": ("X", "")}
    colours = (*OKABE_ITO, "#000000")  # Okabe & Ito's eighth colour, black, for the random map
    handles = {}
    floor = min((p["seconds_per_image"] for m in methods_.values() for p in m["points"]
                 if p["seconds_per_image"] > 0), default=1e-4) / 3
    for ax, (name, m) in zip(axes, methods_.items(), strict=True):
        for k, (method, (marker, line)) in enumerate(styles.items()):
            pts = [p for p in m["points"] if p["method"] == method]
            if not pts:
                continue
            t = [max(p["seconds_per_image"], floor) for p in pts]
            a = [p["deletion_auc"] for p in pts]
            (handles[method],) = ax.plot(t, a, marker=marker, linestyle=line or "none",
                                         color=colours[k], label=method,
                                         markersize=7 if marker != "*" else 11)
            if method == "lanlib sample masks":
                for p, ti in zip(pts, t, strict=True):
                    ax.annotate(str(p["steps"]), (ti, p["deletion_auc"]), fontsize=7,
                                textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_xlabel("seconds per image (log scale)")
        ax.set_ylabel("deletion-curve area (lower is better)")
        ax.set_title(f"{_TITLES.get(name, name)} ({m['images']} images)")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncols=min(len(handles), 4), fontsize="small")
    meta = results["meta"]
    fig.suptitle(f"Speed and quality of explanations on {meta['device']} "
                 f"(setting {meta['setting']}; sample-mask points labelled by steps; "
                 "random map drawn at the left edge)", fontsize="medium")
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- driver


def run(setting: str = "quick", device: str = "auto", *, seed: int = 0,
        threads: int | None = None, compile_too: bool | None = None,
        subjects: Sequence[str] | None = None, sections: Sequence[str] | None = None,
        log: Callable[[str], Any] = print) -> dict:
    """Run the benchmark and return every number (see the module docstring for the sections).

    Args:
        setting (str): ``"smoke"``, ``"quick"`` or ``"full"``.
        device (str): ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        seed (int): seeds training, image choice, masks and noise.
        threads (int, optional): intra-op threads on the CPU; default 1 there.
        compile_too (bool, optional): also measure ``compile=True``; default per setting.
        subjects (sequence of str, optional): a subset of ``("mnist", "cifar", "imagenet")``.
        sections (sequence of str, optional): a subset of :data:`SECTIONS`.
        log (callable): progress messages.

    Returns:
        dict: ``meta``, ``subjects`` and one entry per section, then ``goals``.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; use one of {sorted(SETTINGS)}")
    cfg = SETTINGS[setting]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" \
        else torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available here")
    if dev.type == "cpu":
        torch.set_num_threads(threads or 1)
    elif threads:
        torch.set_num_threads(threads)
    names = tuple(subjects or cfg["subjects"])
    unknown = set(names) - {"mnist", "cifar", "imagenet"}
    if unknown:
        raise ValueError(f"unknown subjects {sorted(unknown)}")
    todo = tuple(sections or SECTIONS)
    if set(todo) - set(SECTIONS):
        raise ValueError(f"unknown sections {sorted(set(todo) - set(SECTIONS))}; "
                         f"use {SECTIONS}")
    compile_too = cfg["compile"] if compile_too is None else compile_too
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": {
        "setting": setting, "device": str(dev), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "load_average_start": _load_average(), "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "paper_settings": PAPER, "library_defaults": LIBRARY, "beta_rel": _BETA_REL,
    }}
    loaded: dict[str, Subject] = {}
    for name in names:
        log(f"[bench] preparing {name}")
        loaded[name] = (_imagenet(cfg, dev, seed) if name == "imagenet"
                        else _classifier(name, cfg, dev, seed))
    results["subjects"] = {k: s.info for k, s in loaded.items()}
    small = [s for s in loaded.values() if s.name != "imagenet"]

    def section(key, title, fn, subjects_):
        if key not in todo:
            return
        results[key] = {}
        for s in subjects_:
            log(f"[bench] {title}: {s.name}")
            value = fn(s)
            if value is not None:
                results[key][s.name] = value

    section("throughput", "throughput", lambda s: throughput(s, cfg, dev, seed), small)
    if "throughput" in todo:
        results["threads"] = {s.name: thread_contention(s, cfg, dev, seed) for s in small[:1]}
    section("accelerations", "accelerations",
            lambda s: accelerations(s, cfg, dev, seed, compile_too), small)
    section("convergence", "convergence", lambda s: convergence(s, cfg, dev, seed), small)
    lans = {}
    if "amortised" in todo or "methods" in todo:
        for s in small:
            lan, info = train_lan(s, cfg, dev, seed)
            if lan is not None:
                lans[s.name] = (lan, info)
    if "amortised" in todo:
        results["amortised"] = {}
        for s in small:
            if s.name not in lans:
                continue
            log(f"[bench] amortised: {s.name}")
            per_step = _loop_seconds_per_step(results, s, cfg, dev, seed)
            results["amortised"][s.name] = amortised(s, *lans[s.name], per_step, cfg, dev, seed)
    section("methods", "methods",
            lambda s: methods(s, cfg, dev, seed, lans.get(s.name, (None,))[0]),
            list(loaded.values()))
    if "methods" in results:
        rivals = ("Captum Occlusion", "Captum Feature Ablation")
        results["matched_time"] = {k: matched_time(m["points"], rivals)
                                   for k, m in results["methods"].items()}
    section("flops", "flops", lambda s: flop_rate(s, cfg, dev, seed),
            [s for s in small if s.name == "cifar"])
    results["goals"] = goals(results)
    results["meta"]["load_average_end"] = _load_average()
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


SECTIONS = ("throughput", "accelerations", "convergence", "amortised", "methods", "flops")


def _loop_seconds_per_step(results: dict, subject: Subject, cfg: dict, device, seed) -> float:
    """Seconds per step of a batch-1 fit: from the throughput section, or measured now."""
    tp = results.get("throughput", {}).get(subject.name)
    if tp and "1" in tp["batches"]:
        return tp["batches"]["1"]["seconds"] / tp["steps"]
    steps = cfg["throughput_steps"]
    seconds, _ = _timed(lambda: _fit(subject, subject.images[:1], steps=steps, seed=seed),
                        device, cfg["repeats"])
    return _median(seconds) / steps


def main(argv: Sequence[str] | None = None) -> dict:
    """Command line: ``python -m lanlib.bench [--setting quick] [--out PATH.json]``."""
    parser = argparse.ArgumentParser(
        prog="python -m lanlib.bench",
        description="Measure the speed and quality of lanlib's masks against other methods.")
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="quick",
                        help="smoke (seconds), quick (default, minutes on a CPU) or full (GPU)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/bench.json"),
                        help="the JSON file to write; the chart goes next to it (.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads on the CPU (default 1)")
    compile_group = parser.add_mutually_exclusive_group()
    compile_group.add_argument("--compile", dest="compile_too", action="store_true",
                               default=None, help="also measure compile=True")
    compile_group.add_argument("--no-compile", dest="compile_too", action="store_false")
    parser.add_argument("--subjects", default=None,
                        help="comma-separated subset of mnist,cifar,imagenet")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    if args.out.suffix != ".json":
        parser.error(f"--out must name a .json file, got {args.out}")

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    results = run(args.setting, args.device, seed=args.seed, threads=args.threads,
                  compile_too=args.compile_too,
                  subjects=args.subjects.split(",") if args.subjects else None,
                  sections=args.sections.split(",") if args.sections else None, log=log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = chart(results, args.out.with_suffix(".png"))
    results["meta"]["chart"] = png.name if png else None
    _write_json(args.out, results)
    print(table(results))
    print(f"\nwrote {args.out}" + (f" and {png}" if png else ""))
    return results


if __name__ == "__main__":
    main()
