"""Behaviours of lanlib.fit that the mutation run (issue 21) found unchecked.

Each test is small and fast: mutmut runs a mutant's fastest tests only.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import pytest
import torch
from test_fit_values import _DiesAtCall
from torch import nn

import lanlib
from lanlib import noise
from lanlib.fit import _check_objective, _run_description, _scheduler

X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))


class _Shared(nn.Module):
    """A LAN whose mask ``sigmoid(w)`` is the same for every input; it records the batches."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.batches = []

    def forward(self, x):
        self.batches.append(x.detach().clone())
        return torch.sigmoid(self.w).expand_as(x)


def _model(features: int = 3) -> nn.Module:
    with lanlib.seeded(1):
        return nn.Sequential(nn.Flatten(), nn.Linear(features, 2))


def _fit_lan(lan=None, data=X, draw=None, **options):
    lan = _Shared() if lan is None else lan
    settings = dict(beta=0.5, steps=1, seed=3, progress=False)
    lanlib.fit_lan(_model(), lan, data, draw or noise.uniform(), **{**settings, **options})
    return lan


# --- fit_lan's defaults


def test_fit_lan_draws_batches_of_64_inputs_by_default():
    lan = _fit_lan(steps=2)
    assert [len(b) for b in lan.batches] == [64, 64]


def test_fit_lans_first_adam_step_moves_each_weight_by_the_default_rate_of_1e_3():
    lan = _fit_lan()
    assert torch.allclose(lan.w.detach().abs(), torch.full((3,), 1e-3), rtol=1e-4)


def test_fit_lans_multiplier_moves_by_the_default_rate_of_0_01_per_step():
    history = lanlib.History()
    _fit_lan(beta=None, max_distortion=1e-4, steps=3, history=history)
    # lambda = exp(rho), rho starts at 0 and Adam moves it by its rate at each step: the
    # bound is far below the distortion, so rho climbs
    assert history["multiplier"][0] == 1.0
    assert history["multiplier"][1:] == pytest.approx([math.exp(0.01), math.exp(0.02)], rel=1e-5)


def test_fit_lan_shows_its_progress_bar_by_default_and_none_when_asked(capsys):
    lanlib.fit_lan(_model(), _Shared(), X, noise.uniform(), beta=0.5, steps=1, seed=3)
    assert "fit_lan:" in capsys.readouterr().err
    _fit_lan(progress=False)
    assert capsys.readouterr().err == ""


def test_fit_lan_saves_a_checkpoint_every_100_steps_by_default(tmp_path):
    path = tmp_path / "run.pt"
    with pytest.raises(RuntimeError, match="killed"):
        _fit_lan(data=X[:4], batch_size=4, steps=102, draw=_DiesAtCall(101), checkpoint=path)
    assert torch.load(path, weights_only=True)["step"] == 100


# --- fit_lan's loop


def test_fit_lan_evaluates_f_twice_per_step_clean_and_corrupted():
    calls = []
    model = _model()
    model.register_forward_hook(lambda *_: calls.append(1))
    lanlib.fit_lan(model, _Shared(), X, noise.uniform(), beta=0.5, steps=3, seed=0,
                   progress=False)
    assert len(calls) == 6


def test_fit_lan_with_gates_rewards_the_expected_share_of_the_lans_gates():
    history = lanlib.History()
    _fit_lan(gates="hard_concrete", history=history)
    # the LAN's output 1/2 is read as logits log(1/2 / (1 - 1/2)) = 0
    expected = lanlib.gates.hard_concrete().expected_replaced(torch.zeros(()))
    assert history["expected_replaced"][0] == pytest.approx(float(expected))


def test_fit_lan_puts_the_total_variation_of_the_lans_masks_in_the_objective():
    lan, history = _Shared(), lanlib.History()
    with torch.no_grad():
        lan.w.copy_(torch.tensor([-1.0, 0.0, 1.0]))
    _fit_lan(lan, data=X[:, None], tv=0.1, history=history)
    assert history["tv"][0] > 0


class _OutOfRangeOnce(_Shared):
    """A LAN whose second output lies below 0: a step between two range checks."""

    def forward(self, x):
        mask = super().forward(x)
        return mask - 1.0 if len(self.batches) == 2 else mask


