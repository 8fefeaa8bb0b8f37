"""What every section of the benchmark measures with: clocks, fits, objectives, deletion areas.

- :func:`timed` and :func:`interleaved`: wall-clock seconds of calls (a CUDA device is
  synchronised before each clock reading, :func:`lanlib.loop.synchronize`);
  :func:`interleaved` times several calls round-robin, so that a change of load on a
  shared machine hits them alike.
- :func:`fit`: :func:`lanlib.fit_sample_masks` with the subject's network, noise, beta
  and mask shape.
- :func:`expected_objective`: Eq. 4's objective with fixed noise draws, the same for
  every call it compares.
- :func:`deletion`: the deletion-curve area of importance maps
  (:func:`lanlib.metrics.perturbation_curve`).
- :func:`rounded`: the numbers of the JSON, to four significant digits.

Example:
    >>> rounded(0.000123456), rounded(123456.7), rounded(2 / 3, 2)
    (0.0001235, 123457.0, 0.67)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..core import frozen, objective, upsample_mask
from ..fit import fit_sample_masks
from ..loop import synchronize
from ..metrics import perturbation_curve

if TYPE_CHECKING:  # subjects.py imports this module
    from .subjects import Subject

__all__ = ["deletion", "expected_objective", "fit", "interleaved", "median", "noise_draw",
           "rounded", "timed"]

#: The median of a list of seconds (the middle value, or the mean of the two middle ones).
median = statistics.median


def rounded(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (0, inf and NaN unchanged)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0))


def timed(fn: Callable[[], Any], device: torch.device,
          repeats: int = 1) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeats`` times; return the seconds of each run and the last result."""
    seconds, out = [], None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        out = fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds, out


def interleaved(calls: dict[str, Callable[[], Any]], device: torch.device,
                repeats: int) -> tuple[dict[str, list[float]], dict[str, float], dict[str, Any]]:
    """Time several calls round-robin, so that a change of load hits them all alike.

    Args:
        calls (dict name -> callable): the calls, without arguments.
        device (torch.device): synchronised around each call.
        repeats (int): timed rounds, after one warm-up run of each call.

    Returns:
        tuple: the seconds of each repeat per call, the seconds of each call's first
        (warm-up) run, and each call's last result.
    """
    first, results = {}, {}
    for name, fn in calls.items():
        seconds, _ = timed(fn, device)
        first[name] = seconds[0]
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            seconds, results[name] = timed(fn, device)
            times[name].append(seconds[0])
    return times, first, results


def fit(subject: Subject, x: torch.Tensor, *, steps: int, seed: int, **kwargs) -> torch.Tensor:
    """Sample-specific masks ``(N, *subject.mask_shape)`` of ``x`` for the subject's network.

    ``kwargs`` go to :func:`lanlib.fit_sample_masks` (``lr``, ``init``, ``amp``, ``tv``,
    ...); ``noise`` and ``beta`` default to the subject's, and ``max_distortion`` takes
    the place of ``beta``.
    """
    options = {"noise": subject.noise,
               "beta": None if "max_distortion" in kwargs else subject.beta, **kwargs}
    return fit_sample_masks(subject.model, x, options.pop("noise"), steps=steps,
                            mask_shape=subject.mask_shape, seed=seed, progress=False, **options)


def expected_objective(subject: Subject, x: torch.Tensor, masks: torch.Tensor, *, draws: int,
                       seed: int) -> float:
    """Eq. 4's objective, mean over inputs and ``draws`` fixed noise draws (common to all calls).

    Args:
        subject (Subject): the network, noise and beta.
        x (Tensor (N, ...)): the inputs.
        masks (Tensor): their masks, any shape :func:`lanlib.upsample_mask` takes.
        draws (int): noise draws per input.
        seed (int): seeds the draws; the same seed gives every call the same draws.

    Returns:
        float: the objective, lower is better.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    full = upsample_mask(masks.to(x.device, x.dtype), x)
    rep = x.repeat(draws, *([1] * (x.ndim - 1)))
    with frozen(subject.model), torch.no_grad():
        terms = objective(subject.model, rep, full.repeat(draws, *([1] * (x.ndim - 1))),
                          subject.noise, beta=subject.beta, generator=gen)
    return float(terms["objective"].double().mean())


def _on_grid(imp: torch.Tensor, grid: tuple[int, ...] | None) -> torch.Tensor:
    """Importance averaged over the channels and over the cells of a coarse grid."""
    if grid is None or imp.ndim != 4:
        return imp
    return F.adaptive_avg_pool2d(imp.float().mean(1, keepdim=True), grid)


def deletion(subject: Subject, x: torch.Tensor, imp: torch.Tensor, cfg: dict, seed: int) -> dict:
    """Deletion-curve area of importance maps, ranked on the subject's deletion grid.

    Args:
        subject (Subject): the network and the noise that replaces the deleted elements.
        x (Tensor (N, C, H, W)): the inputs.
        imp (Tensor): their importance maps (any resolution; see ``Subject.deletion_grid``).
        cfg (dict): the setting (``deletion_steps``).
        seed (int): seeds the noise draw (:func:`noise_draw` with this seed is the same).

    Returns:
        dict: ``deletion_auc`` (mean over inputs, lower is better) and ``deletion_auc_sem``.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    imp = _on_grid(imp.to(x.device), subject.deletion_grid)
    res = perturbation_curve(subject.model, x, imp, subject.noise, mode="deletion",
                             steps=cfg["deletion_steps"], generator=gen)
    auc = res["auc"].double()
    sem = float(auc.std() / math.sqrt(len(auc))) if len(auc) > 1 else 0.0
    return {"deletion_auc": rounded(float(auc.mean())), "deletion_auc_sem": rounded(sem)}


def noise_draw(subject: Subject, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The noise draw the deletion curve with this seed replaces elements by (same generator)."""
    return subject.noise(x, generator=torch.Generator(device=x.device).manual_seed(seed))
