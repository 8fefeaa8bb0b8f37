"""The networks the benchmark explains, with their images, noise and beta.

- ``"mnist"``: the translated-MNIST network of the book
  (:func:`lanlib.models.mnist.build_translated_mnist_net`), bootstrapped noise;
- ``"cifar"``: the CIFAR-10 network (:class:`lanlib.models.cifar.CifarNet`), one mask
  shared by the colour channels, bootstrapped noise;
- ``"imagenet"``: the pretrained EfficientNet-Lite0 (:func:`lanlib.models.imagenet.load_classifier`)
  on a few photos, uniform noise, masks on a grid of 8 x 8 pixel cells.

The two small networks are trained with :func:`lanlib.cache.cached_classifier` (names
``bench-mnist-F``, ``bench-cifar-F``) and their LANs with :func:`lanlib.cache.cached_lan`
(``bench-mnist-LAN``), so a second run loads them. In a setting without a cache
(``"smoke"``) they are trained under a temporary ``root`` and forgotten.

Beta is ``BETA_REL * D_full``, where ``D_full`` is the distortion when the whole input is
replaced by noise (:func:`full_distortion`).

Example (the smoke setting: random data, three training steps):
    >>> import tempfile
    >>> from lanlib.bench.settings import SETTINGS
    >>> with tempfile.TemporaryDirectory() as root:
    ...     s = load_subject("mnist", SETTINGS["smoke"], torch.device("cpu"), 0, root=root)
    >>> tuple(s.images.shape), s.mask_shape, s.info["loaded"]
    ((256, 1, 28, 28), (1, 28, 28), False)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import noise as noises
from ..cache import cached_classifier, cached_lan
from ..core import frozen, objective
from ..data import load_cifar10, load_imagenet_samples, load_translated_mnist
from ..models.cifar import CifarNet
from ..models.imagenet import load_classifier
from ..models.mnist import build_translated_mnist_net
from ..nets import MLPMaskNet
from ..train import accuracy
from .measure import rounded
from .settings import BETA_REL

__all__ = ["LAN_HIDDEN", "Subject", "full_distortion", "load_subject", "train_lan"]

#: The hidden widths of the paper's fully connected LAN for each network (:func:`train_lan`
#: and the MLPMaskNet rows of :mod:`lanlib.bench.options`).
LAN_HIDDEN = {"mnist": [100], "cifar": [500, 500, 500]}


@dataclass
class Subject:
    """A network to explain, with the images, the noise and the beta used for it.

    Attributes:
        name (str): ``"mnist"``, ``"cifar"`` or ``"imagenet"``.
        model (nn.Module): F, in eval mode on the benchmark's device.
        images (Tensor (N, C, H, W)): the throughput and evaluation images, on the device.
        noise (callable): η, see :mod:`lanlib.noise`.
        beta (float): the mask penalty of Eq. 3-4.
        mask_shape (tuple): the shape of one mask, e.g. ``(1, 32, 32)``.
        pool (Tensor, optional): training inputs, for the amortised LAN.
        deletion_grid (tuple, optional): deletion ranks the cells of this grid for every
            method (None: each map at its own resolution). Uniform noise scattered pixel by
            pixel hurts a CNN far more than the same share in blocks, which would favour
            pixel-level maps (even a random one) over block-level ones.
        key (dict): the cache key of F (what it was trained with).
        info (dict): what the JSON reports about the subject.
    """

    name: str
    model: nn.Module
    images: torch.Tensor
    noise: Callable
    beta: float
    mask_shape: tuple[int, ...]
    pool: torch.Tensor | None = None
    deletion_grid: tuple[int, int] | None = None
    key: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def full_distortion(model: nn.Module, x: torch.Tensor, noise, seed: int) -> float:
    """The distortion when the whole input is replaced by noise, mean of 4 draws.

    Args:
        model (nn.Module): F.
        x (Tensor (N, ...)): inputs.
        noise (callable): η.
        seed (int): seeds the noise draws.

    Returns:
        float: ``D_full``, the mean distortion with a mask of ones.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    ones = torch.ones(1, *([1] * (x.ndim - 1)), device=x.device)
    with frozen(model), torch.no_grad():
        draws = [objective(model, x, ones, noise, beta=1.0, generator=gen)["distortion"]
                 for _ in range(4)]
    return float(torch.stack(draws).mean())