def test_a_lan_output_out_of_range_between_two_checks_is_still_found():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*values in \[-0\.4"):
        _fit_lan(_OutOfRangeOnce(), steps=3)


class _LateUnused(_Shared):
    """A LAN with a weight that takes part in its first step only."""

    def __init__(self):
        super().__init__()
        self.first = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        mask = super().forward(x)
        if len(self.batches) == 1:
            mask = torch.sigmoid(self.w + self.first).expand_as(x)
        return mask


def test_a_lan_weight_left_out_of_a_step_is_not_moved_at_that_step():
    lan = _fit_lan(_LateUnused(), steps=3, lr=0.1)
    # one Adam step of 0.1 at the first step, none after (no gradient: Adam skips it)
    assert torch.allclose(lan.first.detach().abs(), torch.full((3,), 0.1), rtol=1e-4)


def test_checkpointed_runs_with_other_seeds_draw_other_batches(tmp_path):
    first = [_fit_lan(seed=seed, checkpoint=tmp_path / f"{seed}.pt").batches[0]
             for seed in (1, 1 + 2**16)]
    assert not torch.equal(*first)


# --- fit_lan's checkpoints


def _fit_constrained(path, draw=None, history=None):
    with lanlib.seeded(1):
        lan = lanlib.nets.MLPMaskNet((3,), hidden=(4,))
    return _fit_lan(lan, draw=draw, beta=None, max_distortion=0.05, steps=6, lr=0.05,
                    multiplier_lr=0.1, batch_size=8, checkpoint=path, checkpoint_every=2,
                    history=history)


def test_a_constrained_run_resumed_from_its_checkpoint_is_the_uninterrupted_run(tmp_path):
    whole_history = lanlib.History()
    expected = _fit_constrained(tmp_path / "whole.pt", history=whole_history)
    killed = tmp_path / "killed.pt"
    with pytest.raises(RuntimeError, match="killed"):
        _fit_constrained(killed, _DiesAtCall(4))
    history = lanlib.History()
    resumed = _fit_constrained(killed, history=history)
    for a, b in zip(expected.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert history["multiplier"] == whole_history["multiplier"]
    assert len(set(history["multiplier"])) > 1  # the multiplier did move


@pytest.mark.parametrize(("before", "change"), [
    ({"beta": None, "max_distortion": 0.1}, {"multiplier_lr": 0.02}),
    ({"beta": None, "max_distortion": 0.1}, {"max_distortion": 0.2}),
    ({}, {"gates": "hard_concrete"}),
    ({"data": X[:, None]}, {"tv": 0.1}),
    ({}, {"lr": 0.01}),
])
def test_a_checkpoint_names_the_one_setting_that_differs(tmp_path, before, change):
    path = tmp_path / "run.pt"
    _fit_lan(checkpoint=path, **before)
    with pytest.raises(ValueError, match=rf"another run \(it differs in {next(iter(change))}\)"):
        _fit_lan(checkpoint=path, **{**before, **change})


def test_a_checkpoint_with_gates_is_resumed(tmp_path):
    path = tmp_path / "run.pt"
    _fit_lan(checkpoint=path, gates="hard_concrete")
    _fit_lan(checkpoint=path, gates="hard_concrete")  # the finished run, read back


def test_a_file_without_a_run_description_is_of_another_run(tmp_path):
    path = tmp_path / "run.pt"
    torch.save({"step": 1}, path)
    with pytest.raises(ValueError, match="another run"):
        _fit_lan(checkpoint=path)


@pytest.mark.parametrize("forced", [False, True])
def test_a_checkpoint_holding_other_objects_than_tensors_is_not_unpickled(
        tmp_path, monkeypatch, forced):
    if forced:  # torch's switch for loads that do not say weights_only
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = tmp_path / "run.pt"
    torch.save({"run": {}, "path": PurePosixPath("a")}, path)
    with pytest.raises(ValueError, match="cannot be read"):
        _fit_lan(checkpoint=path)


def test_the_run_description_keeps_plain_values_and_names_the_type_of_others():
    assert _run_description(a=None, b=True, c=2, d=0.5, e="kl", f=nn.Linear(1, 1)) == {
        "a": None, "b": True, "c": 2, "d": 0.5, "e": "kl", "f": "torch.nn.modules.linear.Linear"}


# --- fit_sample_masks


@pytest.mark.parametrize(("schedule", "factors"), [
    ("linear", [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]),
    ("cosine", [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2,
                0.0, 0.0]),
])
def test_the_schedules_scale_the_rate_step_by_step(schedule, factors):
    optimiser = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    scheduler = _scheduler(optimiser, schedule, 4)
    rates = []
    for _ in factors:
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        scheduler.step()
    assert rates == pytest.approx([2.0 * f for f in factors], abs=1e-12)


@pytest.mark.parametrize("max_distortion", [None, 0.05])
def test_a_decaying_schedule_leaves_the_first_step_and_slows_the_second(max_distortion):
    def masks(schedule, steps):
        trade_off = {"beta": 0.5} if max_distortion is None else {"max_distortion": 0.05}
        return lanlib.fit_sample_masks(_model(), X[:4], noise.uniform(), steps=steps, seed=0,
                                       progress=False, schedule=schedule, **trade_off)

    assert torch.equal(masks("linear", 1), masks("constant", 1))  # factor 1 at step 0
    assert not torch.equal(masks("linear", 2), masks("constant", 2))


@pytest.mark.parametrize("shape", [(True,), (1.5,)])
def test_mask_shape_sizes_must_be_integers_not_bools(shape):
    with pytest.raises(TypeError, match="mask_shape"):
        lanlib.fit_sample_masks(_model(), X[:2], noise.uniform(), beta=0.5, mask_shape=shape,
                                steps=1, progress=False)


def test_fit_sample_masks_takes_300_steps_by_default():
    history = lanlib.History()
    lanlib.fit_sample_masks(_model(), X[:1], noise.uniform(), beta=0.5, seed=0, progress=False,
                            history=history)
    assert len(history) == 300


def test_fit_sample_masks_shows_its_progress_bar_by_default(capsys):
    lanlib.fit_sample_masks(_model(), X[:1], noise.uniform(), beta=0.5, steps=1, seed=0)
    assert "fit_sample_masks:" in capsys.readouterr().err


class _Recording(nn.Module):
    """F on (N, 2, 2, 2) inputs; records whether each input is in the default memory format."""

    def __init__(self):
        super().__init__()
        self.f = _model(8)
        self.contiguous = []

    def forward(self, x):
        self.contiguous.append(x.is_contiguous())
        return self.f(x)


def test_fit_sample_masks_neither_compiles_f_nor_changes_its_memory_format_by_default(
        monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("torch.compile called")

    monkeypatch.setattr(torch, "compile", refused)
    model = _Recording()
    lanlib.fit_sample_masks(model, X[:2, :2].repeat(1, 4).reshape(2, 2, 2, 2), noise.uniform(),
                            beta=0.5, steps=1, seed=0, progress=False)
    assert model.contiguous and all(model.contiguous)


@pytest.mark.parametrize(("compile", "options"), [(True, {}), ({"mode": "max"}, {"mode": "max"})])
def test_fit_sample_masks_runs_f_through_torch_compile_with_the_options_given(
        monkeypatch, compile, options):
    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(kwargs)

        def run(x):
            compiled.append("ran")
            return module(x)

        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    lanlib.fit_sample_masks(_model(), X[:2], noise.uniform(), beta=0.5, steps=1, seed=0,
                            progress=False, compile=compile)
    assert compiled[0] == options and "ran" in compiled


# --- fit_sample_masks_over_beta


def test_a_beta_sweep_takes_betas_as_a_tensor():
    masks = lanlib.fit_sample_masks_over_beta(_model(), X[:2], noise.uniform(),
                                              torch.tensor([0.5, 1.0]), steps=1, seed=0,
                                              progress=False)
    assert masks.shape == (2, 2, 3)


def _sweep_weights(dtype: torch.dtype) -> torch.Tensor:
    """The weights of the rows' losses in a sweep over betas 0.3 and 0.7, on two inputs."""
    grads = []

    def loss(reference, corrupted):  # a distortion of 1 per row, in float64
        one = torch.ones(len(reference), dtype=torch.float64, requires_grad=True)
        one.register_hook(grads.append)
        return one

    lanlib.fit_sample_masks_over_beta(_model().to(dtype), X[:2].to(dtype), noise.uniform(),
                                      [0.3, 0.7], loss=loss, steps=1, seed=0, progress=False)
    return grads[0]


def test_a_beta_sweep_weighs_the_rows_losses_by_top_beta_over_beta_in_float64():
    assert torch.equal(_sweep_weights(torch.float64),
                       torch.tensor([0.7 / 0.3] * 2 + [1.0] * 2, dtype=torch.float64))


def test_a_float32_beta_sweep_weighs_the_losses_in_float32():
    expected = torch.tensor([0.7 / 0.3] * 2 + [1.0] * 2, dtype=torch.float64)
    assert torch.equal(_sweep_weights(torch.float32), expected.float().double())


def test_a_float64_fits_multipliers_are_float64():
    grads = []

    def loss(reference, corrupted):  # a distortion of 1 per row; its gradient is lambda
        one = torch.ones(len(reference), dtype=torch.float64, requires_grad=True)
        one.register_hook(grads.append)
        return one

    lanlib.fit_sample_masks(_model().double(), X[:2].double(), noise.uniform(), loss=loss,
                            max_distortion=1e-4, steps=2, seed=0, progress=False)
    # Adam's first step ascends rho = log(lambda) from 0 by 0.05 * g / (|g| + 1e-8)
    g = 1 - 1e-4
    expected = math.exp(0.05 * g / (g + 1e-8))
    assert torch.equal(grads[0], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(grads[1], torch.full((2,), expected, dtype=torch.float64), rtol=1e-13,
                          atol=0)


class _Autocast(_Recording):
    """F on (N, 2, 2, 2) inputs; records the memory format and whether autocast is on."""

    def __init__(self):
        super().__init__()
        self.channels_last, self.autocast = [], []

    def forward(self, x):
        self.channels_last.append(x.is_contiguous(memory_format=torch.channels_last))
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().forward(x)


@pytest.mark.parametrize("option", ["amp", "channels_last"])
def test_fit_sample_masks_runs_f_under_the_acceleration_asked_for(option):
    model = _Autocast()
    x = torch.randn(2, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    lanlib.fit_sample_masks(model, x, noise.uniform(), beta=0.5, steps=1, seed=0,
                            progress=False, **{option: True})
    assert model.autocast and all(model.autocast) == (option == "amp")
    assert all(model.channels_last) == (option == "channels_last")


def test_fit_sample_masks_evaluates_f_once_on_the_inputs_and_once_per_step():
    calls = []
    model = _model()
    model.register_forward_hook(lambda *_: calls.append(1))
    lanlib.fit_sample_masks(model, X[:2], noise.uniform(), beta=0.5, steps=3, seed=0,
                            progress=False)
    assert len(calls) == 4


def test_the_callback_gets_each_step_number_and_the_masks_as_returned():
    seen = []
    masks = lanlib.fit_sample_masks(_model(), X[:2], noise.uniform(), beta=0.5, steps=3, seed=0,
                                    progress=False, callback=lambda *args: seen.append(args))
    assert [step for step, _ in seen] == [1, 2, 3]
    assert torch.equal(seen[-1][1], masks)


class _NaNFrom:
    """A per-sample squared-error loss that turns NaN from its ``at``-th call on."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, reference, corrupted):
        self.calls += 1
        value = (reference - corrupted).pow(2).sum(1)
        return value * math.nan if self.calls >= self.at else value


def test_the_last_step_of_a_fit_is_checked():
    with pytest.raises(ValueError, match="not finite at step 3"):
        lanlib.fit_sample_masks(_model(), X[:2], noise.uniform(), beta=0.5, loss=_NaNFrom(3),
                                steps=3, seed=0, progress=False)


class _NaNAfterFirst:
    """Uniform noise whose draws after the first are NaN."""

    def __init__(self):
        self.calls, self.base = 0, noise.uniform()

    def __call__(self, inputs, generator=None):
        self.calls += 1
        eta = self.base(inputs, generator=generator)
        return eta if self.calls == 1 else eta * math.nan


def test_only_the_first_noise_draw_is_checked_later_ones_show_in_the_objective():
    with pytest.raises(ValueError, match="objective is not finite at step 2"):
        lanlib.fit_sample_masks(_model(), X[:2], _NaNAfterFirst(), beta=0.5, steps=2, seed=0,
                                progress=False)


def test_a_first_noise_draw_that_is_not_finite_gets_advice():
    with pytest.raises(ValueError, match=r"; give noise with finite values \(check its"):
        lanlib.fit_sample_masks(_model(), X[:2], lambda x, generator=None: x * math.nan,
                                beta=0.5, steps=1, seed=0, progress=False)


@pytest.mark.parametrize(("bad", "named", "not_named"), [
    ("distortion", "the distortion L_F", "the masks are NaN"),
    ("mask_mean", "the masks are NaN", "the distortion"),
])
def test_a_non_finite_objective_names_only_the_terms_that_are_not_finite(bad, named, not_named):
    terms = {"distortion": torch.zeros(2), "mask_mean": torch.zeros(2)}
    terms[bad] = torch.tensor([0.0, math.nan])
    with pytest.raises(ValueError) as error:
        _check_objective(torch.tensor(math.nan), terms, 7)
    assert named in str(error.value) and not_named not in str(error.value)
