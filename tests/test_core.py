"""Unit tests of the corruption, the noise, the losses, the objective and the metrics."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import lanlib
from lanlib import losses, noise
from lanlib.chapters.method import known_pixels_task
from lanlib.metrics import auroc, output_agreement


def test_corrupt_is_eq2_and_broadcasts_a_channel_shared_mask():
    x = torch.rand(2, 3, 4, 4)
    eta = torch.rand(2, 3, 4, 4)
    mask = torch.rand(2, 1, 4, 4)
    expected = mask * eta + (1 - mask) * x
    torch.testing.assert_close(lanlib.corrupt(x, mask, eta), expected)
    assert torch.equal(lanlib.corrupt(x, torch.zeros(2, 1, 4, 4), eta), x)
    assert torch.equal(lanlib.corrupt(x, torch.ones(2, 1, 4, 4), eta), eta)


@pytest.mark.parametrize("what, mask_shape, eta_shape", [
    ("mask", (2, 2, 4, 4), (2, 3, 4, 4)),
    ("noise", (2, 1, 4, 4), (2, 3, 5, 4)),
])
def test_corrupt_rejects_shapes_that_do_not_broadcast(what, mask_shape, eta_shape):
    with pytest.raises(ValueError, match=f"{what} of shape .* does not broadcast"):
        lanlib.corrupt(torch.rand(2, 3, 4, 4), torch.rand(mask_shape), torch.rand(eta_shape))


def test_importance_is_one_minus_mask():
    mask = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(lanlib.importance(mask), torch.tensor([1.0, 0.75, 0.0]))


def test_constant_noise():
    eta = noise.constant(0.3)(torch.rand(5, 2, 3))
    assert eta.shape == (5, 2, 3) and torch.all(eta == 0.3)


def test_uniform_noise_range_and_reproducibility_without_global_state():
    x = torch.zeros(64, 10)
    state = torch.random.get_rng_state()
    a = noise.uniform(-2.0, 3.0)(x, generator=torch.Generator().manual_seed(1))
    b = noise.uniform(-2.0, 3.0)(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.random.get_rng_state(), state), "global RNG state was used"
    assert torch.equal(a, b)
    assert a.min() >= -2.0 and a.max() < 3.0 and a.std() > 1.0
    with pytest.raises(ValueError, match="low < high"):
        noise.uniform(1.0, 1.0)


def test_bootstrap_draws_whole_samples_from_tensor_and_dataset():
    pool = torch.arange(10.0).reshape(10, 1, 1).expand(10, 2, 3).clone()
    x = torch.zeros(32, 2, 3)
    g = torch.Generator().manual_seed(0)
    for source in (pool, TensorDataset(pool, torch.zeros(10))):
        eta = noise.bootstrap(source)(x, generator=g)
        assert eta.shape == x.shape
        # every drawn sample is one whole sample of the pool
        assert torch.all(eta.flatten(1).min(1).values == eta.flatten(1).max(1).values)
        assert set(eta[:, 0, 0].tolist()) <= set(range(10))
        assert len(set(eta[:, 0, 0].tolist())) > 3


def test_bootstrap_rejects_samples_of_another_shape_and_bad_pools():
    with pytest.raises(ValueError, match=r"shape \(2, 3\) .* inputs have \(4,\)"):
        noise.bootstrap(torch.rand(5, 2, 3))(torch.rand(3, 4))
    with pytest.raises(TypeError, match="floating point"):
        noise.bootstrap(torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one sample"):
        noise.bootstrap(torch.rand(0, 3))
    with pytest.raises(TypeError, match="tensor of samples"):
        noise.bootstrap(3.0)


def test_losses_are_per_sample_and_zero_on_identical_outputs():
    ref = torch.randn(4, 5)
    out = torch.randn(4, 5)
    for name in ("kl", "ce", "mse"):
        value = losses.resolve(name)(ref, out)
        assert value.shape == (4,)
    assert torch.allclose(losses.kl(ref, ref), torch.zeros(4), atol=1e-6)
    assert torch.all(losses.kl(ref, out) > 0)
    p = ref.softmax(1)
    manual = (p * (p.log() - out.log_softmax(1))).sum(1)
    torch.testing.assert_close(losses.kl(ref, out), manual)
    manual_ce = -out.log_softmax(1)[torch.arange(4), ref.argmax(1)]
    torch.testing.assert_close(losses.ce(ref, out), manual_ce)
    torch.testing.assert_close(losses.mse(ref, out), ((ref - out) ** 2).mean(1))


def test_callable_losses_scalar_or_per_sample_and_errors():
    ref, out = torch.randn(3, 2), torch.randn(3, 2)
    scalar = losses.resolve(lambda r, o: (r - o).abs().mean())
    assert scalar(ref, out).shape == (3,)
    with pytest.raises(ValueError, match="one value per sample"):
        losses.resolve(lambda r, o: (r - o))(ref, out)
    with pytest.raises(TypeError, match="must return a tensor"):
        losses.resolve(lambda r, o: 1.0)(ref, out)
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        losses.resolve("l1")
    with pytest.raises(TypeError, match="loss must be"):
        losses.resolve(3)


def test_objective_matches_the_equation_by_hand():
    model = nn.Linear(6, 3)
    x = torch.rand(4, 6)
    mask = torch.rand(4, 6)
    eta = torch.rand(4, 6)
    terms = lanlib.objective(model, x, mask, lambda inputs, generator=None: eta, beta=2.0)
    with torch.no_grad():
        p = model(x).log_softmax(1)
        q = model(mask * eta + (1 - mask) * x).log_softmax(1)
    expected = (p.exp() * (p - q)).sum(1) - 2.0 * mask.mean(1)
    torch.testing.assert_close(terms["objective"].detach(), expected)
    torch.testing.assert_close(terms["mask_mean"], mask.mean(1))


def test_upsample_mask_broadcasts_channels_and_interpolates_space():
    coarse = torch.rand(2, 1, 4, 4)
    full = lanlib.upsample_mask(coarse, torch.Size((2, 3, 16, 16)))
    assert full.shape == (2, 3, 16, 16)
    assert torch.equal(full[:, 0], full[:, 2])
    assert full.min() >= coarse.min() - 1e-6 and full.max() <= coarse.max() + 1e-6
    with pytest.raises(ValueError, match="does not broadcast"):
        lanlib.upsample_mask(torch.rand(2, 2, 4, 4), torch.Size((2, 3, 16, 16)))
    with pytest.raises(ValueError, match="one entry per input dimension"):
        lanlib.upsample_mask(torch.rand(2, 4, 4), torch.Size((2, 3, 16, 16)))


@pytest.mark.parametrize("smooth, expected", [
    (True, [0.0, 0.25, 0.75, 1.0]),  # linear interpolation between the element centres
    (False, [0.0, 0.0, 1.0, 1.0]),  # each coarse element becomes a block
])
def test_upsample_mask_interpolates_smoothly_or_by_blocks(smooth, expected):
    line = torch.tensor([[[0.0, 1.0]]])  # (N, C, L)
    out = lanlib.upsample_mask(line, torch.Size((1, 2, 4)), smooth=smooth)
    assert out.tolist() == [[expected, expected]]
    square = lanlib.upsample_mask(line.reshape(1, 1, 1, 2), torch.Size((1, 1, 2, 4)),
                                  smooth=smooth)
    assert square.tolist() == [[[expected, expected]]]
    cube = lanlib.upsample_mask(line.reshape(1, 1, 1, 1, 2), torch.Size((1, 1, 1, 1, 4)),
                                smooth=smooth)
    assert cube.flatten().tolist() == expected
    assert lanlib.upsample_mask(line, torch.zeros(1, 2, 4)).flatten().tolist() == [
        0.0, 0.25, 0.75, 1.0] * 2  # smooth by default; a tensor gives its shape


def test_upsample_mask_keeps_a_full_size_mask_and_refuses_four_spatial_dimensions():
    mask = torch.rand(2, 1, 3)
    assert torch.equal(lanlib.upsample_mask(mask, torch.Size((2, 1, 3))), mask)
    flat = torch.rand(2, 1)
    assert torch.equal(lanlib.upsample_mask(flat, torch.Size((2, 5))), flat.expand(2, 5))
    with pytest.raises(ValueError, match="over 4 spatial dimensions"):
        lanlib.upsample_mask(torch.rand(1, 1, 1, 1, 1, 1), torch.Size((1, 1, 2, 2, 2, 2)))


def test_frozen_restores_the_mode_of_every_submodule_as_it_was():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 3)))
    model.train()
    model[1][0].eval()  # one submodule in eval mode inside a model in training mode
    with lanlib.frozen(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, True, False, True]
    model.eval()
    model[0].train()
    with lanlib.frozen(model):
        pass
    assert [m.training for m in model.modules()] == [False, True, False, False, False]


def test_frozen_restores_mode_and_flags_even_when_the_body_raises():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    model.train()
    model[2].weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="boom"), lanlib.frozen(model):
        assert not model.training and not model[1].training
        assert not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    assert model.training and model[1].training
    assert model[0].weight.requires_grad and not model[2].weight.requires_grad


def test_auroc_known_values_and_ties():
    assert auroc(torch.tensor([0.9, 0.8, 0.1, 0.3]), torch.tensor([1, 1, 0, 0])) == 1.0
    assert auroc(torch.tensor([0.1, 0.2, 0.9, 0.8]), torch.tensor([1, 1, 0, 0])) == 0.0
    assert auroc(torch.ones(6), torch.tensor([1, 0, 1, 0, 1, 0])) == 0.5
    # 3 positives vs 2 negatives: pairs won 5, tied 1 of 6
    assert auroc(torch.tensor([3.0, 2.0, 1.0, 1.0, 0.0]),
                 torch.tensor([1, 1, 1, 0, 0])) == pytest.approx(5.5 / 6)
    with pytest.raises(ValueError, match="both relevant and irrelevant"):
        auroc(torch.rand(4), torch.ones(4))
    with pytest.raises(ValueError, match="one shape"):
        auroc(torch.rand(4), torch.ones(5))


def test_output_agreement_counts_surviving_predictions():
    task = known_pixels_task(200, seed=1)
    zero, one = torch.zeros(200, 1, 12, 12), torch.ones(200, 1, 12, 12)
    flip = noise.constant(0.0)
    assert output_agreement(task.model, task.inputs, zero, flip) == 1.0
    everything = output_agreement(task.model, task.inputs, one, flip)
    assert everything < 0.8  # all inputs become one image: one class for all
    irrelevant = (~task.truth).float().expand(200, 1, 12, 12)
    assert output_agreement(task.model, task.inputs, irrelevant, flip) == 1.0


def test_perturbation_curves_rank_the_truth_above_chance():
    task = known_pixels_task(64, seed=0)
    truth = task.truth.float().expand(64, 1, 12, 12)

    def curve(importance, mode):
        return lanlib.metrics.perturbation_curve(
            task.model, task.inputs, importance, noise.uniform(), mode=mode, steps=10,
            generator=torch.Generator().manual_seed(0))

    deletion = curve(truth, "deletion")
    assert deletion["probs"].shape == (64, 11) and deletion["fractions"][-1] == 1
    # nothing deleted: the original prediction's own probability, always > 1/2 here
    assert torch.all(deletion["probs"][:, 0] > 0.5)
    assert deletion["auc"].mean() < curve(torch.rand(64, 1, 12, 12), "deletion")["auc"].mean()
    assert curve(truth, "insertion")["auc"].mean() > curve(1 - truth, "insertion")["auc"].mean()
    # a coarse map (one value per 4x4 block) is accepted and ranked by block
    coarse = curve(torch.rand(64, 1, 3, 3), "deletion")
    assert coarse["probs"].shape == (64, 11)
    with pytest.raises(ValueError, match="mode must be"):
        curve(truth, "both")


def test_history_records_named_series():
    history = lanlib.History()
    history.extend([{"a": torch.tensor(1.0), "b": torch.tensor(2.0)}] * 3)
    assert history.a == [1.0] * 3 and history["b"] == [2.0] * 3 and len(history) == 3
    with pytest.raises(AttributeError, match="no series 'c'"):
        _ = history.c


def test_faithfulness_scores_every_fill_and_ranks_the_truth_first():
    task = known_pixels_task(64, seed=2)
    truth = task.truth.float().expand(64, 1, 12, 12)
    fills = {"uniform": noise.uniform(), "blur": noise.blur(3.0), "grey": noise.constant(0.5)}
    right = lanlib.metrics.faithfulness(task.model, task.inputs, truth, fills, steps=8)
    wrong = lanlib.metrics.faithfulness(task.model, task.inputs, 1 - truth, fills, steps=8)
    assert list(right) == [f"{mode}/{name}" for mode in ("deletion", "insertion")
                           for name in fills]
    for name in fills:
        assert right[f"deletion/{name}"] < wrong[f"deletion/{name}"]
        assert right[f"insertion/{name}"] > wrong[f"insertion/{name}"]
    # the same seed meets the same draws: scoring twice gives the same numbers
    assert lanlib.metrics.faithfulness(task.model, task.inputs, truth, fills, steps=8) == right
    with pytest.raises(ValueError, match="fills is empty"):
        lanlib.metrics.faithfulness(task.model, task.inputs, truth, {})


def test_check_inputs_takes_batched_finite_floats_and_detaches_them():
    from lanlib.core import check_inputs

    x = torch.rand(1, 1, requires_grad=True)
    out = check_inputs(x)
    assert torch.equal(out, x) and not out.requires_grad
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        check_inputs([[0.0]])
    with pytest.raises(TypeError, match="floating point, got torch.int64"):
        check_inputs(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"batched \(N, ...\), got shape \(3,\)"):
        check_inputs(torch.zeros(3))
    for empty in (torch.zeros(0, 3), torch.zeros(3, 0)):
        with pytest.raises(ValueError, match="inputs are empty"):
            check_inputs(empty)
    with pytest.raises(ValueError, match="1 of 4 values are NaN or infinite; clean"):
        check_inputs(torch.tensor([[0.0, 1.0], [float("inf"), 2.0]]))


def test_check_mask_takes_the_closed_unit_interval_only():
    from lanlib.core import check_mask

    x = torch.zeros(2, 3)
    edges = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]])
    assert check_mask(edges, x) is edges
    assert check_mask(torch.ones(2, 1), x).shape == (2, 1)  # broadcasts
    for bad in (-1e-6, 1 + 1e-6, float("nan")):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            check_mask(torch.full((2, 3), bad), x)
    with pytest.raises(TypeError, match="the LAN's output must be a tensor, got float"):
        check_mask(0.5, x, source="the LAN's output")
    with pytest.raises(ValueError, match="does not broadcast"):
        check_mask(torch.ones(2, 2), x)


def test_checks_of_numbers_draw_their_boundaries_where_the_docs_say():
    import numpy as np

    from lanlib import core

    assert core.check_trade_off(0.5, None) == (0.5, None)
    assert core.check_trade_off(None, np.float32(0.25)) == (None, 0.25)
    with pytest.raises(ValueError, match="got neither"):
        core.check_trade_off(None, None)
    with pytest.raises(ValueError, match="got both"):
        core.check_trade_off(1.0, 1.0)
    assert core.check_tv(0) == 0.0 and isinstance(core.check_tv(0), float)
    for bad in (-0.1, math.inf, True, "0"):
        with pytest.raises(ValueError, match="tv must be a number >= 0"):
            core.check_tv(bad)
    assert core.check_positive("lr", 1e-12) == 1e-12
    for bad in (0, -1.0, math.inf, math.nan, True, None):
        with pytest.raises(ValueError, match="lr must be a positive number"):
            core.check_positive("lr", bad)
    assert core.check_steps(1) == 1 and type(core.check_steps(np.int64(3))) is int
    for bad in (0, -2, True, 2.0):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            core.check_steps(bad)
    assert core.check_seed(None) is None
    assert core.check_seed(2**64 - 1) == 2**64 - 1 and core.check_seed(-(2**63)) == -(2**63)
    assert type(core.check_seed(np.int64(5))) is int
    for bad in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError, match="fit in 64 bits"):
            core.check_seed(bad)
    for bad in (True, 1.7, "3"):
        with pytest.raises(TypeError, match="integer or None"):
            core.check_seed(bad)
    assert core.check_hyper(None, 0.5, 3, 0.1) == (None, 0.5, 3, 0.1)
    with pytest.raises(TypeError, match="must be a torch.nn.Module, got function"):
        core.check_module("model", lambda x: x)


def test_model_output_needs_one_row_per_input():
    from lanlib.core import model_output

    x = torch.rand(3, 2)
    assert model_output(nn.Linear(2, 1), x).shape == (3, 1)
    with pytest.raises(TypeError, match="tensor of outputs"):
        model_output(_Tuple(), x)
    with pytest.raises(ValueError, match=r"returned shape \(\) for 3 inputs"):
        model_output(_Sum(), x)
    with pytest.raises(ValueError, match=r"returned shape \(2,\) for 3 inputs"):
        model_output(_Two(), x)


class _Tuple(nn.Module):
    def forward(self, x):
        return x, x


class _Sum(nn.Module):
    def forward(self, x):
        return x.sum()


class _Two(nn.Module):
    def forward(self, x):
        return x[:2, 0]
