"""Fitting masks: an amortised Latent Attention Network (Eq. 3) or one mask per input (Eq. 4).

Both loops freeze the explained model for the duration of the call (eval mode,
no parameter gradients) and restore its mode, ``requires_grad`` flags and device
afterwards, also when the call raises. Randomness (batch order, noise draws)
comes from ``seed`` only.

Nothing goes wrong silently: the inputs, F's output on them and the first noise
draw must be finite (checked once, at the start), and the objective is checked
every :data:`CHECK_EVERY` steps and at the last step (one device sync each), so a
fit whose numbers become NaN or infinite stops with a ``ValueError`` that says
which. Masks and their optimiser state are float32 (float64 for float64 inputs)
whatever the inputs' dtype; F still runs in its own dtype.

Example (a model that reads only the first two of eight features):
    >>> import torch
    >>> from torch import nn
    >>> import lanlib
    >>> model = nn.Linear(8, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.zero_(); _ = model.weight[:, :2].fill_(3.0)
    ...     _ = model.weight[1].neg_(); _ = model.bias.zero_()
    >>> x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    >>> masks = lanlib.fit_sample_masks(model, x, lanlib.noise.constant(0.0), beta=0.05,
    ...                                 steps=200, lr=0.1, seed=0, progress=False)
    >>> masks.shape
    torch.Size([16, 8])
    >>> bool(lanlib.importance(masks)[:, :2].mean() > lanlib.importance(masks)[:, 2:].mean())
    True

The method chapter of the book (``notebooks/01_method``) derives both loops.
"""

from __future__ import annotations

import atexit
import io
import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import trange

from .core import (
    check_finite,
    check_hyper,
    check_inputs,
    check_mask,
    check_module,
    check_positive,
    check_tv,
    model_output,
    objective,
    upsample_mask,
)
from .data._files import atomic_write
from .gates import resolve as resolve_gates
from .loop import History, batches, explained, floating_dtype, generator, resolve_device
from .losses import resolve as resolve_loss

__all__ = ["fit_lan", "fit_sample_masks", "fit_sample_masks_over_beta"]

SCHEDULES = ("constant", "cosine", "linear")

#: Steps between two checks that a fit's objective is finite (and a LAN's masks in
#: [0, 1]); the last step is always checked. Each check waits for the device once,
#: so the loops do not synchronise at every step.
CHECK_EVERY = 50


def _due(step: int, steps: int) -> bool:
    """Whether the check runs after ``step`` (0-based) of ``steps``."""
    return (step + 1) % CHECK_EVERY == 0 or step + 1 == steps


def _first_draw_checked(noise):
    """``noise`` whose draw is checked to be a finite tensor: for the first step only."""

    def draw(inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eta = noise(inputs, generator=generator)
        if not isinstance(eta, torch.Tensor):
            raise TypeError(f"the noise must return a tensor shaped like the inputs, got "
                            f"{type(eta).__name__}")
        return check_finite(eta, "the noise's draw", "give noise with finite values (check "
                            "its parameters, or the bootstrap pool)")

    return draw


def _check_reference(reference: torch.Tensor) -> torch.Tensor:
    return check_finite(
        reference, "the model's output on the clean inputs",
        "the explained model must return finite outputs (a -inf logit leaves the KL "
        "divergence undefined); fix the model, or drop the inputs it fails on")


def _check_objective(total: torch.Tensor, terms: dict[str, torch.Tensor], step: int) -> None:
    """Raise a clear error if the batch objective ``total`` of ``step`` (1-based) is not finite.

    One device sync. Every symptom found in ``terms`` is named: the first fault may lie
    up to :data:`CHECK_EVERY` steps back, and a NaN spreads from the loss to the masks.
    """
    if bool(torch.isfinite(total.detach())):
        return
    found = []
    if not bool(torch.isfinite(terms["distortion"].detach()).all()):
        found.append("the distortion L_F(F(x), F(x~)) is NaN or infinite: F's output on the "
                     "corrupted inputs, or the loss, is not finite (check that the noise stays "
                     "in the range F was trained on)")
    if not bool(torch.isfinite(terms["mask_mean"].detach()).all()):
        found.append("the masks are NaN (a non-finite gradient reached them, a mask network "
                     "returned NaN, or lr is too high)")
    raise ValueError(f"the objective is not finite at step {step} (checked every "
                     f"{CHECK_EVERY} steps): " + "; ".join(found or ["the loss is not finite"]))


def _check_lan_range(low: torch.Tensor, high: torch.Tensor, step: int) -> None:
    """Raise a clear error if the LAN's masks left [0, 1] since the last check (one sync)."""
    lo, hi = torch.stack([low, high]).tolist()
    if not (lo >= 0 and hi <= 1):  # also catches NaN
        advice = ("its training diverged: lower lr" if math.isnan(lo) or math.isnan(hi)
                  else "end the mask network with a sigmoid")
        raise ValueError(
            f"the LAN's output must lie in [0, 1], but up to step {step} (checked every "
            f"{CHECK_EVERY} steps) it took values in [{lo:.4g}, {hi:.4g}]; {advice}")


def _mask_shape(mask_shape, inputs: torch.Tensor) -> tuple[int, ...]:
    """``mask_shape`` checked: one size >= 1 per input dimension after the batch."""
    like = tuple(inputs.shape[1:])
    if mask_shape is None:
        return like
    if not isinstance(mask_shape, (tuple, list, torch.Size)) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in mask_shape):
        raise TypeError(f"mask_shape must be a tuple of sizes, one per input dimension after "
                        f"the batch, like {like}; got {mask_shape!r}")
    shape = tuple(int(n) for n in mask_shape)
    if len(shape) != inputs.ndim - 1:
        raise ValueError(
            f"mask_shape {shape} must have one entry per input dimension after the batch, "
            f"like {like}"
        )
    if any(n < 1 for n in shape):
        raise ValueError(f"mask_shape sizes must be >= 1, got {shape}")
    return shape


