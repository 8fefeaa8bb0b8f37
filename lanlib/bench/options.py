"""Sections that weigh the fits' shaping options and the mask networks: ``options``, ``mask_nets``.

- :func:`sample_options`: :func:`lanlib.fit_sample_masks` with each of :data:`OPTIONS`
  (the paper's objective; blur noise and a total-variation prior after Fong & Vedaldi
  2017; the constraint form and hard-concrete gates after DiffMask, De Cao et al. 2020):
  masks per second at one batch, against the plain call and against batch 1 (what a
  loop over samples would give), and the quality of the masks after ``option_steps``
  steps (the library's default, 300, in the quick and full settings).
- :func:`mask_nets`: the paper's :class:`~lanlib.nets.MLPMaskNet` against
  :class:`~lanlib.nets.UNetMaskNet` and :class:`~lanlib.nets.FeatureMaskNet`: masks per
  second at inference, :func:`lanlib.fit_lan` steps per second (also with each option of
  :data:`OPTIONS`), and the quality of the trained LANs on the same images.

Quality (:func:`quality`) is judged by fills no fit optimised for as well as by the
fit's own noise (:func:`lanlib.metrics.faithfulness`): deletion and insertion areas with
the own noise, a blurred copy (sigma = image side / 8, :data:`BLUR_SHARE`) and grey
(0.5, the middle of the [0, 1] inputs); with them the swap test's ``own_better``
(:func:`lanlib.metrics.swap_test`, partner = the next image), the distortion under the
own noise, the share of the input replaced, the masks' total variation and the share of
mask elements that are exactly 0 or 1.

Each option's strength is set relative to the subject's ``D_full`` (the distortion of
full replacement), as beta is (:data:`~lanlib.bench.settings.BETA_REL`), so that it
means the same on every network: :data:`TV_REL`, :data:`EPS_REL`.

Example:
    >>> sorted(OPTIONS)
    ['blur', 'hard_concrete', 'max_distortion', 'plain', 'tv']
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .. import noise as noises
from ..cache import load_or_train
from ..core import frozen, importance, objective, total_variation, upsample_mask
from ..fit import fit_lan
from ..gates import hard_concrete
from ..loop import seeded
from ..metrics import faithfulness, swap_test
from ..nets import FeatureMaskNet, MLPMaskNet, UNetMaskNet
from .measure import _on_grid, fit, interleaved, median, rounded, timed
from .settings import BETA_REL, LIBRARY
from .subjects import LAN_HIDDEN, Subject, full_distortion

__all__ = ["BLUR_SHARE", "EPS_REL", "FEATURE_LAYERS", "NET_LR", "NETS", "OPTIONS", "TV_REL",
           "mask_nets", "option_settings", "quality", "sample_options"]

#: Blur's standard deviation as a share of the image side (about side / 8, as the issue asks),
#: for the blur option and for the blur fill of every quality row.
BLUR_SHARE = 1 / 8
#: The total-variation weight as a share of beta. A checkerboard mask (F's stride lattice)
#: has a total variation near 2 and would pay half the largest reward; a mask that keeps one
#: 10 x 10 pixel blob of an MNIST canvas pays about 1% of it.
TV_REL = 0.25
#: The constraint form's bound ε as a share of D_full: the masks may cost a tenth of what
#: replacing everything costs.
EPS_REL = 0.1
#: The options compared, each added alone to the paper's objective ("plain").
OPTIONS = ("plain", "blur", "tv", "max_distortion", "hard_concrete")
#: The mask networks compared (the paper's first).
NETS = ("MLPMaskNet", "UNetMaskNet", "FeatureMaskNet")
#: Adam's learning rate for each mask network: the bench's LAN rate for the paper's MLP
#: (twice it made the MLP collapse to its average on chapter 03's F), twice it for the
#: convolutional ones (measured better there after 400 steps).
NET_LR = {"MLPMaskNet": 1e-3, "UNetMaskNet": 2e-3, "FeatureMaskNet": 2e-3}
#: The activations FeatureMaskNet reads: the nonlinearities after F's first convolutions.
FEATURE_LAYERS = {"mnist": ["features.1", "features.3"],
                  "cifar": ["features.1", "features.3", "features.5"]}


def _sigma(subject: Subject) -> float:
    return subject.images.shape[-1] * BLUR_SHARE


def option_settings(subject: Subject, cfg: dict, seed: int) -> dict[str, dict]:
    """Each option's arguments of the fits: ``noise`` and ``beta`` or ``max_distortion``, ...

    Beta is ``BETA_REL * D_full`` under the noise used (blur replaces less than bootstrap
    noise does, so its D_full is measured again); ``tv`` is ``TV_REL * beta``; ε is
    ``EPS_REL * D_full``.
    """
    blur = noises.blur(_sigma(subject))
    d_full = subject.beta / BETA_REL
    d_blur = full_distortion(subject.model, subject.images[:cfg["d_full_images"]], blur, seed)
    return {"plain": {"noise": subject.noise, "beta": subject.beta},
            "blur": {"noise": blur, "beta": BETA_REL * d_blur},
            "tv": {"noise": subject.noise, "beta": subject.beta, "tv": TV_REL * subject.beta},
            "max_distortion": {"noise": subject.noise, "max_distortion": EPS_REL * d_full},
            "hard_concrete": {"noise": subject.noise, "beta": subject.beta,
                              "gates": "hard_concrete"}}


def _described(settings: dict) -> dict:
    """An option's arguments as JSON (the noise by its repr, numbers rounded)."""
    return {k: repr(v) if k == "noise" else rounded(v) if isinstance(v, float) else v
            for k, v in settings.items()}