def _synthetic(shape: tuple[int, ...], seed: int, binary: bool):
    """512 random training inputs and labels (the smoke setting's stand-in for data)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(512, *shape, generator=gen)
    return (x > 0.8).float() if binary else x, torch.randint(10, (512,), generator=gen)


def _classifier(name: str, cfg: dict, device: torch.device, seed: int,
                root: str | os.PathLike[str] | None) -> Subject:
    """The translated-MNIST or the CIFAR-10 network, trained once (see the module docstring)."""
    synthetic = cfg["synthetic"]
    n_eval = max(max(cfg["throughput_batches"]), cfg["amortised_images"],
                 cfg["methods_images"][name], cfg["convergence_images"][name])
    if name == "mnist":
        shape = mask_shape = (1, 28, 28)
        if synthetic:
            train_x, train_y = _synthetic(shape, seed, binary=True)
            pool, test_x, test_y = train_x, train_x[:n_eval], train_y[:n_eval]
            data, source = "synthetic", (train_x, train_y)
        else:
            pool = load_translated_mnist("train", seed=seed + 1)[0]  # fresh placements
            test_x, test_y, _ = load_translated_mnist("test", n=n_eval, seed=seed + 2)
            data = "translated-mnist-train"

            def source():
                return load_translated_mnist("train", seed=seed)[:2]

        config = {"version": 1, "data": data, "padding": 0}

        def build(key):
            return build_translated_mnist_net({"init_seed": seed, "padding": key["padding"]})
    else:
        shape, mask_shape = (3, 32, 32), (1, 32, 32)  # one mask shared by the colour channels
        if synthetic:
            train_x, train_y = _synthetic(shape, seed, binary=False)
            pool, test_x, test_y = train_x, train_x[:n_eval], train_y[:n_eval]
            data = "synthetic"
        else:
            train_x, train_y = load_cifar10("train")
            test_x, test_y = load_cifar10("test")
            order = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(seed))
            test_x, test_y = test_x[order[:n_eval]], test_y[order[:n_eval]]
            pool = train_x
            data = "cifar10-train"
        source = (train_x, train_y)
        config = {"version": 1, "data": data, "dropout": 0.3}

        def build(key):
            return CifarNet(dropout=key["dropout"])

    model, key, loaded = cached_classifier(
        f"bench-{name}-F", build, source, config=config, steps=cfg["f_steps"][name], lr=1e-3,
        batch_size=64, seed=seed, device=device, root=root, verbose=cfg["cache"])
    acc = accuracy(model, test_x.to(device), test_y.to(device))
    pool = pool.to(device)
    noise = noises.bootstrap(pool)
    images = test_x.to(device)
    d_full = full_distortion(model, images[:cfg["d_full_images"]], noise, seed)
    return Subject(name, model, images, noise, BETA_REL * d_full, mask_shape, pool=pool, key=key,
                   info={"loaded": loaded, "test_accuracy": round(acc, 4),
                         "d_full": round(d_full, 4), "beta": round(BETA_REL * d_full, 4),
                         "noise": "bootstrap (a random training input)",
                         "mask_shape": list(mask_shape), "data": data})


def _imagenet(cfg: dict, device: torch.device, seed: int) -> Subject:
    """EfficientNet-Lite0 on the photos that ship with lanlib's dependencies."""
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
    d_full = full_distortion(model, images, noise, seed)
    side = max(size // 8, 1)
    return Subject("imagenet", model, images, noise, BETA_REL * d_full, (1, side, side),
                   deletion_grid=(side, side),
                   info={"deletion_grid": [side, side], "loaded": True,
                         "model": "efficientnet_lite0", "size": size,
                         "images": names[:n], "top1_on_these": top1,
                         "d_full": round(d_full, 4), "beta": round(BETA_REL * d_full, 4),
                         "noise": "uniform in [0, 1]", "mask_shape": [1, side, side]})


def load_subject(name: str, cfg: dict, device: torch.device, seed: int, *,
                 root: str | os.PathLike[str] | None = None) -> Subject:
    """One of :data:`~lanlib.bench.settings.SUBJECTS`, ready to explain.

    Args:
        name (str): ``"mnist"``, ``"cifar"`` or ``"imagenet"``.
        cfg (dict): a setting of :data:`~lanlib.bench.settings.SETTINGS`.
        device (torch.device): where the network and the images go.
        seed (int): seeds training, the choice of images and the noise draws of ``D_full``.
        root (str | PathLike, optional): the data root of the checkpoints (default
            :func:`lanlib.data.data_root`).

    Returns:
        Subject: the network, its images, noise and beta.
    """
    if name == "imagenet":
        return _imagenet(cfg, device, seed)
    return _classifier(name, cfg, device, seed, root)


def train_lan(subject: Subject, cfg: dict, device: torch.device, seed: int, *,
              root: str | os.PathLike[str] | None = None):
    """The paper's fully connected LAN for this network, loaded from the cache or trained.

    Args:
        subject (Subject): the network explained (with its training inputs ``pool``).
        cfg (dict): a setting; ``cfg["lan"][subject.name]`` is the number of steps.
        device (torch.device): where to train and where the LAN is returned.
        seed (int): seeds the LAN's initial weights and its training.
        root (str | PathLike, optional): the data root of the checkpoints.

    Returns:
        tuple: the LAN (eval mode) and what the JSON reports about it, or ``(None, None)``
        when the setting trains no LAN for this network.
    """
    steps = cfg["lan"].get(subject.name)
    if steps is None or subject.pool is None:
        return None, None
    hidden = LAN_HIDDEN[subject.name]
    config = {"version": 1, "hidden": hidden, "mask_shape": list(subject.mask_shape),
              "data": "the training inputs of F", "noise": subject.info["noise"]}

    def build(key):
        return MLPMaskNet(tuple(subject.images.shape[1:]), hidden=tuple(key["hidden"]),
                          mask_shape=tuple(key["mask_shape"]))

    start = time.perf_counter()
    lan, loaded = cached_lan(
        f"bench-{subject.name}-LAN", subject.model, build, subject.pool, subject.noise,
        explains=subject.key, config=config, beta=rounded(subject.beta, 5), steps=steps,
        lr=1e-3, batch_size=64, seed=seed, device=device, root=root, verbose=cfg["cache"])
    info = {"steps": steps, "hidden": hidden, "lr": 1e-3, "loaded": loaded,
            "seconds_to_load_or_train": rounded(time.perf_counter() - start)}
    return lan, info
