"""Chapter 06, the tank story: a known shortcut, and explanations scored against the truth.

Appendix G of Grimm et al. retells the story of a classifier trained to find tanks in
forest photos that learnt the weather instead: every tank photo had been taken under a
cloudy sky. This module draws such photos itself, so that we know, pixel by pixel, where
each tree, cloud and tank is, and the chapter ``notebooks/06_tank_story`` can score an
explanation against that truth (:func:`lanlib.metrics.score`). It holds:

- the scenes: :func:`make_scenes` and its three biases (:func:`biased_scenes`,
  :func:`counterfactual_scenes`, :func:`correlated_scenes`), drawn by
  :func:`sample_params` and :func:`render` into :class:`TankScenes` with one pixel mask
  per kind of object; :func:`plot_scenes` shows them;
- the classifier and its LANs, each trained once through lanlib's cache:
  :func:`default_config`, :func:`training_scenes` and :func:`load_tank_cnn`
  (:class:`lanlib.models.tank.TankCNN`); :func:`lan_config` and :func:`load_tank_lan`
  (:class:`lanlib.nets.CoarseMaskNet`, :class:`lanlib.nets.ConvMaskNet` or
  :class:`lanlib.nets.UNetMaskNet`, bootstrapped noise from the classifier's own training
  scenes; replicate padding hides the image's border from a convolutional LAN);
- what the classifier says: :func:`says_tank`, :func:`plot_says_tank`;
- the comparison of methods (the chapter asks every one through :func:`lanlib.attribute`):
  :func:`captum_maps` (Captum's methods, with the mean training scene as baseline),
  :func:`versus_average` (a LAN's scores against those of its own average map) and
  :func:`edge_bands` (how strongly a map marks the image's side edges);
- tables and figures of the scores: :func:`html_table`, :func:`markdown_table`,
  :func:`plot_scores`, :func:`show_objects`.

A scene is a ``(3, size, size)`` RGB image in [0, 1]: a sky over a ground, separated by a
horizon at a random height; one to three trees on the ground (some reaching into the
sky); one or two clouds in the sky when the scene is cloudy; one tank on the ground when
the label is 1. Clouds are large and bright, the tank is small and olive on a green or
brown ground: the clouds are the easier cue, on purpose. Everything varies from scene to
scene: colours, sizes, positions, counts, the direction of the tank's gun.

The bias is set by two probabilities, ``P(cloud | tank)`` and ``P(cloud | no tank)``:

- :func:`biased_scenes`: 1 and 0, clouds appear in exactly the tank images;
- :func:`counterfactual_scenes`: 1/2 and 1/2, clouds and tanks independent;
- :func:`correlated_scenes`: any correlation ``s`` in [-1, 1] between the two (the phi
  coefficient), with ``P(cloud) = 1/2``.

Counts are exact, not sampled: ``round(n * p_tank)`` scenes have a tank, and within each
group ``round(count * p)`` have a cloud; which scenes get which is shuffled. All
randomness comes from ``seed`` (an int or a ``torch.Generator``), never from torch's
global random state, and the drawing is vectorised over the batch.

Example:
    >>> scenes = biased_scenes(8, size=32, seed=0)
    >>> scenes.images.shape, scenes.masks["tank"].shape
    (torch.Size([8, 3, 32, 32]), torch.Size([8, 1, 32, 32]))
    >>> bool((scenes.has_cloud == scenes.labels.bool()).all())  # clouds iff tank
    True
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .. import loop
from ..attribution import attribute_many
from ..cache import cached_classifier, cached_lan
from ..metrics import score
from ..models.tank import TankCNN
from ..nets import CoarseMaskNet, ConvMaskNet, UNetMaskNet
from ..noise import bootstrap
from ..plot import OKABE_ITO, new_figure, outline
from ..train import predict

if TYPE_CHECKING:  # matplotlib is imported lazily, when a figure is drawn
    from matplotlib.figure import Figure

__all__ = [
    "CAPTUM_METHODS",
    "OBJECTS",
    "OBJECT_COLOURS",
    "SceneParams",
    "TankScenes",
    "biased_scenes",
    "captum_maps",
    "cloud_probabilities",
    "correlated_scenes",
    "counterfactual_scenes",
    "default_config",
    "edge_bands",
    "html_table",
    "lan_config",
    "load_tank_cnn",
    "load_tank_lan",
    "make_scenes",
    "markdown_table",
    "plot_says_tank",
    "plot_scenes",
    "plot_scores",
    "render",
    "sample_params",
    "says_tank",
    "show_objects",
    "training_scenes",
    "versus_average",
]

#: The kinds of objects a scene holds, in drawing order (later ones cover earlier ones).
OBJECTS = ("cloud", "tree", "tank")

MAX_CLOUDS = 2
MAX_TREES = 3
_PUFFS = 3  # ellipses per cloud


@dataclass
class SceneParams:
    """Everything that defines a batch of scenes; :func:`render` draws them.

    Lengths and positions are fractions of the image size, colours RGB in [0, 1].
    Every tensor has the batch as first dimension (``N``); slots of objects that are
    absent are still drawn from the generator, so switching an object off (e.g.
    ``replace(params, has_tank=torch.zeros(N, dtype=torch.bool))``) changes only that
    object's pixels.
    """

    has_tank: torch.Tensor  # (N,) bool
    has_cloud: torch.Tensor  # (N,) bool
    horizon: torch.Tensor  # (N,) row of the horizon
    sky: torch.Tensor  # (N, 3) sky colour at the top
    ground: torch.Tensor  # (N, 3)
    clouds: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, MAX_CLOUDS[, ...])
    trees: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, MAX_TREES[, ...])
    tank: dict[str, torch.Tensor] = field(default_factory=dict)  # (N[, ...])
    texture: torch.Tensor | None = None  # (N, 3, size, size) pixel noise, or None

    def __len__(self) -> int:
        return len(self.has_tank)


@dataclass
class TankScenes:
    """A batch of scenes with their labels and object masks.

    Attributes:
        images (Tensor (N, 3, H, W)): RGB in [0, 1].
        labels (LongTensor (N,)): 1 where a tank is in the scene, else 0.
        has_cloud (BoolTensor (N,)): whether the scene has clouds.
        masks (dict str -> BoolTensor (N, 1, H, W)): for ``"tree"``, ``"cloud"`` and
            ``"tank"``, the pixels where that object is visible. They never overlap:
            an object drawn later hides what is behind it.
        params (SceneParams): what the scenes were drawn from.
    """

    images: torch.Tensor
    labels: torch.Tensor
    has_cloud: torch.Tensor
    masks: dict[str, torch.Tensor]
    params: SceneParams

    def __len__(self) -> int:
        return len(self.images)

    def background(self) -> dict[str, torch.Tensor]:
        """The pixels of no object, split at the horizon: ``{"sky": ..., "ground": ...}``.

        Both are BoolTensors ``(N, 1, H, W)``; with :attr:`masks` they partition each image.
        """
        size = self.images.shape[-1]
        rows = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        above = rows.view(1, 1, size, 1) < self.params.horizon.view(-1, 1, 1, 1)
        free = ~torch.stack(list(self.masks.values())).any(dim=0)
        return {"sky": free & above, "ground": free & ~above}

    def __getitem__(self, index) -> TankScenes:
        """A sub-batch: ``scenes[mask]``, ``scenes[:16]`` or ``scenes[indices]``."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return TankScenes(
            images=self.images[index],
            labels=self.labels[index],
            has_cloud=self.has_cloud[index],
            masks={k: v[index] for k, v in self.masks.items()},
            params=_index_params(self.params, index),
        )