def quality(subject: Subject, x: torch.Tensor, masks: torch.Tensor, own, cfg: dict,
            seed: int) -> dict:
    """How good the masks of ``x`` are, judged by their own noise and by fills none fitted.

    Args:
        subject (Subject): the network.
        x (Tensor (N, C, H, W)): the inputs.
        masks (Tensor): their masks, as :func:`lanlib.upsample_mask` takes them.
        own (callable): the noise the masks were fitted with.
        cfg (dict): the setting (``deletion_steps``, ``eval_draws``).
        seed (int): seeds the fills, the swap test and the distortion's draws (the same
            for every row compared).

    Returns:
        dict: ``deletion/<fill>`` and ``insertion/<fill>`` for the fills ``own``, ``blur``
        and ``grey``; ``own_better``; ``distortion`` (own noise, mean of ``eval_draws``
        draws); ``replaced`` (mean mask); ``total_variation``; ``exact_0_or_1``.
    """
    full = upsample_mask(masks.to(x.device, x.dtype), x)
    fills = {"own": own, "blur": noises.blur(_sigma(subject)), "grey": noises.constant(0.5)}
    imp = _on_grid(importance(full), subject.deletion_grid)
    out = {k: rounded(v) for k, v in faithfulness(subject.model, x, imp, fills,
                                                  steps=cfg["deletion_steps"],
                                                  seed=seed).items()}
    draws = cfg["eval_draws"]
    gen = torch.Generator(device=x.device).manual_seed(seed)
    partner = torch.roll(torch.arange(len(x), device=x.device), 1)
    out["own_better"] = rounded(swap_test(subject.model, x, full, partner, own, draws=draws,
                                          generator=gen)["own_better"])
    rep = x.repeat(draws, *([1] * (x.ndim - 1)))
    with frozen(subject.model), torch.no_grad():
        terms = objective(subject.model, rep, full.repeat(draws, *([1] * (x.ndim - 1))), own,
                          beta=1.0, generator=gen)
    out["distortion"] = rounded(float(terms["distortion"].double().mean()))
    out["replaced"] = rounded(float(full.double().mean()))
    out["total_variation"] = rounded(float(total_variation(masks.to(x.device)).double().mean()))
    out["exact_0_or_1"] = rounded(float(((masks == 0) | (masks == 1)).double().mean()))
    return out


