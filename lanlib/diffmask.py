"""DiffMask: gates predicted from a model's hidden states, trained under a divergence bound.

De Cao, Schlichtkrull, Aziz and Titov (2020, "How do decisions emerge across layers in
neural models? Interpretation with differentiable masking", EMNLP, arXiv:2004.14992)
explain a sequence model F with a *probe*: a small network that reads F's hidden states
``h^(0), ..., h^(l)`` of every position (up to a layer ``l``) and predicts, per position,
a hard-concrete gate (:mod:`lanlib.gates`). Positions whose gate is closed are replaced,
in hidden state ``l`` ("hidden") or in the input embeddings ("input"), by a learned
baseline vector b. The probe and b minimise the expected number of open gates
(expected L0) subject to the divergence between F's output and its output after
masking staying below m, through the Lagrangian
``-S + λ (D - m)`` with ``S`` the expected share of gates closed (:func:`lanlib.objective`
with ``gates=`` and ``max_distortion=``) and ``λ >= 0`` ascended by gradient (see
:func:`fit_diffmask` for why additively, with the gates starting open).

Since the probe sees only what F computed up to layer l, a position it drops is one F
"knows" it can drop there; per-input search (:func:`lanlib.fit_sample_masks`) has no
such limit (the paper's *hindsight bias*).

This library's orientation holds: masks are 1 where a position is replaced (the gate
closed), importance is ``1 - mask``.

Hidden states are read and replaced through forward hooks on ``modules``: the module
whose output is hidden state k is ``modules[k]`` (e.g. the embedding, then each block
of a transformer; :attr:`lanlib.models.transformer.TransformerClassifier.stages`).

The example below explains a model that reads only position 0 of three; the learned
baseline can stand in for position 0 on some inputs, so only those lose it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from lanlib import diffmask
    >>> embed = nn.Identity()
    >>> model = nn.Sequential(embed, nn.Flatten(1), nn.Linear(9, 2))
    >>> with torch.no_grad():
    ...     _ = model[2].weight.zero_(); _ = model[2].weight[:, :3].copy_(torch.eye(3)[:2] * 4)
    >>> x = torch.cat([torch.randn(256, 3, 2, generator=torch.Generator().manual_seed(0)),
    ...                torch.eye(3).expand(256, 3, 3)[..., :1]], dim=2)  # feature 2: "first?"
    >>> _ = torch.manual_seed(0)  # the probe's initial weights
    >>> probe = diffmask.DiffMask(dim=3, layer=0)
    >>> _ = diffmask.fit_diffmask(model, [embed], probe, x, max_distortion=0.05, steps=1000,
    ...                           lr=0.03, seed=0, progress=False)
    >>> masks = diffmask.masks(model, [embed], probe, x[:64])
    >>> masks.shape
    torch.Size([64, 3])
    >>> bool(masks[:, 1:].min() == 1)  # positions 1 and 2 are always dropped
    True
    >>> bool(masks[:, 0].mean() < 0.7)  # position 0 is kept where the baseline cannot stand in
    True

Chapter 07 (``notebooks/07_diffmask.ipynb``) derives it and uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import trange

from .core import check_hyper, check_module, check_positive, objective
from .gates import resolve as resolve_gates
from .loop import History, batches, explained, generator, resolve_device

__all__ = ["DiffMask", "fit_diffmask", "hidden_states", "keep_probabilities", "masks",
           "replaced"]

#: Where a probe's gates act: on hidden state ``layer`` or on the input (hidden state 0).
TARGETS = ("hidden", "input")


class DiffMask(nn.Module):
    """The probe of DiffMask: gate logits per position from hidden states 0 to ``layer``.

    Each hidden state k gets a one-hidden-layer reader ``(N, L, D) -> (N, L, 1)``; the mask
    logits of a position are the sum of its readers' outputs, so the probe at layer l
    sees everything F computed at that position up to l and nothing later.

    Args:
        dim (int or sequence of int): width D of the hidden states, one for all layers,
            or one per hidden state 0 to ``layer`` (a model whose states differ in width).
        layer (int): the deepest hidden state read, l >= 0.
        target (str): ``"hidden"`` (default): the gates replace positions of hidden state
            l; ``"input"``: they replace positions of hidden state 0 (the embeddings).
        hidden (int): width of each reader's hidden layer. Default 32.
        init (float): the mask logits' initial bias; ``gates.expected_replaced(init)`` is
            about the share of positions replaced at the start. Default -5.0: every gate
            open (about 0.1% replaced), as DiffMask's public code starts its gates (a
            keep-logit bias of +5). A start with gates half closed puts the divergence far
            above m at the first steps: λ climbs, the gates are driven open together before
            the probe has learnt which positions matter, and in the saturated gates both
            gradients nearly vanish (see :func:`fit_diffmask`).

    Shape:
        input: a sequence of ``layer + 1`` tensors ``(N, L, D)``; output ``(N, L, 1)``
        mask logits (:mod:`lanlib.gates`' orientation: larger = more replaced).

    Attributes:
        baseline (nn.Parameter (D,)): the vector replacing gated-out positions, learned
            (D: the width of the state replaced; set ``requires_grad_(False)`` to fix it).
        replaces (int): the index of the hidden state the gates act on.
    """

    def __init__(self, dim: int | Sequence[int], layer: int, target: str = "hidden",
                 hidden: int = 32, init: float = -5.0):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        dims = [dim] * (layer + 1) if isinstance(dim, int) else [int(d) for d in dim]
        if layer < 0 or hidden < 1 or len(dims) != layer + 1 or min(dims) < 1:
            raise ValueError(f"need layer >= 0, hidden >= 1 and dim >= 1 (one, or one per "
                             f"state 0 to layer), got {layer}, {hidden} and {dim}")
        self.layer, self.target, self.dims = int(layer), target, dims
        self.replaces = self.layer if target == "hidden" else 0
        self.readers = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, 1)) for d in dims)
        with torch.no_grad():
            self.readers[0][-1].bias.fill_(init)
        self.baseline = nn.Parameter(torch.zeros(dims[self.replaces]))

    def forward(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(states) < self.layer + 1:
            raise ValueError(f"the probe at layer {self.layer} reads {self.layer + 1} hidden "
                             f"states, got {len(states)}")
        for k, (h, dim) in enumerate(zip(states, self.dims, strict=False)):
            if h.dim() != 3 or h.shape[-1] != dim:
                raise ValueError(
                    f"hidden state {k} has shape {tuple(h.shape)}, but this probe reads "
                    f"(N, L, {dim}): build DiffMask with dim= the width of the hidden states "
                    "of the modules given")
        return sum(reader(h) for reader, h in zip(self.readers, states, strict=False))

    def noise(self, inputs: torch.Tensor, generator: torch.Generator | None = None
              ) -> torch.Tensor:
        """The baseline as :mod:`lanlib.noise` noise: ``b`` broadcast to the hidden state."""
        return self.baseline.to(inputs.dtype).expand_as(inputs)


def hidden_states(model: nn.Module, modules: Sequence[nn.Module], inputs: torch.Tensor
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """F's output on ``inputs`` and its hidden states, the outputs of ``modules``, read by hooks.

    Args:
        model (nn.Module): F.
        modules (sequence of nn.Module): the submodules of F whose outputs are the hidden
            states 0, 1, ..., each ``(N, L, D)``.
        inputs (Tensor): F's inputs (token ids or floats).

    Returns:
        tuple: F's output and the list of hidden states, in the order of ``modules``.
    """
    found: dict[int, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, k=k: found.__setitem__(k, out))
               for k, m in enumerate(modules)]
    try:
        output = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if len(found) != len(modules):
        raise ValueError(f"only {len(found)} of the {len(modules)} modules ran in F's forward "
                         "pass; pass submodules of F")
    return output, [found[k] for k in range(len(modules))]


class _Replacing(nn.Module):
    """F on fixed ``inputs`` with the output of ``module`` replaced: a function of that output."""

    def __init__(self, model: nn.Module, module: nn.Module, inputs: torch.Tensor):
        super().__init__()
        self.model, self.module, self.inputs = model, module, inputs

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        handle = self.module.register_forward_hook(lambda _m, _i, _out: hidden)
        try:
            return self.model(self.inputs)
        finally:
            handle.remove()


def replaced(model: nn.Module, modules: Sequence[nn.Module], inputs: torch.Tensor,
             stage: int, hidden: torch.Tensor) -> torch.Tensor:
    """F's output on ``inputs`` with hidden state ``stage`` replaced by ``hidden`` ``(N, L, D)``."""
    return _Replacing(model, modules[stage], inputs)(hidden)


def fit_diffmask(
    model: nn.Module,
    modules: Sequence[nn.Module],
    probe: DiffMask,
    data,
    *,
    max_distortion: float,
    steps: int = 1000,
    lr: float = 1e-3,
    multiplier_lr: float = 0.3,
    batch_size: int = 64,
    loss="kl",
    gates="hard_concrete",
    seed: int | None = None,
    progress: bool = True,
    device=None,
    history: History | None = None,
) -> DiffMask:
    """Train a DiffMask ``probe`` (and its baseline) to explain ``model``.

    Chapter 07 (``notebooks/07_diffmask.ipynb``) explains it.

    Each step: F runs on a batch and its hidden states are read (no gradients); the
    probe predicts gate logits from states 0 to ``probe.layer``; one sample of the gates
    replaces positions of state ``probe.replaces`` by the baseline; F runs on from there.
    The loss is :func:`lanlib.objective`'s constrained form with one Lagrange multiplier λ
    for all inputs: Adam descends the probe and the baseline on ``-S + λ (D - m)``, where
    S is the batch's expected share of closed gates (one minus the expected L0 per
    position), and RMSprop ascends λ itself, which is then kept at or above 0.

    Why λ is ascended additively here, and not as ``exp(ρ)`` as in :func:`lanlib.fit_lan`:
    the gates saturate. A gate pushed far open (or closed) gives almost no gradient, to
    the divergence (its samples are exactly 1) or to the reward (the closed-form
    probability is flat there), so a probe that has been driven to keep everything stays
    there. With ``exp(ρ)`` the multiplier changes by a factor per step: after a stretch
    of steps within the bound it is tiny and takes tens of steps to come back when the
    gates then close too far, and after a violation it is huge and keeps every gate open
    long after; either way the gates saturate before the probe has learnt which
    positions matter (measured on the known-answer model of ``tests/test_diffmask.py``,
    where it kept every position). An additive λ is 0 while the bound holds, so the
    reward alone closes the gates, and responds within a few steps to a violation.
    Together with gates that start open (:class:`DiffMask`'s ``init``), the probe learns
    what to keep while the divergence is small, as DiffMask's public code does.

    Args:
        model (nn.Module): F (frozen during the call, restored after).
        modules (sequence of nn.Module): the submodules whose outputs are hidden states 0,
            1, ... (see :func:`hidden_states`); at least ``probe.layer + 1`` of them.
        probe (DiffMask): the probe, trained in place.
        data (Tensor (N, ...), pair, Dataset or DataLoader): F's inputs, as
            :func:`lanlib.fit_lan` takes them (token ids are fine).
        max_distortion (float): m, the bound on the batch's mean divergence, > 0 (nats
            for ``"kl"``).
        steps (int): optimisation steps. Default 1000.
        lr (float): Adam rate of the probe and the baseline. Default 1e-3.
        multiplier_lr (float): RMSprop rate of λ, > 0. Default 0.3.
        batch_size (int): inputs per step. Default 64.
        loss (str or callable): the divergence, as for :func:`lanlib.objective`. Default "kl".
        gates (str or HardConcrete): the gates. Default ``"hard_concrete"`` (the paper's).
        seed (int, optional): seeds batch order and the gates' samples.
        progress (bool): show a progress bar. Default True.
        device (str or torch.device, optional): default F's device.
        history (History, optional): filled with the per-step batch means (``distortion``,
            ``expected_replaced``, ``multiplier``, ...).

    Returns:
        DiffMask: ``probe``, trained, in eval mode, on ``device``.
    """
    _, max_distortion, steps, lr = check_hyper(None, max_distortion, steps, lr)
    multiplier_lr = check_positive("multiplier_lr", multiplier_lr)
    check_module("probe", probe)
    gates = resolve_gates(gates)
    if gates is None:
        raise ValueError("DiffMask's masks are gates: pass gates='hard_concrete' or "
                         "lanlib.gates.hard_concrete(...)")
    if len(modules) < probe.layer + 1:
        raise ValueError(f"the probe reads {probe.layer + 1} hidden states, but only "
                         f"{len(modules)} modules were given")
    device = resolve_device(model, device)
    gen = generator(seed, device)
    stream = batches(data, batch_size, gen, device)
    probe.to(device).train()
    optimiser = torch.optim.Adam(probe.parameters(), lr=lr)
    multiplier = torch.ones((), device=device, requires_grad=True)  # λ, starts at 1
    ascent = torch.optim.RMSprop([multiplier], lr=multiplier_lr, maximize=True)
    records = []
    with explained(model, device):
        for _ in trange(steps, disable=not progress, desc="fit_diffmask"):
            x = next(stream)
            with torch.no_grad():
                reference, states = hidden_states(model, modules, x)
            logits = probe(states[:probe.layer + 1])
            terms = objective(_Replacing(model, modules[probe.replaces], x),
                              states[probe.replaces], logits, probe.noise, loss=loss,
                              reference=reference, generator=gen,
                              max_distortion=max_distortion, multiplier=multiplier, gates=gates)
            total = terms["objective"].mean()
            optimiser.zero_grad(set_to_none=True)
            ascent.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            ascent.step()
            with torch.no_grad():
                multiplier.clamp_(min=0.0)  # λ >= 0, and 0 while the bound holds
            records.append({k: v.detach().mean() for k, v in terms.items()})
    probe.eval()
    if history is not None:
        history.extend(records)
    return probe


@torch.no_grad()
def _logits(model, modules, probe, inputs) -> torch.Tensor:
    with explained(model, resolve_device(model, None)):
        _, states = hidden_states(model, modules, inputs)
        return probe(states[:probe.layer + 1]).squeeze(-1)


def masks(model: nn.Module, modules: Sequence[nn.Module], probe: DiffMask,
          inputs: torch.Tensor, gates="hard_concrete") -> torch.Tensor:
    """The probe's test-time masks ``(N, L)``: deterministic gates, 1 = replaced, 0 = kept.

    Chapter 07 (``notebooks/07_diffmask.ipynb``) explains it.
    """
    return resolve_gates(gates).deterministic(_logits(model, modules, probe, inputs))


def keep_probabilities(model: nn.Module, modules: Sequence[nn.Module], probe: DiffMask,
                       inputs: torch.Tensor, gates="hard_concrete") -> torch.Tensor:
    """P(gate open) per position ``(N, L)``: one minus the expected share replaced, a score
    without the ties of the deterministic gates (for rankings and AUROC).

    Chapter 07 (``notebooks/07_diffmask.ipynb``) explains it.
    """
    return 1 - resolve_gates(gates).expected_replaced(_logits(model, modules, probe, inputs))