def _index_params(params: SceneParams, index) -> SceneParams:
    def pick(d):
        return {k: v[index] for k, v in d.items()}

    return SceneParams(
        has_tank=params.has_tank[index],
        has_cloud=params.has_cloud[index],
        horizon=params.horizon[index],
        sky=params.sky[index],
        ground=params.ground[index],
        clouds=pick(params.clouds),
        trees=pick(params.trees),
        tank=pick(params.tank),
        texture=None if params.texture is None else params.texture[index],
    )


# ----------------------------------------------------------------------------- sampling


def _generator(seed) -> torch.Generator:
    """``seed`` itself if it is a generator, else a CPU generator seeded with it."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return loop.generator(seed, torch.device("cpu"))


def _probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _exact_flags(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    """``round(n * p)`` True values among ``n``, in random order."""
    flags = torch.arange(n) < round(n * p)
    return flags[torch.randperm(n, generator=g)]


def _uniform(g: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def cloud_probabilities(correlation: float) -> tuple[float, float]:
    """``(P(cloud | tank), P(cloud | no tank))`` for a correlation ``s`` in [-1, 1].

    With ``P(tank) = P(cloud) = 1/2`` the two are ``(1 + s) / 2`` and ``(1 - s) / 2``, and
    ``s`` is the correlation (phi coefficient) between "has a tank" and "has clouds".

    Example:
        >>> cloud_probabilities(1.0), cloud_probabilities(0.0), cloud_probabilities(0.6)
        ((1.0, 0.0), (0.5, 0.5), (0.8, 0.2))
    """
    if (
        isinstance(correlation, bool)
        or not isinstance(correlation, (int, float))
        or not (-1 <= correlation <= 1)
    ):
        raise ValueError(f"correlation must be a number in [-1, 1], got {correlation!r}")
    return round((1 + correlation) / 2, 12), round((1 - correlation) / 2, 12)


def sample_params(
    n: int,
    *,
    p_tank: float = 0.5,
    cloud_given_tank: float = 1.0,
    cloud_given_no_tank: float = 0.0,
    texture: float = 0.03,
    size: int = 48,
    seed=0,
) -> SceneParams:
    """Draw the parameters of ``n`` scenes (see :func:`make_scenes` for the arguments)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    p_tank = _probability("p_tank", p_tank)
    cloud_given_tank = _probability("cloud_given_tank", cloud_given_tank)
    cloud_given_no_tank = _probability("cloud_given_no_tank", cloud_given_no_tank)
    if not isinstance(texture, (int, float)) or texture < 0:
        raise ValueError(f"texture must be a non-negative number, got {texture!r}")
    g = _generator(seed)

    has_tank = _exact_flags(n, p_tank, g)
    has_cloud = torch.zeros(n, dtype=torch.bool)
    for group, p in ((has_tank, cloud_given_tank), (~has_tank, cloud_given_no_tank)):
        has_cloud[group] = _exact_flags(int(group.sum()), p, g)

    horizon = _uniform(g, n, 0.45, 0.58)
    # Sky: blue, varying in shade; ground: between a green and a brown field.
    sky = torch.tensor([0.42, 0.62, 0.88]) + _uniform(g, (n, 3), -0.06, 0.06)
    mix = torch.rand(n, 1, generator=g)
    ground = (1 - mix) * torch.tensor([0.30, 0.52, 0.22]) + mix * torch.tensor([0.52, 0.44, 0.26])
    ground = ground + _uniform(g, (n, 3), -0.03, 0.03)

    # Clouds: the first always drawn in a cloudy scene, the second half of the time.
    # A cloud is a flat base ellipse with puffs on top; it is wide (a third of the image).
    c = MAX_CLOUDS
    clouds = {
        "present": has_cloud[:, None]
        & torch.cat(
            [torch.ones(n, 1, dtype=torch.bool), torch.rand(n, c - 1, generator=g) < 0.5], 1
        ),
        "x": _uniform(g, (n, c), 0.18, 0.82),
        "y": torch.rand(n, c, generator=g),  # fraction of the way from top to horizon
        "width": _uniform(g, (n, c), 0.13, 0.20),  # half-width of the base ellipse
        "puff": _uniform(g, (n, c, _PUFFS), 0.45, 0.75),  # puff radii, times the width
        "offset": _uniform(g, (n, c, _PUFFS), -0.6, 0.6),  # puff centres, times the width
        "colour": _uniform(g, (n, c, 1), 0.90, 1.0).expand(n, c, 3)
        + _uniform(g, (n, c, 3), -0.02, 0.02),
    }
    # Trees: 1 to 3, on the ground, conifers (triangle) or broadleaf (ellipse).
    t = MAX_TREES
    count = torch.randint(1, t + 1, (n, 1), generator=g)
    trees = {
        "present": torch.arange(t)[None] < count,
        "x": _uniform(g, (n, t), 0.05, 0.95),
        "base": torch.rand(n, t, generator=g),  # fraction of the way from horizon to bottom
        "height": _uniform(g, (n, t), 0.22, 0.36),
        "width": _uniform(g, (n, t), 0.07, 0.11),  # half-width of the crown
        "conifer": torch.rand(n, t, generator=g) < 0.5,
        "crown": torch.tensor([0.12, 0.34, 0.14]) + _uniform(g, (n, t, 3), -0.05, 0.05),
        "trunk": torch.tensor([0.36, 0.24, 0.14]) + _uniform(g, (n, t, 3), -0.04, 0.04),
    }
    # The tank: small, olive, low on the ground; its gun points left or right.
    tank = {
        "x": _uniform(g, n, 0.2, 0.8),
        "base": _uniform(g, n, 0.45, 0.95),  # fraction of the way from horizon to bottom
        "length": _uniform(g, n, 0.21, 0.27),
        "facing": torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0),
        "colour": torch.tensor([0.40, 0.40, 0.20]) + _uniform(g, (n, 3), -0.04, 0.04),
    }
    noise = texture * torch.randn(n, 3, size, size, generator=g) if texture > 0 else None
    return SceneParams(
        has_tank=has_tank,
        has_cloud=has_cloud,
        horizon=horizon,
        sky=sky,
        ground=ground,
        clouds=clouds,
        trees=trees,
        tank=tank,
        texture=noise,
    )


