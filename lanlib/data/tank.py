"""Synthetic tank scenes: a known spurious correlation, with a pixel mask for every object.

Appendix G of Grimm et al. retells the story of a classifier trained to find tanks in
forest photos that learnt the weather instead: every tank photo had been taken under a
cloudy sky. Here we draw such photos ourselves, so that we know, pixel by pixel, where
each tree, cloud and tank is, and can score an explanation against that truth.

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

The chapter ``notebooks/06_tank_story`` trains a classifier on these scenes and scores
explanations of it against the masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = [
    "OBJECTS",
    "OBJECT_COLOURS",
    "SceneParams",
    "TankScenes",
    "biased_scenes",
    "cloud_probabilities",
    "correlated_scenes",
    "counterfactual_scenes",
    "make_scenes",
    "plot_scenes",
    "render",
    "sample_params",
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
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


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


# ----------------------------------------------------------------------------- figure

#: Outline colours of the objects (Okabe-Ito: no red-green pair).
OBJECT_COLOURS = {"cloud": "#0072B2", "tree": "#E69F00", "tank": "#CC79A7"}


def plot_scenes(scenes: TankScenes, *, columns: int = 8, outlines: bool = True,
                legend: bool = True, ax=None):
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
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from lanlib.plot import outline

    n = len(scenes)
    rows = -(-n // columns)
    if ax is None:
        fig = Figure(figsize=(1.45 * columns, 1.55 * rows + 0.4), layout="constrained")
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
