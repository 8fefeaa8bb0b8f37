"""fit_lan's checkpoints and range check, in one process, on problems small enough to run fast.

(The runs of several processes are in test_fit_distributed.py and test_explain_dataset.py.)
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import lanlib
from lanlib import noise
from lanlib.fit import _check_lan_range, _forward
from lanlib.nets import MLPMaskNet

X = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))


class _DiesAtCall:
    """Uniform noise that raises at its ``at``-th draw, as a killed run would stop."""

    def __init__(self, at: int):
        self.at, self.calls, self.base = at, 0, noise.uniform()

    def __call__(self, inputs, generator=None):
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("killed")
        return self.base(inputs, generator=generator)


def _fit(checkpoint, draw=None, history=None, **options):
    with lanlib.seeded(1):
        model, lan = nn.Linear(3, 2), MLPMaskNet((3,), hidden=(4,))
    settings = dict(beta=0.5, steps=12, lr=0.05, batch_size=8, seed=3, checkpoint_every=5)
    lanlib.fit_lan(model, lan, X, draw or noise.uniform(), progress=False, history=history,
                   checkpoint=checkpoint, **{**settings, **options})
    return lan


def test_a_run_killed_and_resumed_from_its_checkpoint_is_the_uninterrupted_run(tmp_path):
    whole, whole_history = tmp_path / "whole.pt", lanlib.History()
    expected = _fit(whole, history=whole_history)
    assert torch.load(whole, weights_only=True)["step"] == 12
    killed = tmp_path / "killed.pt"
    with pytest.raises(RuntimeError, match="killed"):
        _fit(killed, _DiesAtCall(8))
    assert torch.load(killed, weights_only=True)["step"] == 5  # the last one saved
    history = lanlib.History()
    resumed = _fit(killed, history=history)
    for a, b in zip(expected.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert len(history) == len(whole_history) == 12
    for key in ("objective", "distortion", "mask_mean"):
        assert history[key] == whole_history[key]


@pytest.mark.parametrize("change", [{"lr": 0.1}, {"steps": 13}, {"beta": 0.4},
                                    {"batch_size": 4}, {"seed": 4}, {"loss": "mse"}])
def test_a_checkpoint_of_another_run_is_refused(tmp_path, change):
    path = tmp_path / "run.pt"
    _fit(path, steps=5)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=f"another run .*{next(iter(change))}"):
        _fit(path, **{"steps": 5, **change})
    assert path.read_bytes() == before  # nothing lost


def test_checkpoints_are_saved_every_so_many_steps(tmp_path):
    path = tmp_path / "run.pt"
    with pytest.raises(RuntimeError):
        _fit(path, _DiesAtCall(3), checkpoint_every=1)
    assert torch.load(path, weights_only=True)["step"] == 2


@pytest.mark.parametrize("every", [0, -1, True, 1.5])
def test_checkpoint_every_must_be_a_positive_integer(tmp_path, every):
    with pytest.raises(ValueError, match="checkpoint_every"):
        _fit(tmp_path / "run.pt", checkpoint_every=every)
    assert not (tmp_path / "run.pt").exists()


def test_a_checkpoint_needs_a_seed(tmp_path):
    with pytest.raises(ValueError, match="needs a seed"):
        _fit(tmp_path / "run.pt", seed=None)


def test_an_unreadable_checkpoint_is_reported(tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        _fit(path)
    assert path.read_bytes() == b"not a checkpoint"


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (0.0, 0.0), (1.0, 1.0)])
def test_masks_in_the_closed_unit_interval_pass_the_range_check(low, high):
    _check_lan_range(torch.tensor(low), torch.tensor(high), 50)


@pytest.mark.parametrize(("low", "high", "advice"), [
    (-0.1, 0.5, "; end the mask network with a sigmoid$"),
    (0.2, 1.5, "; end the mask network with a sigmoid$"),
    (math.nan, 0.5, "; its training diverged: lower lr$"),
    (0.2, math.nan, "; its training diverged: lower lr$"),
])
def test_masks_out_of_range_get_the_advice_that_fits(low, high, advice):
    with pytest.raises(ValueError, match=f"up to step 50 .*{advice}") as error:
        _check_lan_range(torch.tensor(low), torch.tensor(high), 50)
    assert ("sigmoid" in str(error.value)) != ("diverged" in str(error.value))


class _Seen(nn.Module):
    """A 1x1 convolution that records the memory format and the autocast dtype it ran with."""

    def __init__(self):
        super().__init__()
        self.conv, self.seen = nn.Conv2d(3, 2, 1), []

    def forward(self, x):
        autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        self.seen.append((x.is_contiguous(memory_format=torch.channels_last), autocast))
        return self.conv(x).mean((2, 3))


IMAGES = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("options", "seen"), [
    ({"channels_last": True}, (True, None)),
    ({"amp": True}, (False, torch.bfloat16)),
    ({"amp": torch.float16}, (False, torch.float16)),
    ({"amp": torch.bfloat16, "channels_last": True}, (True, torch.bfloat16)),
])
def test_the_accelerated_forward_runs_f_as_asked_and_returns_float32(options, seen):
    model = _Seen()
    plain = model(IMAGES)
    out = _forward(model, **options)(IMAGES)
    assert model.seen[-1] == seen and out.dtype == torch.float32
    assert torch.allclose(out, plain, atol=0.05)
    rounded = bool((out - plain).abs().max() > 1e-5)  # computed in 16 bits, or not
    assert rounded == (seen[1] is not None)


def test_the_plain_forward_is_f_itself_and_other_inputs_pass_unchanged():
    model = _Seen()
    assert _forward(model) is model and _forward(model, amp=None) is model
    flat = nn.Linear(3, 2)
    x = torch.rand(2, 3)
    assert torch.equal(_forward(flat, channels_last=True)(x), flat(x))  # not 4-D: left as is
    pair = _forward(lambda x: (x, x), amp=True)(x)  # a non-tensor output is returned as is
    assert isinstance(pair, tuple)


@pytest.mark.parametrize(("options", "error"), [
    ({"amp": "yes"}, ValueError), ({"amp": torch.int32}, ValueError),
    ({"compile": "yes"}, TypeError), ({"compile": 1}, TypeError),
])
def test_bad_acceleration_options_are_refused(options, error):
    with pytest.raises(error, match=next(iter(options))):
        _forward(nn.Linear(3, 2), **options)