# ----------------------------------------------------------------------------- drawing


def _ellipse(rows, cols, cy, cx, ry, rx) -> torch.Tensor:
    return ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1


def _box(rows, cols, top, bottom, left, right) -> torch.Tensor:
    return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)


def _triangle(rows, cols, apex, base, cx, half) -> torch.Tensor:
    """Isosceles triangle, apex up: rows in [apex, base), widening to ``half`` at the base."""
    depth = ((rows - apex) / (base - apex)).clamp(0, 1)
    return (rows >= apex) & (rows < base) & ((cols - cx).abs() <= half * depth)


def render(params: SceneParams, size: int = 48) -> TankScenes:
    """Draw the scenes of ``params`` as ``(N, 3, size, size)`` images with object masks.

    Drawing order: sky and ground, clouds (kept above the horizon), trees, the tank;
    each object's mask is updated to the pixels where it stays visible. The pixel
    texture, if any, is added last and the result clamped to [0, 1].
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    if params.texture is not None and params.texture.shape[-1] != size:
        raise ValueError(
            f"the params carry a texture for {params.texture.shape[-1]}-pixel images, not "
            f"{size}; sample them with size={size}"
        )
    n = len(params)
    # Pixel centres in units of the image size, shaped to broadcast with (N, H, W).
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    rows, cols = centres.view(1, size, 1), centres.view(1, 1, size)
    aspect = 1.0  # square images: the same unit on both axes

    def per_image(v):  # (N,) -> (N, 1, 1), to broadcast against the pixel grid
        return v.view(n, 1, 1)

    horizon = per_image(params.horizon)
    sky_rows = rows < horizon  # (N, H, 1)
    # Sky lightens towards the horizon; ground darkens slightly towards the viewer.
    lift = 0.18 * (rows / horizon).clamp(max=1)
    sky = params.sky.view(n, 3, 1, 1) + lift.unsqueeze(1)
    ground = params.ground.view(n, 3, 1, 1) * (1.05 - 0.15 * rows.unsqueeze(1))
    images = torch.where(sky_rows.unsqueeze(1), sky, ground).expand(n, 3, size, size)
    # Which object each pixel shows: 0 = background, i + 1 = OBJECTS[i].
    shown = torch.zeros(n, size, size, dtype=torch.uint8)

    def paint(kind: str, shape: torch.Tensor, colour: torch.Tensor) -> None:
        nonlocal images
        images = torch.where(shape.unsqueeze(1), colour.view(n, 3, 1, 1), images)
        shown.masked_fill_(shape.expand(n, size, size), OBJECTS.index(kind) + 1)

    c = params.clouds
    for k in range(c["present"].shape[1]):
        width = per_image(c["width"][:, k])
        cx = per_image(c["x"][:, k])
        # Centre between 0.15 and horizon - 0.12, so the base ellipse stays in the sky.
        cy = 0.15 + per_image(c["y"][:, k]) * (horizon - 0.27)
        shape = _ellipse(rows, cols, cy, cx, 0.45 * width, width)
        for p in range(c["puff"].shape[2]):
            r = per_image(c["puff"][:, k, p]) * width
            shape = shape | _ellipse(
                rows,
                cols,
                cy - 0.35 * r,
                cx + per_image(c["offset"][:, k, p]) * width,
                r,
                r * aspect,
            )
        shape = shape & sky_rows & per_image(c["present"][:, k])
        paint("cloud", shape, c["colour"][:, k])

    t = params.trees
    for k in range(t["present"].shape[1]):
        base = horizon + 0.03 + per_image(t["base"][:, k]) * (0.95 - horizon)
        height = per_image(t["height"][:, k]) * (0.6 + 0.6 * base)  # nearer trees are bigger
        half = per_image(t["width"][:, k]) * (0.6 + 0.6 * base)
        cx = per_image(t["x"][:, k])
        present = per_image(t["present"][:, k])
        trunk = _box(rows, cols, base - 0.35 * height, base, cx - 0.2 * half, cx + 0.2 * half)
        paint("tree", trunk & present, t["trunk"][:, k])
        top = base - height
        conifer = _triangle(rows, cols, top, base - 0.2 * height, cx, half)
        broadleaf = _ellipse(rows, cols, top + 0.38 * height, cx, 0.38 * height, half)
        crown = torch.where(per_image(t["conifer"][:, k]), conifer, broadleaf)
        paint("tree", crown & present, t["crown"][:, k])

    # The tank: tracks (dark), hull, turret and gun (olive).
    tk = params.tank
    present = per_image(params.has_tank)
    length, cx = per_image(tk["length"]), per_image(tk["x"])
    base = horizon + 0.06 + per_image(tk["base"]) * (0.95 - horizon - 0.06)
    facing = per_image(tk["facing"])
    tracks = _box(rows, cols, base - 0.14 * length, base, cx - 0.5 * length, cx + 0.5 * length)
    hull = _box(
        rows,
        cols,
        base - 0.34 * length,
        base - 0.14 * length,
        cx - 0.45 * length,
        cx + 0.45 * length,
    )
    turret = _box(
        rows, cols, base - 0.56 * length, base - 0.34 * length, cx - 0.2 * length, cx + 0.2 * length
    )
    muzzle = cx + facing * 0.62 * length
    gun = _box(
        rows,
        cols,
        base - 0.50 * length,
        base - 0.42 * length,
        torch.minimum(cx, muzzle),
        torch.maximum(cx, muzzle),
    )
    # At least one pixel row for the gun, whatever the image size.
    gun = gun | _box(
        rows,
        cols,
        base - 0.46 * length - 0.5 / size,
        base - 0.46 * length + 0.5 / size,
        torch.minimum(cx, muzzle),
        torch.maximum(cx, muzzle),
    )
    colour = tk["colour"]
    paint("tank", tracks & present, 0.45 * colour)
    paint("tank", (hull | turret | gun) & present, colour)

    if params.texture is not None:
        images = images + params.texture
    images = images.clamp(0, 1)
    return TankScenes(
        images=images,
        labels=params.has_tank.long(),
        has_cloud=params.has_cloud.clone(),
        masks={k: (shown == i + 1).unsqueeze(1) for i, k in enumerate(OBJECTS)},
        params=params,
    )


# ----------------------------------------------------------------------------- data sets


def make_scenes(
    n: int,
    *,
    size: int = 48,
    p_tank: float = 0.5,
    cloud_given_tank: float = 1.0,
    cloud_given_no_tank: float = 0.0,
    texture: float = 0.03,
    seed=0,
) -> TankScenes:
    """Draw ``n`` scenes with a chosen link between tanks and clouds.

    Args:
        n (int): number of scenes.
        size (int): image height and width in pixels, at least 16. Default 48.
        p_tank (float): share of scenes with a tank (label 1). Default 0.5.
        cloud_given_tank (float): share of tank scenes that are cloudy. Default 1.0.
        cloud_given_no_tank (float): share of tank-free scenes that are cloudy. Default 0.0.
        texture (float): standard deviation of the Gaussian pixel noise. Default 0.03.
        seed (int or torch.Generator): the only source of randomness. Default 0.

    Returns:
        TankScenes: images ``(n, 3, size, size)``, labels, cloud flags and object masks.
        Shares are exact (rounded to whole scenes), the order random.
    """
    params = sample_params(
        n,
        p_tank=p_tank,
        cloud_given_tank=cloud_given_tank,
        cloud_given_no_tank=cloud_given_no_tank,
        texture=texture,
        size=size,
        seed=seed,
    )
    return render(params, size)


def biased_scenes(n: int, *, size: int = 48, seed=0, **kwargs) -> TankScenes:
    """Scenes where clouds appear exactly in the tank images: P(cloud | tank) = 1, else 0."""
    return make_scenes(
        n, size=size, cloud_given_tank=1.0, cloud_given_no_tank=0.0, seed=seed, **kwargs
    )


def counterfactual_scenes(n: int, *, size: int = 48, seed=0, **kwargs) -> TankScenes:
    """Scenes where tanks and clouds are independent: half of each group is cloudy.

    With ``n`` divisible by 4 the four kinds (tank or not, clouds or not) are equally
    many, so a classifier that reads only the clouds scores exactly 50 %.
    """
    return make_scenes(
        n, size=size, cloud_given_tank=0.5, cloud_given_no_tank=0.5, seed=seed, **kwargs
    )


def correlated_scenes(
    n: int, correlation: float, *, size: int = 48, seed=0, **kwargs
) -> TankScenes:
    """Scenes whose tank and cloud flags have correlation ``correlation`` (see
    :func:`cloud_probabilities`): 1 is :func:`biased_scenes`, 0 :func:`counterfactual_scenes`."""
    if_tank, if_not = cloud_probabilities(correlation)
    return make_scenes(
        n, size=size, cloud_given_tank=if_tank, cloud_given_no_tank=if_not, seed=seed, **kwargs
    )




# ----------------------------------------------------------------------------- figure of scenes

#: Outline colours of the objects (Okabe-Ito: no red-green pair).
OBJECT_COLOURS = {"cloud": "#0072B2", "tree": "#E69F00", "tank": "#CC79A7"}


def plot_scenes(scenes: TankScenes, *, columns: int = 8, outlines: bool = True,
                legend: bool = True, ax=None) -> Figure:
    """A grid of scenes, each titled with what it holds, objects outlined.

    Args:
        scenes (TankScenes): the scenes to show (all of them: slice first).
        columns (int): panels per row. Default 8.
        outlines (bool): outline each object's pixels in :data:`OBJECT_COLOURS`. Default True.
        legend (bool): add a legend of the outline colours below the panels. Default True.
        ax (array of Axes, optional): ``rows x columns`` axes. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    n = len(scenes)
    rows = -(-n // columns)
    if ax is None:
        fig = new_figure((1.45 * columns, 1.55 * rows + 0.4))
        grid = fig.subplots(rows, columns, squeeze=False)
    else:
        grid = np.asarray(ax, dtype=object).reshape(rows, columns)
        fig = grid[0, 0].figure
    for k, a in enumerate(grid.flat):
        a.set_xticks([])
        a.set_yticks([])
        if k >= n:
            a.set_axis_off()
            continue
        a.imshow(scenes.images[k].permute(1, 2, 0).clamp(0, 1).numpy())
        if outlines:
            for name, colour in OBJECT_COLOURS.items():
                outline(a, scenes.masks[name][k, 0], color=colour, linewidth=0.8)
        what = ("tank" if scenes.labels[k] else "no tank") + (
            ", clouds" if scenes.has_cloud[k] else "")
        a.set_title(what, fontsize="x-small")
    if outlines and legend:
        handles = [Line2D([], [], color=c, label=f"{k} outline") for k, c in OBJECT_COLOURS.items()]
        fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small",
                   frameon=False)
    return fig


