"""Training the classifiers that the chapters explain: one plain loop for all of them.

Example:
    >>> import torch
    >>> from torch import nn
    >>> x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    >>> y = (x[:, 0] > 0).long()
    >>> model = train_classifier(nn.Linear(2, 2), (x, y), steps=200, lr=0.05, seed=0,
    ...                          progress=False)
    >>> accuracy(model, x, y) > 0.95
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import trange

from .core import check_positive, check_steps
from .loop import History, batches, generator, resolve_device

__all__ = ["train_classifier", "predict", "accuracy"]


def train_classifier(
    model: nn.Module,
    data,
    *,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int | None = None,
    progress: bool = True,
    device=None,
    history: History | None = None,
) -> nn.Module:
    """Train ``model`` with Adam on the cross-entropy of its logits.

    Args:
        model (nn.Module): maps inputs ``(N, ...)`` to logits ``(N, classes)``; trained in place.
        data: ``(inputs, labels)`` tensors, or a Dataset/DataLoader of ``(input, label)`` pairs.
        steps (int): optimisation steps (batches).
        lr (float): Adam learning rate. Default 1e-3.
        batch_size (int): batch size for tensors and Datasets. Default 64.
        weight_decay (float): Adam's L2 penalty. Default 0.
        augment (callable, optional): ``augment(batch, generator) -> batch``, applied to
            each training batch (e.g. random shifts).
        seed (int, optional): seeds batch order, augmentation and dropout masks.
        progress (bool): show a progress bar. Default True.
        device (str or torch.device, optional): default the model's device.
        history (History, optional): filled with per-step ``loss`` and ``accuracy``.

    Returns:
        nn.Module: ``model``, trained, in eval mode, on ``device``.
    """
    check_steps(steps)
    check_positive("lr", lr)
    device = resolve_device(model, device)
    gen = generator(seed, device)
    stream = batches(data, batch_size, gen, device, labels=True)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    records = []
    fork = [torch.device(device)] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        # dropout draws from the global generator: seed it inside a fork, restored after
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen, device=gen.device)))
        for _ in trange(steps, disable=not progress, desc="train"):
            x, y = next(stream)
            if augment is not None:
                x = augment(x, gen)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            records.append({"loss": loss.detach(),
                            "accuracy": (logits.argmax(1) == y).float().mean()})
    model.eval()
    if history is not None:
        history.extend(records)
    return model


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` for ``inputs``, in batches, in eval mode (restored after)."""
    training = model.training
    model.eval()
    device = resolve_device(model, None)
    try:
        outs = [model(inputs[i:i + batch_size].to(device)).cpu()
                for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(training)
    return torch.cat(outs)


def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1024) -> float:
    """Share of ``inputs`` whose arg-max logit equals ``labels``."""
    return float((predict(model, inputs, batch_size).argmax(1) == labels.cpu()).double().mean())