class _Accelerated(nn.Module):
    """F with optional channels-last inputs and autocast; outputs come back in float32."""

    def __init__(self, model: nn.Module, amp_dtype: torch.dtype | None, channels_last: bool):
        super().__init__()
        self.model, self.amp_dtype, self.channels_last = model, amp_dtype, channels_last

    def forward(self, inputs: torch.Tensor):
        if self.channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.amp_dtype is None:
            return self.model(inputs)
        with torch.autocast(inputs.device.type, dtype=self.amp_dtype):
            out = self.model(inputs)
        return out.float() if isinstance(out, torch.Tensor) else out


def _amp_dtype(amp) -> torch.dtype | None:
    if amp is False or amp is None:
        return None
    if amp is True:
        return torch.bfloat16
    if isinstance(amp, torch.dtype) and amp.is_floating_point:
        return amp
    raise ValueError(f"amp must be False, True (bfloat16) or a floating dtype, got {amp!r}")


def _forward(model: nn.Module, *, compile=False, amp=False, channels_last: bool = False):
    """The module that computes F's outputs during a fit: ``model``, possibly accelerated.

    ``compile`` is False, True or a dict of :func:`torch.compile` options.
    """
    amp_dtype = _amp_dtype(amp)
    if not isinstance(compile, (bool, dict)):
        raise TypeError(f"compile must be a bool or a dict of torch.compile options, got "
                        f"{type(compile).__name__}")
    forward = model
    if amp_dtype is not None or channels_last:
        forward = _Accelerated(model, amp_dtype, bool(channels_last))
    if compile is not False:
        forward = torch.compile(forward, **(compile if isinstance(compile, dict) else {}))
    return forward


def _multiplier(max_distortion: float | None, shape: tuple[int, ...], lr: float,
                device: torch.device, dtype: torch.dtype):
    """The log-multiplier ρ (λ = exp(ρ) > 0) of the constrained form and its ascending optimiser.

    ρ starts at 0: λ = 1, where the Lagrangian ``-S + λ (D - ε)`` is the paper's
    objective at β = 1 less a constant, the distortion in nats (for ``"kl"``) weighed
    against a reward in [0, 1]. (λ = 1/ε, the other natural start, made the masks first
    shrink far below the bound and then climb back too slowly: measured on the
    two-feature reader of ``tests/test_objectives.py``, 300 steps.) Adam with ``maximize=True``
    ascends the Lagrangian in ρ: its gradient is λ (D - ε), so λ grows while the bound
    is broken and shrinks while it holds, by a factor of about ``exp(lr)`` per step at
    most whatever the units of D. Returns ``(None, None)`` for the beta form.
    """
    if max_distortion is None:
        return None, None
    rho = torch.zeros(shape, device=device, dtype=dtype, requires_grad=True)
    return rho, torch.optim.Adam([rho], lr=lr, maximize=True)


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """This process's rank, the number of processes and its device: ``(0, 1, device)`` alone.

    Nothing changes unless ``torch.distributed`` is initialised, or the launcher's
    environment is there (``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT``) for more than one process: then lanlib initialises it, with NCCL
    for a CUDA device and Gloo otherwise, and destroys it at exit. Under a launcher a bare
    ``"cuda"`` becomes this process's GPU, ``cuda:LOCAL_RANK``.
    """
    launched = all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if not dist.is_available():
        return 0, 1, device
    if not dist.is_initialized():
        if not launched or int(os.environ["WORLD_SIZE"]) < 2:
            return 0, 1, device
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave_process_group)
    return dist.get_rank(), dist.get_world_size(), device