def sample_options(subject: Subject, cfg: dict, device: torch.device, seed: int) -> dict:
    """fit_sample_masks with each option: masks/s (batched and at batch 1) and quality.

    Speed: one call of ``option_speed_steps`` steps on ``option_batch`` images and on one
    image per option, timed round-robin. Quality: one call of the library's default steps
    on the methods section's images, timed, then :func:`quality` with the option's noise.
    """
    settings = option_settings(subject, cfg, seed)
    b, steps = cfg["option_batch"], cfg["option_speed_steps"]
    xb = subject.images[torch.arange(b, device=device) % len(subject.images)]
    calls = {}
    for name, kw in settings.items():
        calls[name] = lambda kw=kw: fit(subject, xb, steps=steps, seed=seed, **kw)
        calls[f"{name} @1"] = lambda kw=kw: fit(subject, xb[:1], steps=steps, seed=seed, **kw)
    times, _, _ = interleaved(calls, device, cfg["repeats"])
    x = subject.images[:cfg["methods_images"][subject.name]]
    q_steps = cfg["option_steps"]
    rows = {}
    for name, kw in settings.items():
        rate = b / median(times[name])
        single = 1 / median(times[f"{name} @1"])
        seconds, masks = timed(lambda kw=kw: fit(subject, x, steps=q_steps, lr=LIBRARY["lr"],
                                                 seed=seed, **kw), device)
        rows[name] = {"settings": _described(kw), "masks_per_second": rounded(rate),
                      "batch_1_masks_per_second": rounded(single),
                      "batching_speedup": rounded(rate / single, 3),
                      "seconds_per_mask_at_quality_steps": rounded(seconds[0] / len(x)),
                      **quality(subject, x, masks, kw["noise"], cfg, seed + 7)}
    plain = rows["plain"]["masks_per_second"]
    for row in rows.values():
        row["ratio_to_plain"] = rounded(row["masks_per_second"] / plain, 3)
    return {"batch": b, "speed_steps": steps, "repeats": cfg["repeats"], "images": len(x),
            "quality_steps": q_steps, "blur_sigma": rounded(_sigma(subject)),
            "options": rows}


def _build(subject: Subject, net: str) -> nn.Module:
    """An untrained mask network of kind ``net`` for the subject's images."""
    shape = tuple(subject.images.shape[1:])
    if net == "MLPMaskNet":
        return MLPMaskNet(shape, hidden=tuple(LAN_HIDDEN[subject.name]),
                          mask_shape=subject.mask_shape)
    if net == "UNetMaskNet":
        return UNetMaskNet(channels=shape[0])
    return FeatureMaskNet(subject.model, FEATURE_LAYERS[subject.name], subject.pool[:256])


def _fit_options(kw: dict) -> dict:
    """An option's fit arguments as :func:`lanlib.fit_lan` takes them (without the noise)."""
    return {k: v for k, v in kw.items() if k != "noise"}


def _trained(subject: Subject, net: str, option: str, kw: dict, steps: int, seed: int,
             device: torch.device, root: str | os.PathLike[str] | None, verbose: bool):
    """The mask network trained with one option, from the cache or now."""
    lr = NET_LR[net]
    key = {"version": 1, "explains": subject.key, "net": net,
           "layers": FEATURE_LAYERS[subject.name] if net == "FeatureMaskNet" else None,
           "option": option, "settings": _described(kw),
           "fit": {"steps": steps, "lr": lr, "batch_size": 64, "seed": seed}}

    def make(_key):
        with seeded(seed):
            return _build(subject, net)

    def train(lan, _key):
        fit_lan(subject.model, lan, subject.pool, kw["noise"], steps=steps, lr=lr,
                batch_size=64, seed=seed, progress=False, device=device, **_fit_options(kw))

    name = f"bench-{subject.name}-{net}" + ("" if option == "plain" else f"-{option}")
    lan, loaded = load_or_train(name, key, make, train, root=root, verbose=verbose)
    return lan.to(device).eval(), loaded


