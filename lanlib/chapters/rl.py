"""Chapter 09 (``notebooks/09_rl.ipynb``): where a game-playing agent looks.

The game is Breakout from MinAtar (Young & Tian 2019, ``pip install minatar``): a 10x10
grid, one binary plane per kind of object (paddle, ball, the ball's trail, bricks), so
every state carries the truth of where each object is. A DQN agent (Mnih et al. 2015:
replay buffer, target network, epsilon-greedy exploration) learns to play it; LANs and
Captum's methods then explain its Q-network, scored against the object planes.

MinAtar is an optional dependency (the ``chapters`` extra); it is imported only when a
game is made, and :func:`require_minatar` says how to install it.

Example:
    >>> game = Game(seed=0)  # doctest: +SKIP
    >>> game.state().shape  # doctest: +SKIP
    torch.Size([4, 10, 10])
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn

from ..cache import cached_lan, load_or_train
from ..loop import seeded
from ..models.qnet import QNet
from ..nets import MLPMaskNet
from ..noise import constant
from ..plot import IMPORTANCE_CMAP, new_figure

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["ACTIONS", "COLOURS", "GAME", "INSTALL_HINT", "OBJECTS", "Agent", "Game", "Played",
           "action_changes", "default_config", "dqn", "episode_stepper", "frame_image",
           "landing_move", "load_agent", "load_lan", "mirrored", "objects", "play",
           "plot_curve", "plot_strip", "policy_kl",
           "random_scores", "require_minatar", "without"]

#: The MinAtar game the chapter plays.
GAME = "breakout"
#: MinAtar Breakout's planes, in channel order.
OBJECTS = ("paddle", "ball", "trail", "brick")
#: The minimal action set, as MinAtar names it ('n', 'l', 'r').
ACTIONS = ("stay", "left", "right")
#: What to do when MinAtar is missing (the errors and the tests' skips say it).
INSTALL_HINT = ("this chapter needs MinAtar: pip install 'minatar>=1.0.15' (or install the "
                "book with its 'chapters' extra)")
#: A colour per object plane, for the frames (drawn on black).
COLOURS = {"paddle": "#4c9be8", "ball": "#f5f5f5", "trail": "#8a8a8a", "brick": "#d9733b"}


def require_minatar():
    """Import and return MinAtar, or raise ImportError saying how to install it."""
    try:
        import minatar
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return minatar


class Game:
    """MinAtar Breakout with channels-first float states and its three useful actions.

    Args:
        seed (int): seeds the game's randomness (ball start, sticky actions).
        sticky (float): probability that the previous action repeats (MinAtar's 0.1).

    The game's internal state (ball position and direction, paddle, bricks) is
    ``game.core``; changing it is an intervention on the game.
    """

    def __init__(self, seed: int, sticky: float = 0.1):
        env = require_minatar().Environment(GAME, sticky_action_prob=sticky)
        env.seed(seed)
        env.reset()
        self.env = env
        self.core = env.env
        self.actions = env.minimal_action_set()

    def state(self) -> torch.Tensor:
        """The state, ``(len(OBJECTS), 10, 10)`` float32 in {0, 1}."""
        return torch.from_numpy(np.ascontiguousarray(self.env.state().transpose(2, 0, 1))).float()

    def step(self, action: int) -> tuple[float, bool]:
        """Play ``ACTIONS[action]``; return the reward and whether the episode ended."""
        reward, done = self.env.act(self.actions[action])
        return float(reward), bool(done)

    def reset(self) -> None:
        self.env.reset()


def objects(states: torch.Tensor) -> dict[str, torch.Tensor]:
    """The truth of each state: ``{object: BoolTensor (N, 1, 10, 10)}``, from its planes."""
    return {name: states[:, c:c + 1] > 0.5 for c, name in enumerate(OBJECTS)}


def default_config(**changes: Any) -> dict[str, Any]:
    """The DQN recipe (MinAtar's baseline, smaller), with ``changes`` applied."""
    config = {"version": 1, "game": GAME, "frames": 40_000, "buffer": 20_000, "batch": 32,
              "lr": 1e-3, "gamma": 0.99, "target_every": 500, "epsilon_start": 1.0,
              "epsilon_end": 0.05, "epsilon_frames": 20_000, "learn_start": 1000,
              "train_every": 1, "sticky": 0.1, "width": 16, "hidden": 128,
              "curve_points": 20, "seed": 0}
    unknown = set(changes) - set(config)
    if unknown:
        raise ValueError(f"unknown DQN settings {sorted(unknown)}")
    return {**config, **changes}


class Agent(nn.Module):
    """A trained DQN agent: its Q-network and its learning curve.

    ``curve[k]`` is the mean return of the training episodes that ended in the k-th of
    ``curve_points`` equal slices of the training frames (NaN where none ended).
    """

    def __init__(self, config: Mapping[str, Any]):
        super().__init__()
        self.qnet = QNet(len(OBJECTS), len(ACTIONS), width=config["width"],
                         hidden=config["hidden"])
        self.register_buffer("curve", torch.full((config["curve_points"],), math.nan))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.qnet(states)


def dqn(agent: Agent, config: Mapping[str, Any]) -> None:
    """Train ``agent`` in place by DQN (Mnih et al. 2015) on the game, for ``config["frames"]``.

    One loop over the frames: act epsilon-greedily (epsilon falls linearly from
    ``epsilon_start`` to ``epsilon_end`` over ``epsilon_frames``), store the transition in
    a ring buffer, and every ``train_every`` frames after ``learn_start`` take one Adam
    step on the Huber loss between Q(s, a) and ``r + gamma * max Q_target(s', .)``
    (0 after the last frame of an episode); the target network copies the Q-network
    every ``target_every`` frames. Fills ``agent.curve``.
    """
    net, size = agent.qnet, config["buffer"]
    target = copy.deepcopy(net).requires_grad_(False)
    optimiser = torch.optim.Adam(net.parameters(), lr=config["lr"])
    shape = (size, len(OBJECTS), 10, 10)
    states, nexts = torch.zeros(shape), torch.zeros(shape)
    acts = torch.zeros(size, dtype=torch.long)
    rewards, ends = torch.zeros(size), torch.zeros(size)
    rng = np.random.default_rng(config["seed"])
    game = Game(config["seed"], sticky=config["sticky"])
    state, episode_return, finished = game.state(), 0.0, []
    with seeded(config["seed"]):
        for frame in range(config["frames"]):
            # act: epsilon-greedy on the current Q-network
            share = min(1.0, frame / config["epsilon_frames"])
            epsilon = config["epsilon_start"] + share * (config["epsilon_end"]
                                                         - config["epsilon_start"])
            if rng.random() < epsilon:
                action = int(rng.integers(len(ACTIONS)))
            else:
                with torch.no_grad():
                    action = int(net(state[None]).argmax())
            reward, done = game.step(action)
            nxt = game.state()
            # remember the transition (the oldest is overwritten when the buffer is full)
            slot = frame % size
            states[slot], nexts[slot], acts[slot] = state, nxt, action
            rewards[slot], ends[slot] = reward, float(done)
            episode_return += reward
            if done:
                finished.append((frame, episode_return))
                game.reset()
                nxt, episode_return = game.state(), 0.0
            state = nxt
            # learn: one step on a random batch of remembered transitions
            if frame >= config["learn_start"] and frame % config["train_every"] == 0:
                pick = torch.from_numpy(rng.integers(min(frame + 1, size), size=config["batch"]))
                with torch.no_grad():
                    best_next = target(nexts[pick]).max(dim=1).values
                    goal = rewards[pick] + config["gamma"] * (1 - ends[pick]) * best_next
                q = net(states[pick]).gather(1, acts[pick, None])[:, 0]
                loss = fn.smooth_l1_loss(q, goal)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if frame % config["target_every"] == 0:
                target.load_state_dict(net.state_dict())
    agent.curve.copy_(_curve(finished, config["frames"], config["curve_points"]))


def _curve(finished: Sequence[tuple[int, float]], frames: int, points: int) -> torch.Tensor:
    """Mean return of the episodes ending in each of ``points`` slices of the frames."""
    curve = torch.full((points,), math.nan)
    if finished:
        ends, returns = (torch.tensor(v, dtype=torch.float64) for v in zip(*finished, strict=True))
        slices = (ends * points / frames).long().clamp_max(points - 1)
        for k in range(points):
            if (slices == k).any():
                curve[k] = returns[slices == k].mean()
    return curve


def load_agent(config: Mapping[str, Any], *, name: str = "breakout_dqn") -> tuple[Agent, bool]:
    """The DQN agent of ``config``, from the cache or trained now (:func:`dqn`)."""
    require_minatar()
    return load_or_train(name, dict(config), Agent, dqn)


def load_lan(qnet: nn.Module, pool: torch.Tensor, *, temperature: float,
             explains: Mapping[str, Any], hidden: Sequence[int], beta: float, steps: int,
             lr: float, seed: int, device=None,
             name: str = "breakout_lan") -> tuple[nn.Module, bool]:
    """The chapter's amortised LAN of ``qnet``, from the cache or trained now.

    A fully connected :class:`lanlib.nets.MLPMaskNet` from the state's planes to one 10x10
    mask, trained by :func:`lanlib.fit_lan` on ``pool`` (states of the agent's own play)
    with constant noise 0 and :func:`policy_kl` at ``temperature`` as L_F. The cache key
    holds ``explains`` (the agent's DQN config), the pool's size and every setting.
    """
    config = {"pool": len(pool), "hidden": list(hidden), "noise": "constant 0",
              "loss": "policy_kl", "temperature": round(temperature, 6)}
    lan, loaded = cached_lan(
        name, qnet,
        lambda cfg: MLPMaskNet((len(OBJECTS), 10, 10), hidden=tuple(cfg["hidden"]),
                               mask_shape=(1, 10, 10)),
        pool, constant(0.0), explains=explains, config=config, beta=beta, steps=steps,
        lr=lr, seed=seed, device=device, loss=policy_kl(temperature))
    return lan.cpu(), loaded


class Played(NamedTuple):
    """Episodes played: the returns, and every state seen with the action taken there."""

    returns: torch.Tensor  # (episodes,) float
    states: torch.Tensor  # (frames, len(OBJECTS), 10, 10)
    actions: torch.Tensor  # (frames,) long
    episode: torch.Tensor  # (frames,) long: which episode each state belongs to


def play(qnet: nn.Module | None, episodes: int, *, seed: int, epsilon: float = 0.0,
         sticky: float = 0.1, max_frames: int = 2000) -> Played:
    """Play ``episodes`` episodes with the greedy policy of ``qnet`` (None: at random).

    With probability ``epsilon`` an action is random instead (as in the DQN evaluation
    of Mnih et al. 2015). An episode stops after ``max_frames`` frames at most.
    """
    game = Game(seed, sticky=sticky)
    rng = np.random.default_rng(seed)
    returns, states, actions, episode = [], [], [], []
    for e in range(episodes):
        game.reset()
        total = 0.0
        for _ in range(max_frames):
            state = game.state()
            if qnet is None or rng.random() < epsilon:
                action = int(rng.integers(len(ACTIONS)))
            else:
                with torch.no_grad():
                    action = int(qnet(state[None]).argmax())
            states.append(state)
            actions.append(action)
            episode.append(e)
            reward, done = game.step(action)
            total += reward
            if done:
                break
        returns.append(total)
    return Played(torch.tensor(returns), torch.stack(states), torch.tensor(actions),
                  torch.tensor(episode))


def random_scores(episodes: int, *, seed: int, sticky: float = 0.1) -> torch.Tensor:
    """Returns of a uniformly random policy over ``episodes`` episodes."""
    return play(None, episodes, seed=seed, sticky=sticky).returns


def policy_kl(temperature: float):
    """L_F of the chapter: KL(pi(F(x)) || pi(F(x~))) of the Boltzmann policies.

    ``pi(q) = softmax(q / temperature)`` over the actions, per row, in nats. A small
    temperature makes the policy close to the greedy one.
    """
    def loss(reference: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
        log_p = fn.log_softmax(reference / temperature, dim=1)
        log_q = fn.log_softmax(corrupted / temperature, dim=1)
        return (log_p.exp() * (log_p - log_q)).sum(dim=1)

    return loss


def without(states: torch.Tensor, name: str) -> torch.Tensor:
    """An intervention on the states: the object ``name`` taken out of the game (its plane 0)."""
    out = states.clone()
    out[:, OBJECTS.index(name)] = 0.0
    return out


def action_changes(qnet: nn.Module, states: torch.Tensor) -> dict[str, float]:
    """Per object, the share of states (holding it) whose greedy action changes without it."""
    with torch.no_grad():
        greedy = qnet(states).argmax(dim=1)
        shares = {}
        for name, mask in objects(states).items():
            present = mask.flatten(1).any(dim=1)
            changed = qnet(without(states, name)).argmax(dim=1) != greedy
            shares[name] = float(changed[present].float().mean())
    return shares


# ----------------------------------------------------------------------------- figures


def frame_image(state: torch.Tensor) -> np.ndarray:
    """A state as an RGB picture ``(10, 10, 3)``: each object in its colour on black."""
    from matplotlib.colors import to_rgb

    picture = np.zeros((*state.shape[-2:], 3))
    for c, name in enumerate(OBJECTS):  # later planes paint over earlier ones; the ball last
        if name != "ball":
            picture[state[c].numpy() > 0.5] = to_rgb(COLOURS[name])
    picture[state[OBJECTS.index("ball")].numpy() > 0.5] = to_rgb(COLOURS["ball"])
    return picture


def _panel(ax, image, title=None, **options):
    shown = ax.imshow(image, interpolation="nearest", **options)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize="small")
    return shown


def plot_curve(curve: torch.Tensor, frames: int, *, random_mean: float, agent_mean: float,
               ax=None) -> Figure:
    """The learning curve: mean training return per slice of frames, and the two baselines."""
    fig = new_figure((5.5, 3.0)) if ax is None else ax.figure
    ax = fig.subplots() if ax is None else ax
    centres = (torch.arange(len(curve)) + 0.5) * frames / len(curve)
    ax.plot(centres.numpy(), curve.numpy(), marker="o", label="training episodes (ε-greedy)")
    ax.axhline(agent_mean, color="#009E73", linestyle="--", label="trained agent, greedy")
    ax.axhline(random_mean, color="#D55E00", linestyle=":", label="random policy")
    ax.set_xlabel("training frames")
    ax.set_ylabel("return (bricks per episode)")
    ax.legend(fontsize="small")
    return fig


def plot_strip(states: torch.Tensor, maps: Mapping[str, torch.Tensor],
               titles: Sequence[str] | None = None) -> Figure:
    """Frames in the top row, then one row of importance maps ``(N, 1, 10, 10)`` per method.

    Each importance panel is scaled to its own maximum (viridis, yellow = most important).
    """
    n, rows = len(states), 1 + len(maps)
    fig = new_figure((1.25 * n + 0.9, 1.3 * rows))
    axes = np.asarray(fig.subplots(rows, n, squeeze=False))
    for i in range(n):
        _panel(axes[0, i], frame_image(states[i]), None if titles is None else titles[i])
        for r, importance in enumerate(maps.values(), start=1):
            plane = importance[i].sum(dim=0).numpy()
            _panel(axes[r, i], plane, cmap=IMPORTANCE_CMAP, vmin=0,
                   vmax=max(float(plane.max()), 1e-12))
    for r, label in enumerate(["state", *maps]):
        axes[r, 0].set_ylabel(label, fontsize="small")
    return fig


def episode_stepper(states: torch.Tensor, maps: Mapping[str, torch.Tensor],
                    actions: torch.Tensor, values: torch.Tensor):
    """A widget stepping through an episode: the frame and each method's importance.

    Every frame's panel is rendered once, as a PNG, when the widget is built, so the
    static page (which saves the widget's state) shows the first frame and a reader
    with a kernel can step through all of them.

    Args:
        states (Tensor (T, C, 10, 10)): the episode's states.
        maps (mapping label -> Tensor (T, 1, 10, 10)): importance per method.
        actions (LongTensor (T,)): the action taken at each frame.
        values (Tensor (T, len(ACTIONS))): the Q-values there.

    Returns:
        ipywidgets.VBox: a frame slider over the picture.
    """
    import ipywidgets as widgets

    pngs = []
    for t in range(len(states)):
        fig = new_figure((1.9 * (1 + len(maps)), 2.3))
        axes = fig.subplots(1, 1 + len(maps))
        q = ", ".join(f"{a} {v:.2f}" for a, v in zip(ACTIONS, values[t].tolist(), strict=True))
        _panel(axes[0], frame_image(states[t]), f"frame {t}: {ACTIONS[int(actions[t])]}")
        axes[0].set_xlabel(f"Q: {q}", fontsize="x-small")
        for ax, (label, importance) in zip(axes[1:], maps.items(), strict=True):
            plane = importance[t].sum(dim=0).numpy()
            _panel(ax, plane, label, cmap=IMPORTANCE_CMAP, vmin=0,
                   vmax=max(float(plane.max()), 1e-12))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        pngs.append(buffer.getvalue())
    picture = widgets.Image(value=pngs[0], format="png")
    step = widgets.IntSlider(value=0, min=0, max=len(pngs) - 1, description="frame")
    step.observe(lambda change: setattr(picture, "value", pngs[change["new"]]), names="value")
    return widgets.VBox([step, picture])


def mirrored(states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An intervention on the ball's direction: its trail moved to the other side of the ball.

    The trail is the ball's previous cell, so it alone tells which way the ball moves;
    reflecting it about the ball's column reverses the ball's horizontal direction and
    keeps everything else. States where that is impossible (no trail beside the ball, or
    the reflected cell off the grid) are left out.

    Returns:
        tuple: the changed states and the indices (into ``states``) they come from.
    """
    ball, trail = OBJECTS.index("ball"), OBJECTS.index("trail")
    keep, out = [], []
    for i, state in enumerate(states):
        (by, bx), (ty, tx) = (torch.nonzero(state[c])[0].tolist() if state[c].any()
                              else (None, None) for c in (ball, trail))
        if bx is None or tx is None or tx == bx or not 0 <= 2 * bx - tx <= 9:
            continue
        changed = state.clone()
        changed[trail] = 0.0
        changed[trail, ty, 2 * bx - tx] = 1.0
        keep.append(i)
        out.append(changed)
    return torch.stack(out), torch.tensor(keep, dtype=torch.long)


def landing_move(state: torch.Tensor) -> int:
    """The move toward where a falling ball will reach the paddle's row; -1 if none.

    Follows the game's rules: the ball moves one cell diagonally per frame and bounces
    off the side walls; its direction is read from the trail. Returns the index into
    :data:`ACTIONS` of the move that brings the paddle closer to the ball's column one
    row above the paddle (``"stay"`` when it is there already), or -1 when the ball is not
    falling (or a brick may still deflect it: a brick below the ball).
    """
    planes = {name: torch.nonzero(state[c]).tolist() for c, name in enumerate(OBJECTS)}
    if not (planes["ball"] and planes["trail"] and planes["paddle"]):
        return -1
    (y, x), (ty, tx), (_, paddle) = planes["ball"][0], planes["trail"][0], planes["paddle"][0]
    if ty >= y or tx == x or any(by > y for by, _ in planes["brick"]):
        return -1
    dx = 1 if x > tx else -1
    while y < 8:  # fly down to the row above the paddle, bouncing off the walls
        if not 0 <= x + dx <= 9:
            dx = -dx
        x, y = x + dx, y + 1
    return ACTIONS.index("stay" if x == paddle else "right" if x > paddle else "left")