def _shared_seed(seed: int | None, world: int) -> int | None:
    """``seed``, or with several processes and no seed, one drawn by rank 0 for all."""
    if world == 1 or seed is not None:
        return seed
    shared = [int(torch.randint(2**62, (1,)))]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def _share_of(noise, batch: torch.Tensor, part: slice):
    """``noise`` drawn for the whole global ``batch``, this rank's ``part`` of it returned:
    every rank corrupts its rows with the draw one process would have made."""

    def draw(inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return noise(batch, generator=generator)[part]

    return draw


def _settled(records: list[dict[str, torch.Tensor]], world: int) -> dict[str, torch.Tensor]:
    """Per-step records stacked, averaged over the ranks (equal shares: the global means), on
    the CPU (one device sync)."""
    if not records:
        return {}
    stacked = {k: torch.stack([r[k].float() for r in records]) for k in records[0]}
    if world > 1:
        for value in stacked.values():
            dist.all_reduce(value)
            value /= world
    return {k: v.cpu() for k, v in stacked.items()}


def _run_description(**settings) -> dict:
    """The settings a checkpoint must share with the run that resumes it."""
    return {k: v if v is None or isinstance(v, (bool, int, float, str))
            else f"{type(v).__module__}.{type(v).__qualname__}" for k, v in settings.items()}


def _load_checkpoint(path: Path, run: dict) -> dict | None:
    """The checkpoint at ``path`` of this very run, or None if there is none yet."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file gets the same advice
        raise ValueError(f"the checkpoint {path} cannot be read ({exc}); delete it to train "
                         "from the start") from exc
    if saved.get("run") != run:
        changed = sorted(k for k in run if saved.get("run", {}).get(k) != run[k])
        raise ValueError(f"the checkpoint {path} is of another run (it differs in "
                         f"{', '.join(changed) or 'its format'}); pass another checkpoint= or "
                         "delete it to train from the start")
    return saved


def _scheduler(optimiser: torch.optim.Optimizer, schedule: str, steps: int):
    """A per-step learning-rate schedule: constant, or decaying to 0 at ``steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return None
    if schedule == "cosine":
        def factor(step):
            return 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    else:
        def factor(step):
            return max(0.0, 1 - step / steps)
    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def fit_lan(
    model: nn.Module,
    lan: nn.Module,
    data,
    noise,
    *,
    beta: float | None = None,
    max_distortion: float | None = None,
    steps: int = 1000,
    lr: float = 1e-3,
    multiplier_lr: float = 0.01,
    batch_size: int = 64,
    loss="kl",
    tv: float = 0.0,
    gates=None,
    seed: int | None = None,
    progress: bool = True,
    device=None,
    history: History | None = None,
    checkpoint=None,
    checkpoint_every: int = 100,
) -> nn.Module:
    """Train a Latent Attention Network ``lan`` to explain ``model`` (Eq. 3 of the paper).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 02, 03, 04 and 06 use it.

    Minimises ``mean over x of L_F(F(x), F(x~)) - beta * mean(A(x))`` with Adam, where
    ``x~ = A(x) * eta + (1 - A(x)) * x`` and ``eta = noise(x)``. The options ``tv``,
    ``max_distortion`` and ``gates`` (off by default) shape the masks; :func:`lanlib.objective`
    defines their terms.

    Args:
        model (nn.Module): F, the network explained (frozen during the call, restored after).
        lan (nn.Module): A, mapping a batch ``(N, ...)`` to masks in [0, 1] broadcastable to it
            (e.g. ``(N, 1, H, W)`` for a mask shared by the colour channels). Trained in place.
        data (Tensor (N, ...), Dataset or DataLoader): training inputs; a Dataset or DataLoader
            may yield ``(input, label)`` pairs. A DataLoader that shuffles without a
            generator of its own is shuffled from ``seed`` too (its pass starts with torch's
            global generator seeded from ``seed``, then restored); randomness inside its
            dataset or ``collate_fn`` stays its own. An IterableDataset is refused: wrap
            it in a DataLoader.
        noise (callable): ``noise(inputs, generator) -> eta``, see :mod:`lanlib.noise`.
        beta (float, optional): reward for larger masks, > 0. Larger beta, sparser importance.
            Give exactly one of ``beta`` and ``max_distortion``.
        max_distortion (float, optional): the constrained form of DiffMask (De Cao et al.
            2020): maximise the batch's mean mask subject to its mean distortion
            ``<= max_distortion``, with ONE Lagrange multiplier ``λ = exp(ρ)`` for all
            inputs, ascended by its own Adam at ``multiplier_lr`` (ρ starts at 0; see
            :func:`lanlib.fit_sample_masks`). History then records ``"multiplier"``.
        steps (int): optimisation steps. Default 1000.
        lr (float): Adam learning rate. Default 1e-3.
        multiplier_lr (float): Adam rate of ρ, > 0; λ changes by a factor of about
            ``exp(multiplier_lr)`` per step at most. Used with ``max_distortion``. Default 0.01.
        batch_size (int): inputs per step for tensor and Dataset data. Default 64.
        loss (str or callable): ``"kl"`` (default), ``"ce"``, ``"mse"`` or ``loss(ref, out)``.
            A model with one output per row is a binary classifier to ``"kl"`` and ``"ce"``
            (sigmoid of its logit, see :mod:`lanlib.losses`).
        tv (float): weight of the total-variation prior on the LAN's output (Fong &
            Vedaldi 2017; :func:`lanlib.core.total_variation`), >= 0; needs masks
            with spatial dimensions ``(N, C, L)`` or ``(N, C, H, W)``. Default 0.0 (off).
        gates (None, str or HardConcrete): ``"hard_concrete"`` reads the LAN's output p as
            ``sigmoid(a)`` of hard-concrete mask logits ``a`` (:mod:`lanlib.gates`, Louizos
            et al. 2018): training corrupts with sampled gates and rewards the expected
            share replaced. The LAN is unchanged (it still ends in a sigmoid); its test-time
            masks, with exact 0s and 1s, are ``g.deterministic(g.logits(lan(x)))`` for
            ``g = lanlib.gates.hard_concrete()``. Default None (the paper's masks).
        seed (int, optional): seeds batch order, noise and gates; ``None`` draws a fresh seed.
        progress (bool): show a progress bar. Default True.
        device (str or torch.device, optional): where to compute; default the model's device.
        history (History, optional): filled with the per-step batch means.
        checkpoint (str or Path, optional): a file where the training state (LAN, optimisers,
            random state, history) is saved every ``checkpoint_every`` steps and at the end,
            atomically. If it exists when the call starts, training resumes from it, and the
            result is what an uninterrupted run gives. The batches then come from a
            generator of their own, seeded from ``seed``: a run with a checkpoint differs from
            one without (not between an interrupted and an uninterrupted one). Needs a
            ``seed``; a DataLoader's batches before the saved step are read again. Default
            None (no checkpoint).
        checkpoint_every (int): steps between two checkpoints, >= 1. Default 100.

    Several processes (``torchrun``, or ``torch.distributed`` initialised): the LAN is
    wrapped in ``DistributedDataParallel``, F stays frozen on every rank, and each
    step's global batch of ``batch_size`` (drawn alike on every rank from the shared
    seed) is split into equal shares; each rank corrupts its share with its part of
    the noise drawn for the whole batch. The trained LAN is then the one a single
    process gives with the same ``batch_size`` and seed, up to float rounding (the
    gradients are summed in another order). ``batch_size`` must be a multiple of the
    number of processes; ``gates`` are not supported there yet. Rank 0 writes the
    checkpoint.

    Returns:
        nn.Module: ``lan``, trained, on ``device``.

    Raises:
        ValueError: non-finite inputs, model outputs, noise or objective; LAN outputs
            outside [0, 1] at any step (found at the next check, see :data:`CHECK_EVERY`);
            both or neither of beta and max_distortion; a bad tv, gates or multiplier_lr;
            a checkpoint of another run, or without a seed; under several processes, a
            batch_size that they cannot share equally, or gates.
    """
    beta, max_distortion, steps, lr = check_hyper(beta, max_distortion, steps, lr)
    multiplier_lr = check_positive("multiplier_lr", multiplier_lr)
    tv = check_tv(tv)
    gates = resolve_gates(gates)
    check_module("lan", lan)
    if not any(p.requires_grad for p in lan.parameters()):
        raise ValueError("the LAN has no trainable parameters; pass a module with parameters")
    rank, world, device = join_process_group(resolve_device(model, device))
    part = None
    if world > 1:
        if gates is not None:
            raise ValueError("gates are not supported by fit_lan under several processes yet "
                             "(their draws would differ from one process's); train with gates "
                             "in one process")
        if not isinstance(batch_size, int) or batch_size % world:
            raise ValueError(f"batch_size {batch_size!r} must be a multiple of the number of "
                             f"processes, {world}, so that each takes an equal share")
        share = batch_size // world
        part = slice(rank * share, (rank + 1) * share)
        seed = _shared_seed(seed, world)
    saved = None
    if checkpoint is not None:
        if seed is None:
            raise ValueError("a checkpoint needs a seed (resuming must draw the same batches "
                             "and noise): pass seed=")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or (
                checkpoint_every < 1):
            raise ValueError(f"checkpoint_every must be an integer >= 1, got "
                             f"{checkpoint_every!r}")
        checkpoint = Path(checkpoint).expanduser()
        run = _run_description(steps=steps, lr=lr, multiplier_lr=multiplier_lr,
                               batch_size=batch_size, beta=beta, max_distortion=max_distortion,
                               loss=loss, tv=tv, gates=gates, seed=seed)
        saved = _load_checkpoint(checkpoint, run)
    gen = generator(seed, device)
    # with a checkpoint the batches have their own generator: replaying them on resume
    # then leaves the noise's generator alone (its state is in the checkpoint)
    stream = batches(data, batch_size, gen if checkpoint is None else generator(
        seed ^ 0x5EED, device), device)
    lan.to(device).train()
    model_dtype, lan_dtype = floating_dtype(model), floating_dtype(lan)
    optimiser = torch.optim.Adam(lan.parameters(), lr=lr)
    rho, ascent = _multiplier(max_distortion, (), multiplier_lr, device, torch.float32)
    records = []
    kept: dict[str, torch.Tensor] = {}
    low = high = None
    first = 0
    if saved is not None:
        first = saved["step"]
        lan.load_state_dict(saved["lan"])
        optimiser.load_state_dict(saved["optimiser"])
        if rho is not None:
            with torch.no_grad():
                rho.copy_(saved["rho"])
            ascent.load_state_dict(saved["ascent"])
        gen.set_state(saved["generator"])
        kept, low, high = saved["records"], saved["low"].to(device), saved["high"].to(device)
        for _ in range(first):
            next(stream)
    trained = lan if world == 1 else DistributedDataParallel(
        lan, device_ids=[device] if device.type == "cuda" else None)
    with explained(model, device):
        for step in trange(first, steps, disable=not progress or rank != 0, desc="fit_lan"):
            x = next(stream)
            x_model = x if model_dtype is None else x.to(model_dtype)
            draw = noise
            if part is not None:
                draw = _share_of(noise, x_model, part)
                x, x_model = x[part], x_model[part]
            with torch.no_grad():
                reference = model_output(model, x_model)
            mask = trained(x if lan_dtype is None else x.to(lan_dtype))
            if step == 0:
                check_mask(mask, x, source="the LAN's output")
                _check_reference(reference)
                draw = _first_draw_checked(draw)
            terms = objective(model, x_model, mask if gates is None else gates.logits(mask),
                              draw, beta=beta, loss=loss, reference=reference, generator=gen,
                              max_distortion=max_distortion,
                              multiplier=None if rho is None else rho.exp(), tv=tv, gates=gates)
            total = terms["objective"].mean()
            optimiser.zero_grad(set_to_none=True)
            if ascent is not None:
                ascent.zero_grad(set_to_none=True)
            total.backward()
            if rho is not None and world > 1:  # λ follows the global batch's mean distortion
                dist.all_reduce(rho.grad)
                rho.grad /= world
            optimiser.step()
            if ascent is not None:
                ascent.step()
            records.append({k: v.detach().mean() for k, v in terms.items()})
            # the masks' range at every step, gathered on the device, read at the checks
            low_high = torch.aminmax(mask.detach().float())
            low = low_high.min if low is None else torch.minimum(low, low_high.min)
            high = low_high.max if high is None else torch.maximum(high, low_high.max)
            if _due(step, steps):
                _check_objective(total, terms, step + 1)
                _check_lan_range(low, high, step + 1)
            if checkpoint is not None and ((step + 1) % checkpoint_every == 0
                                           or step + 1 == steps):
                recent = _settled(records, world)
                kept = {k: torch.cat([kept[k], v]) if k in kept else v for k, v in recent.items()}
                records = []
                if rank == 0:
                    _save_checkpoint(checkpoint, {
                        "run": run, "step": step + 1, "lan": lan.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "rho": None if rho is None else rho.detach(),
                        "ascent": None if ascent is None else ascent.state_dict(),
                        "generator": gen.get_state(), "records": kept, "low": low,
                        "high": high})
    lan.eval()
    if history is not None:
        if checkpoint is None and world == 1:
            history.extend(records)
        else:
            # with a checkpoint every record is kept by the last step: kept holds them all
            series = _settled(records, world) or kept
            history.extend([{k: v[i] for k, v in series.items()}
                            for i in range(len(next(iter(series.values()), [])))])
    return lan


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write a training state to ``path`` atomically (a killed run leaves the previous one)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def fit_sample_masks(
    model: nn.Module,
    inputs: torch.Tensor,
    noise,
    *,
    beta: float | None = None,
    max_distortion: float | None = None,
    steps: int = 300,
    lr: float = 0.1,
    multiplier_lr: float = 0.05,
    loss="kl",
    mask_shape=None,
    init: float = 0.5,
    tv: float = 0.0,
    gates=None,
    seed: int | None = None,
    progress: bool = True,
    device=None,
    history: History | None = None,
    schedule: str = "constant",
    callback: Callable[[int, torch.Tensor], object] | None = None,
    compile: bool | dict = False,
    amp: bool | torch.dtype = False,
    channels_last: bool = False,
) -> torch.Tensor:
    r"""Fit one mask per input, all at once (Eq. 4 of the paper).

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 03, 04, 05 and 06 use it.

    Each row's mask minimises ``L_F(F(x), F(x~)) - beta * mean(m)``; the rows are
    optimised together in one loop, and since the batch objective is the sum of the
    rows' objectives (and F is in eval mode), each mask is what fitting it alone
    would give. The mask is ``sigmoid(logits)``, optimised by Adam.

    Three options, off by default, shape the masks (:func:`lanlib.objective` defines
    their terms); each keeps the rows independent:

    - ``tv`` adds a total-variation prior, on the mask at its own (possibly coarse)
      resolution.
    - ``max_distortion`` replaces ``beta`` by a constraint (DiffMask, De Cao et al.
      2020): each row maximises its mean mask subject to its distortion
      ``<= max_distortion``, through the Lagrangian ``-mean(m) + λ (D - ε)`` with its
      own multiplier ``λ = exp(ρ)`` (one per row, since rows are independent). ρ starts
      at 0, where the Lagrangian is the paper's objective at β = 1 (less a constant),
      and is ascended by its own Adam at ``multiplier_lr`` while Adam descends the
      masks: λ grows while a row breaks its bound and shrinks while it holds, and at the
      end ``1/λ`` is the β at which the paper's objective gives that row's mask. ε is in
      the units of the loss (nats for ``"kl"``). The multipliers settle by oscillating
      about their value; a decaying ``schedule`` (applied to both rates) damps that, so
      the distortion ends closer to ε.
    - ``gates="hard_concrete"``: the logits are those of hard-concrete gates
      (:mod:`lanlib.gates`, Louizos et al. 2018): each step corrupts with one sample
      of them and rewards the expected share of elements replaced; the returned masks
      are the deterministic test-time gates, with exact 0s and 1s.

    Args:
        model (nn.Module): F (frozen during the call, restored after).
        inputs (Tensor (N, ...)): the inputs to explain, floating point, finite; detached
            (their ``.grad`` is never touched) and given to F in F's dtype.
        noise (callable): ``noise(inputs, generator) -> eta``, see :mod:`lanlib.noise`.
        beta (float, optional): reward for larger masks, > 0. Give exactly one of ``beta``
            and ``max_distortion``.
        max_distortion (float, optional): ε, the most distortion each row's mask may cost,
            > 0 (the constrained form above). History then records ``"multiplier"`` (the
            rows' mean λ).
        steps (int): optimisation steps. Default 300.
        lr (float): Adam learning rate on the mask logits. Default 0.1.
        multiplier_lr (float): Adam rate of the log-multipliers ρ, > 0; each λ changes by
            a factor of about ``exp(multiplier_lr)`` per step at most. Used with
            ``max_distortion``. Default 0.05.
        loss (str or callable): ``"kl"`` (default), ``"ce"``, ``"mse"`` or ``loss(ref, out)``.
            A model with one output per row is a binary classifier to ``"kl"`` and ``"ce"``
            (sigmoid of its logit, see :mod:`lanlib.losses`).
        mask_shape (tuple, optional): per-sample mask shape, e.g. ``(1, 8, 8)`` for a
            channel-shared 8x8 mask on ``(N, 3, 32, 32)`` inputs; size-1 dimensions
            broadcast, smaller spatial ones are upsampled (see :func:`upsample_mask`).
            Sizes are integers >= 1. Default: the inputs' per-sample shape.
        init (float): initial mask value, in (0, 1) (with gates, ``sigmoid`` of the initial
            logits). Default 0.5.
        tv (float): weight of the total-variation prior (Fong & Vedaldi 2017;
            :func:`lanlib.core.total_variation`), >= 0; needs masks with spatial
            dimensions. History then records ``"tv"``. Default 0.0 (off).
        gates (None, str or HardConcrete): None (default) for the paper's sigmoid masks,
            ``"hard_concrete"`` or :func:`lanlib.gates.hard_concrete` for gates. History
            then records ``"expected_replaced"``.
        seed (int, optional): seeds the noise and the gates; ``None`` draws a fresh seed.
        progress (bool): show a progress bar. Default True.
        device (str or torch.device, optional): where to compute; default the model's device.
        history (History, optional): filled with the per-step batch means.
        schedule (str): the learning rate over the steps: ``"constant"`` (default),
            ``"cosine"`` or ``"linear"`` (both decay from ``lr`` to 0 at the last step; so
            does ``multiplier_lr``).
        callback (callable, optional): ``callback(step, masks)`` after each step, with the
            step number (1 to ``steps``) and the current masks ``(N, *mask_shape)`` as they
            would be returned (detached, on ``device``), e.g. to record the objective along
            the way.
        compile (bool or dict): run F through :func:`torch.compile` (a dict gives its
            options). Compiling takes seconds to minutes once; meant for long fits on a
            GPU (on a CPU it measured slower). Default False.
        amp (bool or torch.dtype): evaluate F under autocast, in bfloat16 (``True``) or the
            dtype given; masks, loss and optimiser stay in float32. Faster where the
            hardware has bfloat16 units. Default False.
        channels_last (bool): give F its 4-D inputs in channels-last memory format (often
            faster convolutions). Default False.

    Returns:
        Tensor (N, \*mask_shape): masks in [0, 1] (1 = ignored, 0 = needed), on the
        inputs' device, float32 (float64 for float64 inputs) whatever F's dtype.

    The speed and convergence of these options are measured by ``python -m lanlib.bench``.
    """
    beta, max_distortion, steps, lr = check_hyper(beta, max_distortion, steps, lr)
    multiplier_lr = check_positive("multiplier_lr", multiplier_lr)
    tv = check_tv(tv)
    gates = resolve_gates(gates)
    inputs = check_inputs(inputs)
    if isinstance(init, bool) or not isinstance(init, numbers.Real) or not 0 < init < 1:
        raise ValueError(f"init must lie strictly between 0 and 1, got {init!r}")
    shape = _mask_shape(mask_shape, inputs)
    home = inputs.device
    device = resolve_device(model, device)
    gen = generator(seed, device)
    x = inputs.to(device, floating_dtype(model) or inputs.dtype)  # F runs in its own dtype
    # masks and Adam's state in float32 at least: in bfloat16 small steps round to nothing
    logits = torch.full((len(x), *shape), math.log(init / (1 - init)), device=device,
                        dtype=torch.promote_types(x.dtype, torch.float32), requires_grad=True)
    upsample_mask(logits.detach(), x)  # fails early and clearly on a bad mask_shape
    optimiser = torch.optim.Adam([logits], lr=lr)
    rho, ascent = _multiplier(max_distortion, (len(x),), multiplier_lr, device, logits.dtype)
    schedulers = [_scheduler(o, schedule, steps) for o in (optimiser, ascent) if o is not None]
    forward = _forward(model, compile=compile, amp=amp, channels_last=channels_last)

    def masks() -> torch.Tensor:
        """The masks the fit returns: sigmoid of the logits, or the deterministic gates."""
        with torch.no_grad():
            return torch.sigmoid(logits) if gates is None else gates.deterministic(logits)

    records = []
    with explained(model, device):
        with torch.no_grad():
            reference = _check_reference(model_output(forward, x))  # F(x), once
        first_draw = _first_draw_checked(noise)
        for step in trange(steps, disable=not progress, desc="fit_sample_masks"):
            terms = objective(forward, x, torch.sigmoid(logits) if gates is None else logits,
                              first_draw if step == 0 else noise, beta=beta, loss=loss,
                              reference=reference, generator=gen, max_distortion=max_distortion,
                              multiplier=None if rho is None else rho.exp(), tv=tv,
                              gates=gates, upsample=True)
            total = terms["objective"].sum()
            optimiser.zero_grad(set_to_none=True)
            if ascent is not None:
                ascent.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            if ascent is not None:
                ascent.step()
            for scheduler in schedulers:
                if scheduler is not None:
                    scheduler.step()
            if history is not None:
                records.append({k: v.detach().mean() for k, v in terms.items()})
            if callback is not None:
                callback(step + 1, masks())
            if _due(step, steps):
                _check_objective(total, terms, step + 1)
    if history is not None:
        history.extend(records)
    return masks().to(home)


def fit_sample_masks_over_beta(
    model: nn.Module,
    inputs: torch.Tensor,
    noise,
    betas,
    *,
    loss="kl",
    **kwargs,
) -> torch.Tensor:
    r"""Sample-specific masks (Eq. 4) for every input at every beta, in ONE batched call.

    Chapter 01 (``notebooks/01_method.ipynb``) explains it; chapters 02 and 03 use it.

    ``beta`` is a scalar of :func:`lanlib.fit_sample_masks`; to fit several betas at
    once, every input is repeated once per beta and row ``r`` minimises
    ``(beta_0 / beta_r) * L_F - beta_0 * mean(m_r)`` with ``beta_0 = max(betas)``:
    the row's objective ``L_F - beta_r * mean(m_r)`` times a positive constant. Each
    mask element belongs to one row only and Adam's steps do not change when a
    parameter's gradients are all scaled by one positive constant (up to its
    ``eps``), so every row follows the path a separate call at ``beta_r`` would take
    with the same noise draws.

    Args:
        model (nn.Module): F, returning logits.
        inputs (Tensor (N, ...)): the inputs.
        noise (callable): the noise, as for :func:`lanlib.fit_sample_masks`.
        betas (sequence of float (B,)): the values of beta, all > 0.
        loss (str or callable): the distortion, as for :func:`lanlib.fit_sample_masks`.
        **kwargs: passed on to :func:`lanlib.fit_sample_masks` (``steps``, ``lr``,
            ``mask_shape``, ``seed``, ``progress``, ``gates``, ...). Not ``tv`` (its term
            would need the same per-row scaling) nor ``max_distortion`` (no beta to sweep).

    The chapters' β sweeps (01, 02 and 03) use it.

    Returns:
        Tensor (B, N, \*mask_shape): ``masks[b, i]`` is the mask of input i at ``betas[b]``.

    Example:
        >>> from lanlib import noise
        >>> lin = nn.Linear(4, 3)
        >>> x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
        >>> m = fit_sample_masks_over_beta(lin, x, noise.constant(0.0), [0.01, 1.0], steps=5,
        ...                                seed=0, progress=False)
        >>> m.shape
        torch.Size([2, 2, 4])
    """
    inputs = check_inputs(inputs)
    if kwargs.get("max_distortion") is not None:
        raise ValueError("a beta sweep takes no max_distortion; to fit several bounds, call "
                         "lanlib.fit_sample_masks(..., max_distortion=eps) once per bound")
    if kwargs.get("tv"):
        raise ValueError("a beta sweep takes no tv (each row would need its own weight); call "
                         "lanlib.fit_sample_masks(..., beta=b, tv=w) once per beta")
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__iter__"):
        raise TypeError(f"betas must be a sequence of positive numbers such as [0.5, 1, 2], got "
                        f"{betas!r}; for a single beta call lanlib.fit_sample_masks")
    values = [b.item() if isinstance(b, torch.Tensor) and b.numel() == 1 else b
              for b in betas]
    if not values:
        raise ValueError("betas must be a non-empty sequence of positive numbers")
    betas = torch.tensor([check_positive("each beta", b) for b in values], dtype=torch.float64)
    n = len(inputs)
    top = float(betas.max())
    weights = (top / betas).repeat_interleave(n).to(
        inputs.device, torch.promote_types(inputs.dtype, torch.float32))
    base = resolve_loss(loss)

    def scaled(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
        return base(reference, corrupted) * weights

    repeated = inputs.repeat(len(betas), *([1] * (inputs.ndim - 1)))
    masks = fit_sample_masks(model, repeated, noise, beta=top, loss=scaled, **kwargs)
    return masks.reshape(len(betas), n, *masks.shape[1:])
