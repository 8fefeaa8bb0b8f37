"""Hard-concrete gates: masks with exact zeros and ones, and an expected-L0 size term.

Louizos, Welling and Kingma (2018, "Learning sparse neural networks through L0
regularization", ICLR, arXiv:1712.01312) give each element a gate z in
[0, 1] drawn from the *hard concrete* distribution: a binary concrete sample
stretched to ``stretch = (low, high)`` (with ``low < 0 < 1 < high``) and clipped to
[0, 1], so that z is exactly 0 or exactly 1 with positive probability while its
samples stay differentiable in the location ``log alpha``. The probability that a
gate is not 0 has a closed form, which makes the expected L0 norm differentiable.
DiffMask (De Cao et al. 2020, arXiv:2004.14992) masks inputs with these
gates. Both use temperature 2/3 and stretch (-0.1, 1.1) (:data:`TEMPERATURE`,
:data:`STRETCH`).

Orientation: the papers' gate keeps an element when z = 1; this library's mask is
1 where an element is replaced, so **mask = 1 - z**. Everything here is written
for the mask and parameterised by *mask logits* ``a = -log alpha`` (larger ``a``,
more replaced):

- :meth:`HardConcrete.rsample`: a reparameterised sample of the mask, for training;
- :meth:`HardConcrete.expected_replaced`: P(mask = 1) = 1 - P(z != 0), the reward;
- :meth:`HardConcrete.deterministic`: the papers' test-time gates, as a mask.

A trained LAN fitted with ``gates="hard_concrete"`` returns probabilities p, read as
``p = sigmoid(a)`` (:meth:`HardConcrete.logits`); its test-time masks are
``gates.deterministic(gates.logits(lan(x)))``.

Example:
    >>> import torch
    >>> gates = hard_concrete()
    >>> a = torch.tensor([-4.0, 0.0, 4.0])
    >>> gates.deterministic(a)  # exact 0 and 1 at the ends
    tensor([0.0000, 0.5000, 1.0000])
    >>> gates.expected_replaced(a)
    tensor([0.0037, 0.1682, 0.9169])
    >>> m = gates.rsample(a.expand(1000, 3), torch.Generator().manual_seed(0))
    >>> bool(((m == 0) | (m == 1)).float().mean() > 0.3)  # many samples are exactly 0 or 1
    True
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["HardConcrete", "hard_concrete", "resolve", "TEMPERATURE", "STRETCH"]

#: The binary concrete temperature of Louizos et al. (2018) and DiffMask.
TEMPERATURE = 2 / 3
#: The interval (low, high) the concrete sample is stretched to before clipping to [0, 1].
STRETCH = (-0.1, 1.1)
#: How close to 0 and 1 :meth:`HardConcrete.logits` clips probabilities (logits within ±13.8).
PROBABILITY_EPS = 1e-6


class HardConcrete:
    """Hard-concrete gates over masks (1 = replaced), parameterised by mask logits.

    Chapter 07 (``notebooks/07_diffmask.ipynb``) uses them through :mod:`lanlib.diffmask`;
    the method chapter (``notebooks/01_method.ipynb``) explains the masks they replace.
    Build one with :func:`hard_concrete`.

    Args:
        temperature (float): the binary concrete temperature, > 0. Default 2/3.
        stretch (tuple of 2 floats): ``(low, high)`` with ``low < 0`` and ``high > 1``.
            Default (-0.1, 1.1).
    """

    def __init__(self, temperature: float = TEMPERATURE, stretch=STRETCH):
        if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
                or not math.isfinite(temperature) or temperature <= 0):
            raise ValueError(f"the gates' temperature must be a positive number, got "
                             f"{temperature!r}; Louizos et al. use 2/3")
        if (not isinstance(stretch, (tuple, list)) or len(stretch) != 2
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                           and math.isfinite(v) for v in stretch)
                or not (stretch[0] < 0 and stretch[1] > 1)):
            raise ValueError(f"the gates' stretch must be a pair (low, high) with low < 0 and "
                             f"high > 1 (else no gate is ever exactly 0 or 1), got {stretch!r}; "
                             "Louizos et al. use (-0.1, 1.1)")
        self.temperature = float(temperature)
        self.low, self.high = float(stretch[0]), float(stretch[1])

    def rsample(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One reparameterised sample of the masks, differentiable in ``logits``.

        ``z = clip(low + (high - low) * sigmoid((logit(u) - a) / temperature), 0, 1)`` with
        ``u`` uniform, and the mask ``1 - z``.

        Args:
            logits (Tensor): the mask logits ``a``, any shape.
            generator (torch.Generator): source of ``u``, on ``logits``' device.

        Returns:
            Tensor: masks in [0, 1] shaped like ``logits``, with exact 0s and 1s.
        """
        eps = torch.finfo(logits.dtype).eps
        u = torch.rand(logits.shape, generator=generator, device=logits.device,
                       dtype=logits.dtype).clamp(eps, 1 - eps)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) - logits) / self.temperature)
        return 1 - (self.low + (self.high - self.low) * s).clamp(0, 1)

    def expected_replaced(self, logits: torch.Tensor) -> torch.Tensor:
        """P(mask = 1) = 1 - P(z != 0) per element, in closed form (Louizos et al.):
        ``sigmoid(a + temperature * log(-low / high))``.

        Args:
            logits (Tensor): the mask logits ``a``.

        Returns:
            Tensor: probabilities shaped like ``logits``.
        """
        return torch.sigmoid(logits + self.temperature * math.log(-self.low / self.high))

    def deterministic(self, logits: torch.Tensor) -> torch.Tensor:
        """The test-time masks (Louizos et al., for ``1 - z``):
        ``1 - clip(low + (high - low) * sigmoid(-a), 0, 1)``.

        Args:
            logits (Tensor): the mask logits ``a``.

        Returns:
            Tensor: masks in [0, 1] shaped like ``logits``, exactly 0 for
            ``sigmoid(-a) >= (1 - low) / (high - low)`` and exactly 1 for
            ``sigmoid(-a) <= -low / (high - low)``.
        """
        return 1 - (self.low + (self.high - self.low) * torch.sigmoid(-logits)).clamp(0, 1)

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Mask logits ``a = log(p / (1 - p))`` of a LAN's outputs ``p`` in [0, 1], computed in
        float32 at least, ``p`` clipped to [1e-6, 1 - 1e-6] (:data:`PROBABILITY_EPS`)."""
        wide = probabilities.to(torch.promote_types(probabilities.dtype, torch.float32))
        return torch.logit(wide, eps=PROBABILITY_EPS)

    def __repr__(self) -> str:
        return (f"hard_concrete(temperature={self.temperature:.4g}, "
                f"stretch=({self.low:g}, {self.high:g}))")


def hard_concrete(temperature: float = TEMPERATURE, stretch=STRETCH) -> HardConcrete:
    """Hard-concrete gates with the papers' settings, or others.

    Chapter 07 (``notebooks/07_diffmask.ipynb``) uses them; the method chapter
    (``notebooks/01_method.ipynb``) explains the masks they replace.
    ``gates="hard_concrete"`` of the fits means ``hard_concrete()``.

    Args:
        temperature (float): the binary concrete temperature, > 0. Default 2/3.
        stretch (tuple): ``(low, high)``, ``low < 0``, ``high > 1``. Default (-0.1, 1.1).

    Returns:
        HardConcrete: the gates.
    """
    return HardConcrete(temperature, stretch)


def resolve(gates) -> HardConcrete | None:
    """The gates a ``gates=`` argument names: None, ``"hard_concrete"`` or a HardConcrete.

    The method chapter (``notebooks/01_method.ipynb``) explains the fits that take
    ``gates=``; chapter 07 (``notebooks/07_diffmask.ipynb``) uses them.
    """
    if gates is None or isinstance(gates, HardConcrete):
        return gates
    if isinstance(gates, str) and gates == "hard_concrete":
        return HardConcrete()
    raise ValueError(f"gates must be None (the paper's sigmoid masks), 'hard_concrete' or "
                     f"lanlib.gates.hard_concrete(...), got {gates!r}")
