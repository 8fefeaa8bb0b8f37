"""Sections that time :func:`lanlib.fit_sample_masks`: throughput, threads, accelerations, FLOPs.

- :func:`throughput`: masks per second of one batched call at each batch size, with the
  same steps, and the ratio to batch 1 (what a Python loop over samples costs per mask).
- :func:`thread_contention`: batch-16 steps with all the cores' threads against the one
  thread used on a CPU.
- :func:`accelerations`: the optional ``channels_last``, ``amp`` (bfloat16) and
  ``compile`` arguments, each against the plain call, and two straightforward loops
  without one of its savings each (:data:`NAIVE`), which must reach the same objective.
- :func:`flop_rate`: the share of the device's matrix-multiply rate that fitting masks
  reaches (FLOPs of F's forward and backward per step, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode`).

Each takes a :class:`~lanlib.bench.subjects.Subject`, a setting, the device and the seed,
and returns the JSON of its section for that subject.
"""

from __future__ import annotations

import os

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..core import frozen, objective, upsample_mask
from ..loop import generator
from .measure import expected_objective, fit, interleaved, median, rounded, timed
from .settings import LIBRARY
from .subjects import Subject

__all__ = ["NAIVE", "accelerations", "flop_rate", "naive_fit", "thread_contention",
           "throughput"]


def _cycled(subject: Subject, batch: int, device: torch.device) -> torch.Tensor:
    """``batch`` of the subject's images, cycling through them when there are fewer."""
    return subject.images[torch.arange(batch, device=device) % len(subject.images)]


def throughput(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """Masks per second of one batched call at each batch size, same steps; ratio to batch 1.

    Also the largest batch with ``amp=True``, and an actual Python loop of single-sample
    calls over 16 inputs (what batch 1 stands for).
    """
    steps = cfg["throughput_steps"]

    def fit_batch(b, **kwargs):
        x = _cycled(subject, b, device)
        return lambda: fit(subject, x, steps=steps, seed=seed, **kwargs)

    calls = {str(b): fit_batch(b) for b in cfg["throughput_batches"]}
    big = max(cfg["throughput_batches"])
    calls["amp"] = fit_batch(big, amp=True)
    x16 = subject.images[:16]
    calls["loop"] = lambda: [fit(subject, x16[i:i + 1], steps=steps, seed=seed)
                             for i in range(len(x16))]
    times, _, _ = interleaved(calls, device, cfg["repeats"])
    out = {"steps": steps, "repeats": cfg["repeats"], "batches": {}}
    for b in cfg["throughput_batches"]:
        t = median(times[str(b)])
        out["batches"][str(b)] = {"seconds": rounded(t),
                                  "seconds_min": rounded(min(times[str(b)])),
                                  "masks_per_second": rounded(b / t),
                                  "seconds_per_mask_step": rounded(t / (b * steps))}
    base = out["batches"][str(cfg["throughput_batches"][0])]["masks_per_second"]
    for row in out["batches"].values():
        row["ratio_to_batch_1"] = rounded(row["masks_per_second"] / base, 3)
    rate = big / median(times["amp"])
    out["amp_largest_batch"] = {"batch": big, "masks_per_second": rounded(rate),
                                "ratio_to_batch_1": rounded(rate / base, 3)}
    rate = len(x16) / median(times["loop"])
    out["loop_of_16"] = {"masks_per_second": rounded(rate),
                         "ratio_to_batch_1": rounded(rate / base, 3)}
    return out


def thread_contention(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict | None:
    """Batch-16 steps with PyTorch's default thread count against the one used here.

    Returns None on a GPU, or when the thread count used is already the number of cores.
    """
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
            fit(subject, x, steps=1, seed=seed)
            seconds, _ = timed(lambda: fit(subject, x, steps=steps, seed=seed), device,
                               cfg["repeats"])
        finally:
            torch.set_num_threads(used)
        res[str(threads)] = rounded(median(seconds) / steps)
    return {"batch": 16, "seconds_per_step": res,
            "slowdown_with_all_threads": rounded(res[str(cores)] / res[str(used)], 3)}


def naive_fit(subject: Subject, x: torch.Tensor, *, steps: int, seed: int,
              reference_once: bool = True, weights_need_grad: bool = False) -> torch.Tensor:
    """fit_sample_masks's loop (same start, noise draws and optimiser) without one saving.

    Args:
        subject (Subject): the network, noise, beta and mask shape.
        x (Tensor (N, ...)): the inputs.
        steps (int): Adam steps at lanlib's default learning rate.
        seed (int): seeds the noise draws, as in :func:`lanlib.fit_sample_masks`.
        reference_once (bool): False computes F(x) again at every step.
        weights_need_grad (bool): True leaves F's parameters requiring gradients, so every
            backward pass also fills them.

    Returns:
        Tensor: the masks ``(N, *subject.mask_shape)``.
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
    x = _cycled(subject, b, device)
    variants = {"plain": {}, "channels_last": {"channels_last": True}, "amp_bf16": {"amp": True},
                "channels_last+amp_bf16": {"channels_last": True, "amp": True}}
    if compile_too:
        variants["compile"] = {"compile": True}
    out = {"batch": b, "steps": steps, "variants": {},
           "objective_note": "Eq. 4 objective of the masks after these steps, evaluated in "
                             "float32 with fixed noise draws (lower is better)"}
    calls = {name: (lambda kw=kwargs: fit(subject, x, steps=steps, seed=seed, **kw))
             for name, kwargs in variants.items()}
    calls.update({name: (lambda kw=kwargs: naive_fit(subject, x, steps=steps, seed=seed, **kw))
                  for name, kwargs in NAIVE.items()})
    times, first, masks = interleaved(calls, device, cfg["repeats"])
    for name in calls:
        t = median(times[name])
        row = {"seconds": rounded(t), "masks_per_second": rounded(b / t),
               "objective": rounded(expected_objective(subject, x, masks[name],
                                                       draws=cfg["eval_draws"],
                                                       seed=seed + 1000), 5)}
        if name == "compile":
            row["first_call_seconds"] = rounded(first[name])
        out["variants"][name] = row
    plain = out["variants"]["plain"]["masks_per_second"]
    for row in out["variants"].values():
        row["ratio_to_plain"] = rounded(row["masks_per_second"] / plain, 3)
    return out


def flop_rate(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """Achieved FLOP rate of fitting masks on F against a matrix multiply on the same device."""
    b, steps = cfg["flops_batch"], cfg["flops_steps"]
    x = _cycled(subject, b, device)
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
    fit(subject, x, steps=1, seed=seed)
    seconds, _ = timed(lambda: fit(subject, x, steps=steps, seed=seed), device, cfg["repeats"])
    t = min(seconds)  # both rates from the fastest run: the least disturbed by other work
    achieved = per_step * steps / t
    size = cfg["matmul_size"]
    a = torch.randn(size, size, device=device)
    bm = torch.randn(size, size, device=device)
    torch.mm(a, bm)
    mm_seconds, _ = timed(lambda: torch.mm(a, bm), device, max(cfg["repeats"], 3))
    matmul = 2 * size ** 3 / min(mm_seconds)
    return {"batch": b, "steps": steps, "flops_per_step": per_step,
            "seconds": rounded(t), "achieved_flops_per_second": rounded(achieved),
            "matmul_size": size, "matmul_flops_per_second": rounded(matmul),
            "fraction_of_matmul_rate": rounded(achieved / matmul, 3),
            "note": "FLOPs of F's forward and backward (to the inputs) per step; the "
                    "reference forward pass and the optimiser are not counted; both rates "
                    "from the fastest of the repeats"}