# ----------------------------------------------------------------------------- the classifier

#: The keys of :func:`default_config` that are training settings, not the network or its data.
_TRAINING = ("steps", "lr", "batch_size", "weight_decay", "seed")


def _configured(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **overrides}


def default_config(**overrides) -> dict[str, Any]:
    """The training configuration of the chapter's classifier, with ``overrides`` applied.

    Keys: ``version`` (of this training code), ``size`` (image pixels), ``n_train``
    (training scenes), ``cloud_given_tank`` and ``cloud_given_no_tank`` (the bias of the
    training set, see :func:`make_scenes`), ``width`` (of the CNN), ``steps``, ``lr``,
    ``batch_size``, ``weight_decay`` and ``seed``.

    Raises:
        ValueError: an override names an unknown key.

    Example:
        >>> default_config(width=8)["width"], default_config()["cloud_given_tank"]
        (8, 1.0)
    """
    return _configured({"version": 1, "size": 48, "n_train": 4096, "cloud_given_tank": 1.0,
                        "cloud_given_no_tank": 0.0, "width": 16, "steps": 600, "lr": 2e-3,
                        "batch_size": 64, "weight_decay": 0.0, "seed": 0}, overrides)


def training_scenes(config: dict[str, Any]) -> TankScenes:
    """The scenes a classifier with ``config`` is trained on (seed ``config["seed"] + 1``)."""
    return make_scenes(int(config["n_train"]), size=int(config["size"]),
                       cloud_given_tank=float(config["cloud_given_tank"]),
                       cloud_given_no_tank=float(config["cloud_given_no_tank"]),
                       seed=int(config["seed"]) + 1)