def mask_nets(subject: Subject, cfg: dict, device: torch.device, seed: int, *,
              root: str | os.PathLike[str] | None = None) -> dict:
    """MLPMaskNet against UNetMaskNet and FeatureMaskNet: speed, and quality where trained.

    Speed: masks/s of one forward pass on ``amortised_images`` images; fit_lan steps/s of
    each network, and of the FeatureMaskNet with each option, ``lan_speed_steps`` steps at
    batch 64, timed round-robin (at most three repeats). Quality (where
    ``cfg["mask_net_steps"]`` names the subject): each network trained with the paper's
    objective, and with ``lan_options`` also the FeatureMaskNet with each option, for that
    many steps, then :func:`quality` on the methods section's images (the same as the
    sample options' rows).
    """
    settings = option_settings(subject, cfg, seed)
    plain = settings["plain"]
    fresh = {net: _build(subject, net).to(device) for net in NETS}
    x_inf = subject.images[:cfg["amortised_images"]]
    infer = {}
    for net, lan in fresh.items():
        with torch.no_grad():
            lan.eval()
            lan(x_inf)
            seconds, _ = timed(lambda lan=lan: lan(x_inf), device, max(cfg["repeats"], 3))
        infer[net] = len(x_inf) / median(seconds)
    s_steps = cfg["lan_speed_steps"]

    def training(lan, kw):
        return lambda: fit_lan(subject.model, lan, subject.pool, kw["noise"], steps=s_steps,
                               lr=1e-4, batch_size=64, seed=seed, progress=False,
                               device=device, **_fit_options(kw))

    calls = {net: training(lan, plain) for net, lan in fresh.items()}
    calls.update({f"FeatureMaskNet {name}": training(fresh["FeatureMaskNet"], kw)
                  for name, kw in settings.items() if name != "plain"})
    repeats = min(cfg["repeats"], 3)  # fit_lan steps are slow: a median of three
    times, _, _ = interleaved(calls, device, repeats)
    rate = {name: s_steps / median(t) for name, t in times.items()}
    out: dict = {"inference_images": len(x_inf), "speed_steps": s_steps,
                 "repeats": repeats, "lr": NET_LR, "feature_layers":
                 FEATURE_LAYERS[subject.name], "nets": {}, "feature_options": {}}
    for net in NETS:
        out["nets"][net] = {
            "masks_per_second": rounded(infer[net]),
            "inference_ratio_to_mlp": rounded(infer[net] / infer["MLPMaskNet"], 3),
            "train_steps_per_second": rounded(rate[net]),
            "train_ratio_to_mlp": rounded(rate[net] / rate["MLPMaskNet"], 3)}
    for name in OPTIONS[1:]:
        r = rate[f"FeatureMaskNet {name}"]
        out["feature_options"][name] = {
            "settings": _described(settings[name]), "train_steps_per_second": rounded(r),
            "train_ratio_to_plain": rounded(r / rate["FeatureMaskNet"], 3)}
    steps = cfg["mask_net_steps"].get(subject.name)
    out["train_steps"] = steps
    if steps is None:
        out["quality_note"] = "no LAN trained for this network in this setting"
        return out
    x = subject.images[:cfg["methods_images"][subject.name]]
    out["images"] = len(x)
    trained = [(net, "plain") for net in NETS]
    if cfg["lan_options"]:
        trained += [("FeatureMaskNet", name) for name in OPTIONS[1:]]
    gates = hard_concrete()
    for net, option in trained:
        kw = settings[option]
        lan, loaded = _trained(subject, net, option, kw, steps, seed, device, root,
                               cfg["cache"])
        with torch.no_grad():
            masks = lan(x)
        if option == "hard_concrete":  # the test-time gates
            masks = gates.deterministic(gates.logits(masks))
        row = out["nets"][net] if option == "plain" else out["feature_options"][option]
        row.update(loaded=loaded, **quality(subject, x, masks, kw["noise"], cfg, seed + 7))
    return out

