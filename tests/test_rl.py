"""Chapter 09's pieces: the game wrapper, the truth masks, the interventions, the Q-network.

The tests that play the game need MinAtar (an optional dependency, in the ``chapters``
extra). Without it they are skipped, except under ``CI=true``, where they fail saying how
to install it.
"""

from __future__ import annotations

import math

import pytest
import torch

from lanlib.chapters import rl
from lanlib.models.qnet import QNet
from tests._requirements import require_module


@pytest.fixture
def minatar():
    return require_module("minatar", rl.INSTALL_HINT)


def _state(paddle=4, ball=(5, 5), trail=(4, 4), bricks=()):
    """A hand-made Breakout state (planes paddle, ball, trail, brick)."""
    state = torch.zeros(len(rl.OBJECTS), 10, 10)
    state[0, 9, paddle] = 1.0
    state[1, ball[0], ball[1]] = 1.0
    state[2, trail[0], trail[1]] = 1.0
    for y, x in bricks:
        state[3, y, x] = 1.0
    return state


def test_game_states_hold_one_paddle_and_one_ball(minatar):
    game = rl.Game(seed=0)
    for _ in range(30):
        state = game.state()
        assert state.shape == (len(rl.OBJECTS), 10, 10) and state.dtype == torch.float32
        assert set(state.unique().tolist()) <= {0.0, 1.0}
        truth = rl.objects(state[None])
        assert truth["paddle"].sum() == 1 and truth["ball"].sum() == 1
        assert truth["paddle"][0, 0, 9].any()  # the paddle lives on the bottom row
        reward, done = game.step(2)
        assert isinstance(reward, float) and isinstance(done, bool)
        if done:
            game.reset()


def test_play_and_dqn_run_and_record(minatar):
    played = rl.play(None, 2, seed=0, max_frames=50)
    assert len(played.returns) == 2
    assert len(played.states) == len(played.actions) == len(played.episode)
    config = rl.default_config(frames=150, learn_start=50, buffer=100, epsilon_frames=100,
                               target_every=50, curve_points=3)
    agent = rl.Agent(config)
    rl.dqn(agent, config)
    assert agent.curve.shape == (3,)
    assert agent(played.states).shape == (len(played.states), len(rl.ACTIONS))


def test_objects_are_the_planes():
    truth = rl.objects(_state(bricks=[(1, 0), (1, 1)])[None])
    assert list(truth) == list(rl.OBJECTS)
    assert truth["brick"].sum() == 2 and truth["ball"][0, 0, 5, 5]
    assert all(mask.shape == (1, 1, 10, 10) and mask.dtype == torch.bool
               for mask in truth.values())


def test_landing_move_follows_the_rules():
    # falling to the right from (5, 5): (8, 8) above the paddle's row, paddle at 4 -> right
    assert rl.ACTIONS[rl.landing_move(_state(paddle=4))] == "right"
    assert rl.ACTIONS[rl.landing_move(_state(paddle=8))] == "stay"
    # bouncing off the right wall: from (6, 9) heading right, it comes back to column 7
    assert rl.ACTIONS[rl.landing_move(_state(paddle=9, ball=(6, 9), trail=(5, 8)))] == "left"
    assert rl.landing_move(_state(trail=(6, 4))) == -1  # rising
    assert rl.landing_move(_state(bricks=[(7, 0)])) == -1  # a brick below may deflect it


def test_mirrored_reverses_the_direction_only():
    states = torch.stack([_state(), _state(ball=(5, 0), trail=(4, 1)), _state(trail=(4, 5))])
    flipped, kept = rl.mirrored(states)
    assert kept.tolist() == [0]  # the others: no room beside the wall, or no sideways motion
    assert flipped[0, 2, 4, 6] == 1 and flipped[0, 2].sum() == 1
    assert torch.equal(flipped[0, [0, 1, 3]], states[0, [0, 1, 3]])
    assert rl.ACTIONS[rl.landing_move(flipped[0])] == "left"


def test_without_removes_one_kind():
    state = _state(bricks=[(2, 2)])[None]
    out = rl.without(state, "ball")
    assert out[0, 1].sum() == 0 and torch.equal(out[0, [0, 2, 3]], state[0, [0, 2, 3]])


def test_policy_kl_is_zero_for_equal_values_and_grows_as_temperature_falls():
    q = torch.tensor([[1.0, 0.5, 0.0]])
    other = torch.tensor([[0.5, 1.0, 0.0]])
    assert rl.policy_kl(0.1)(q, q).item() == pytest.approx(0.0, abs=1e-7)
    assert rl.policy_kl(0.1)(q, other).item() > rl.policy_kl(1.0)(q, other).item() > 0


def test_curve_averages_the_episodes_of_each_slice():
    curve = rl._curve([(10, 1.0), (20, 3.0), (90, 5.0)], frames=100, points=4)
    assert curve[0].item() == 2.0 and curve[3].item() == 5.0
    assert math.isnan(curve[1].item()) and math.isnan(curve[2].item())


def test_qnet_shapes_and_batch_independence():
    net = QNet(channels=4, actions=3).eval()
    x = torch.rand(5, 4, 10, 10, generator=torch.Generator().manual_seed(0))
    out = net(x)
    assert out.shape == (5, 3)
    assert torch.allclose(net(x[2:3]), out[2:3], atol=1e-6)