def load_tank_cnn(config: dict[str, Any], *, name: str = "tank_cnn", device=None,
                  root=None) -> tuple[TankCNN, bool]:
    """Load the CNN trained with ``config`` from the cache, or train and cache it.

    :func:`lanlib.cache.cached_classifier` trains a :class:`~lanlib.models.tank.TankCNN` of
    ``config["width"]`` (initial weights from ``config["seed"]``) on
    :func:`training_scenes` with the training settings of ``config``.

    Args:
        config (dict): from :func:`default_config`; every key is part of the cache key.
        name (str): the checkpoint's name. Default ``"tank_cnn"``.
        device (str or torch.device, optional): where to train and where the model goes.
        root (str or PathLike, optional): the data root of the cache.

    Returns:
        tuple (TankCNN, bool): the network in eval mode, and whether it was loaded.
    """
    def scenes():
        s = training_scenes(config)
        return s.images, s.labels

    model, _, loaded = cached_classifier(
        name, lambda key: TankCNN(width=int(key["width"])), scenes,
        config={k: v for k, v in config.items() if k not in _TRAINING},
        steps=int(config["steps"]), lr=float(config["lr"]),
        batch_size=int(config["batch_size"]), weight_decay=float(config["weight_decay"]),
        seed=int(config["seed"]), device=device, root=root)
    return model, loaded


# ----------------------------------------------------------------------------- its LANs


def lan_config(classifier: dict[str, Any], **overrides) -> dict[str, Any]:
    """Training configuration of a LAN explaining the classifier trained with ``classifier``.

    Keys: ``version``; ``classifier`` (the classifier's whole config, so the cache key
    changes with it); ``kind``: ``"mlp"`` (:class:`lanlib.nets.CoarseMaskNet`, the paper's
    fully connected kind, with ``hidden`` widths and a ``mask_size`` grid), ``"conv"``
    (:class:`lanlib.nets.ConvMaskNet` with ``width`` channels) or ``"unet"``
    (:class:`lanlib.nets.UNetMaskNet` with ``width`` channels and ``depth`` halvings, its
    convolutions padded by ``padding``: ``"zeros"`` or ``"replicate"``, see the
    ``padding`` argument of :class:`lanlib.nets.ConvMaskNet`); ``beta``, ``steps``,
    ``lr``, ``batch_size``, ``seed``.
    The LAN trains on the classifier's own training scenes, with bootstrapped noise
    drawn from the same scenes.

    Raises:
        ValueError: an unknown key, kind or padding.
    """
    config = _configured({"version": 1, "classifier": dict(classifier), "kind": "mlp",
                          "hidden": [256], "mask_size": 24, "width": 16, "depth": 3,
                          "padding": "zeros", "beta": 1.0, "steps": 300, "lr": 1e-3,
                          "batch_size": 64, "seed": 0}, overrides)
    if config["kind"] not in ("mlp", "conv", "unet"):
        raise ValueError(f"kind must be 'mlp', 'conv' or 'unet', got {config['kind']!r}")
    if config["padding"] not in ("zeros", "replicate"):
        raise ValueError(f"padding must be 'zeros' or 'replicate', got {config['padding']!r}")
    return config


def _mask_net(config: dict[str, Any]) -> nn.Module:
    """The untrained LAN of a :func:`lan_config` (its cache key, without ``explains``)."""
    if config["kind"] == "conv":
        return ConvMaskNet(width=int(config["width"]))
    if config["kind"] == "unet":
        return UNetMaskNet(width=int(config["width"]), depth=int(config["depth"]),
                           padding=config["padding"])
    size = int(config["size"])
    return CoarseMaskNet((3, size, size), hidden=tuple(config["hidden"]),
                         mask_size=int(config["mask_size"]))


