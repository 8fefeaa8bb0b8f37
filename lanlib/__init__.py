"""lanlib: Latent Attention Networks in PyTorch.

A companion library to the Latent Attention Book, after Grimm et al., "Modeling
Latent Attention Within Neural Networks". A Latent Attention Network A maps an
input x to a mask A(x) in [0, 1]; the input is corrupted as
``x~ = A(x) * eta + (1 - A(x)) * x`` with noise eta, and A is trained so that the
explained model F barely notices while the mask stays as large as possible.
Mask values near 1 mark what F ignores, near 0 what it needs
(``importance = 1 - mask``).

Main entry points:

- :func:`corrupt` (Eq. 2), :func:`objective` (Eqs. 3-4);
- :func:`fit_lan`: train an amortised mask network (Eq. 3);
- :func:`fit_sample_masks`: fit one mask per input, batched (Eq. 4);
- :func:`explain_dataset`: masks for a whole dataset, written shard by shard (resumable,
  shared by ``torchrun``'s processes); :func:`load_explanations` reads them back;
- :func:`attribute`: any explanation method asked for in one way (Captum's, sample
  masks, a trained LAN), timed per image; :class:`LatentAttention`: sample masks behind
  Captum's interface (both from :mod:`lanlib.attribution`);
- :mod:`lanlib.noise`: constant, bootstrapped, uniform and blurred noise;
- :mod:`lanlib.gates`: hard-concrete gates (DiffMask's masks, with an expected-L0 reward);
- :mod:`lanlib.diffmask`: DiffMask's probes, gates predicted from F's hidden states and
  trained under a divergence bound (:func:`lanlib.diffmask.fit_diffmask`);
- :mod:`lanlib.nets` (mask networks), :mod:`lanlib.train` (classifiers),
  :mod:`lanlib.metrics` (AUROC, agreement, deletion curves), :mod:`lanlib.data`,
  :mod:`lanlib.cache`.
"""

from . import (
    attribution,
    book,
    cache,
    data,
    diffmask,
    gates,
    losses,
    metrics,
    nets,
    noise,
    plot,
    train,
)
from ._version import __version__
from .attribution import LatentAttention, attribute
from .core import corrupt, frozen, importance, objective, upsample_mask
from .explain import ExplanationStore, explain_dataset, load_explanations
from .fit import fit_lan, fit_sample_masks, fit_sample_masks_over_beta
from .loop import History, seeded

__all__ = [
    "__version__",
    "ExplanationStore",
    "History",
    "LatentAttention",
    "attribute",
    "attribution",
    "book",
    "cache",
    "corrupt",
    "data",
    "diffmask",
    "explain_dataset",
    "fit_lan",
    "fit_sample_masks",
    "fit_sample_masks_over_beta",
    "frozen",
    "gates",
    "importance",
    "load_explanations",
    "losses",
    "metrics",
    "nets",
    "noise",
    "objective",
    "plot",
    "seeded",
    "train",
    "upsample_mask",
]
