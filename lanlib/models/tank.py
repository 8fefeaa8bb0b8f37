"""The tank detector of the tank story (``notebooks/06_tank_story``): a small CNN.

Appendix G of the paper tells the story without a network; this one is ours. Three
3x3 convolution blocks (ReLU, max pooling after the first two) and a global max
pool feed one linear layer with two logits (0 = no tank, 1 = tank). The global max
pool lets a single small object anywhere in the image decide the answer, which a
tank detector needs; it does not make the network look for tanks rather than
clouds: what it learns depends only on its training data.

:func:`load_tank_cnn` builds, trains (on :mod:`lanlib.data.tank` scenes) and caches
the network with :func:`lanlib.cache.load_or_train`, keyed by the configuration.

Example:
    >>> import torch
    >>> TankCNN(width=8)(torch.rand(2, 3, 48, 48)).shape
    torch.Size([2, 2])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "CoarseMaskNet",
    "ConvMaskNet",
    "TankCNN",
    "default_config",
    "lan_config",
    "load_tank_cnn",
    "load_tank_lan",
    "plot_says_tank",
    "says_tank",
    "train_tank_cnn",
    "training_scenes",
]


class TankCNN(nn.Module):
    """A small convolutional classifier for ``(N, 3, H, W)`` images in [0, 1].

    Args:
        width (int): channels of the first block; the next ones have 2x and 4x. Default 16.
        classes (int): number of logits. Default 2.

    Shape:
        input ``(N, 3, H, W)`` (any H, W >= 8), output ``(N, classes)`` logits.
    """

    def __init__(self, width: int = 16, classes: int = 2):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs - 0.5))


def default_config(**overrides) -> dict[str, Any]:
    """The training configuration of the chapter's classifier, with ``overrides`` applied.

    Keys: ``version`` (of this training code), ``size`` (image pixels), ``n_train``
    (training scenes), ``cloud_given_tank`` and ``cloud_given_no_tank`` (the bias of the
    training set, see :func:`lanlib.data.tank.make_scenes`), ``width`` (of the CNN),
    ``steps``, ``lr``, ``batch_size``, ``weight_decay`` and ``seed``.
    """
    config = {"version": 1, "size": 48, "n_train": 4096, "cloud_given_tank": 1.0,
              "cloud_given_no_tank": 0.0, "width": 16, "steps": 600, "lr": 2e-3,
              "batch_size": 64, "weight_decay": 0.0, "seed": 0}
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    return config


def _build(config: dict[str, Any]) -> TankCNN:
    from lanlib.loop import seeded

    with seeded(int(config["seed"])):  # the initial weights depend on the seed only
        return TankCNN(width=int(config["width"]))


def training_scenes(config: dict[str, Any]):
    """The scenes a classifier with ``config`` is trained on (seed ``config["seed"] + 1``)."""
    from lanlib.data.tank import make_scenes

    return make_scenes(int(config["n_train"]), size=int(config["size"]),
                       cloud_given_tank=float(config["cloud_given_tank"]),
                       cloud_given_no_tank=float(config["cloud_given_no_tank"]),
                       seed=int(config["seed"]) + 1)


def train_tank_cnn(model: nn.Module, config: dict[str, Any], *, device=None,
                   progress: bool = False) -> nn.Module:
    """Train ``model`` in place on :func:`training_scenes` of ``config`` (see
    :func:`default_config`)."""
    from lanlib.train import train_classifier

    scenes = training_scenes(config)
    return train_classifier(model, (scenes.images, scenes.labels), steps=int(config["steps"]),
                            lr=float(config["lr"]), batch_size=int(config["batch_size"]),
                            weight_decay=float(config["weight_decay"]),
                            seed=int(config["seed"]), progress=progress, device=device)


def load_tank_cnn(config: dict[str, Any], *, name: str = "tank_cnn", device=None,
                  progress: bool = False, root=None) -> tuple[TankCNN, bool]:
    """Load the CNN trained with ``config`` from the cache, or train and cache it.

    Args:
        config (dict): from :func:`default_config`; every key is part of the cache key.
        name (str): the checkpoint's name. Default ``"tank_cnn"``.
        device (str or torch.device, optional): where to train and where the model goes.
        progress (bool): show a progress bar while training. Default False.
        root (str or PathLike, optional): the data root of the cache.

    Returns:
        tuple (TankCNN, bool): the network in eval mode, and whether it was loaded.
    """
    from lanlib.cache import load_or_train

    model, loaded = load_or_train(
        name, config, _build,
        lambda m, c: train_tank_cnn(m, c, device=device, progress=progress), root=root)
    if device is not None:
        model.to(device)
    return model.eval(), loaded


# ----------------------------------------------------------------------------- its LAN


class CoarseMaskNet(nn.Module):
    """The paper's fully connected LAN with a coarser mask, upsampled to the image.

    :class:`lanlib.nets.MLPMaskNet` predicts a ``(1, mask_size, mask_size)`` mask shared by
    the colour channels; bilinear upsampling brings it to ``(1, H, W)``. Predicting a
    quarter of the values makes the last layer four times smaller and the masks smoother;
    the objects of the scenes are several pixels wide, so nothing is lost that matters.

    Args:
        input_shape (tuple): ``(C, H, W)`` of the images.
        hidden (tuple of int): hidden widths of the MLP.
        mask_size (int): side of the coarse mask.

    Shape:
        input ``(N, C, H, W)``, output ``(N, 1, H, W)`` in [0, 1].
    """

    def __init__(self, input_shape, hidden=(256,), mask_size: int = 24):
        super().__init__()
        from lanlib.nets import MLPMaskNet

        self.input_shape = tuple(int(d) for d in input_shape)
        self.mlp = MLPMaskNet(self.input_shape, hidden=tuple(hidden),
                              mask_shape=(1, mask_size, mask_size))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        coarse = self.mlp(inputs - 0.5)  # centred, as the classifier sees them
        return nn.functional.interpolate(coarse, size=self.input_shape[1:], mode="bilinear",
                                         align_corners=False).clamp(0, 1)


class ConvMaskNet(nn.Module):
    """A small fully convolutional LAN: the same weights look for what matters everywhere.

    Not the paper's architecture (its LANs are fully connected): on images, a
    convolutional mask network shares what it learns across positions, so it can mark
    *this* scene's cloud rather than where clouds usually are. The image is halved
    (average pooling), passed through three 3x3 convolutions with dilations 1, 2 and 4
    (a receptive field of 15 pixels at half resolution) and a 1x1 convolution, and the
    mask is upsampled back to full resolution.

    Args:
        width (int): channels of the hidden convolutions. Default 16.

    Shape:
        input ``(N, C, H, W)`` in [0, 1], output ``(N, 1, H, W)`` in [0, 1].
    """

    def __init__(self, width: int = 16, channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.net(inputs - 0.5)
        logits = nn.functional.interpolate(logits, size=inputs.shape[-2:], mode="bilinear",
                                           align_corners=False)
        return torch.sigmoid(logits)


def lan_config(classifier: dict[str, Any], **overrides) -> dict[str, Any]:
    """Training configuration of a LAN explaining the classifier trained with ``classifier``.

    Keys: ``version``; ``classifier`` (the classifier's whole config, so the cache key
    changes with it); ``kind``: ``"mlp"`` (:class:`CoarseMaskNet`, the paper's fully
    connected kind, with ``hidden`` widths and a ``mask_size`` grid) or ``"conv"``
    (:class:`ConvMaskNet` with ``width`` channels); ``beta``, ``steps``, ``lr``,
    ``batch_size``, ``seed``. The LAN trains on the classifier's own training scenes,
    with bootstrapped noise drawn from the same scenes.
    """
    config = {"version": 1, "classifier": dict(classifier), "kind": "mlp", "hidden": [256],
              "mask_size": 24, "width": 16, "beta": 1.0, "steps": 300, "lr": 1e-3,
              "batch_size": 64, "seed": 0}
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    if config["kind"] not in ("mlp", "conv"):
        raise ValueError(f"kind must be 'mlp' or 'conv', got {config['kind']!r}")
    return config


def load_tank_lan(config: dict[str, Any], model: nn.Module, *, name: str = "tank_lan",
                  device=None, progress: bool = False, root=None) -> tuple[nn.Module, bool]:
    """Load the LAN of ``config`` (see :func:`lan_config`) for ``model``, or train and cache it.

    ``model`` must be the classifier trained with ``config["classifier"]``.

    Returns:
        tuple (nn.Module, bool): the LAN (:class:`CoarseMaskNet` or :class:`ConvMaskNet`) in
        eval mode, and whether it was loaded.
    """
    from lanlib import fit_lan, noise
    from lanlib.cache import load_or_train
    from lanlib.loop import seeded

    def build(c):
        size = int(c["classifier"]["size"])
        with seeded(int(c["seed"])):
            if c["kind"] == "conv":
                return ConvMaskNet(width=int(c["width"]))
            return CoarseMaskNet((3, size, size), hidden=tuple(c["hidden"]),
                                 mask_size=int(c["mask_size"]))

    def train(lan, c):
        images = training_scenes(c["classifier"]).images
        fit_lan(model, lan, images, noise.bootstrap(images), beta=float(c["beta"]),
                steps=int(c["steps"]), lr=float(c["lr"]), batch_size=int(c["batch_size"]),
                seed=int(c["seed"]), progress=progress, device=device)

    lan, loaded = load_or_train(name, config, build, train, root=root)
    if device is not None:
        lan.to(device)
    return lan.eval(), loaded


# ----------------------------------------------------------------------------- what it says


@torch.no_grad()
def says_tank(model: nn.Module, scenes) -> torch.Tensor:
    """Share of scenes the model calls "tank", per kind of scene: a ``(2, 2)`` tensor.

    Row: tank in the scene (0 = no, 1 = yes); column: clouds (0 = no, 1 = yes). NaN
    where the scenes hold no such kind.
    """
    from lanlib.train import predict

    said = predict(model, scenes.images).argmax(dim=1).cpu() == 1
    table = torch.full((2, 2), float("nan"))
    for t in (0, 1):
        for c in (0, 1):
            pick = (scenes.labels.cpu() == t) & (scenes.has_cloud.cpu() == bool(c))
            if pick.any():
                table[t, c] = said[pick].float().mean()
    return table


def plot_says_tank(tables: dict[str, torch.Tensor], *, ax=None):
    """One 2x2 panel per model: how often it says "tank", by tank and clouds in the scene.

    Args:
        tables (mapping title -> Tensor (2, 2)): from :func:`says_tank`.
        ax (sequence of Axes, optional): one per table. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    import numpy as np
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(3.1 * len(tables) + 0.8, 2.9), layout="constrained")
        axes = list(fig.subplots(1, len(tables), squeeze=False)[0])
    else:
        axes = list(np.atleast_1d(ax))
        fig = axes[0].figure
    shown = None
    for a, (title, table) in zip(axes, tables.items(), strict=True):
        values = table.numpy()
        shown = a.imshow(values, cmap="cividis", vmin=0, vmax=1)
        for (t, c), v in np.ndenumerate(values):
            a.text(c, t, "–" if np.isnan(v) else f"{v:.0%}", ha="center", va="center",
                   color="black" if v > 0.6 else "white", fontsize="large")
        a.set_xticks([0, 1], ["no clouds", "clouds"])
        a.set_yticks([0, 1], ["no tank", "tank"])
        a.set_title(title, fontsize="medium")
    fig.colorbar(shown, ax=axes, label='share of scenes called "tank"', shrink=0.9)
    return fig