def load_tank_lan(config: dict[str, Any], model: nn.Module, *, pool: torch.Tensor | None = None,
                  name: str = "tank_lan", device=None, root=None) -> tuple[nn.Module, bool]:
    """Load the LAN of ``config`` (see :func:`lan_config`) for ``model``, or train and cache it.

    :func:`lanlib.cache.cached_lan` fits it with :func:`lanlib.fit_lan` on the
    classifier's training scenes, with :func:`lanlib.noise.bootstrap` noise from the same
    scenes; the cache key holds the classifier's config (``explains``) and the LAN's.

    Args:
        config (dict): from :func:`lan_config`.
        model (nn.Module): the classifier trained with ``config["classifier"]``.
        pool (Tensor (M, 3, H, W), optional): that classifier's training images
            (``training_scenes(config["classifier"]).images``) if already at hand; drawn
            here otherwise.
        name (str): the checkpoint's name. Default ``"tank_lan"``.
        device (str or torch.device, optional): where to train and where the LAN goes.
        root (str or PathLike, optional): the data root of the cache.

    Returns:
        tuple (nn.Module, bool): the LAN (:class:`~lanlib.nets.CoarseMaskNet`,
        :class:`~lanlib.nets.ConvMaskNet` or :class:`~lanlib.nets.UNetMaskNet`) in eval
        mode, and whether it was loaded.
    """
    classifier = config["classifier"]
    if pool is None:
        pool = training_scenes(classifier).images
    architecture = {k: config[k] for k in ("version", "kind", "hidden", "mask_size", "width")}
    if config["kind"] == "unet":  # keys of their own, so the older LANs keep their cache keys
        architecture.update(depth=config["depth"], padding=config["padding"])
    return cached_lan(
        name, model, _mask_net, pool, bootstrap(pool), explains=classifier,
        config={**architecture, "size": int(classifier["size"]),
                "data": "the classifier's training scenes", "noise": "bootstrap, same scenes"},
        beta=float(config["beta"]), steps=int(config["steps"]), lr=float(config["lr"]),
        batch_size=int(config["batch_size"]), seed=int(config["seed"]), device=device,
        root=root)


# ----------------------------------------------------------------------------- what it says


@torch.no_grad()
def says_tank(model: nn.Module, scenes: TankScenes) -> torch.Tensor:
    """Share of scenes the model calls "tank", per kind of scene: a ``(2, 2)`` tensor.

    Row: tank in the scene (0 = no, 1 = yes); column: clouds (0 = no, 1 = yes). NaN
    where the scenes hold no such kind.
    """
    said = predict(model, scenes.images).argmax(dim=1).cpu() == 1
    table = torch.full((2, 2), float("nan"))
    for t in (0, 1):
        for c in (0, 1):
            pick = (scenes.labels.cpu() == t) & (scenes.has_cloud.cpu() == bool(c))
            if pick.any():
                table[t, c] = said[pick].float().mean()
    return table


def plot_says_tank(tables: Mapping[str, torch.Tensor], *, ax=None) -> Figure:
    """One 2x2 panel per model: how often it says "tank", by tank and clouds in the scene.

    Args:
        tables (mapping title -> Tensor (2, 2)): from :func:`says_tank`.
        ax (sequence of Axes, optional): one per table. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    if ax is None:
        fig = new_figure((3.1 * len(tables) + 0.8, 2.9))
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


# ----------------------------------------------------------------------------- the methods compared

#: Captum's methods as the chapter labels them (see :mod:`lanlib.attribution`).
CAPTUM_METHODS = {"saliency": "saliency", "integrated gradients": "integrated_gradients",
                  "occlusion": "occlusion", "feature ablation": "feature_ablation",
                  "random": "random"}


def captum_maps(model: nn.Module, images: torch.Tensor, pool: torch.Tensor, *, ig_steps: int,
                occlusion_window: int, occlusion_stride: int, ablation_patch: int, seed: int,
                device=None, batch_size: int = 64) -> dict:
    """Captum's methods (:data:`CAPTUM_METHODS`) on ``images``, for the class ``model`` predicts.

    Each method is asked through :func:`lanlib.attribute` (by
    :func:`lanlib.attribution.attribute_many`, so that all explain the same predicted
    classes). The baseline of integrated gradients, occlusion and feature ablation is the
    mean scene of ``pool`` (the classifier's training scenes): a blurred landscape with no
    object in particular.

    Args:
        model (nn.Module): the classifier.
        images (Tensor (N, 3, H, W)): the scenes explained.
        pool (Tensor (M, 3, H, W)): the classifier's training scenes.
        ig_steps (int): steps of integrated gradients' path.
        occlusion_window, occlusion_stride (int): occlusion's square window and stride.
        ablation_patch (int): side of feature ablation's squares.
        seed (int): seeds the random map.
        device (str or torch.device, optional): where to compute.
        batch_size (int): images per call of a method. Default 64.

    Returns:
        dict label -> :class:`lanlib.attribution.Attribution`: ``(N, 1, H, W)`` maps and
        the time per image.
    """
    options = {"integrated gradients": {"n_steps": ig_steps},
               "occlusion": {"window": occlusion_window, "stride": occlusion_stride},
               "feature ablation": {"patch": ablation_patch}}
    return attribute_many(model, images, CAPTUM_METHODS, options=options,
                          baselines=pool.mean(0, keepdim=True), batch_size=batch_size,
                          seed=seed, device=device)


def versus_average(importance: torch.Tensor, regions: Mapping[str, torch.Tensor], *,
                   auroc_for: Sequence[str] = ("cloud", "tank")) -> tuple[dict, dict]:
    """Scores of importance maps, and of their average over the scenes (one map for all).

    A LAN that scores no better than its own average map has learnt where objects tend
    to be, not where they are in each scene.

    Args:
        importance (Tensor (N, 1, H, W)): e.g. a LAN's ``1 - mask`` for the scenes.
        regions (mapping name -> BoolTensor (N, 1, H, W)): the regions scored
            (:func:`lanlib.metrics.score`).
        auroc_for (sequence of str): the regions to compute the AUROC for.

    Returns:
        tuple (dict, dict): the scores of ``importance`` and of its average.

    Example:
        >>> cloud = torch.zeros(2, 1, 4, 4, dtype=torch.bool); cloud[:, 0, 0] = True
        >>> own, avg = versus_average(cloud.float(), {"cloud": cloud}, auroc_for=["cloud"])
        >>> own["cloud"], avg["cloud"]  # the same map for both scenes: nothing to gain
        (1.0, 1.0)
    """
    average = importance.mean(dim=0, keepdim=True).expand_as(importance)
    return (score(importance, regions, auroc_for=auroc_for),
            score(average, regions, auroc_for=auroc_for))


def edge_bands(importance: torch.Tensor, width: int = 5, *,
               beyond_inside: bool = False) -> torch.Tensor:
    """How strongly importance maps mark the image's left or right edge, per scene.

    The chapter's convolutional LAN marks strips along the side edges of a scene, where no
    object is; this measures them: the mean importance over the brighter of the two
    bands of ``width`` columns at the left and the right edge, divided by the map's
    maximum. A map that keeps a whole region (the sky, say) scores that region's level
    in the bands as well; ``beyond_inside`` counts only what each band holds beyond the
    band of the same width just inside it (pixel by pixel, row by row, clipped at zero),
    so that a strip standing out at the border counts and a region crossing it does not.

    Args:
        importance (Tensor (N, C, H, W)): non-negative importance maps.
        width (int): the bands' width in pixels, at most half the image's (a quarter
            with ``beyond_inside``). Default 5.
        beyond_inside (bool): measure the excess over the neighbouring inner band.
            Default False.

    Returns:
        Tensor (N,): in [0, 1]; 0 where both bands are zero (or the whole map is), 1 where
        a band is as bright as the map's brightest pixel throughout (and, with
        ``beyond_inside``, its inner neighbour is zero).

    Raises:
        ValueError: maps that are not ``(N, C, H, W)``, or a width out of range.

    Example:
        >>> maps = torch.zeros(2, 1, 4, 8); maps[0, :, :, :2] = 1.0; maps[1, :, 0, 7] = 1.0
        >>> edge_bands(maps, width=2)  # the whole left band; one pixel of eight on the right
        tensor([1.0000, 0.1250])
        >>> edge_bands(maps + 0.5, width=2), edge_bands(maps + 0.5, width=2, beyond_inside=True)
        (tensor([1.0000, 0.4167]), tensor([0.6667, 0.0833]))
    """
    if importance.dim() != 4:
        raise ValueError(f"importance must be (N, C, H, W), got shape {tuple(importance.shape)}")
    most = importance.shape[-1] // (4 if beyond_inside else 2)
    if not 1 <= width <= most:
        raise ValueError(f"width must be in [1, {most}] for images {importance.shape[-1]} "
                         f"pixels wide, got {width}")
    left, right = importance[..., :width], importance[..., -width:]
    if beyond_inside:
        left = (left - importance[..., width:2 * width]).clamp_min(0)
        right = (right - importance[..., -2 * width:-width]).clamp_min(0)
    peak = importance.flatten(1).amax(dim=1)
    brighter = torch.maximum(left.mean(dim=(1, 2, 3)), right.mean(dim=(1, 2, 3)))
    return brighter / peak.clamp_min(torch.finfo(importance.dtype).tiny)


# ----------------------------------------------------------------------------- tables and figures


def _rows_and_columns(rows, columns):
    rows = dict(rows)
    if not rows:
        raise ValueError("rows is empty")
    if columns is None:
        columns = {k: k for k in next(iter(rows.values()))}
    return rows, columns


def markdown_table(rows: Mapping[str, Mapping[str, float]],
                   columns: Mapping[str, str] | None = None, *, digits: int = 2,
                   first: str = "method") -> str:
    """A Markdown table, one row per entry of ``rows`` (e.g. per method).

    Args:
        rows (mapping label -> mapping key -> number): the values.
        columns (mapping key -> header, optional): which keys to show, in order, and their
            headers. Default every key of the first row, as its own header.
        digits (int): decimals of floats. Default 2.
        first (str): header of the label column. Default "method".

    Returns:
        str: the table (display it with ``IPython.display.Markdown``).

    Example:
        >>> print(markdown_table({"random": {"cloud": 0.1}}, {"cloud": "cloud share"}))
        | method | cloud share |
        |---|---:|
        | random | 0.10 |
    """
    rows, columns = _rows_and_columns(rows, columns)

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join([first, *columns.values()]) + " |",
             "|---|" + "---:|" * len(columns)]
    for label, values in rows.items():
        lines.append("| " + " | ".join([label, *(cell(values.get(k, "")) for k in columns)])
                     + " |")
    return "\n".join(lines)


def html_table(rows: Mapping[str, Mapping[str, float]],
               columns: Mapping[str, str] | None = None, *, digits: int = 2,
               first: str = "method") -> str:
    """The table of :func:`markdown_table` as HTML (display it with ``IPython.display.HTML``).

    Static pages render HTML outputs as they are, whatever their Markdown settings.

    Example:
        >>> text = html_table({"random": {"cloud": 0.1}}, {"cloud": "cloud share"})
        >>> print(text.splitlines()[3])
        <tr><td style="text-align:left">random</td><td style="text-align:right">0.10</td></tr>
    """
    rows, columns = _rows_and_columns(rows, columns)
    left, right = 'style="text-align:left"', 'style="text-align:right"'

    def cell(value) -> str:
        return html.escape(f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    head = "".join([f"<th {left}>{html.escape(first)}</th>",
                    *(f"<th {right}>{html.escape(h)}</th>" for h in columns.values())])
    body = ["<tr>" + "".join([f"<td {left}>{html.escape(label)}</td>",
                              *(f"<td {right}>{cell(values.get(k, ''))}</td>" for k in columns)])
            + "</tr>" for label, values in rows.items()]
    return "\n".join(["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body,
                      "</tbody>", "</table>"])


def plot_scores(
    scores: Mapping[str, Mapping[str, float]],
    keys: Mapping[str, str],
    *,
    times: Mapping[str, float] | None = None,
    reference: Mapping[str, float] | None = None,
    ax=None,
    title: str | None = None,
) -> Figure:
    """Grouped bars: for each method, one bar per score; optionally a panel of times.

    Args:
        scores (mapping method -> mapping key -> float): e.g. from :func:`lanlib.metrics.score`.
        keys (mapping key -> label): the scores to draw, and their legend labels.
        times (mapping method -> seconds per image, optional): drawn in a second panel
            on a logarithmic axis.
        reference (mapping key -> float, optional): a dashed line per score (e.g. the area
            shares, what a map that knows nothing gets), in the bar's colour.
        ax (Axes or two Axes, optional): where to draw (two when ``times`` is given).
        title (str, optional): title of the score panel.

    Returns:
        matplotlib.figure.Figure
    """
    methods = list(scores)
    panels = 2 if times is not None else 1
    if ax is None:
        fig = new_figure((6.0 + 3.6 * (panels - 1), 3.6))
        axes = list(fig.subplots(1, panels, squeeze=False,
                                 width_ratios=[1.7, 1][:panels])[0])
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != panels:
            raise ValueError(f"this figure needs {panels} axes, got {len(axes)}")
        fig = axes[0].figure
    a = axes[0]
    width = 0.8 / len(keys)
    positions = np.arange(len(methods))
    hatches = ("", "//", "..", "xx", "\\\\")
    for k, (key, label) in enumerate(keys.items()):
        values = [scores[m][key] for m in methods]
        colour = OKABE_ITO[k % len(OKABE_ITO)]
        a.bar(positions + (k - (len(keys) - 1) / 2) * width, values, width, label=label,
              color=colour, hatch=hatches[k % len(hatches)], edgecolor="white")
        if reference is not None and key in reference:
            a.axhline(reference[key], color=colour, linestyle="--", linewidth=1)
    a.set_xticks(positions, methods, rotation=30, ha="right")
    a.set_ylim(0, 1.3)  # room for the legend above the bars
    a.set_yticks(np.linspace(0, 1, 6))
    a.grid(axis="y", alpha=0.3)
    a.legend(fontsize="small", loc="upper center", ncols=min(len(keys), 4), frameon=False)
    if title:
        a.set_title(title)
    if times is not None:
        b = axes[1]
        b.barh(positions, [max(times[m], 1e-9) for m in methods], color=OKABE_ITO[5])
        b.set_yticks(positions, methods)
        b.invert_yaxis()
        b.set_xscale("log")
        b.set_xlabel("seconds per image (log scale)")
        b.grid(axis="x", alpha=0.3)
        b.set_title("time per image")
    return fig


def show_objects(
    images: torch.Tensor,
    objects: Mapping[str, torch.Tensor],
    maps: Mapping[str, torch.Tensor],
    *,
    colours: Mapping[str, str] | None = None,
    cmap: str = "viridis",
    row_labels: Sequence[str] | None = None,
    ax=None,
) -> Figure:
    """Images with their objects outlined, beside importance maps with the same outlines.

    Each importance map is summed over its channels and divided by its own maximum, so
    every panel spans [0, 1] (the maps of different methods have different units); the
    colour bar says so.

    Args:
        images (Tensor (N, 3, H, W) or (N, 1, H, W)): the images, in [0, 1].
        objects (mapping name -> BoolTensor (N, 1, H, W)): object pixels, outlined in
            the colours of ``colours`` (default: Okabe-Ito colours in order).
        maps (mapping title -> Tensor (N, C, H, W)): non-negative importance per method.
        colours (mapping name -> colour, optional): outline colour per object, e.g.
            :data:`OBJECT_COLOURS`.
        cmap (str): colour map of the importance. Default "viridis".
        row_labels (sequence of str, optional): one label per image.
        ax (array of Axes, optional): ``N x (1 + len(maps))`` axes. Default: a new figure.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    images = torch.as_tensor(images).detach().float().cpu()
    n, cols = len(images), 1 + len(maps)
    palette = dict(colours or {})
    for i, name in enumerate(objects):
        palette.setdefault(name, OKABE_ITO[(i + 1) % len(OKABE_ITO)])
    if ax is None:
        fig = new_figure((1.75 * cols + 1.0, 1.75 * n + 0.5))
        grid = fig.subplots(n, cols, squeeze=False)
    else:
        grid = np.asarray(ax, dtype=object).reshape(n, cols)
        fig = grid[0, 0].figure
    shown = None
    for i in range(n):
        img = images[i].permute(1, 2, 0).clamp(0, 1).numpy()
        grid[i, 0].imshow(img if img.shape[2] == 3 else img[..., 0], cmap="gray")
        for name, m in objects.items():
            outline(grid[i, 0], m[i, 0], color=palette[name], linewidth=1.0)
        for j, values in enumerate(maps.values(), start=1):
            plane = torch.as_tensor(values[i]).detach().double().cpu().sum(dim=0)
            plane = plane / plane.max().clamp_min(1e-12)
            shown = grid[i, j].imshow(plane.numpy(), cmap=cmap, vmin=0, vmax=1)
            for name, m in objects.items():
                outline(grid[i, j], m[i, 0], color=palette[name], linewidth=0.8)
        for a in grid[i]:
            a.set_xticks([])
            a.set_yticks([])
        if row_labels is not None:
            grid[i, 0].set_ylabel(row_labels[i], fontsize="small")
    grid[0, 0].set_title("image", fontsize="small")
    for j, title in enumerate(maps, start=1):
        grid[0, j].set_title(title, fontsize="small")
    if shown is not None:
        fig.colorbar(shown, ax=list(grid[:, 1:].flat), shrink=0.8,
                     label="importance / its maximum per image")
    handles = [Line2D([], [], color=palette[k], label=f"{k} outline") for k in objects]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
               fontsize="small", frameon=False)
    return fig
